"""`maxsize` bounds memory: on an endless source, a bounded pipeline read slowly pulls only
a few items ahead of its consumer.

A correct implementation holds about ``maxsize`` items per stage plus what its workers have
in hand (``workers x`` one batch, itself bounded by ``maxsize``): a few dozen items here. An
unbounded one reads tens of thousands of items in the same time.
"""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from conftest import CountingSource, wait_until

import pypeln as pl

pytestmark = pytest.mark.timeout(30)

#: How many items the source may run ahead of the consumer in these pipelines.
RUN_AHEAD_BOUND = 200


def consume_slowly(stage, n, pause=0.02):
    """Take `n` items from `stage` with a pause between them, then wait a little more."""
    it = iter(stage)
    out = []
    for x in itertools.islice(it, n):
        out.append(x)
        time.sleep(pause)
    time.sleep(0.3)  # time enough for an unbounded pipeline to run far ahead
    return it, out


@pytest.mark.parametrize("maxsize", [1, 3])
def test_one_bounded_stage(backend, maxsize):
    source = CountingSource()
    it, out = consume_slowly(backend.map(lambda x: x * 2, source, workers=2, maxsize=maxsize), 5)
    pulled = source.pulled
    it.close()
    assert len(out) == 5
    assert pulled - len(out) <= RUN_AHEAD_BOUND, f"the source ran {pulled} items ahead"


def test_every_stage_bounded(backend):
    source = CountingSource()
    stage = (
        source
        | backend.map(lambda x: x, workers=2, maxsize=2)
        | backend.filter(lambda x: x % 2 == 0, workers=2, maxsize=2)
        | backend.flat_map(lambda x: [x, x], workers=2, maxsize=2)
    )
    it, out = consume_slowly(stage, 6)
    pulled = source.pulled
    it.close()
    assert len(out) == 6 and all(x % 2 == 0 for x in out)
    assert pulled <= RUN_AHEAD_BOUND, f"the source ran {pulled} items ahead"


def test_bounded_from_iterable(backend):
    source = CountingSource()
    stage = backend.from_iterable(source, maxsize=2) | backend.map(lambda x: x, maxsize=2)
    it, out = consume_slowly(stage, 5)
    pulled = source.pulled
    it.close()
    assert len(out) == 5
    assert pulled <= RUN_AHEAD_BOUND, f"the source ran {pulled} items ahead"


def test_bounded_each_on_an_endless_source(backend):
    source = CountingSource()
    ns = backend.Namespace(calls=0)

    def count_then_stop(x):
        with ns:
            ns.calls += 1
            calls = ns.calls
        if calls == 20:
            time.sleep(0.3)  # time enough for an unbounded pipeline to run far ahead
            raise ValueError("stop")
        time.sleep(0.005)

    # `each` emits nothing: the consumer waits until the workers stop the run
    with pytest.raises(ValueError):
        backend.each(count_then_stop, source, workers=2, maxsize=2, run=True)
    pulled, calls = source.pulled, ns.calls
    assert pulled - calls <= RUN_AHEAD_BOUND, f"the source ran {pulled - calls} items ahead"


def test_bounded_stage_downstream_of_a_slow_stage(backend):
    # The bound on the second stage must hold the first one back, too.
    source = CountingSource()
    stage = (
        source
        | backend.map(lambda x: x, workers=2, maxsize=1)
        | backend.map(lambda x: time.sleep(0.01) or x, workers=1, maxsize=1)
    )
    it, out = consume_slowly(stage, 3)
    pulled = source.pulled
    it.close()
    assert pulled <= RUN_AHEAD_BOUND, f"the source ran {pulled} items ahead"


def test_maxsize_one_pipeline_is_complete(backend):
    stage = (
        range(60)
        | backend.map(lambda x: x + 1, workers=3, maxsize=1)
        | backend.filter(lambda x: x % 2, workers=2, maxsize=1)
        | backend.ordered(maxsize=1)
    )
    assert list(backend.to_iterable(stage, maxsize=1)) == [x for x in range(1, 61) if x % 2]


def counting_calls():
    """A function that counts its calls, and the count."""
    lock = threading.Lock()
    calls = [0]

    def count(x):
        with lock:
            calls[0] += 1
        return x

    return count, calls


@pytest.mark.parametrize("return_index", [False, True])
@pytest.mark.parametrize("name", ["thread", "process", "task"])
def test_a_stages_own_to_iterable_bounds_what_waits_for_the_consumer(name, return_index):
    """``stage.to_iterable(maxsize=3)`` read once, then left: one item yielded, three
    waiting, one finished and waiting to be put (the exact bound, as for the module's
    ``to_iterable``), values or elements alike; without a maxsize nothing stops the
    stage."""
    backend = getattr(pl, name)
    if name == "process":
        ns = pl.process.Namespace(calls=0)

        def count(x):
            with ns:
                ns.calls += 1
            return x

        def calls():
            return ns.calls
    else:
        count, counted = counting_calls()

        def calls():
            return counted[0]

    it = iter(backend.map(count, range(60)).to_iterable(maxsize=3, return_index=return_index))
    assert next(it) is not None
    assert wait_until(lambda: calls() >= 5, 10), f"f ran {calls()} times, not 5"
    time.sleep(0.3)  # (a stage not held back would run on through all 60 items)
    assert calls() == 5
    it.close()

    if name == "process":
        ns.calls = 0
    else:
        counted[0] = 0
    it = iter(backend.map(count, range(60)).to_iterable(return_index=return_index))
    assert next(it) is not None
    assert wait_until(lambda: calls() == 60, 10), f"f ran {calls()} times, not 60"
    it.close()


@pytest.mark.parametrize("name", ["thread", "process", "task"])
def test_run_of_several_stages_keeps_its_maxsize(name):
    backend = getattr(pl, name)
    stats = backend.run(
        backend.map(abs, range(50)), backend.map(abs, range(50)), maxsize=2, stats=True
    )
    rows = [row.as_dict() for row in stats if row.name == f"pl.{name}.concat"]
    assert len(rows) == 1 and rows[0]["items_in"] == 100
    assert rows[0]["queue_peak"] <= 2


async def agen(n):
    for i in range(n):
        yield i


def test_task_run_takes_an_async_source():
    seen = []
    assert pl.task.run(pl.task.each(seen.append, agen(3))) is None
    assert sorted(seen) == [0, 1, 2]
    assert pl.task.run(agen(3)) is None
