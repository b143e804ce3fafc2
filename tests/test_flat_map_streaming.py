"""`flat_map` streams: the outputs of `f` flow on as they are made, held back by a full
output, on every backend (an endless generator works; memory stays bounded)."""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import threading
import time
from collections import Counter

import pytest
from conftest import BACKEND_NAMES, within
from hypothesis import given
from hypothesis import strategies as st

import pypeln as pl

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=[name for name in BACKEND_NAMES if name != "ray"])
def streaming(request):
    """The backends whose flat_map streams (`pl.ray` makes each batch's outputs in its
    actor and sends them back together: an endless `f` would never answer there)."""
    return getattr(pl, request.param)


def endless(x):
    """Yields x forever."""
    while True:
        yield x


def huge(x):
    return range(10**9)


def counted(path, x):
    """Yields 0, 1, 2, ... forever, writing how many it has made to `path` every 100."""
    for i in itertools.count():
        if i % 100 == 0:
            with open(path, "w") as file:
                file.write(str(i))
        yield i


def expand(x):
    """A generator of x items."""
    for k in range(x):
        yield x * 100 + k


def fails_midway(x):
    yield x
    yield x + 1
    raise KeyError("midway")


def test_an_endless_generator_streams(streaming):
    stage = streaming.flat_map(endless, [1, 2], workers=2)
    got = within(20, lambda: list(itertools.islice(stage, 10)))
    assert len(got) == 10 and set(got) <= {1, 2}


def test_a_huge_range_gives_its_first_items_at_once(streaming):
    stage = streaming.flat_map(huge, [0])
    assert within(20, lambda: list(itertools.islice(stage, 10))) == list(range(10))


def test_a_full_output_holds_the_generator_back(streaming, tmp_path):
    path = str(tmp_path / "made")
    stage = streaming.flat_map(functools.partial(counted, path), [0], maxsize=10)
    first = within(20, lambda: list(itertools.islice(iter(stage), 10)))
    assert first == list(range(10))
    # A window for a producer that is not held back to run far ahead.
    time.sleep(0.5)
    with open(path) as file:
        made = int(file.read() or 0)
    # Within what a handover, the output's room and (process) the pipe hold; not 10**9.
    assert made < 200_000


@pytest.mark.timeout(180)  # (on pl.ray each run starts its actors: about a second each)
@pytest.mark.parametrize("workers", [1, 3])
@given(xs=st.lists(st.integers(0, 30), max_size=20), maxsize=st.sampled_from([0, 1, 7]))
def test_outputs_are_those_of_f(backend, workers, xs, maxsize):
    expected = list(itertools.chain.from_iterable(map(expand, xs)))
    stage = backend.flat_map(expand, xs, workers=workers, maxsize=maxsize)
    assert Counter(within(20, list, stage)) == Counter(expected)
    stage = backend.flat_map(expand, xs, workers=workers, maxsize=maxsize) | backend.ordered
    assert within(20, list, stage) == expected


def test_an_error_midway_in_the_generator_surfaces(backend):
    stage = backend.flat_map(fails_midway, range(5), workers=2)
    with pytest.raises(KeyError, match="midway"):
        within(20, list, stage)


def test_items_out_counts_every_output(backend):
    it = backend.to_iterable(backend.flat_map(expand, [3, 0, 5], workers=2))
    assert sorted(within(20, list, it)) == [*expand(3), *expand(5)]
    row = it.stats[0]
    assert (row.items_in, row.items_out) == (3, 8)


class FlakyOnce:
    """Fails midway through its first call's generator for each item, then works."""

    def __init__(self, path):
        self.path = path

    def __call__(self, x):
        marker = os.path.join(self.path, str(x))
        yield x
        if not os.path.exists(marker):
            open(marker, "w").close()
            raise ValueError("first attempt")
        yield -x


def test_under_a_policy_a_retried_item_emits_its_outputs_once(backend, tmp_path):
    stage = backend.flat_map(FlakyOnce(str(tmp_path)), [1, 2, 3], retries=1, backoff=0)
    assert sorted(within(20, list, stage)) == [-3, -2, -1, 1, 2, 3]


def test_with_a_timeout_the_outputs_of_an_item_in_time_all_arrive(backend):
    stage = backend.flat_map(expand, [2, 3], timeout=10)
    assert sorted(within(20, list, stage)) == sorted([200, 201, 300, 301, 302])


def test_task_streams_an_endless_async_generator():
    async def ticks(x):
        while True:
            yield x

    stage = pl.task.flat_map(ticks, [7], maxsize=5)
    assert within(20, lambda: list(itertools.islice(iter(stage), 10))) == [7] * 10


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_task_hands_on_the_outputs_of_a_slow_generator_as_they_come(kind):
    """Outputs made slowly go on within a moment (`HANDOVER_SECONDS`), not once a
    handover's worth (`HANDOVER_ITEMS`, 1,024) is made, and keep going after that."""
    seen = threading.Event()
    made = [0]
    made_when_seen = [10**9]

    def outputs():
        for k in range(3000):
            if seen.is_set() and k >= made_when_seen[0] + 20:
                return
            made[0] += 1
            yield k

    async def slowly_async(x):
        for k in outputs():
            yield k
            await asyncio.sleep(0.005)

    def slowly_sync(x):  # (it blocks the loop between outputs: so be it)
        for k in outputs():
            yield k
            time.sleep(0.005)

    f = slowly_async if kind == "async" else slowly_sync
    it = iter(pl.task.flat_map(f, [0]))
    assert within(20, next, it) == 0
    made_when_seen[0] = made[0]
    seen.set()
    assert made_when_seen[0] < 1024, f"the first output came after {made_when_seen[0]} were made"
    rest = within(30, list, it)
    assert rest == list(range(1, len(rest) + 1))
    assert len(rest) >= made_when_seen[0] + 19
