"""`pl.task`: the contract with sync and async callables, sources, and the ways to consume."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any, AsyncIterator, Dict, List

import pytest
from conftest import CALL_OPTIONS, within

import pypeln as pl


async def double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


async def is_even(x: int) -> bool:
    await asyncio.sleep(0)
    return x % 2 == 0


async def arange(n: int, pause: float = 0) -> AsyncIterator[int]:
    for i in range(n):
        if pause:
            await asyncio.sleep(pause)
        yield i


# -- per-item operators, sync and async f --------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("f", [double, lambda x: 2 * x], ids=["async", "sync"])
def test_map(f: Any) -> None:
    assert sorted(range(100) | pl.task.map(f, workers=7)) == [2 * x for x in range(100)]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("f", [is_even, lambda x: x % 2 == 0], ids=["async", "sync"])
def test_filter(f: Any) -> None:
    assert sorted(range(100) | pl.task.filter(f, workers=3)) == list(range(0, 100, 2))


@pytest.mark.timeout(30)
def test_each() -> None:
    seen: List[int] = []

    async def record(x: int) -> None:
        await asyncio.sleep(0)
        seen.append(x)

    assert pl.task.each(record, range(50), workers=5, run=True) is None
    assert sorted(seen) == list(range(50))
    seen.clear()
    assert list(pl.task.each(seen.append, range(5))) == []
    assert sorted(seen) == list(range(5))


async def repeat_gen(x: int) -> AsyncIterator[int]:
    for _ in range(x):
        await asyncio.sleep(0)
        yield x


async def repeat_awaitable(x: int) -> List[int]:
    await asyncio.sleep(0)
    return [x] * x


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "f", [repeat_gen, repeat_awaitable, lambda x: [x] * x], ids=["async-gen", "awaitable", "sync"]
)
def test_flat_map_variants(f: Any) -> None:
    out = list(range(5) | pl.task.flat_map(f, workers=3) | pl.task.ordered)
    assert out == [x for x in range(5) for _ in range(x)]
    elements = list(pl.task.to_iterable(range(3) | pl.task.flat_map(f), return_index=True))
    assert sorted(e.index for e in elements) == [(1, 0), (2, 0), (2, 1)]


async def spread_with_index(x: int, element_index: Any) -> Any:
    for k in range(x):
        await asyncio.sleep(0)
        yield (element_index, k)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("timeout", [0, 30], ids=["streamed", "with-a-timeout"])
@pytest.mark.parametrize(
    "f", [repeat_gen, repeat_awaitable, lambda x: [x] * x], ids=["async-gen", "awaitable", "sync"]
)
def test_flat_map_variants_keep_their_indices(f: Any, timeout: float) -> None:
    """Streamed (handed on as they are made), or, with a `timeout`, made whole and then
    handed on: an item's outputs are the same, with the same indices."""
    out = list(range(5) | pl.task.flat_map(f, workers=3, timeout=timeout) | pl.task.ordered)
    assert out == [x for x in range(5) for _ in range(x)]
    stage = range(4) | pl.task.flat_map(f, timeout=timeout)
    elements = list(pl.task.to_iterable(stage, return_index=True))
    assert sorted(e.index for e in elements) == [(x, k) for x in range(4) for k in range(x)]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("timeout", [0, 30])
def test_an_async_generator_of_flat_map_gets_its_element_index(timeout: float) -> None:
    stage = range(3) | pl.task.flat_map(spread_with_index, timeout=timeout)
    assert sorted(pl.task.to_iterable(stage, return_index=True)) == [
        pl.Element((1, 0), ((1,), 0)),
        pl.Element((2, 0), ((2,), 0)),
        pl.Element((2, 1), ((2,), 1)),
    ]


async def endless() -> AsyncIterator[int]:
    i = 0
    while True:
        yield i
        i += 1
        if i % 7 == 0:
            await asyncio.sleep(0)


