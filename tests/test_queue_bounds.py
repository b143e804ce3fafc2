"""`maxsize` is an exact bound: a queue never holds ``maxsize + 1`` items.

`test_contract_backpressure` checks that a bounded pipeline does not run far ahead of its
consumer (a few hundred items of slack); these tests check the bound itself, on the
queues (`pl.thread.IterableQueue`, the one every backend but `task` moves items through,
and `pl.task.IterableQueue`) and on a stage's input queue as its stats report it.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import pytest
from conftest import name_of, wait_until, within

import pypeln as pl

pytestmark = pytest.mark.timeout(30)

#: How long a test waits for something that should happen at once (a put, a wake-up).
SOON = 5.0


def fill_in_background(q, items):
    """Start a thread putting `items` into `q` in one `put_batch`; the thread, and an
    event set once the put has returned."""
    returned = threading.Event()

    def put() -> None:
        q.put_batch(items)
        returned.set()

    thread = threading.Thread(target=put, name="test-producer", daemon=True)
    thread.start()
    return thread, returned


def wait_for_len(q, n):
    deadline = time.monotonic() + SOON
    while len(q) < n:
        assert time.monotonic() < deadline, f"the queue never held {n} items (holds {len(q)})"
        time.sleep(0.005)


@pytest.mark.parametrize("maxsize", [1, 3])
def test_put_batch_fills_the_queue_to_maxsize_and_no_further(maxsize):
    q = pl.thread.IterableQueue(maxsize=maxsize)
    q.add_producers(1)
    thread, returned = fill_in_background(q, list(range(10)))
    wait_for_len(q, maxsize)
    assert not returned.is_set(), "put_batch of 10 items returned with room for only a few"
    assert len(q) == maxsize and q.peak == maxsize, f"held {len(q)} items, at most {q.peak}"
    out = []
    while len(out) < 10:
        got = q.get_batch(100)
        assert got is not None
        out.extend(got)
        assert len(got) <= maxsize
    assert returned.wait(SOON), "put_batch did not return once its items were taken"
    thread.join(SOON)
    assert out == list(range(10))
    assert q.peak == maxsize, f"the queue held {q.peak} items at once (maxsize {maxsize})"
    q.done()
    assert q.get_batch(1) is None


@pytest.mark.parametrize("maxsize", [1, 3])
def test_single_puts_wait_at_maxsize(maxsize):
    q = pl.thread.IterableQueue(maxsize=maxsize)
    for x in range(maxsize):
        q.put(x)
    assert q.room() == 0
    done = threading.Event()
    thread = threading.Thread(target=lambda: (q.put(-1), done.set()), daemon=True)
    thread.start()
    assert not done.wait(0.2), "a put into a full queue returned without waiting"
    assert len(q) == maxsize
    assert q.get_batch(1) == [0]
    assert done.wait(SOON), "a put waiting for room was not woken when an item was taken"
    thread.join(SOON)
    assert len(q) == maxsize and q.peak == maxsize


def test_room_counts_items_and_reservations():
    q = pl.thread.IterableQueue(maxsize=5)
    assert q.room() == 5
    assert q.reserve(2) == 2
    assert q.room() == 3
    q.put_batch(["a"])
    assert q.room() == 2
    assert q.reserve(10) == 2, "reserve promised more room than there is"
    assert q.reserve(1) == 0, "reserve promised room in a full queue"
    # the promised room is given back by put_batch(..., reserved=n), used or not
    q.put_batch(["b", "c"], reserved=2)
    q.put_batch([], reserved=2)
    assert len(q) == 3 and q.room() == 2
    assert pl.thread.IterableQueue().room() >= 1 << 20, "an unbounded queue has room"
    assert pl.thread.IterableQueue().reserve(7) == 7


def test_reserved_room_is_kept_for_its_producer():
    q = pl.thread.IterableQueue(maxsize=2)
    assert q.reserve(2) == 2
    thread, returned = fill_in_background(q, ["other"])
    assert not returned.wait(0.2), "another producer took room that was promised"
    q.put_batch(["x", "y"], reserved=2)
    assert q.get_batch(10) == ["x", "y"]
    assert returned.wait(SOON), "the other producer was not woken when room was freed"
    thread.join(SOON)
    assert q.get_batch(10) == ["other"]
    assert q.peak == 2


def test_put_batch_nowait_adds_what_fits_and_calls_back_when_room_frees():
    q = pl.thread.IterableQueue(maxsize=3)
    called = threading.Event()
    assert q.put_batch_nowait([1, 2], called.set) == 2
    assert not called.is_set()
    assert q.put_batch_nowait([3, 4, 5], called.set) == 1, "added beyond maxsize"
    assert len(q) == 3 and not called.is_set()
    assert q.put_batch_nowait([4], called.set) == 0
    assert q.get_batch(1) == [1]
    assert called.is_set(), "on_room was not called when an item was taken"
    assert pl.thread.IterableQueue().put_batch_nowait([1, 2], called.set) == 2


def test_on_room_waits_for_a_full_queue_only():
    q = pl.thread.IterableQueue(maxsize=2)
    now = threading.Event()
    q.on_room(now.set)
    assert now.is_set(), "on_room did not call back at once with room free"
    q.put_batch([1, 2])
    later = threading.Event()
    q.on_room(later.set)
    assert not later.is_set(), "on_room called back while the queue was full"
    q.get_batch(1)
    assert later.is_set()
    q.reserve(1)
    full = threading.Event()
    q.on_room(full.set)
    assert not full.is_set(), "on_room called back while reserved room filled the queue"


@pytest.mark.parametrize("maxsize", [1, 3])
def test_task_queue_holds_maxsize_items(maxsize):
    async def main():
        q = pl.task.IterableQueue(maxsize=maxsize)
        q.add_producers(1)
        putter = asyncio.ensure_future(q.put_many(list(range(10))))
        for _ in range(20):  # let the putter run as far as it can
            await asyncio.sleep(0)
        assert not putter.done(), "put_many of 10 items returned with room for only a few"
        assert len(q) == maxsize and q.full()
        held = [len(q)]
        out = []
        async for x in q:
            out.append(x)
            held.append(len(q))
            if len(out) == 10:
                break
        await asyncio.wait_for(putter, SOON)
        return out, max(held)

    out, most = within(SOON, asyncio.run, main())
    assert out == list(range(10))
    assert most == maxsize, f"the queue held {most} items at once (maxsize {maxsize})"


def slow_identity(backend):
    if name_of(backend) == "task":

        async def f(x):
            await asyncio.sleep(0.01)
            return x

        return f

    def g(x):
        time.sleep(0.01)
        return x

    return g


@pytest.mark.parametrize("maxsize", [1, 3])
def test_a_stage_input_queue_holds_exactly_maxsize_items(concurrent_backend, maxsize):
    backend = concurrent_backend
    source = (x for x in range(30))  # a generator is fed through the queue (a range is not)
    it = backend.to_iterable(backend.map(slow_identity(backend), source, maxsize=maxsize))
    out = within(10, list, it)
    peak = it.stats[0].queue_peak
    assert sorted(out) == list(range(30))
    assert peak <= maxsize, f"the stage's input queue held {peak} items (maxsize {maxsize})"
    assert peak == maxsize, f"a fast source never filled the input queue ({peak} items)"


# -- ending, cancelling and waking: what a worker waiting on the queue relies on ----------


def test_the_queue_ends_when_its_last_producer_is_done():
    q = pl.thread.IterableQueue()
    q.add_producers(2)
    q.put("a")
    q.done()
    assert q.get_batch(10) == ["a"]
    ended = threading.Event()
    result = []
    thread = threading.Thread(target=lambda: (result.append(q.get_batch(10)), ended.set()))
    thread.start()
    assert not ended.wait(0.2), "the queue ended while a producer was still registered"
    q.done()
    assert ended.wait(SOON), "a waiting consumer was not told that the queue ended"
    thread.join(SOON)
    assert result == [None]
    assert list(q) == []


def test_an_empty_sequence_is_no_producer():
    q = pl.thread.IterableQueue()
    q.add_sequence([])
    assert q.get_batch(1) is None, "an empty list left the queue waiting for a producer"
    q2 = pl.thread.IterableQueue(consumers=2)
    q2.add_sequence(range(5))
    assert list(q2) == [((i,), i) for i in range(5)]


def test_a_sequence_is_shared_between_consumers():
    q = pl.thread.IterableQueue(consumers=4)
    q.add_sequence(list(range(40)))
    first = q.get_batch(1000)
    assert first is not None and len(first) == 10, "one consumer took more than its share"
    assert [v for _, v in first] == list(range(10))


def test_close_wakes_every_waiter_with_cancelled():
    from pypeln._core.errors import Cancelled

    q = pl.thread.IterableQueue(maxsize=1)
    q.add_producers(1)
    q.put("x")
    outcomes = []

    def blocked_put() -> None:
        try:
            q.put_batch(["y"])
        except Cancelled:
            outcomes.append("put cancelled")

    empty = pl.thread.IterableQueue()
    empty.add_producers(1)

    def blocked_get() -> None:
        try:
            empty.get_batch(1)
        except Cancelled:
            outcomes.append("get cancelled")

    threads = [threading.Thread(target=t) for t in (blocked_put, blocked_get)]
    for t in threads:
        t.start()
    assert wait_until(lambda: q._putters and empty._getters, SOON), "neither waiter blocked"
    q.close()
    empty.close()
    for t in threads:
        t.join(SOON)
    assert sorted(outcomes) == ["get cancelled", "put cancelled"], "a waiter was not woken"
    for call in (lambda: q.put("z"), lambda: q.get_batch(1), lambda: q.reserve(1)):
        with pytest.raises(Cancelled):
            call()
    with pytest.raises(Cancelled):
        q.put_batch_nowait([1], lambda: None)


def test_get_waking_returns_on_wake_and_after_its_timeout():
    q = pl.thread.IterableQueue(tracked=True)
    q.add_producers(1)
    started = time.monotonic()
    assert q.get_waking(10, timeout=0.05) == ([], 0)
    assert time.monotonic() - started < SOON
    returned = threading.Event()
    thread = threading.Thread(target=lambda: (q.get_waking(10), returned.set()))
    thread.start()
    assert not returned.wait(0.1), "get_waking returned with nothing ready and no wake-up"
    q.wake()
    assert returned.wait(SOON), "wake() did not wake a consumer in get_waking"
    thread.join(SOON)
    assert q.get_tracked(10, block=False) == ([], 0)


def tracked_queue():
    """A tracked queue with one producer and one watermark slot, and the list of the
    watermarks it reports as covered."""
    q = pl.thread.IterableQueue(tracked=True)
    covered = []
    q.on_cover = covered.append
    slot = q.progress_slot()
    q.add_producers(1)
    return q, covered, slot


def test_a_tracked_queue_reports_what_its_consumers_covered():
    q, covered, slot = tracked_queue()
    q.put_batch([((0,), "a"), ((1,), "b")])
    q.advance(slot, 2)
    got = q.get_tracked(1)
    assert got == ([((0,), "a")], 0)
    rest = q.get_tracked(10)
    assert rest == ([((1,), "b")], 1)
    assert covered == []
    q.finish(1, 1)
    assert covered == [], "covered a watermark before take 0 was finished"
    q.finish(0, 1)
    assert covered == [2]
    q.finish(5, 0)  # nothing finished: nothing reported
    assert covered == [2]


def test_put_batch_nowait_counts_reserved_room_and_calls_back_only_when_short():
    q = pl.thread.IterableQueue(maxsize=4)
    assert q.reserve(2) == 2
    called = threading.Event()
    assert q.put_batch_nowait([1, 2, 3], called.set) == 2, "added into reserved room"
    q.put_batch([], reserved=2)
    assert q.get_batch(1) == [1]
    assert called.is_set()
    fits = threading.Event()
    assert q.put_batch_nowait([3], fits.set) == 1
    assert q.get_batch(1) == [2]
    assert not fits.is_set(), "on_room was called back although every item fitted"


def test_a_tracked_queue_counts_items_put_without_waiting():
    q, covered, slot = tracked_queue()
    assert q.put_batch_nowait([((0,), "a")], lambda: None) == 1
    assert q.put_batch_nowait([((1,), "b")], lambda: None) == 1
    q.advance(slot, 2)
    assert q.get_tracked(10) == ([((0,), "a"), ((1,), "b")], 0)
    assert covered == [], "a watermark was covered before its items were taken"
    q.finish(0, 1)
    assert covered == [], "a watermark was covered with one of its items unfinished"
    q.finish(1, 1)
    assert covered == [2]


def test_an_unbounded_queue_refuses_puts_once_closed_and_counts_tracked_puts():
    from pypeln._core.errors import Cancelled

    q = pl.thread.IterableQueue()
    q.close()
    with pytest.raises(Cancelled):
        q.put("x")
    tracked = pl.thread.IterableQueue(tracked=True)
    covered = []
    tracked.on_cover = covered.append
    slot = tracked.progress_slot()
    tracked.add_producers(1)
    tracked.put(((0,), "a"))
    tracked.put(((1,), "b"))
    tracked.advance(slot, 2)
    assert tracked.get_tracked(1) == ([((0,), "a")], 0)
    tracked.finish(0, 1)
    assert covered == [], "covered with an item put but not taken"


def test_get_tracked_waits_for_an_item():
    q = pl.thread.IterableQueue()
    q.add_producers(1)
    got = []
    returned = threading.Event()
    thread = threading.Thread(target=lambda: (got.append(q.get_tracked(10)), returned.set()))
    thread.start()
    assert not returned.wait(0.1), "get_tracked returned from an empty queue without waiting"
    q.put("x")
    assert returned.wait(SOON), "get_tracked was not woken by a put"
    thread.join(SOON)
    assert got == [(["x"], 0)]


# -- a stage's worker never runs further ahead than the room downstream -------------------


def test_a_thread_stage_computes_no_further_ahead_than_the_room_downstream():
    """Upstream of a stage blocked on its first item, with room for 2: 2 items wait in the
    queue, 1 is held by the blocked stage and 1 by the upstream worker, waiting for room."""
    calls = []
    release = threading.Event()

    def f(x):
        calls.append(x)
        return x

    def g(x):
        assert release.wait(SOON), "the test did not release the blocked stage"
        return x

    stage = pl.thread.map(f, (x for x in range(100)), workers=1) | pl.thread.map(
        g, workers=1, maxsize=2
    )
    result = []
    consumer = threading.Thread(target=lambda: result.extend(stage), daemon=True)
    consumer.start()
    try:
        assert wait_until(lambda: len(calls) >= 4, SOON), f"only {len(calls)} items computed"
        assert not wait_until(lambda: len(calls) > 4, 0.3), (
            f"the upstream stage computed {len(calls)} items with room for 4"
        )
    finally:
        release.set()
    consumer.join(SOON)
    assert result == list(range(100))


def trickle(n):
    for x in range(n):
        time.sleep(0.002)  # the stage often finds its input empty
        yield x


def test_a_bounded_stage_on_a_trickling_source_keeps_its_room(concurrent_backend):
    """A worker that finds nothing to take gives back the room it reserved: if it kept it,
    the stage would run out of room and stall."""
    backend = concurrent_backend
    stage = backend.map(lambda x: x, trickle(60), workers=2, maxsize=2)
    out = within(20, sorted, stage)
    assert out == list(range(60))


def test_ordered_streams_from_an_endless_source(concurrent_backend):
    """Takes are reported finished as they are: otherwise `ordered` waits for the end."""
    backend = concurrent_backend

    def first_ten():
        it = iter(backend.ordered(backend.map(lambda x: x, itertools.count(), workers=2)))
        out = [next(it) for _ in range(10)]
        it.close()
        return out

    assert within(20, first_ten) == list(range(10))


def test_wait_ready_waits_for_an_item_or_the_end():
    q = pl.thread.IterableQueue()
    q.add_producers(2)
    q.done()
    ready = threading.Event()
    thread = threading.Thread(target=lambda: (q.wait_ready(), ready.set()), daemon=True)
    thread.start()
    assert not ready.wait(0.1), "wait_ready returned with nothing ready and a producer left"
    q.put("x")
    assert ready.wait(SOON), "wait_ready was not woken by a put"
    thread.join(SOON)
    assert q.get_batch(5) == ["x"]
    q.done()
    within(SOON, q.wait_ready)  # ended: returns at once


def test_a_take_from_a_sequence_keeps_to_its_limit():
    q = pl.thread.IterableQueue()
    q.add_sequence(range(100))
    assert q.get_batch(3) == [((i,), i) for i in range(3)]
    indices, values, _ = q.get_columns(2)
    assert (indices, list(values)) == ([(3,), (4,)], [3, 4])
