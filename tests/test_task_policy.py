"""`pl.task` under error policies and rate limits, and the statistics of task runs."""

from __future__ import annotations

import asyncio
import time
from typing import Any, List, Tuple

import pytest

import pypeln as pl
from pypeln._core.policy import ItemTimeoutError


class Flaky:
    """An async `f` that fails `failures` times for each value in `bad`, then succeeds."""

    def __init__(self, failures: int, bad: Tuple[int, ...] = (7,)) -> None:
        self.failures = failures
        self.bad = bad
        self.calls: List[Tuple[int, float]] = []

    async def __call__(self, x: int) -> int:
        self.calls.append((x, time.monotonic()))
        await asyncio.sleep(0)
        if x in self.bad and sum(1 for y, _ in self.calls if y == x) <= self.failures:
            raise ValueError(x)
        return x * 10


# -- retries ---------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_retries_then_succeeds_after_backoff() -> None:
    f = Flaky(failures=2)
    it = pl.task.to_iterable(pl.task.map(f, [7], retries=3, backoff=0.05))
    t = time.monotonic()
    assert list(it) == [70]
    elapsed = time.monotonic() - t
    row = it.stats[0]
    assert row.retried == 2
    assert (row.failed, row.skipped, row.items_in, row.items_out) == (0, 0, 1, 1)
    assert elapsed >= 0.05 + 0.1
    # the attempts themselves were spaced by the backoffs (0.05, then 0.1, plus jitter)
    times = [t for _, t in f.calls]
    assert times[1] - times[0] >= 0.05 and times[2] - times[1] >= 0.1


@pytest.mark.timeout(30)
def test_sync_f_is_retried_too() -> None:
    calls: List[int] = []

    def f(x: int) -> int:
        calls.append(x)
        if x == 3 and calls.count(3) == 1:
            raise KeyError(x)
        return x

    it = pl.task.to_iterable(pl.task.map(f, range(6), workers=3, retries=1, backoff=0))
    assert sorted(it) == list(range(6))
    assert it.stats[0].retried == 1


@pytest.mark.timeout(30)
def test_retries_exhausted_raise_and_count() -> None:
    f = Flaky(failures=10)
    it = pl.task.to_iterable(pl.task.map(f, [1, 7, 2], retries=1, backoff=0))
    with pytest.raises(ValueError):
        list(it)
    row = it.stats[0]
    assert row.failed == 1 and row.retried == 1


@pytest.mark.timeout(30)
def test_retry_on_limits_what_is_retried() -> None:
    f = Flaky(failures=1)
    stage = pl.task.map(f, [7], retries=3, backoff=0, retry_on=KeyError)
    with pytest.raises(ValueError):
        list(stage)
    assert len(f.calls) == 1


# -- on_error --------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_skip_drops_exactly_the_failing_items() -> None:
    f = Flaky(failures=10, bad=(3, 5, 8))
    it = pl.task.to_iterable(pl.task.map(f, range(10), workers=4, on_error="skip"))
    assert sorted(it) == [x * 10 for x in range(10) if x not in (3, 5, 8)]
    row = it.stats[0]
    assert (row.skipped, row.failed, row.items_in, row.items_out) == (3, 3, 10, 7)


@pytest.mark.timeout(30)
def test_skip_in_filter_and_flat_map() -> None:
    async def keep(x: int) -> bool:
        if x == 2:
            raise ValueError(x)
        return x % 2 == 0

    async def twice(x: int) -> List[int]:
        if x == 1:
            raise ValueError(x)
        return [x, x]

    assert sorted(pl.task.filter(keep, range(6), on_error="skip")) == [0, 4]
    assert sorted(pl.task.flat_map(twice, range(3), on_error="skip")) == [0, 0, 2, 2]


@pytest.mark.timeout(30)
def test_handler_gets_the_exception_and_the_value() -> None:
    seen: List[Tuple[str, Any]] = []

    def handler(e: BaseException, x: Any) -> Any:
        seen.append((type(e).__name__, x))
        return -x

    f = Flaky(failures=10, bad=(2, 4))
    it = pl.task.to_iterable(pl.task.map(f, range(5), workers=2, on_error=handler))
    assert sorted(it) == sorted([0, 10, -2, 30, -4])
    assert sorted(seen) == [("ValueError", 2), ("ValueError", 4)]
    assert it.stats[0].failed == 2 and it.stats[0].skipped == 0


@pytest.mark.timeout(30)
def test_handler_that_raises_stops_the_pipeline() -> None:
    def handler(e: BaseException, x: Any) -> Any:
        raise LookupError(f"gave up on {x}")

    f = Flaky(failures=10, bad=(3,))
    with pytest.raises(LookupError):
        list(pl.task.map(f, range(10), workers=2, on_error=handler))


