"""`pl.task.Namespace`: locked with ``async with ns:`` by a task, or ``with ns:``."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, List, Optional, Tuple

from .._core.namespace import Lock
from .._core.namespace import Namespace as _Namespace
from .._core.signals import wait

Waiter = Tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]


def _holder() -> Tuple[object, Optional[asyncio.AbstractEventLoop]]:
    """Who would hold the lock if it was taken here: the running task, else the thread;
    and the event loop running in this thread, if any."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return threading.current_thread(), None
    task = asyncio.current_task(loop)
    return (threading.current_thread() if task is None else task), loop


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class TaskLock:
    """A re-entrant lock held by a task (or by a thread outside any task).

    A task waits for it with ``await acquire_async()`` without blocking its event loop, so
    a task may hold it across an ``await`` while the other tasks wait; the task that holds
    it may take it again (``async with`` or ``with``), as a thread may an `RLock`. Tasks of
    any event loop and plain threads share it.

    ``acquire()`` (``with ns:``) blocks its thread while a task of another loop or another
    thread holds the lock. Inside a task, waiting for a task of the same loop would block
    that loop for good (the holder could never go on), so that is an error instead, one
    that points to ``async with``.
    """

    def __init__(self) -> None:
        self._free = threading.Condition(threading.Lock())
        self._owner: Optional[object] = None
        self._depth = 0
        self._waiters: List[Waiter] = []

    def _take(self, who: object) -> bool:
        if self._owner is None or self._owner is who:
            self._owner = who
            self._depth += 1
            return True
        return False

    def acquire(self) -> bool:
        who, loop = _holder()
        with self._free:
            while not self._take(who):
                owner = self._owner
                if loop is not None and isinstance(owner, asyncio.Task):
                    if owner.get_loop() is loop:
                        raise RuntimeError(
                            "this pl.task.Namespace is locked by another task of this event "
                            "loop, which `with` would wait for forever: lock it with "
                            "`async with ns:` where a task holds it across an `await`"
                        )
                wait(self._free)
        return True

    async def acquire_async(self) -> None:
        who, loop = _holder()
        assert loop is not None  # awaited: a loop runs
        while True:
            with self._free:
                if self._take(who):
                    return
                waiter: Waiter = (loop, loop.create_future())
                self._waiters.append(waiter)
            try:
                await waiter[1]
            finally:
                with self._free:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)

    def release(self) -> None:
        with self._free:
            if self._depth == 0:
                raise RuntimeError("release of a pl.task.Namespace that is not locked")
            self._depth -= 1
            if self._depth:
                return
            self._owner = None
            waiters, self._waiters = self._waiters, []
            self._free.notify_all()
        for loop, future in waiters:  # each tries again; those that lose wait again
            try:
                loop.call_soon_threadsafe(_wake, future)
            except RuntimeError:  # its loop is closed: nobody waits there any more
                pass


class Namespace(_Namespace):
    """Attributes shared by the tasks of a pipeline (and by threads).

    ``async with ns:`` locks it for the task, without blocking the event loop, also across
    an ``await``; ``with ns:`` locks it too (see `TaskLock`). The task that holds it may
    lock it again.

    >>> import asyncio, pypeln as pl
    >>> ns = pl.task.Namespace(count=0)
    >>> async def count(x):
    ...     async with ns:
    ...         n = ns.count
    ...         await asyncio.sleep(0)
    ...         ns.count = n + 1
    >>> pl.task.each(count, range(10), workers=4, run=True)
    >>> ns.count
    10
    """

    _lock: TaskLock

    def _new_lock(self) -> Lock:
        return TaskLock()

    async def __aenter__(self) -> Namespace:
        await self._lock.acquire_async()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._lock.release()
