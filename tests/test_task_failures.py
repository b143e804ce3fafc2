"""`pl.task`: errors, early exit, timeouts and mixed pipelines end cleanly."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections import Counter
from typing import Any, AsyncIterator, Callable, List, Tuple

import pytest

import pypeln as pl

ASYNCIO_WARNINGS = (
    "Task exception was never retrieved",
    "Task was destroyed but it is pending",
    "Exception in callback",
    "was never awaited",
)


class Boom(Exception):
    pass


def failing_at(n: int) -> Callable[[int], Any]:
    async def f(x: int) -> int:
        await asyncio.sleep(0)
        if x == n:
            raise Boom("failed at", x)
        return x

    return f


def sync_failing_at_2(x: int) -> int:
    if x == 2:
        raise Boom("failed at", x)
    return x


def assert_quiet(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    gc.collect()
    text = caplog.text + "".join(capsys.readouterr())
    for warning in ASYNCIO_WARNINGS:
        assert warning not in text


def consume_sync(stage: Any) -> None:
    list(stage)


def consume_await(stage: Any) -> None:
    async def main() -> None:
        await stage

    asyncio.run(main())


def consume_async_for(stage: Any) -> None:
    async def main() -> None:
        async for _ in stage:
            pass

    asyncio.run(main())


def consume_sync_in_loop(stage: Any) -> None:
    async def main() -> None:
        list(stage)

    asyncio.run(main())


CONSUMERS = [consume_sync, consume_await, consume_async_for, consume_sync_in_loop]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("consume", CONSUMERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("n", [4, 10, 10_000])
def test_error_reaches_consumer_once(
    n: int,
    consume: Callable[[Any], None],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    stage = range(n + 1) | pl.task.map(failing_at(n), workers=8) | pl.task.map(failing_at(-1))
    with pytest.raises(Boom) as info:
        consume(stage)
    assert info.value.args == ("failed at", n)
    assert_quiet(caplog, capsys)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("consume", CONSUMERS, ids=lambda c: c.__name__)
def test_error_in_callbacks_and_sources(
    consume: Callable[[Any], None],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)

    async def bad_start() -> None:
        raise Boom("start")

    async def bad_done() -> None:
        raise Boom("done")

    async def bad_source() -> AsyncIterator[int]:
        yield 1
        raise Boom("source")

    def bad_sync_source() -> Any:
        yield 1
        raise Boom("sync source")

    async def bad_gen(x: int) -> AsyncIterator[int]:
        yield x
        raise Boom("flat", x)

    cases = [
        (pl.task.map(abs, range(3), on_start=bad_start), ("start",)),
        (pl.task.map(abs, range(3), on_done=bad_done), ("done",)),
        (pl.task.map(abs, bad_source()), ("source",)),
        (pl.task.map(abs, bad_sync_source()), ("sync source",)),
        (pl.task.flat_map(bad_gen, [7]), ("flat", 7)),
        (range(3) | pl.thread.map(sync_failing_at_2) | pl.task.map(abs), ("failed at", 2)),
    ]
    for stage, args in cases:
        with pytest.raises(Boom) as info:
            consume(stage)
        assert info.value.args == args
    assert_quiet(caplog, capsys)


def slow_but_first() -> Tuple[List[int], List[int], Callable[[int], Any]]:
    """A coroutine function that returns 0 at once and sleeps long on anything else."""
    started: List[int] = []
    cancelled: List[int] = []

    async def slow(x: int) -> int:
        if x == 0:
            return x
        started.append(x)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(x)
            raise
        return x

    return started, cancelled, slow


@pytest.mark.timeout(30)
def test_break_cancels_everything_quickly() -> None:
    started, cancelled, slow = slow_but_first()

    threads = threading.active_count()
    start = time.monotonic()
    for _ in range(50) | pl.task.map(slow, workers=10):
        break
    assert time.monotonic() - start < 1.0
    assert started and sorted(cancelled) == sorted(started)
    assert threading.active_count() == threads


@pytest.mark.timeout(30)
def test_async_break_and_aclose_cancel_everything_quickly() -> None:
    started, cancelled, slow = slow_but_first()

    async def others() -> int:
        current = asyncio.current_task()
        return len([t for t in asyncio.all_tasks() if t is not current])

    async def main() -> None:
        start = time.monotonic()
        async for _ in range(50) | pl.task.map(slow, workers=10):
            break
        await asyncio.sleep(0.01)
        assert await others() == 0
        assert started and sorted(cancelled) == sorted(started)

        iterator = pl.task.to_async_iterable(range(50) | pl.task.map(slow, workers=10))
        assert await iterator.__anext__() == 0  # type: ignore[attr-defined]
        await iterator.aclose()  # type: ignore[attr-defined]
        assert await others() == 0
        assert sorted(cancelled) == sorted(started)

        consumer = asyncio.ensure_future(pl.task.collect(range(50) | pl.task.map(slow)))
        await asyncio.sleep(0.05)
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        assert await others() == 0
        assert time.monotonic() - start < 1.0

    asyncio.run(main())


@pytest.mark.timeout(30)
def test_timeout_drops_the_overrunning_item() -> None:
    async def maybe_slow(x: int) -> int:
        await asyncio.sleep(5 if x % 3 == 0 else 0.001)
        return x

    start = time.monotonic()
    out = sorted(range(30) | pl.task.map(maybe_slow, workers=30, timeout=0.1))
    assert out == [x for x in range(30) if x % 3]
    assert time.monotonic() - start < 2.0

    async def raises_timeout(x: int) -> int:
        raise asyncio.TimeoutError("mine")

    with pytest.raises(asyncio.TimeoutError):
        list(pl.task.map(raises_timeout, range(3), timeout=5))


@pytest.mark.timeout(60)
def test_mixed_thread_task_thread_pipeline() -> None:
    def expand(x: int) -> List[int]:
        return [x, -x - 1]

    async def fetch(x: int) -> int:
        await asyncio.sleep(0.001 * (x % 3))
        return x * 10

    def stage(maxsize: int) -> Any:
        return (
            range(3000)
            | pl.thread.flat_map(expand, workers=4, maxsize=maxsize)
            | pl.task.map(fetch, workers=100, maxsize=maxsize)
            | pl.task.filter(lambda x: True, maxsize=maxsize)
            | pl.thread.map(lambda x: x + 1, workers=3, maxsize=maxsize)
        )

    expected = Counter(y * 10 + 1 for x in range(3000) for y in (x, -x - 1))
    assert Counter(stage(0)) == expected
    assert Counter(stage(7)) == expected

    async def main() -> Any:
        return await stage(0)

    assert Counter(asyncio.run(main())) == expected


@pytest.mark.timeout(30)
def test_ctrl_c_is_raised_and_stops_the_run() -> None:
    async def interrupt(x: int) -> int:
        if x == 3:
            raise KeyboardInterrupt
        await asyncio.sleep(0.01)
        return x

    with pytest.raises(KeyboardInterrupt):
        list(range(10) | pl.task.map(interrupt, workers=2))


class BackendWithoutWiring(pl.task.TaskBackend):  # type: ignore[name-defined]
    """A task backend that leaves the wiring to the core: one `runner` per stage."""

    connect = None  # type: ignore[assignment]


@pytest.mark.timeout(30)
def test_task_stages_as_plain_runners() -> None:
    from pypeln._core.api import StageFunctions

    fns = StageFunctions(BackendWithoutWiring())
    fns.min_workers = 0
    stage = (
        range(1000)
        | pl.thread.map(lambda x: x + 1, workers=2)
        | fns.map(double_async, workers=10, maxsize=5)
        | fns.filter(lambda x: x % 4 == 0)
        | pl.thread.map(lambda x: -x)
    )
    assert sorted(stage) == sorted(-2 * (x + 1) for x in range(1000) if (2 * (x + 1)) % 4 == 0)
    with pytest.raises(Boom):
        list(range(10) | fns.map(failing_at(3), workers=2) | pl.thread.map(abs))


async def double_async(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x
