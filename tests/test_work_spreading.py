"""Slow items spread over all workers, whatever the source: a list or a range (sliced on
demand), a generator or an iterator (fed through the stage's queue), another stage of the
same or of another backend, an async iterable (`task`).

The pipelines first pass a run of fast items, so that the workers' batches have grown,
then a burst of slow ones: a queue that hands all that is ready to one worker sends the
whole burst to it. Counted, not timed: by ``worker_info.index`` in `thread` and `process`;
in `task` (where ``workers`` bounds the items in flight) by how many slow items ran at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from conftest import name_of, within

import pypeln as pl

pytestmark = pytest.mark.timeout(60)

WORKERS = 4
FAST = 300
SLOW = 16
#: A fair share is SLOW / WORKERS = 4; one worker taking this many means it was not shared.
MOST_PER_WORKER = 8
RUN_BOUND = 40

VALUES = list(range(FAST + SLOW))


def is_slow(x):
    return x >= FAST


def sources(backend):
    """The kinds of source a stage reads, by name: each a function making a fresh one."""
    kinds = {
        "list": lambda: list(VALUES),
        "range": lambda: range(FAST + SLOW),
        "generator": lambda: (x for x in VALUES),
        "iterator": lambda: iter(VALUES),
        "same-backend stage": lambda: backend.map(lambda x: x, VALUES, workers=1),
        "thread stage": lambda: pl.thread.map(lambda x: x, VALUES, workers=1),
    }
    if name_of(backend) == "task":

        async def agen():
            for x in VALUES:
                yield x

        kinds["async generator"] = agen
    return kinds


SOURCE_KINDS = [
    "list",
    "range",
    "generator",
    "iterator",
    "same-backend stage",
    "thread stage",
    "async generator",
]


def tag(backend):
    """f: ``(worker, x)``, slow on the slow items. In `task`, "worker" is how many slow items
    were in flight when this one started (all on one loop: a plain counter is exact)."""
    if name_of(backend) == "task":
        in_flight = [0]

        async def f(x):
            if not is_slow(x):
                return -1, x
            in_flight[0] += 1
            seen = in_flight[0]
            await asyncio.sleep(0.05)
            in_flight[0] -= 1
            return seen, x

        return f

    def g(x, worker_info):
        if is_slow(x):
            time.sleep(0.05)
        return worker_info.index, x

    return g


def all_started(backend):
    """An `on_start` that waits until every worker has started (or gives up after 10 s),
    so that a worker slow to start still finds its share; None where workers start together."""
    if name_of(backend) in ("sync", "task"):
        return None
    ns = backend.Namespace(ready=0)

    def on_start():
        with ns:
            ns.ready += 1
        deadline = time.monotonic() + 10
        while ns.ready < WORKERS and time.monotonic() < deadline:
            time.sleep(0.01)

    return on_start


@pytest.mark.parametrize("kind", SOURCE_KINDS)
def test_a_burst_of_slow_items_spreads_over_all_workers(concurrent_backend, kind):
    backend = concurrent_backend
    make = sources(backend).get(kind)
    if make is None:
        pytest.skip(f"{name_of(backend)} reads no {kind}")
    stage = backend.map(
        tag(backend), make(), workers=WORKERS, on_start=all_started(backend), maxsize=0
    )
    out = within(RUN_BOUND, list, stage)
    assert sorted(x for _, x in out) == VALUES
    if name_of(backend) == "task":
        most = max(w for w, x in out if is_slow(x))
        assert most >= WORKERS - 1, (
            f"from a {kind}, at most {most} of the slow items ran at once ({WORKERS} may)"
        )
        return
    per_worker = Counter(w for w, x in out if is_slow(x))
    assert max(per_worker.values()) <= MOST_PER_WORKER, (
        f"from a {kind}, the {SLOW} slow items went to the workers as {dict(per_worker)}: "
        "one worker took far more than its share"
    )
    assert len(per_worker) >= WORKERS - 1, (
        f"from a {kind}, the slow items reached only the workers {sorted(per_worker)}"
    )
