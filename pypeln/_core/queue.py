"""`IterableQueue`: the bounded queue between stages, on the consumer's side of a run.

Producers add items one at a time or in batches; consumers take whatever is ready, up to
a limit, and never wait for a batch to fill. A list, tuple or range source is registered
as is (`add_sequence`): consumers slice it when nothing else is ready, so its items are
made on demand, with no feeder thread and nothing read ahead. Waiting blocks on a condition
(no polling). The queue ends once every registered producer called `done`; `close` cancels
it, waking every waiter with `Cancelled`.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import (
    Any,
    Callable,
    Deque,
    Generic,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

from .errors import Cancelled
from .sources import SEQUENCE_CHUNK, sequence_items

T = TypeVar("T")


class IterableQueue(Generic[T]):
    """A multi-producer, multi-consumer queue holding at most `maxsize` items (0: no bound)."""

    def __init__(self, maxsize: int = 0, consumers: int = 1) -> None:
        self.maxsize = maxsize
        self.consumers = max(1, consumers)
        self._items: Deque[T] = deque()
        self._producers = 0
        self._closed = False
        lock = threading.Lock()
        self._lock = lock
        self._not_empty = threading.Condition(lock)
        self._not_full = threading.Condition(lock)
        self._getters = 0
        self._putters = 0
        #: registered sequence sources and how far each has been read: [sequence, next]
        self._sequences: Deque[List[Any]] = deque()
        #: one-shot callbacks of producers that must not block (an event loop): see
        #: `put_batch_nowait`
        self._room_callbacks: List[Callable[[], None]] = []

    def __len__(self) -> int:
        return len(self._items)

    # -- producers -----------------------------------------------------------------------

    def add_producers(self, n: int = 1) -> None:
        """Register `n` more producers; each must call `done` once (before any has ended)."""
        with self._lock:
            self._producers += n

    def done(self) -> None:
        """One producer has no more items."""
        with self._lock:
            self._producers -= 1
            if self._producers <= 0:
                self._not_empty.notify_all()

    def add_sequence(self, seq: Sequence[Any]) -> None:
        """Register a list, tuple or range as a producer of ``((position,), value)`` items."""
        with self._lock:
            if len(seq):
                self._producers += 1
                self._sequences.append([seq, 0])

    def put(self, item: T) -> None:
        if self.maxsize or self._closed:
            self.put_batch([item])
            return
        # Unbounded fast path: no lock unless a consumer sleeps. A consumer registers in
        # `_getters` before its last look at `_items`, so one of us always sees the other.
        self._items.append(item)
        if self._getters:
            with self._lock:
                self._not_empty.notify()

    def put_batch(self, items: List[T]) -> None:
        """Add `items`, blocking while the queue is full; raises `Cancelled` if closed."""
        maxsize = self.maxsize
        start, n = 0, len(items)
        with self._lock:
            while start < n:
                if self._closed:
                    raise Cancelled()
                if maxsize:
                    room = maxsize - len(self._items)
                    if room <= 0:
                        self._putters += 1
                        try:
                            self._not_full.wait()
                        finally:
                            self._putters -= 1
                        continue
                    end = min(n, start + room)
                else:
                    end = n
                self._items.extend(items[start:end] if start or end < n else items)
                if self._getters:
                    self._not_empty.notify(min(self._getters, end - start))
                start = end

    def put_batch_nowait(self, items: List[T], on_room: Callable[[], None]) -> int:
        """Add as many of `items` as fit now, without blocking; returns how many were added.

        If not all fit, `on_room` is called once, from a consumer's thread, the next time
        items are taken. Raises `Cancelled` if the queue is closed.
        """
        with self._lock:
            if self._closed:
                raise Cancelled()
            n = len(items)
            if self.maxsize:
                n = max(0, min(n, self.maxsize - len(self._items)))
                if n < len(items):
                    self._room_callbacks.append(on_room)
            if n:
                self._items.extend(items[:n] if n < len(items) else items)
                if self._getters:
                    self._not_empty.notify(min(self._getters, n))
            return n

    # -- consumers -----------------------------------------------------------------------

    def get_batch(self, limit: int) -> Optional[List[T]]:
        """Up to `limit` ready items (at least one), or None once the queue has ended.

        With several consumers a taker leaves a fair share for the others, so that a
        burst of slow items spreads over all of them. Raises `Cancelled` if closed.
        """
        taken = self._take(limit)
        if taken is None or isinstance(taken, list):
            return taken
        seq, start, end = taken
        return sequence_items(seq, start, end)  # type: ignore[return-value]

    def get_columns(self, limit: int) -> Optional[Tuple[List[Any], Sequence[Any]]]:
        """Like `get_batch`, as two columns: the items' indices and their values.

        Items of a sequence source are never built: its values come as a slice of it.
        For consumers that send values away and keep the indices (`process`).
        """
        taken = self._take(limit)
        if taken is None:
            return None
        if isinstance(taken, list):
            items: List[Any] = taken  # (index, value) pairs
            return [i for i, _ in items], [x for _, x in items]
        seq, start, end = taken
        return [(i,) for i in range(start, end)], seq[start:end]

    def _take(self, limit: int) -> Union[None, List[T], Tuple[Sequence[Any], int, int]]:
        """Ready items, or the bounds of a slice of a sequence source, or None at the end."""
        items = self._items
        with self._lock:
            while not items:
                if self._closed:
                    raise Cancelled()
                if self._sequences:
                    return self._slice(limit)
                if self._producers <= 0:
                    return None
                self._getters += 1
                try:
                    if not items:
                        self._not_empty.wait()
                finally:
                    self._getters -= 1
            if self._closed:
                raise Cancelled()
            n = min(limit, -(-len(items) // self.consumers))
            # popleft only: an unlocked `put` may append meanwhile (see `put`).
            pop = items.popleft
            batch = [pop() for _ in range(n)]
            # Wake blocked producers once half the room is free, not at every item taken:
            # refills then come in chunks instead of one thread switch per item.
            if self._putters and len(items) <= self.maxsize // 2:
                self._not_full.notify_all()
            if self._room_callbacks:
                callbacks, self._room_callbacks = self._room_callbacks, []
                for callback in callbacks:
                    callback()
            return batch

    def _slice(self, limit: int) -> Tuple[Sequence[Any], int, int]:
        """Take the next slice of the first sequence source (called with the lock held)."""
        entry = self._sequences[0]
        seq, start = entry
        left = len(seq) - start
        end = start + min(limit, 4 * SEQUENCE_CHUNK, -(-left // self.consumers))
        entry[1] = end
        if end >= len(seq):
            self._sequences.popleft()
            self._producers -= 1
            if self._producers <= 0:
                self._not_empty.notify_all()
        return seq, start, end

    def __iter__(self) -> Iterator[T]:
        """Items until the queue ends (a single consumer's view)."""
        while True:
            batch = self.get_batch(1 << 30)
            if batch is None:
                return
            yield from batch

    # -- cancellation --------------------------------------------------------------------

    def close(self) -> None:
        """Cancel: every blocked or later put/get raises `Cancelled`."""
        with self._lock:
            self._closed = True
            self._not_empty.notify_all()
            self._not_full.notify_all()
