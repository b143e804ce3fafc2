"""Queues of the `task` backend: how items move on an event loop, and across its edge.

- `IterableQueue`: between two task stages, on one loop. A deque plus waiter futures:
  only the loop's thread touches it, so it needs no lock, and taking a ready item never
  suspends. It wakes one waiting consumer at a time: a consumer that takes an item and
  leaves more wakes the next, so consumers that never suspend (an `f` that does not
  await anything slow) are not all woken for a batch one of them takes whole, while
  consumers that suspend on their items are woken one after another, as fast.
- `ThreadSink`: the loop writing into a thread-side `pypeln._core.queue.IterableQueue`
  (a sync consumer, or a stage of another backend). Items are handed over once per loop
  iteration, in one batch; a full queue makes producers wait on the loop, never block it.
- `Channel`: a thread handing batches to the loop (a sync iterable, another backend's
  stage). The loop is woken once per batch, and only when it is waiting for one.

The two queue-like classes share the `Sink` interface the task workers write to.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any, Callable, Deque, Generic, List, Optional, TypeVar

from typing_extensions import Protocol

from .._core.element import Item
from .._core.errors import Cancelled
from .._core.queue import IterableQueue as ThreadQueue

T = TypeVar("T")


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Sink(Protocol):
    """Where task workers put their output (all methods run on the loop's thread)."""

    def add_producers(self, n: int) -> None:
        """Register `n` more producers; each calls `done` once."""

    def done(self) -> None:
        """One producer has no more items."""

    def full(self) -> bool:
        """Whether a producer must `wait_room` before its next `put_nowait`."""

    def put_nowait(self, item: Item) -> None: ...

    async def wait_room(self) -> None: ...

    async def put_many(self, items: List[Item]) -> None:
        """Put `items`, waiting for room as needed."""


class IterableQueue(Generic[T]):
    """A bounded multi-producer queue on one event loop; ends once every producer is done.

    >>> import asyncio, pypeln as pl
    >>> async def demo():
    ...     q = pl.task.IterableQueue(maxsize=2)
    ...     q.add_producers(1)
    ...     await q.put_many([1, 2])
    ...     q.done()
    ...     return [x async for x in q]
    >>> asyncio.run(demo())
    [1, 2]
    """

    def __init__(self, maxsize: int = 0) -> None:
        self.maxsize = maxsize
        self._items: Deque[T] = deque()
        self._producers = 0
        self._getters: Deque[asyncio.Future[None]] = deque()
        #: getters woken that have not looked at the queue yet
        self._woken = 0
        self._putters: Deque[asyncio.Future[None]] = deque()
        self._closed = False
        #: the most items seen waiting in it at once (statistics): noted when items are
        #: put or taken in batches, and when single items back up before a stage
        self.peak = 0
        #: items taken so far (a tracked stage numbers its items by it)
        self.popped = 0
        #: called when an item is put and no consumer waits (a stage may then add workers)
        self.on_backlog: Optional[Callable[[], None]] = None

    def __len__(self) -> int:
        return len(self._items)

    # -- producers -----------------------------------------------------------------------

    def add_producers(self, n: int) -> None:
        self._producers += n

    def done(self) -> None:
        self._producers -= 1
        if self._producers <= 0:
            self._woken += self._wake_all(self._getters)

    def full(self) -> bool:
        return bool(self.maxsize) and len(self._items) >= self.maxsize

    def put_nowait(self, item: T) -> None:
        """Add `item` regardless of `maxsize` (check `full` first to respect it)."""
        items = self._items
        items.append(item)
        if self._woken or self.wake_getter():
            return
        backlog = self.on_backlog
        if backlog is not None:  # a stage's input, backing up
            n = len(items)
            if n > self.peak:
                self.peak = n
            backlog()

    async def wait_room(self) -> None:
        """Wait until the queue is not full (or closed)."""
        while self.full() and not self._closed:
            await self._wait(self._putters)
        if self._closed:
            raise Cancelled()

    async def wait_below(self, n: int) -> None:
        """Wait until fewer than `n` items wait in it (or it is closed)."""
        while len(self._items) >= n and not self._closed:
            await self._wait(self._putters)

    async def put(self, item: T) -> None:
        if self.maxsize and len(self._items) >= self.maxsize:
            await self.wait_room()
        self.put_nowait(item)

    async def put_many(self, items: List[T]) -> None:
        start, n = 0, len(items)
        while start < n:
            if self._closed:
                raise Cancelled()
            if self.maxsize:
                room = self.maxsize - len(self._items)
                if room <= 0:
                    await self.wait_room()
                    continue
                end = min(n, start + room)
            else:
                end = n
            self._items.extend(items[start:end] if start or end < n else items)
            if len(self._items) > self.peak:
                self.peak = len(self._items)
            if not (self._woken or self.wake_getter()) and self.on_backlog is not None:
                self.on_backlog()
            start = end

    def wake_getter(self) -> bool:
        """Wake one waiting consumer (False: none waits). A consumer that takes an item
        and leaves others calls it when no other is woken yet (see the module's doc)."""
        getters = self._getters
        while getters:
            fut = getters.popleft()
            if not fut.done():
                fut.set_result(None)
                self._woken += 1
                return True
        return False

    # -- consumers -----------------------------------------------------------------------

    async def get(self) -> Optional[T]:
        """The next item, or None once the queue has ended. Raises `Cancelled` if closed."""
        items = self._items
        if not items and not await self._wait_for_items():
            return None
        item = items.popleft()
        if self._putters:
            self._wake_putters(1)
        if items and not self._woken:
            self.wake_getter()
        return item

    async def get_batch(self, limit: int) -> Optional[List[T]]:
        """Up to `limit` ready items (at least one), or None once the queue has ended."""
        items = self._items
        if not items and not await self._wait_for_items():
            return None
        if self._closed:
            raise Cancelled()
        n = len(items)
        if n > self.peak:
            self.peak = n
        if n <= limit:
            batch = list(items)
            items.clear()
        else:
            pop = items.popleft
            batch = [pop() for _ in range(limit)]
        if self._putters:
            self._wake_putters(len(batch))
        if items and not self._woken:
            self.wake_getter()
        return batch

    def __aiter__(self) -> IterableQueue[T]:
        return self

    async def __anext__(self) -> T:
        item = await self.get()
        if item is None:
            raise StopAsyncIteration
        return item

    # -- waiting and cancelling ----------------------------------------------------------

    async def _wait_for_items(self) -> bool:
        """Wait until an item is ready (True) or the queue has ended (False)."""
        while not self._items:
            if self._closed:
                raise Cancelled()
            if self._producers <= 0:
                return False
            await self._wait(self._getters)
            self._woken -= 1
        return True

    def _wake_putters(self, n: int) -> None:
        putters = self._putters
        while n and putters:
            fut = putters.popleft()
            if not fut.done():
                fut.set_result(None)
                n -= 1

    async def _wait(self, waiters: Deque[asyncio.Future[None]]) -> None:
        fut = asyncio.get_running_loop().create_future()
        waiters.append(fut)
        try:
            await fut
        except BaseException:
            fut.cancel()
            try:
                waiters.remove(fut)
            except ValueError:  # already woken: hand the wake-up on
                if waiters is self._getters:
                    self._woken -= 1
                    if self._items and not self._woken:
                        self.wake_getter()
            raise

    @staticmethod
    def _wake_all(waiters: Deque[asyncio.Future[None]]) -> int:
        """Wake every waiter; returns how many were still waiting."""
        n = 0
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                n += 1
        return n

    def close(self) -> None:
        """Cancel: every waiting or later get/put raises `Cancelled`."""
        self._closed = True
        self._woken += self._wake_all(self._getters)
        self._wake_all(self._putters)


class ThreadSink:
    """Loop-side writer into a thread-side queue: one hand-over per loop iteration.

    It counts as one producer of that queue from its own first producer on (a sink
    nothing feeds, as under ``concat([])``, leaves the queue to end at once), and ends
    once its own producers are done and everything has been handed over.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: ThreadQueue[Item]) -> None:
        self.loop = loop
        self.queue = queue
        self._producers = 0
        self._buffer: List[Item] = []
        self._scheduled = False
        self._blocked = False
        self._ended = False
        self._waiters: Deque[asyncio.Future[None]] = deque()
        self._room_asked = False
        self._bounded = bool(queue.maxsize)
        #: where finished takes are reported (a tracked stage's thread-side input queue)
        self.report: Optional[Callable[[int, int], None]] = None
        self._finished: List[int] = []

    def add_producers(self, n: int) -> None:
        if self._producers <= 0 < n:
            self.queue.add_producers(1)
        self._producers += n

    def done(self) -> None:
        self._producers -= 1
        if self._producers <= 0:
            self._ended = True
            self._schedule()

    def full(self) -> bool:
        """Whether what waits to be handed over fills the room left in the queue."""
        if not self._bounded:
            return False
        return self._blocked or len(self._buffer) >= self.queue.room()

    def put_nowait(self, item: Item) -> None:
        self._buffer.append(item)
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self._flush)

    async def wait_room(self) -> None:
        while self.full():
            fut = self.loop.create_future()
            self._waiters.append(fut)
            self._schedule()  # the flush hands over what it can, then asks for room
            try:
                await fut
            finally:
                fut.cancel()

    def finished(self, take: int) -> None:
        """The item of take number `take` is done: report it once its outputs are handed
        over (tracked stages only)."""
        self._finished.append(take)
        self._schedule()

    async def put_many(self, items: List[Item]) -> None:
        if self._blocked:
            await self.wait_room()
        self._buffer.extend(items)
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        buffer = self._buffer
        try:
            if buffer:
                n = self.queue.put_batch_nowait(buffer, self._room_from_thread)
                self._buffer = buffer[n:] if n < len(buffer) else []
            self._blocked = bool(self._buffer) and bool(self.queue.maxsize)
            if not self.full():
                IterableQueue._wake_all(self._waiters)
            elif self._waiters and not self._room_asked:
                self._room_asked = True  # flush again once the consumer takes something
                self.queue.on_room(self._room_from_thread)
            if self._finished and not self._buffer:
                self._report()
            if self._ended and not self._buffer:
                self._ended = False
                self.queue.done()
        except Cancelled:  # the run is being torn down
            self._buffer = []

    def _report(self) -> None:
        """Report the finished takes, as runs of consecutive numbers."""
        takes, self._finished = sorted(self._finished), []
        report = self.report
        assert report is not None
        start = prev = takes[0]
        for take in takes[1:]:
            if take != prev + 1:
                report(start, prev + 1 - start)
                start = take
            prev = take
        report(start, prev + 1 - start)

    def _room_from_thread(self) -> None:
        self._room_asked = False
        try:
            self.loop.call_soon_threadsafe(self._schedule)
        except RuntimeError:  # the loop is closed: the run is over
            pass


class Channel:
    """A thread handing batches of items to an event loop, holding at most `cap` items.

    The thread's `put` blocks while `cap` items are pending (0: no bound); the loop's
    `get` takes every pending batch at once and `release`s them once placed downstream.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, cap: int = 0) -> None:
        self.loop = loop
        self.cap = cap
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._batches: List[List[Item]] = []
        self._held = 0
        self._waiter: Optional[asyncio.Future[None]] = None
        self._ended = False
        self._closed = False

    # -- the thread's side ---------------------------------------------------------------

    def put(self, batch: List[Item]) -> None:
        """Hand `batch` over (blocking while the channel is full); raises `Cancelled` if closed."""
        with self._lock:
            while self.cap and self._held >= self.cap and not self._closed:
                self._room.wait()
            if self._closed:
                raise Cancelled()
            self._batches.append(batch)
            self._held += len(batch)
            self._wake_loop()

    def end(self) -> None:
        with self._lock:
            self._ended = True
            self._wake_loop()

    def _wake_loop(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            try:
                self.loop.call_soon_threadsafe(_wake, waiter)
            except RuntimeError:  # the loop is closed: the run is over
                self._closed = True
                raise Cancelled() from None

    # -- any thread ----------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._room.notify_all()

    # -- the loop's side -----------------------------------------------------------------

    async def get(self) -> Optional[List[List[Item]]]:
        """Every pending batch (waiting for one), or None once the thread has ended."""
        while True:
            with self._lock:
                if self._batches:
                    batches, self._batches = self._batches, []
                    return batches
                if self._ended:
                    return None
                waiter = self._waiter = self.loop.create_future()
            try:
                await waiter
            finally:
                waiter.cancel()

    def release(self, n: int) -> None:
        """`n` items taken by `get` have been placed downstream."""
        if self.cap:
            with self._lock:
                self._held -= n
                self._room.notify_all()


async def drain_channel(channel: Channel, sink: Sink, ahead: int = 0) -> None:
    """Move everything a thread hands over through `channel` into `sink`.

    It gives the loop back after each hand-over, even when more is pending and `sink`
    had room: a thread that reads faster than the loop moves items (an endless source)
    would otherwise keep this task running forever, and the stages it feeds would never
    run while their input grows without end. ``ahead`` (an unbounded loop-side `sink`):
    take nothing more while that many items wait in it, so that the thread, held by the
    channel's own cap, reads no further ahead of the stage than the two bounds.
    """
    while True:
        if ahead:
            assert isinstance(sink, IterableQueue)
            await sink.wait_below(ahead)
        batches = await channel.get()
        if batches is None:
            break
        items = batches[0] if len(batches) == 1 else [x for batch in batches for x in batch]
        await sink.put_many(items)
        channel.release(len(items))
        await asyncio.sleep(0)
    sink.done()


def thread_queue_batches(queue: ThreadQueue[Any], limit: int = 1 << 20) -> Any:
    """The batches of a thread-side queue until it ends (for a thread to iterate)."""
    get = queue.get_batch
    while True:
        batch = get(limit)
        if batch is None:
            return
        yield batch
