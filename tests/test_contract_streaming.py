"""`ordered` streams within a bounded `window`, and `maxsize` gives exact backpressure.

What is checked (spec sections 1 and 4):

- `ordered` yields an item as soon as every item before it in source order was yielded or
  dropped, so it can read an endless source (after map, filter, flat_map, or stages of two
  backends) and yields its first items while the source is still running;
- `window`: while the head item is stuck, at most ``window`` source items are read (plus a
  slack of 2 for a feeder holding one); ``window=1`` is sequential and does not deadlock;
- on finite inputs `ordered` keeps its 0.4.9 results, whatever the window; a bad `window`
  is refused at the call, with a message naming the parameter and the value;
- exact backpressure on the concurrent backends: 5 calls of `f` for one item taken through
  ``to_iterable(maxsize=3)``, at most 16 items ahead of a slow consumer, and chained stages
  each held back by their own `maxsize`.

A non-streaming `ordered` fails these quickly rather than hanging: the endless source here
raises `ReadTooFar` when read absurdly deep, and a consumer waits a bounded time for items of
a source that is still running. Calls of `f` are counted in a file (one byte appended per
call), which works the same in threads, tasks and worker processes, whatever the start method.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import itertools
import os
import random
import re
import threading
import time
from typing import Optional

import pytest
from conftest import CountingSource, name_of, wait_until, within

import pypeln as pl

pytestmark = pytest.mark.timeout(60)

#: How deep an endless source may be read while the consumer wants 100 items. A streaming
#: `ordered` reads about its window (16384 by default) beyond what it has yielded.
READ_LIMIT = 200_000
#: Items a feeder may hold beyond the window (spec: "a slack of 2").
WINDOW_SLACK = 2


class ReadTooFar(Exception):
    """An endless source was read far beyond what a streaming `ordered` needs."""


def endless():
    """itertools.count(), refusing to be read more than `READ_LIMIT` items deep."""
    for i in itertools.count():
        if i >= READ_LIMIT:
            raise ReadTooFar(f"source read {READ_LIMIT} items deep: ordered does not stream")
        yield i


def gated(release: threading.Event, before: int = 10, total: int = 20):
    """0, 1, ..., total - 1, waiting for `release` after the first `before` items."""
    for i in range(total):
        if i == before:
            release.wait(30)
        yield i


# -- functions for the workers (module level: picklable by reference) -------------------


def scramble(x):
    """x, a little late for some of the first items, so that workers finish out of order."""
    if x < 100:
        time.sleep(random.Random(x).random() * 0.003)
    return x


def double(x):
    return 2 * x


def not_multiple_of_4(x):
    return x % 4 != 0


def expand(x):
    """``x % 3`` outputs (none for multiples of 3), in sub-order."""
    return [(x, i) for i in range(x % 3)]


def overrun(x):
    """x, except that 2 and 5 take 3 s (in short steps, so the worker can be stopped)."""
    if x in (2, 5):
        for _ in range(60):
            time.sleep(0.05)
    return x


async def overrun_async(x):
    if x in (2, 5):
        await asyncio.sleep(3)
    return x


def hold_zero(gate_dir, x):
    """x; item 0 first creates ``gate_dir/started``, then waits for ``gate_dir/release``."""
    if x == 0:
        open(os.path.join(gate_dir, "started"), "w").close()
        wait_until(lambda: os.path.exists(os.path.join(gate_dir, "release")), 30, 0.01)
    return x


async def hold_zero_async(gate_dir, x):
    if x == 0:
        open(os.path.join(gate_dir, "started"), "w").close()
        for _ in range(3000):
            if os.path.exists(os.path.join(gate_dir, "release")):
                break
            await asyncio.sleep(0.01)
    return x


def count_call(path, x):
    """x, after appending one byte to the file `path` (one byte per call, any process)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, b".")
    finally:
        os.close(fd)
    return x


def calls(path) -> int:
    return os.path.getsize(path) if os.path.exists(path) else 0


@contextlib.contextmanager
def iterating(iterable):
    """An iterator over `iterable`, closed on exit (which stops the pipeline)."""
    it = iter(iterable)
    try:
        yield it
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


