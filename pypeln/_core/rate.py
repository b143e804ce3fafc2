"""`RateLimiter`: the ``rate=`` of a stage, shared by all its workers."""

from __future__ import annotations

import threading
import time
from typing import Any

#: Starts are spaced this much more than ``1 / rate`` apart, so that no one-second window
#: ever sees more than ``rate`` starts, even when threads are scheduled late.
RATE_MARGIN = 1.005
#: A worker takes up to this many seconds' worth of start slots at once (at least one):
#: below 1000 items/s every start is taken alone; above, the shared lock is taken about
#: once a millisecond per worker, so a rate far above what the stage does costs little.
GRANT_SECONDS = 0.001


class RateLimiter:
    """Spaces the starts of a stage's attempts at least ``1 / rate`` seconds apart.

    Shared by all the stage's workers: threads share one, worker processes share the
    lock and the next start time in shared memory (`shared`). A waiter holds the lock
    while it sleeps, so starts go out one by one and each is stamped when it really
    happens: no one-second window sees more than ``rate`` starts (no bursts).
    """

    def __init__(self, rate: float, lock: Any = None, cell: Any = None) -> None:
        self.interval = RATE_MARGIN / rate
        #: start slots a worker takes at once (see `GRANT_SECONDS`)
        self.grant = max(1, int(rate * GRANT_SECONDS))
        self.lock = lock if lock is not None else threading.Lock()
        #: the earliest next start (`time.monotonic`), in a one-element array
        self.cell = cell if cell is not None else [0.0]

    @classmethod
    def shared(cls, rate: float, context: Any) -> RateLimiter:
        """A limiter that worker processes of `context` can share (pass it at their start)."""
        return cls(rate, context.Lock(), context.RawArray("d", 1))

    def __getstate__(self) -> Any:
        return (self.interval, self.grant, self.lock, self.cell)

    def __setstate__(self, state: Any) -> None:
        self.interval, self.grant, self.lock, self.cell = state

    def reserve(self) -> float:
        """Wait for the stage's next start slot and take `grant` slots from it; until when
        they may be used (their span: no other worker's slots fall in it)."""
        with self.lock:
            now = time.monotonic()
            wait = self.cell[0] - now
            if wait > 0:
                time.sleep(wait)
                now = time.monotonic()
            end = self.cell[0] = now + self.interval * self.grant
            return end

    async def reserve_async(self) -> float:
        """`reserve` for one event loop's coroutines: they wait in turn, never blocking it."""
        import asyncio  # here: a worker that never runs coroutines does not pay for it

        lock = self.__dict__.get("_async_lock")
        if lock is None:
            lock = self.__dict__["_async_lock"] = asyncio.Lock()
        async with lock:
            now = time.monotonic()
            wait = self.cell[0] - now
            if wait > 0:
                await asyncio.sleep(wait)
                now = time.monotonic()
            end = self.cell[0] = now + self.interval * self.grant
            return end


class Slots:
    """One worker's (or one event loop's) start slots of a shared `RateLimiter`.

    Slots are used within their span or not at all, so in any window the starts are
    those of the spans it overlaps: at most ``rate`` a second, plus one grant.
    """

    __slots__ = ("limiter", "left", "until")

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter
        self.left = 0
        self.until = 0.0

    def take(self) -> None:
        """Wait, if need be, until this worker may start an attempt."""
        if self.left and time.monotonic() < self.until:
            self.left -= 1
            return
        self.until = self.limiter.reserve()
        self.left = self.limiter.grant - 1

    async def take_async(self) -> None:
        """`take` for coroutines, once the slots taken are used up or past their span (the
        caller checks that itself: no coroutine per attempt while they last)."""
        self.until = await self.limiter.reserve_async()
        self.left = self.limiter.grant - 1