# -- timeouts --------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_timed_out_attempt_is_retried() -> None:
    attempts: List[float] = []

    async def slow_first(x: int) -> int:
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            await asyncio.sleep(5)
        return x + 1

    it = pl.task.to_iterable(pl.task.map(slow_first, [1], timeout=0.2, retries=1, backoff=0.01))
    t = time.monotonic()
    assert list(it) == [2]
    assert time.monotonic() - t < 4  # the 5 s attempt was cut short
    assert len(attempts) == 2 and attempts[1] - attempts[0] >= 0.2
    row = it.stats[0]
    assert (row.timed_out, row.retried, row.failed) == (1, 1, 0)


@pytest.mark.timeout(30)
def test_timed_out_item_goes_to_the_handler() -> None:
    async def stuck(x: int) -> int:
        if x == 1:
            await asyncio.sleep(5)
        return x

    def handler(e: BaseException, x: Any) -> Any:
        assert isinstance(e, ItemTimeoutError) and isinstance(e, TimeoutError)
        return ("late", x)

    out = list(pl.task.map(stuck, range(3), workers=3, timeout=0.1, on_error=handler))
    assert sorted(out, key=str) == sorted([0, ("late", 1), 2], key=str)


@pytest.mark.timeout(30)
def test_timeout_without_policy_drops_silently_and_counts() -> None:
    async def stuck(x: int) -> int:
        if x in (1, 3):
            await asyncio.sleep(5)
        return x

    it = pl.task.to_iterable(pl.task.map(stuck, range(5), workers=5, timeout=0.1))
    assert sorted(it) == [0, 2, 4]
    row = it.stats[0]
    assert (row.timed_out, row.failed, row.skipped, row.items_in, row.items_out) == (
        2,
        0,
        0,
        5,
        3,
    )


@pytest.mark.timeout(30)
def test_flat_map_generator_is_retried_or_timed_whole_under_a_policy() -> None:
    attempts: List[int] = []

    async def flaky_gen(x: int, element_index: Any) -> Any:
        attempts.append(x)
        yield (x, element_index)
        if len(attempts) == 1:
            raise ValueError(x)  # midway: the outputs so far must not leak
        yield x

    out = list(pl.task.flat_map(flaky_gen, [5], retries=1, backoff=0))
    assert sorted(out, key=str) == [(5, (0,)), 5]

    async def slow_gen(x: int) -> Any:
        yield x
        await asyncio.sleep(5)
        yield x

    t = time.monotonic()
    it = pl.task.to_iterable(
        pl.task.flat_map(slow_gen, range(3), workers=3, timeout=0.2, on_error="skip")
    )
    assert list(it) == []
    assert time.monotonic() - t < 4
    assert (it.stats[0].timed_out, it.stats[0].skipped) == (3, 3)


# -- backoffs and rates do not hold the stage back ------------------------------------


@pytest.mark.timeout(30)
def test_backoff_of_one_item_does_not_hold_back_the_others() -> None:
    f = Flaky(failures=1, bad=(0,))
    arrived: List[Tuple[int, float]] = []
    t = time.monotonic()
    for x in pl.task.map(f, range(10), workers=2, retries=1, backoff=1.0):
        arrived.append((x, time.monotonic() - t))
    order = [x for x, _ in arrived]
    assert sorted(order) == [x * 10 for x in range(10)]
    assert order[-1] == 0  # the item that backed off came out last...
    assert arrived[-1][1] >= 1.0  # ...after its backoff...
    assert arrived[-2][1] < arrived[-1][1]  # ...while the others kept flowing
    first_retry = [t for x, t in f.calls if x == 0][1]
    assert all(t < first_retry for x, t in f.calls if x != 0)


@pytest.mark.timeout(60)
def test_rate_spaces_the_starts() -> None:
    starts: List[float] = []

    async def record(x: int) -> int:
        starts.append(time.monotonic())
        await asyncio.sleep(0.01)
        return x

    t = time.monotonic()
    out = list(pl.task.map(record, range(20), workers=5, rate=10))
    elapsed = time.monotonic() - t
    assert sorted(out) == list(range(20))
    assert elapsed >= 1.8
    starts.sort()
    # no one-second window holds more than 10 starts
    assert all(starts[i + 10] - starts[i] >= 1.0 for i in range(len(starts) - 10))