@pytest.mark.timeout(30)
def test_an_async_source_of_ordered_and_batch_keeps_its_positions() -> None:
    stage = pl.task.batch(2, arange(5))
    assert list(pl.task.to_iterable(stage, return_index=True)) == [
        pl.Element((0,), [0, 1]),
        pl.Element((2,), [2, 3]),
        pl.Element((4,), [4]),
    ]
    stage = pl.task.ordered(arange(6))
    assert list(pl.task.to_iterable(stage, return_index=True)) == [
        pl.Element((i,), i) for i in range(6)
    ]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("window", [None, 10])
def test_ordered_streams_an_endless_async_source(window: Any) -> None:
    """`ordered` emits what is below its input's watermark as it goes: an endless async
    source gives its first items, in order (it would wait forever for the end if the
    source did not report how far it got)."""
    kwargs = {} if window is None else {"window": window}
    stage = pl.task.ordered(endless(), **kwargs)
    first = within(10, lambda: list(itertools.islice(stage, 20)))
    assert first == list(range(20))


@pytest.mark.timeout(30)
def test_workers_zero_means_no_limit() -> None:
    running = {"now": 0, "most": 0}

    async def hold(x: int) -> int:
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        await asyncio.sleep(0.05)
        running["now"] -= 1
        return x

    start = time.monotonic()
    assert sorted(range(300) | pl.task.map(hold, workers=0)) == list(range(300))
    assert running["most"] == 300
    assert time.monotonic() - start < 1.0


@pytest.mark.timeout(30)
def test_workers_caps_items_in_flight() -> None:
    running = {"now": 0, "most": 0}

    async def hold(x: int) -> int:
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        await asyncio.sleep(0.002)
        running["now"] -= 1
        return x

    assert sorted(range(200) | pl.task.map(hold, workers=7)) == list(range(200))
    assert running["most"] == 7


@pytest.mark.timeout(30)
def test_rejects_negative_workers() -> None:
    with pytest.raises(ValueError):
        pl.task.map(double, range(3), workers=-1)


# -- callbacks and injection ---------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_on_start_on_done(kind: str) -> None:
    log: List[Any] = []

    def start_sync(worker_info: Any) -> Dict[str, Any]:
        log.append(("start", worker_info.index))
        return {"offset": 100}

    def done_sync(offset: int, stage_status: Any) -> None:
        log.append(("done", offset, stage_status.done, stage_status.active_workers))

    async def start_async(worker_info: Any) -> Dict[str, Any]:
        await asyncio.sleep(0)
        return start_sync(worker_info)

    async def done_async(offset: int, stage_status: Any) -> None:
        await asyncio.sleep(0)
        done_sync(offset, stage_status)

    async def add(x: int, offset: int, element_index: Any, worker_info: Any) -> Any:
        await asyncio.sleep(0)
        return (x + offset, element_index, worker_info.index)

    on_start, on_done = (start_sync, done_sync) if kind == "sync" else (start_async, done_async)
    out = sorted(range(5) | pl.task.map(add, workers=3, on_start=on_start, on_done=on_done))
    assert out == [(100 + i, (i,), 0) for i in range(5)]
    # once for the stage: its resources are shared by every item in flight
    assert log == [("start", 0), ("done", 100, True, 0)]


@pytest.mark.timeout(30)
def test_on_start_must_return_a_dict() -> None:
    with pytest.raises(TypeError, match="on_start"):
        list(pl.task.map(double, range(3), on_start=lambda: 5))


# -- sources -------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_async_iterable_sources() -> None:
    assert sorted(arange(20) | pl.task.map(double, workers=4)) == [2 * x for x in range(20)]
    assert list(pl.task.from_iterable(arange(5))) == list(range(5))
    merged = pl.task.concat([arange(3), range(10, 13), pl.thread.map(lambda x: -x, range(1, 3))])
    assert sorted(merged) == [-2, -1, 0, 1, 2, 10, 11, 12]
    assert list(pl.task.to_iterable(arange(3))) == [0, 1, 2]


@pytest.mark.timeout(30)
def test_sync_sources_in_thread_or_on_loop() -> None:
    def numbers() -> Any:
        yield from range(2000)

    for use_thread in (True, False):
        stage = pl.task.from_iterable(numbers(), use_thread=use_thread) | pl.task.map(double)
        assert sorted(stage) == [2 * x for x in range(2000)]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("use_thread", [None, True, False])
