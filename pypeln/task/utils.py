"""0.4.9's ``pypeln.task.utils``: ``Namespace`` (`pypeln.task.Namespace`) and
`run_test_async`, for test suites written for 0.4.9.

0.4.9's ``get_running_loop``, ``run_coroutine_in_loop`` and ``run_function_in_loop``
managed the event loop its stages ran on; here every run manages its own loop, so they
are left out (use ``asyncio.run`` or ``await stage``).
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any, Awaitable, Callable, TypeVar

from .loop import LoopThread
from .namespace import Namespace

R = TypeVar("R")


def run_test_async(f: Callable[..., Awaitable[R]]) -> Callable[..., R]:
    """Make an ``async def`` function (typically a test) a plain function that runs it.

    The wrapper passes its arguments on, runs the coroutine to completion and returns
    its result (an exception propagates). With no event loop running in the calling
    thread it uses ``asyncio.run``; inside a running loop (Jupyter) it runs the coroutine
    on a loop of its own in a helper thread, as 0.4.9 did, and waits for it.

    >>> import pypeln as pl
    >>> @run_test_async
    ... async def total(n):
    ...     return sum(await pl.task.map(lambda x: x * 2, range(n)))
    >>> total(4)
    12
    """

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> R:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(_await(f(*args, **kwargs)))
        helper = LoopThread()
        try:
            result: R = helper.submit(_await(f(*args, **kwargs))).result()
            return result
        finally:
            helper.stop(time.monotonic() + 5.0)

    return wrapped


async def _await(awaitable: Awaitable[R]) -> R:
    return await awaitable


__all__ = ["Namespace", "run_test_async"]