@pytest.mark.timeout(30)
def test_rate_waits_do_not_block_the_loop() -> None:
    async def main() -> Tuple[List[int], int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.ensure_future(ticker())
        out = await pl.task.map(abs, range(5), workers=5, rate=10)
        done.set()
        await task
        return out, ticks

    out, ticks = asyncio.run(main())
    assert sorted(out) == list(range(5))
    assert ticks >= 10  # ~0.4 s of rate waits: the loop kept ticking meanwhile


# -- statistics ------------------------------------------------------------------------


async def sleepy(x: int) -> int:
    await asyncio.sleep(0.005)
    return x


def fast(x: int) -> int:
    return x


def is_even(x: int) -> bool:
    return x % 2 == 0


def twice(x: int) -> List[int]:
    return [x, x]


@pytest.mark.timeout(60)
def test_stats_through_to_iterable() -> None:
    it = pl.task.to_iterable(
        range(100)
        | pl.task.map(sleepy, workers=10)
        | pl.task.filter(is_even)
        | pl.task.flat_map(twice)
    )
    assert len(list(it)) == 100
    names = [row.name for row in it.stats]
    assert names == ["pl.task.map(sleepy)", "pl.task.filter(is_even)", "pl.task.flat_map(twice)"]
    ins = [(row.items_in, row.items_out) for row in it.stats]
    assert ins == [(100, 100), (100, 50), (50, 100)]
    for row in it.stats:
        assert row.workers_alive == 0 and row.queue_depth == 0
        assert row.busy >= 0 and row.waiting >= 0 and row.blocked >= 0
    first = it.stats[0]
    assert first.queue_peak >= 1
    assert first.busy >= 0.005 * 100 / 10 * 0.5  # ten at a time, each sleeping 5 ms
    assert not it.stats.running and it.stats.elapsed > 0


@pytest.mark.timeout(60)
def test_report_names_the_slow_middle_stage() -> None:
    it = pl.task.to_iterable(
        range(200) | pl.task.map(fast) | pl.task.map(sleepy) | pl.task.map(fast)
    )
    assert sorted(it) == list(range(200))
    report = it.stats.report()
    assert report.bottleneck is it.stats[1]
    assert "* pl.task.map(sleepy)" in str(report)
    assert "Bottleneck: pl.task.map(sleepy)" in str(report)


@pytest.mark.timeout(60)
def test_stats_through_async_for_live_and_after() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        entered = asyncio.Event()

        async def held(x: int) -> int:
            entered.set()
            await gate.wait()
            return x

        it = pl.task.to_async_iterable(
            range(8) | pl.task.map(held, workers=4) | pl.task.batch(3) | pl.task.unbatch
        )
        values = it.__aiter__()
        first = asyncio.ensure_future(values.__anext__())
        await entered.wait()
        row = it.stats[0]
        assert it.stats.running
        assert row.workers_alive >= 1 and row.items_in >= 1 and row.items_out == 0
        gate.set()
        out = [await first] + [x async for x in values]
        assert sorted(out) == list(range(8))
        assert [(r.op, r.items_in, r.items_out) for r in it.stats] == [
            ("map", 8, 8),
            ("batch", 8, 3),
            ("unbatch", 3, 8),
        ]
        assert not it.stats.running and row.workers_alive == 0

    asyncio.run(main())


@pytest.mark.timeout(60)
def test_stats_of_other_backends_join_the_async_run() -> None:
    async def main() -> None:
        it = pl.task.to_async_iterable(
            range(30) | pl.thread.map(fast, workers=2) | pl.task.map(sleepy, workers=5)
        )
        assert sorted([x async for x in it]) == list(range(30))
        assert [(r.name, r.items_in, r.items_out) for r in it.stats] == [
            ("pl.thread.map(fast)", 30, 30),
            ("pl.task.map(sleepy)", 30, 30),
        ]

    asyncio.run(main())


@pytest.mark.timeout(60)
def test_async_iterator_still_works_as_before() -> None:
    async def main() -> None:
        stage = pl.task.map(sleepy, range(5), workers=5)
        assert sorted([x async for x in stage]) == list(range(5))
        assert sorted(await stage) == list(range(5))
        it = pl.task.to_async_iterable(stage)
        assert await it.__anext__() in range(5)
        await it.aclose()  # stops the run early

    asyncio.run(main())


@pytest.mark.timeout(60)
def test_stage_upstream_of_a_streaming_ordered_keeps_policy_and_row() -> None:
    # upstream of a streaming `ordered`, a task stage runs alone between thread queues
    f = Flaky(failures=10, bad=(4,))
    it = pl.thread.to_iterable(
        range(10) | pl.task.map(f, workers=3, on_error="skip") | pl.thread.ordered
    )
    assert list(it) == [x * 10 for x in range(10) if x != 4]
    row = it.stats[0]
    assert row.name.startswith("pl.task.map")
    assert (row.items_in, row.items_out, row.skipped) == (10, 9, 1)
    assert [r.op for r in it.stats] == ["map", "ordered"]  # one row for the task stage