@pytest.mark.parametrize("partial", [False, True], ids=["direct", "partial"])
def test_a_sync_source_is_read_in_a_thread_unless_asked_not_to(use_thread, partial) -> None:
    on_loop: List[bool] = []

    def numbers() -> Any:
        for x in range(3):
            try:
                asyncio.get_running_loop()
                on_loop.append(True)
            except RuntimeError:
                on_loop.append(False)
            yield x

    kwargs = {} if use_thread is None else {"use_thread": use_thread}
    if partial:
        stage = numbers() | pl.task.from_iterable(**kwargs)
    else:
        stage = pl.task.from_iterable(numbers(), **kwargs)
    assert sorted(stage | pl.task.map(double)) == [0, 2, 4]
    assert on_loop == [use_thread is False] * 3  # in a thread by default


@pytest.mark.timeout(30)
def test_stage_runs_again() -> None:
    stage = range(10) | pl.task.map(double, workers=2)
    assert sorted(stage) == sorted(stage) == [2 * x for x in range(10)]


@pytest.mark.timeout(30)
def test_maxsize_bounds_a_fast_producer() -> None:
    produced: List[int] = []

    def source() -> Any:
        for i in range(1000):
            produced.append(i)
            yield i

    taken = 0
    stage = source() | pl.task.map(double, workers=1, maxsize=10)
    for _ in pl.task.to_iterable(stage, maxsize=5):
        taken += 1
        if taken == 5:
            time.sleep(0.2)
            break
    assert len(produced) < 60


# -- three ways to consume -----------------------------------------------------------------


@pytest.mark.timeout(30)
def test_await_and_async_for() -> None:
    async def main() -> Any:
        stage = range(10) | pl.task.map(double, workers=3)
        awaited = await stage
        iterated = [x async for x in stage]
        elements = [e async for e in pl.task.to_async_iterable(stage, return_index=True)]
        partial = [x async for x in range(3) | pl.task.to_async_iterable()]
        collected = await pl.task.collect(stage)
        return awaited, iterated, elements, partial, collected

    awaited, iterated, elements, partial, collected = asyncio.run(main())
    expected = [2 * x for x in range(10)]
    assert sorted(awaited) == sorted(iterated) == sorted(collected) == expected
    assert sorted(elements) == [pl.Element((i,), 2 * i) for i in range(10)]
    assert partial == [0, 1, 2]


@pytest.mark.timeout(30)
def test_other_backends_consumed_from_a_coroutine() -> None:
    async def main() -> Any:
        return await pl.thread.map(lambda x: x + 1, range(5), workers=2), [
            x async for x in pl.sync.map(lambda x: x * 3, range(3))
        ]

    threaded, synced = asyncio.run(main())
    assert sorted(threaded) == [1, 2, 3, 4, 5]
    assert synced == [0, 3, 6]


@pytest.mark.timeout(30)
def test_sync_consumption_inside_a_running_loop() -> None:
    async def main() -> Any:
        stage = range(100) | pl.task.map(double, workers=10)
        listed = list(stage)
        looped = [x for x in stage]
        pl.task.each(double, range(3), run=True)
        return listed, looped

    listed, looped = asyncio.run(main())
    assert sorted(listed) == sorted(looped) == [2 * x for x in range(100)]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("options", **CALL_OPTIONS)
@pytest.mark.parametrize("op", ["map", "filter", "flat_map"])
def test_f_may_return_any_awaitable(op: str, options: Dict[str, Any]) -> None:
    """Not only a coroutine: a future, as ``run_in_executor`` returns, is awaited too."""
    results = {"map": abs, "filter": lambda x: x > 0, "flat_map": lambda x: [x, x]}

    def in_executor(x: int) -> Any:
        return asyncio.get_running_loop().run_in_executor(None, results[op], x)

    out = sorted(getattr(pl.task, op)(in_executor, [-1, -2, 3], workers=2, **options))
    assert out == {"map": [1, 2, 3], "filter": [3], "flat_map": [-2, -2, -1, -1, 3, 3]}[op]
