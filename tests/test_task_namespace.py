"""`pl.task.Namespace` is locked with ``async with ns:`` (as in 0.4.9) as well as ``with ns:``."""

from __future__ import annotations

import asyncio
import threading

import pytest
from conftest import within

import pypeln as pl

pytestmark = pytest.mark.timeout(30)


def run(coroutine_function):
    """Run it on a loop of its own, in a helper thread, with a hard bound."""
    return within(20, asyncio.run, coroutine_function())


def test_async_with_excludes_the_other_tasks_across_an_await():
    ns = pl.task.Namespace(count=0, inside=0, most=0)

    async def count(x):
        async with ns as locked:
            assert locked is ns
            ns.inside += 1
            ns.most = max(ns.most, ns.inside)
            n = ns.count
            await asyncio.sleep(0)
            ns.count = n + 1
            ns.inside -= 1

    within(20, pl.task.each, count, range(50), 8, 0, 0, None, None, True)
    assert ns.count == 50
    assert ns.most == 1


def test_with_still_locks_a_task_namespace():
    ns = pl.task.Namespace(total=0)

    async def add(x):
        with ns:
            ns.total += x

    within(20, pl.task.each, add, range(10), 4, 0, 0, None, None, True)
    assert ns.total == 45


def test_the_task_that_holds_it_may_lock_it_again():
    ns = pl.task.Namespace(depth=0)

    async def main():
        async with ns:
            async with ns:
                with ns:
                    ns.depth = 3
        with ns:
            async with ns:
                ns.depth += 1
        return ns.depth

    assert run(main) == 4


def test_a_waiting_task_does_not_block_the_event_loop():
    ns = pl.task.Namespace()

    async def main():
        held, ticks = asyncio.Event(), []

        async def holder():
            async with ns:
                held.set()
                while len(ticks) < 5:  # the loop keeps running the ticker meanwhile
                    await asyncio.sleep(0.001)

        async def waiter():
            await held.wait()
            async with ns:
                return len(ticks)

        async def ticker():
            await held.wait()
            while len(ticks) < 5:
                ticks.append(1)
                await asyncio.sleep(0.001)

        _, got, _ = await asyncio.gather(holder(), waiter(), ticker())
        return got

    assert run(main) == 5  # the waiter got in only after the holder let go


def test_a_thread_and_a_task_exclude_each_other():
    ns = pl.task.Namespace(log=[])
    held, go = threading.Event(), threading.Event()

    def thread_holder():
        with ns:
            held.set()
            go.wait(10)
            ns.log.append("thread")

    async def main():
        await asyncio.get_running_loop().run_in_executor(None, held.wait, 10)
        beats = 0

        async def beat():
            nonlocal beats
            while not go.is_set():
                beats += 1
                if beats == 3:
                    go.set()  # the loop ran while the task waited for the thread
                await asyncio.sleep(0.001)

        async def locker():
            async with ns:
                ns.log.append("task")

        await asyncio.gather(beat(), locker())

    t = threading.Thread(target=thread_holder, daemon=True)
    t.start()
    run(main)
    t.join(10)
    assert ns.log == ["thread", "task"]


def test_with_in_a_task_while_another_task_holds_it_says_to_use_async_with():
    ns = pl.task.Namespace()

    async def main():
        held, done = asyncio.Event(), asyncio.Event()

        async def holder():
            async with ns:
                held.set()
                await done.wait()

        async def other():
            await held.wait()
            try:
                with ns:
                    pass
            finally:
                done.set()

        results = await asyncio.gather(holder(), other(), return_exceptions=True)
        return results[1]

    error = run(main)
    assert isinstance(error, RuntimeError) and "async with" in str(error)


def test_a_cancelled_waiter_leaves_the_lock_usable():
    ns = pl.task.Namespace()

    async def main():
        held = asyncio.Event()
        release = asyncio.Event()

        async def holder():
            async with ns:
                held.set()
                await release.wait()

        h = asyncio.ensure_future(holder())
        await held.wait()
        waiter = asyncio.ensure_future(ns.__aenter__())
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        release.set()
        await h
        async with ns:
            return "usable"

    assert run(main) == "usable"


def test_tasks_of_two_event_loops_share_the_lock():
    ns = pl.task.Namespace(count=0)

    async def main():
        async def one():
            async with ns:
                n = ns.count
                await asyncio.sleep(0)
                ns.count = n + 1

        await asyncio.gather(*(one() for _ in range(100)))

    threads = [threading.Thread(target=asyncio.run, args=(main(),)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert ns.count == 200


def test_the_other_namespaces_keep_with_only():
    ns = pl.thread.Namespace(x=1)
    with ns:
        with ns:  # re-entrant, as a task namespace is for its task
            assert ns.x == 1