class Consumer:
    """Reads a whole stage in a thread; `out` grows as items arrive."""

    def __init__(self, stage) -> None:
        self.stage = stage
        self.out: list = []
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, name="test-consumer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for x in self.stage:
                self.out.append(x)
        except BaseException as e:  # re-raised by `result`
            self.error = e

    def result(self, timeout: float) -> list:
        """Everything the stage yielded, once it ended (within `timeout` seconds)."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the pipeline did not end within {timeout}s"
        if self.error is not None:
            raise self.error
        return self.out


def first(n, stage):
    with iterating(stage) as it:
        return list(itertools.islice(it, n))


# -- streaming over endless sources -----------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kwargs", [{}, {"window": 8}], ids=["default", "window=8"])
def test_ordered_streams_an_endless_source(backend, kwargs):
    stage = endless() | backend.map(scramble, workers=2) | backend.ordered(**kwargs)
    assert first(100, stage) == list(range(100))


@pytest.mark.timeout(20)
def test_ordered_streams_after_a_filter(backend):
    stage = (
        endless()
        | backend.map(scramble, workers=2)
        | backend.filter(not_multiple_of_4, workers=2)
        | backend.ordered
    )
    assert first(100, stage) == [x for x in range(200) if x % 4][:100]


@pytest.mark.timeout(20)
def test_ordered_streams_after_a_flat_map(backend):
    stage = endless() | backend.flat_map(expand, workers=2) | backend.ordered
    expected = (pair for x in itertools.count() for pair in expand(x))
    assert first(100, stage) == list(itertools.islice(expected, 100))


@pytest.mark.timeout(20)
def test_ordered_streams_across_backends(backend):
    stage = (
        endless()
        | pl.thread.map(scramble, workers=2)
        | pl.process.map(double, workers=2)
        | backend.ordered
    )
    assert first(100, stage) == [2 * x for x in range(100)]


@pytest.mark.timeout(30)
def test_ordered_yields_while_the_source_is_still_running(backend):
    release = threading.Event()
    stage = gated(release) | backend.map(scramble, workers=2) | backend.ordered
    consumer = Consumer(stage)
    try:
        wait_until(lambda: len(consumer.out) >= 10, 10)
        head = list(consumer.out)
    finally:
        release.set()
    assert head == list(range(10)), "ordered waited for the source to end"
    assert consumer.result(15) == list(range(20))


# -- the window -------------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("window", [1, 4, 50])
def test_window_bounds_reading_while_the_head_is_stuck(concurrent_backend, window, tmp_path):
    backend = concurrent_backend
    hold = hold_zero_async if name_of(backend) == "task" else hold_zero
    source = CountingSource()
    n = 4 * window + 20
    stage = (
        itertools.islice(source, n)
        | backend.map(functools.partial(hold, str(tmp_path)), workers=3)
        | backend.ordered(window=window)
    )
    consumer = Consumer(stage)
    try:
        assert wait_until(lambda: (tmp_path / "started").exists(), 15), "f never got item 0"
        time.sleep(0.5)  # time enough for an unbounded reader to run far ahead
        pulled = source.pulled
    finally:
        (tmp_path / "release").touch()
    assert pulled <= window + WINDOW_SLACK, (
        f"window={window}: the source was read {pulled} items deep while item 0 was stuck"
    )
    assert consumer.result(15) == list(range(n))


@pytest.mark.timeout(60)
def test_default_window_bounds_a_long_stream_behind_a_stuck_head(concurrent_backend, tmp_path):
    # 100,000 fast items behind a stuck item 0: `ordered` holds at most a window of them
    backend = concurrent_backend
    hold = hold_zero_async if name_of(backend) == "task" else hold_zero
    window = 16384  # the documented default (test_window_defaults_to_16384)
    source = CountingSource()
    n = 100_000
    stage = (
        itertools.islice(source, n)
        | backend.map(functools.partial(hold, str(tmp_path)), workers=3)
        | backend.ordered
    )
    consumer = Consumer(stage)
    try:
        assert wait_until(lambda: (tmp_path / "started").exists(), 15), "f never got item 0"
        assert wait_until(lambda: source.pulled >= window, 20), source.pulled
        time.sleep(0.3)  # time enough for an unbounded reader to run further
        pulled = source.pulled
    finally:
        (tmp_path / "release").touch()
    assert pulled <= window + WINDOW_SLACK, f"read {pulled} items deep while item 0 was stuck"
    assert consumer.result(40) == list(range(n))


@pytest.mark.timeout(30)
def test_window_of_one_is_sequential_without_deadlock(backend):
    stage = (
        iter(range(40))
        | backend.map(scramble, workers=3)
        | backend.filter(not_multiple_of_4, workers=3)
        | backend.flat_map(expand, workers=3)
        | backend.ordered(window=1)
    )
    expected = [pair for x in range(40) if x % 4 for pair in expand(x)]
    assert within(20, list, stage) == expected


# -- finite inputs keep 0.4.9's results -------------------------------------------------


@pytest.fixture(params=[{}, {"window": 1}, {"window": 0}], ids=["default", "window=1", "window=0"])
def window_kwargs(request):
    return request.param


def test_ordered_sorts_by_index_on_finite_input(backend, window_kwargs):
    stage = (
        range(30)
        | backend.map(scramble, workers=3)
        | backend.filter(not_multiple_of_4, workers=2)
        | backend.flat_map(expand, workers=2)
        | backend.ordered(**window_kwargs)
    )
    assert list(stage) == [pair for x in range(30) if x % 4 for pair in expand(x)]
    assert list(backend.each(double, range(20), workers=2) | backend.ordered(**window_kwargs)) == []


def test_ordered_skips_items_dropped_by_timeout(backend, window_kwargs):
    f = overrun_async if name_of(backend) == "task" else overrun
    stage = range(8) | backend.map(f, workers=2, timeout=0.3) | backend.ordered(**window_kwargs)
    assert list(stage) == [0, 1, 3, 4, 6, 7]


@pytest.mark.skipif(
    "MUTANT_UNDER_TEST" in os.environ, reason="the mutation tool's wrappers hide signatures"
)
def test_window_defaults_to_16384(backend):
    assert inspect.signature(backend.ordered).parameters["window"].default == 16384


@pytest.mark.parametrize("bad", [-1, 1.5, True, "8"], ids=repr)
@pytest.mark.parametrize("partial", [False, True], ids=["stage", "partial"])
def test_bad_window_is_refused_at_the_call(backend, bad, partial):
    names_window_and_value = rf"(?s)(?=.*\bwindow\b)(?=.*{re.escape(repr(bad))})"
    with pytest.raises((TypeError, ValueError), match=names_window_and_value):
        if partial:
            backend.ordered(window=bad)
        else:
            backend.ordered(range(3), window=bad)


# -- exact backpressure (thread, process, task) -----------------------------------------


@pytest.mark.timeout(30)
def test_one_item_taken_runs_f_exactly_five_times(concurrent_backend, tmp_path):
    path = str(tmp_path / "calls")
    f = functools.partial(count_call, path)
    stage = concurrent_backend.map(f, range(1000), workers=1)
    with iterating(concurrent_backend.to_iterable(stage, maxsize=3)) as it:
        assert next(it) == 0
        wait_until(lambda: calls(path) >= 5, 10)
        time.sleep(0.5)  # time enough for a loose bound to overshoot
        after_a_pause = calls(path)
        time.sleep(0.3)
        later = calls(path)
    # 1 yielded, 3 queued, 1 computed and waiting to be put
    assert (after_a_pause, later) == (5, 5)


@pytest.mark.timeout(30)
def test_map_stays_close_ahead_of_a_slow_consumer(concurrent_backend, tmp_path):
    path = str(tmp_path / "calls")
    f = functools.partial(count_call, path)
    stage = concurrent_backend.map(f, range(10**6), workers=2, maxsize=10)
    ahead = []
    with iterating(concurrent_backend.to_iterable(stage, maxsize=10)) as it:
        for taken in range(1, 31):
            next(it)
            time.sleep(0.02)
            ahead.append(calls(path) - taken)
        time.sleep(0.3)
        ahead.append(calls(path) - taken)
    assert max(ahead) <= 16, f"f ran up to {max(ahead)} items ahead of the consumer: {ahead}"


@pytest.mark.timeout(30)
def test_chained_stages_each_honour_their_maxsize(concurrent_backend, tmp_path):
    backend = concurrent_backend
    path = str(tmp_path / "calls")
    stage = (
        CountingSource()
        | backend.map(functools.partial(count_call, path), maxsize=2)
        | backend.map(double, maxsize=2)
    )
    with iterating(backend.to_iterable(stage, maxsize=2)) as it:
        assert next(it) == 0
        time.sleep(0.5)  # time enough for an unbounded stage to run far ahead
        ran = calls(path)
    # about 2 + 1 + 2 + 1 + 1 = 7 items: each stage's queue and what its worker holds
    assert 1 <= ran <= 10, f"f1 ran {ran} times for one item taken"
