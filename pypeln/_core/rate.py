"""`RateLimiter`: the ``rate=`` of a stage, shared by all its workers."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

#: Starts are spaced this much more than ``1 / rate`` apart, so that no one-second window
#: ever sees more than ``rate`` starts, even when threads are scheduled late.
RATE_MARGIN = 1.005


class RateLimiter:
    """Spaces the starts of a stage's attempts at least ``1 / rate`` seconds apart.

    Shared by all the stage's workers: threads share one, worker processes share the
    lock and the next start time in shared memory (`shared`). A waiter holds the lock
    while it sleeps, so starts go out one by one and each is stamped when it really
    happens: no one-second window sees more than ``rate`` starts (no bursts).
    """

    def __init__(self, rate: float, lock: Any = None, cell: Any = None) -> None:
        self.interval = RATE_MARGIN / rate
        self.lock = lock if lock is not None else threading.Lock()
        #: the earliest next start (`time.monotonic`), in a one-element array
        self.cell = cell if cell is not None else [0.0]

    @classmethod
    def shared(cls, rate: float, context: Any) -> RateLimiter:
        """A limiter that worker processes of `context` can share (pass it at their start)."""
        return cls(rate, context.Lock(), context.RawArray("d", 1))

    def __getstate__(self) -> Any:
        return (self.interval, self.lock, self.cell)

    def __setstate__(self, state: Any) -> None:
        self.interval, self.lock, self.cell = state

    def acquire(self) -> None:
        """Wait for this stage's next start slot."""
        with self.lock:
            now = time.monotonic()
            wait = self.cell[0] - now
            if wait > 0:
                time.sleep(wait)
                now = time.monotonic()
            self.cell[0] = now + self.interval

    async def acquire_async(self) -> None:
        """`acquire` for one event loop's coroutines: they wait in turn, never blocking it."""
        lock = self.__dict__.get("_async_lock")
        if lock is None:
            lock = self.__dict__["_async_lock"] = asyncio.Lock()
        async with lock:
            now = time.monotonic()
            wait = self.cell[0] - now
            if wait > 0:
                await asyncio.sleep(wait)
                now = time.monotonic()
            self.cell[0] = now + self.interval
