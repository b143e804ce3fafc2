"""A `CancelledError` never reaches a consumer from the pipeline's own cancellation (a
timeout, a `break`, an error elsewhere); a cancellation from inside `f` ends the run as a
`RuntimeError` naming the stage and the item, with the `CancelledError` as its cause."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from conftest import within

import pypeln as pl

pytestmark = pytest.mark.timeout(60)

REPEATS = 5  # the pipeline's own cancellations race with the items they cancel


async def slow_odd(x):
    await asyncio.sleep(5 if x % 2 else 0)
    return x


async def fails_at_3(x):
    if x == 3:
        raise ValueError("boom", x)
    await asyncio.sleep(5)
    return x


def consume_all(stage):
    return within(30, list, stage)


@pytest.mark.parametrize("repeat", range(REPEATS))
def test_a_timeout_drops_the_item_or_hands_it_to_the_policy(repeat):
    stage = pl.task.map(slow_odd, range(8), workers=8, timeout=0.05)
    assert sorted(consume_all(stage)) == [0, 2, 4, 6]
    skipped = pl.task.map(slow_odd, range(8), workers=8, timeout=0.05, on_error="skip")
    assert sorted(consume_all(skipped)) == [0, 2, 4, 6]

    def handler(error, x):
        return type(error).__name__

    handled = pl.task.map(slow_odd, range(4), workers=4, timeout=0.05, on_error=handler)
    assert sorted(consume_all(handled), key=str) == [0, 2, "ItemTimeoutError", "ItemTimeoutError"]


@pytest.mark.parametrize("repeat", range(REPEATS))
def test_an_error_elsewhere_reaches_the_consumer_as_itself(repeat):
    for stage in (
        pl.task.map(fails_at_3, range(8), workers=8),
        pl.task.map(fails_at_3, range(8), workers=8) | pl.thread.map(abs),
        pl.thread.map(abs, range(8)) | pl.task.map(fails_at_3, workers=8) | pl.sync.map(abs),
    ):
        with pytest.raises(ValueError) as info:
            consume_all(stage)
        assert info.value.args == ("boom", 3)


@pytest.mark.parametrize("repeat", range(REPEATS))
def test_a_break_or_close_ends_quietly(repeat):
    def first(stage):
        iterator = pl.task.to_iterable(stage)
        value = next(iter(iterator))
        iterator.close()
        return value

    assert within(30, first, pl.task.map(slow_odd, itertools.count(), workers=8)) == 0

    def broken(stage):
        for x in stage:
            return x

    assert within(30, broken, pl.task.map(slow_odd, range(20), workers=8) | pl.thread.map(abs)) == 0


async def cancels_itself_at_3(x):
    if x == 3:
        raise asyncio.CancelledError("from f")
    return x


async def awaits_a_cancelled_future_at_3(x):
    if x == 3:
        future = asyncio.get_running_loop().create_future()
        future.cancel()
        await future
    return x


async def its_task_cancelled_at_3(x):
    if x == 3:
        task = asyncio.current_task()
        asyncio.get_running_loop().call_soon(task.cancel)
        await asyncio.sleep(5)
    return x


@pytest.mark.parametrize(
    "f", [cancels_itself_at_3, awaits_a_cancelled_future_at_3, its_task_cancelled_at_3]
)
@pytest.mark.parametrize("downstream", ["none", "thread", "sync"])
def test_a_cancellation_from_inside_f_ends_the_run_as_a_runtime_error(f, downstream):
    stage = pl.task.map(f, range(6), workers=2)
    if downstream != "none":
        stage = stage | getattr(pl, downstream).map(abs)
    with pytest.raises(RuntimeError, match=r"^pl\.task\.map: the item 3 was cancelled") as info:
        consume_all(stage)
    assert isinstance(info.value.__cause__, asyncio.CancelledError)


def test_an_awaiting_consumer_gets_the_runtime_error_too():
    async def main():
        with pytest.raises(RuntimeError, match=r"^pl\.task\.map: the item 3 was cancelled"):
            await pl.task.map(cancels_itself_at_3, range(6))
        return "still running"  # the consumer's own task was not cancelled

    assert within(30, asyncio.run, main()) == "still running"


def test_a_cancelled_on_start_ends_the_run_as_a_runtime_error():
    async def on_start():
        raise asyncio.CancelledError("from on_start")

    with pytest.raises(RuntimeError, match=r"^pl\.task: a task of the pipeline was cancelled"):
        consume_all(pl.task.map(abs, range(3), on_start=on_start))
