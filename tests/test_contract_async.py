"""What `pl.task` adds: async functions and sources, awaiting and async-iterating stages."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

import pypeln as pl
from pypeln._core import stage as core_stage

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(not hasattr(pl, "task"), reason="the task backend is not present"),
]


def run(coro):
    return asyncio.run(coro)


async def agen(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield i


def test_async_f():
    async def double(x):
        await asyncio.sleep(0.001)
        return x * 2

    assert sorted(pl.task.map(double, range(10), workers=3)) == [x * 2 for x in range(10)]


def test_async_filter_and_each():
    ns = pl.task.Namespace(total=0)

    async def odd(x):
        await asyncio.sleep(0)
        return x % 2

    async def add(x):
        with ns:
            ns.total += x

    assert sorted(pl.task.filter(odd, range(6), workers=2)) == [1, 3, 5]
    assert pl.task.each(add, range(6), run=True) is None
    assert ns.total == 15


def test_async_iterable_source():
    assert sorted(pl.task.map(lambda x: x + 1, agen(5), workers=2)) == [1, 2, 3, 4, 5]
    assert list(pl.task.from_iterable(agen(3)) | pl.task.ordered) == [0, 1, 2]


def test_flat_map_to_an_async_iterable_or_an_awaitable():
    async def later(x):
        await asyncio.sleep(0)
        return [x, x]

    assert sorted(pl.task.flat_map(lambda x: agen(x), range(4))) == [0, 0, 0, 1, 1, 2]
    assert sorted(pl.task.flat_map(later, range(3), workers=2)) == [0, 0, 1, 1, 2, 2]


def test_async_on_start_and_on_done():
    ns = pl.task.Namespace(done=0)

    async def on_start():
        await asyncio.sleep(0)
        return {"offset": 10}

    async def on_done(offset):
        with ns:
            ns.done += offset

    async def f(x, offset):
        return x + offset

    assert sorted(pl.task.map(f, range(3), on_start=on_start, on_done=on_done)) == [10, 11, 12]
    assert ns.done >= 10


def test_await_a_stage():
    async def main():
        return await pl.task.map(lambda x: x * 3, range(4), workers=2)

    assert sorted(run(main())) == [0, 3, 6, 9]


def test_async_for_over_a_stage():
    async def main():
        return [x async for x in pl.task.map(lambda x: -x, range(4))]

    assert sorted(run(main())) == [-3, -2, -1, 0]


def test_to_async_iterable():
    async def main():
        stage = pl.task.map(lambda x: x, range(3), workers=2)
        values = [x async for x in pl.task.to_async_iterable(stage)]
        elements = [e async for e in pl.task.to_async_iterable(stage, return_index=True)]
        piped = [x async for x in stage | pl.task.to_async_iterable(maxsize=1)]
        return values, elements, piped

    values, elements, piped = run(main())
    assert sorted(values) == sorted(piped) == [0, 1, 2]
    assert sorted(elements) == [pl.Element((i,), i) for i in range(3)]


def test_error_in_async_f():
    async def broken_coroutine(x):
        await asyncio.sleep(0)
        raise ValueError("x")

    with pytest.raises(ValueError) as info:
        list(pl.task.map(broken_coroutine, range(3)))
    assert info.value.args == ("x",)

    async def main():
        return await pl.task.map(broken_coroutine, range(3))

    with pytest.raises(ValueError):
        run(main())


def test_error_in_async_source():
    async def broken_agen():
        yield 1
        raise ValueError("x")

    with pytest.raises(ValueError) as info:
        list(pl.task.map(lambda x: x, broken_agen()))
    assert info.value.args == ("x",)


def test_workers_zero_means_no_limit():
    ns = pl.task.Namespace(active=0, most=0)

    async def track(x):
        with ns:
            ns.active += 1
            ns.most = max(ns.most, ns.active)
        await asyncio.sleep(0.05)
        with ns:
            ns.active -= 1
        return x

    assert sorted(pl.task.map(track, range(20), workers=0)) == list(range(20))
    assert ns.most > 1


def test_async_for_over_a_thread_stage_before_pypeln_task_is_imported():
    """`async for` needs the task backend's consumer, which pypeln imports on first use:
    a program that never touched `pl.task` can still iterate any stage asynchronously."""
    code = (
        "import asyncio, sys\n"
        "import pypeln as pl\n"
        "assert 'pypeln.task' not in sys.modules\n"
        "async def main():\n"
        "    return sorted([x async for x in pl.thread.map(abs, [1, -2, 3])])\n"
        "print(asyncio.run(main()))\n"
    )
    assert run_fresh(code) == "[1, 2, 3]"


def test_await_on_a_thread_stage_before_pypeln_task_is_imported():
    code = (
        "import asyncio, sys\n"
        "import pypeln as pl\n"
        "assert 'pypeln.task' not in sys.modules\n"
        "async def main():\n"
        "    return sorted(await pl.thread.map(abs, [1, -2, 3]))\n"
        "print(asyncio.run(main()))\n"
    )
    assert run_fresh(code) == "[1, 2, 3]"


def test_the_event_loop_backend_is_loaded_on_the_first_await(monkeypatch):
    """In one process: with no consumer registered yet, the first `await` or `async for`
    loads the backend that registers it (as importing ``pypeln.task`` does), once."""
    registered = core_stage._async_consumer
    loads = []

    def load():
        loads.append(1)
        core_stage._async_consumer = registered

    monkeypatch.setattr(core_stage, "_async_consumer", None)
    monkeypatch.setattr(core_stage, "_async_consumer_loader", load)

    async def consume():
        return sorted(await pl.thread.map(abs, [1, -2]))

    assert run(consume()) == [1, 2]
    assert run(consume()) == [1, 2]
    assert loads == [1], "the backend is loaded once, by the first await"


def test_without_an_event_loop_backend_await_says_what_is_missing(monkeypatch):
    """The core runs no event loop: with no backend registered to run stages on one,
    `await` and `async for` say so, and what to import."""
    monkeypatch.setattr(core_stage, "_async_consumer", None)
    monkeypatch.setattr(core_stage, "_async_consumer_loader", lambda: None)
    stage = pl.sync.map(abs, [1])
    message = (
        r"^await and async for on a stage need a backend that runs stages on an event loop, "
        r"and none is registered: import pypeln\.task \(importing pypeln does\)$"
    )

    async def consume():
        return await stage

    with pytest.raises(RuntimeError, match=message):
        run(consume())
    with pytest.raises(RuntimeError, match=message):
        stage.__aiter__()


def run_fresh(code):
    """What `code` prints, run by a new interpreter with the pypeln under test."""
    root = Path(pl.__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
