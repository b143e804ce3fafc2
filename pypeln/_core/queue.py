"""`IterableQueue`: the bounded queue between stages, on the consumer's side of a run.

Producers add items one at a time or in batches, as rows of ``(index, value)`` items or
as columns (see `pypeln._core.columns`); consumers take whatever is ready, up to a limit,
in the form they work with, and never wait for a batch to fill. Batches are kept as they
were put (a chunk each), not item by item. A list, tuple or range source is registered
as is (`add_sequence`): consumers slice it when nothing else is ready, so its items are
made on demand, with no feeder thread and nothing read ahead. Waiting blocks on a condition
(no polling). The queue ends once every registered producer called `done`; `close` cancels
it, waking every waiter with `Cancelled`.

Backpressure is exact: a producer that is about to compute items `reserve`s room for them
first, so a stage holds at most `maxsize` items plus one computed item per worker waiting
for room. A *tracked* queue also keeps a `Progress` (see `pypeln._core.progress`): its
consumers report the takes they have finished, and it reports the watermark they cover.
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
)

from .columns import Indices, Part, batch_size, columns_of, index_list, rows_of, values_of
from .errors import Cancelled
from .examples import QUEUE, example
from .progress import ALL_DONE, Progress, Window, limit_of
from .signals import wait
from .sources import SEQUENCE_CHUNK

T = TypeVar("T")

# The forms a consumer takes items in (`IterableQueue.get_tracked`):
ROWS, COLUMNS, AS_PUT, PARTS = "rows", "columns", "as put", "parts"

#: What `_take` found: its parts ([] if woken or nothing was ready), or None at the end.
Taken = Optional[List[Part]]


@example(QUEUE, "pl.thread")
class IterableQueue(Generic[T]):
    """A multi-producer, multi-consumer queue holding at most `maxsize` items (0: no bound).

    ``tracked`` queues keep watermarks; ``windows`` bound the positions their sequence
    sources may be read up to (see `pypeln._core.progress.Window`).
    """

    def __init__(
        self,
        maxsize: int = 0,
        consumers: int = 1,
        tracked: bool = False,
        windows: Tuple[Window, ...] = (),
    ) -> None:
        self.maxsize = maxsize
        self.consumers = max(1, consumers)
        #: the batches put and not taken yet: [indices (None: rows), values or rows, first
        #: not taken, whether `put` may append to it]
        self._chunks: Deque[List[Any]] = deque()
        #: items in `_chunks`
        self._count = 0
        #: the most items it has held at once (statistics)
        self.peak = 0
        self._producers = 0
        self._closed = False
        lock = threading.Lock()
        self._lock = lock
        self._not_empty = threading.Condition(lock)
        self._not_full = threading.Condition(lock)
        self._getters = 0
        self._putters = 0
        #: room promised to producers that are computing items (see `reserve`)
        self._reserved = 0
        #: registered sequence sources: [sequence, next position, progress slot]
        self._sequences: Deque[List[Any]] = deque()
        #: one-shot callbacks of producers that must not block (an event loop): see
        #: `put_batch_nowait`
        self._room_callbacks: List[Callable[[], None]] = []
        self.tracked = tracked
        self.progress: Optional[Progress] = Progress() if tracked else None
        #: called with the new watermark when the consumers' covered watermark moves
        self.on_cover: Optional[Callable[[float], Any]] = None
        self.windows = windows
        self._woken = False
        self._seen_cover: float = 0
        for window in windows:
            window.listeners.append(self.wake)

    def __len__(self) -> int:
        return self._count

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
                slot = self.progress.slot() if self.progress is not None else -1
                self._sequences.append([seq, 0, slot])

    def put(self, item: T) -> None:
        """Add one item (blocking while the queue is full)."""
        if self.maxsize or self._closed or self.tracked:
            self.put_batch([item])
            return
        with self._lock:
            chunks = self._chunks
            last = chunks[-1] if chunks else None
            if last is not None and last[3] and len(last[1]) < SEQUENCE_CHUNK:
                # A chunk of single items: one more (bounded: what was taken from the front
                # of a chunk is let go only with the whole chunk).
                last[1].append(item)
            else:
                chunks.append([None, [item], 0, True])
            self._grown(1)

    def put_batch(self, items: List[T], reserved: int = 0) -> None:
        """Add `items`, blocking while the queue is full; raises `Cancelled` if closed.

        ``reserved``: room `reserve` promised for them, given back now (the first
        `reserved` items go in without waiting). The queue keeps the list: the caller
        must not change it afterwards.
        """
        self._put(None, items, reserved)

    def put_columns(self, indices: Indices, values: Sequence[Any], reserved: int = 0) -> None:
        """Like `put_batch`, for a batch given as columns."""
        self._put(indices, values, reserved)

    def _put(self, indices: Optional[Indices], data: Sequence[Any], reserved: int) -> None:
        maxsize = self.maxsize
        start, n = 0, len(data)
        if indices is None and type(data) is not list:
            data = list(data)
        with self._lock:
            if reserved:
                self._reserved -= reserved
            while start < n:
                if self._closed:
                    raise Cancelled()
                if maxsize:
                    room = maxsize - self._count - self._reserved
                    if start < reserved:
                        room = max(room, reserved - start)
                    if room <= 0:
                        self._putters += 1
                        try:
                            wait(self._not_full)
                        finally:
                            self._putters -= 1
                        continue
                    end = min(n, start + room)
                else:
                    end = n
                self._add(indices, data, start, end)
                start = end
            if reserved > n and self._putters:
                self._not_full.notify(reserved - n)

    def _add(self, indices: Optional[Indices], data: Sequence[Any], start: int, end: int) -> None:
        """Add ``data[start:end]`` (with the lock held)."""
        if start or end < len(data):
            data = data[start:end]
            if indices is not None:
                indices = indices[start:end]
        self._chunks.append([indices, data, 0, False])
        self._grown(end - start)

    def _grown(self, n: int) -> None:
        """`n` items were added (with the lock held): count them, wake consumers."""
        self._count += n
        if self._count > self.peak:
            self.peak = self._count
        if self.progress is not None:
            self.progress.put += n
        if self._getters:
            self._not_empty.notify(min(self._getters, n))

    def reserve(self, limit: int) -> int:
        """Promise room for up to `limit` items a producer is about to compute; how many.

        0 when the queue is full: the producer may then compute one item and wait in
        `put_batch`, as a worker holding one finished item does. An unbounded queue
        promises nothing and returns `limit`. Give the room back with
        ``put_batch(items, reserved=n)``.
        """
        maxsize = self.maxsize
        if not maxsize:
            return limit
        with self._lock:
            if self._closed:
                raise Cancelled()
            granted = max(0, min(limit, maxsize - self._count - self._reserved))
            self._reserved += granted
            return granted

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
                n = max(0, min(n, self.maxsize - self._count - self._reserved))
                if n < len(items):
                    self._room_callbacks.append(on_room)
            if n:
                self._add(None, items if type(items) is list else list(items), 0, n)
            return n

    def room(self) -> int:
        """Items that fit now (a large number for an unbounded queue); a snapshot."""
        if not self.maxsize:
            return 1 << 30
        return self.maxsize - self._count - self._reserved

    def on_room(self, callback: Callable[[], None]) -> None:
        """Call `callback` once: now if there is room, else (from a consumer's thread) the
        next time items are taken."""
        with self._lock:
            full = bool(self.maxsize) and self._count + self._reserved >= self.maxsize
            if full:
                self._room_callbacks.append(callback)
        if not full:
            callback()

    # -- watermarks (tracked queues) -----------------------------------------------------

    def progress_slot(self) -> int:
        """Register a producer of watermarks (a source, or a stage with all its workers)."""
        assert self.progress is not None
        with self._lock:
            return self.progress.slot()

    def advance(self, slot: int, watermark: float) -> None:
        """Producer `slot` will put no more items with a position below `watermark`."""
        progress = self.progress
        assert progress is not None
        with self._lock:
            moved = progress.advance(slot, watermark)
        if moved:
            self._covered()

    def finish(self, start: int, n: int) -> None:
        """A consumer is done with takes ``start .. start + n - 1`` (outputs are downstream)."""
        progress = self.progress
        if progress is None or not n:
            return
        with self._lock:
            moved = progress.finish(start, n)
        if moved:
            self._covered()

    def _covered(self) -> None:
        assert self.progress is not None
        callback = self.on_cover
        if callback is not None:
            callback(self.progress.covered)
        else:
            self.wake()

    def wake(self) -> None:
        """Wake the consumers that wait with ``wakeable`` (a watermark or a window moved)."""
        with self._lock:
            self._woken = True
            self._not_empty.notify_all()

    # -- consumers -----------------------------------------------------------------------

    def get_batch(self, limit: int) -> Optional[List[T]]:
        """Up to `limit` ready items (at least one), or None once the queue has ended.

        With several consumers a taker leaves a fair share for the others, so that a
        burst of slow items spreads over all of them. Raises `Cancelled` if closed.
        """
        taken, _ = self._take(limit)
        return rows_of(taken)

    def get_tracked(
        self, limit: int, block: bool = True, form: str = ROWS
    ) -> Optional[Tuple[Any, int]]:
        """Like `get_batch`, with the number of its first take (for `finish`).

        Without `block`, an empty list when nothing is ready. The items come in `form`:
        `ROWS` (a list of items), `COLUMNS` (`Columns`; indices may be a `range`), or
        `AS_PUT` (columns if they were all put as columns, else rows), or `PARTS` (a list
        of the batches as they were put, or the pieces of them taken: rows or columns).
        """
        taken, start = self._take(limit, block=block)
        if taken is None:
            return None
        return _in_form(taken, form), start

    def wait_ready(self) -> None:
        """Block until an item is ready or the queue has ended (takes nothing)."""
        with self._lock:
            while not self._count:
                if self._closed:
                    raise Cancelled()
                if self._producers <= 0:
                    return
                if self._sequences and (
                    not self.windows or self._sequences[0][1] < limit_of(self.windows)
                ):
                    return
                self._getters += 1
                try:
                    wait(self._not_empty)
                finally:
                    self._getters -= 1

    def get_columns(
        self, limit: int, block: bool = True, ranges: bool = False
    ) -> Optional[Tuple[Indices, Sequence[Any], int]]:
        """Like `get_tracked`, as two columns: the items' indices and their values.

        Items of a sequence source are never built: its values come as a slice of it.
        For consumers that work on values and keep the indices aside. With `ranges`, the
        indices may come as a `range` of positions (see `pypeln._core.columns`), else
        always as a list of index tuples.
        """
        taken, start = self._take(limit, block=block)
        if taken is None:
            return None
        indices, values = columns_of(taken)
        return (indices if ranges else index_list(indices)), values, start

    def get_values(self, limit: int) -> Optional[Sequence[Any]]:
        """Like `get_batch`, the values only (for the consumer at the end of a run)."""
        taken, _ = self._take(limit)
        if taken is None:
            return None
        if len(taken) == 1:
            return values_of(taken[0])
        values: List[Any] = []
        for part in taken:
            values += values_of(part)
        return values

    def get_waking(
        self, limit: int, timeout: Optional[float] = None, form: str = ROWS
    ) -> Optional[Tuple[Any, int]]:
        """Like `get_tracked`, but also returns no items when woken (`wake`), when the
        covered watermark moved, or after `timeout` seconds without an item.

        A consumer that holds items on behalf of others (`batch`, `ordered`) waits this way.
        """
        taken, start = self._take(limit, wakeable=True, timeout=timeout)
        if taken is None:
            return None
        return _in_form(taken, form), start

    def _take(
        self,
        limit: int,
        wakeable: bool = False,
        timeout: Optional[float] = None,
        block: bool = True,
    ) -> Tuple[Taken, int]:
        """Ready items in parts (a slice of a sequence source is a part of columns; [] if
        woken, None at the end), and the number of the first take."""
        told = False
        held_at = 0
        while True:
            with self._lock:
                while not self._count:
                    if self._closed:
                        raise Cancelled()
                    if self._sequences:
                        taken = self._slice(limit)
                        if taken is not None:
                            return taken
                        if not told:
                            held_at = self._sequences[0][1]
                            break  # held back by a window: tell it (outside the lock)
                    elif self._producers <= 0:
                        return None, 0
                    if (wakeable and self._woken_since()) or not block:
                        return [], 0
                    self._getters += 1
                    try:
                        if not self._count:
                            if not wait(self._not_empty, timeout):
                                if not self._count:
                                    return [], 0
                    finally:
                        self._getters -= 1
                else:
                    return self._pop(limit)
            told = True
            for window in self.windows:
                if held_at >= window.limit():
                    window.starve()

    def _pop(self, limit: int) -> Tuple[List[Part], int]:
        """Take ready items (called with the lock held, when there are some): a fair share
        of them, from the chunks at the front."""
        if self._closed:
            raise Cancelled()
        n = min(limit, -(-self._count // self.consumers))
        chunks = self._chunks
        parts: List[Part] = []
        left = n
        while left:
            chunk = chunks[0]
            indices, data, lo, _ = chunk
            size = len(data)
            if size - lo <= left:
                chunks.popleft()
                hi = size
            else:
                hi = lo + left
                chunk[2] = hi
            whole = not lo and hi == size
            if indices is None:
                parts.append(data if whole else data[lo:hi])
            else:
                parts.append((indices, data) if whole else (indices[lo:hi], data[lo:hi]))
            left -= hi - lo
        self._count -= n
        if self._putters:
            self._not_full.notify(n)
        if self._room_callbacks:
            callbacks, self._room_callbacks = self._room_callbacks, []
            for callback in callbacks:
                callback()
        progress = self.progress
        if progress is None:
            return parts, 0
        start = progress.taken
        progress.taken = start + n
        return parts, start

    def _woken_since(self) -> bool:
        """Whether a wake-up or a new covered watermark came since the last look."""
        woken = self._woken
        self._woken = False
        if self.progress is not None and self.progress.covered != self._seen_cover:
            self._seen_cover = self.progress.covered
            return True
        return woken

    def _slice(self, limit: int) -> Optional[Tuple[List[Part], int]]:
        """Take the next slice of the first sequence source, as columns (called with the
        lock held); None if the windows do not admit its next position yet."""
        entry = self._sequences[0]
        seq, start, slot = entry
        left = len(seq) - start
        end = start + min(limit, 4 * SEQUENCE_CHUNK, -(-left // self.consumers))
        if self.windows:
            end = min(end, int(min(limit_of(self.windows), len(seq))))
            if end <= start:
                return None
        entry[1] = end
        exhausted = end >= len(seq)
        if exhausted:
            self._sequences.popleft()
            self._producers -= 1
            if self._producers <= 0:
                self._not_empty.notify_all()
        part: List[Part] = [(range(start, end), seq[start:end])]
        progress = self.progress
        if progress is None:
            return part, 0
        first = progress.taken
        progress.put += end - start
        progress.taken += end - start
        progress.advance(slot, ALL_DONE if exhausted else end)
        return part, first

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


def _in_form(taken: List[Part], form: str) -> Any:
    """The parts of a take in `form` (see `IterableQueue.get_tracked`)."""
    if form == PARTS:
        return taken
    if form == ROWS or (form == AS_PUT and not all(type(p) is tuple for p in taken)):
        return rows_of(taken)
    return columns_of(taken)


#: What `take` hands a worker: the items (rows, or `Columns`), the number of their first
#: take, the room reserved.
Taken3 = Tuple[Any, int, int]


def take(
    inq: IterableQueue[Any], out: IterableQueue[Any], limit: int, form: str = ROWS
) -> Optional[Taken3]:
    """The next batch a worker computes: room first, then items (None once `inq` ended),
    in `form` (see `IterableQueue.get_tracked`).

    With a bounded `out` it takes no more items than `out` has room for, or one item when
    `out` is full (computed, then waiting for room): a stage never runs further ahead of its
    consumer than that. No room is held while waiting for items, so a stuck item elsewhere
    can never wait on room this worker holds.
    """
    if not out.maxsize:
        got = inq.get_tracked(limit, True, form)
        return None if got is None else (got[0], got[1], 0)
    while True:
        reserved = out.reserve(limit)
        got = inq.get_tracked(max(1, reserved), False, form)
        if got is not None and batch_size(got[0]):
            return got[0], got[1], reserved
        if reserved:
            out.put_batch([], reserved)
        if got is None:
            return None
        inq.wait_ready()


def deliver(inq: IterableQueue[Any], out: IterableQueue[Any], outputs: Any, taken: Taken3) -> None:
    """Put a batch's `outputs` (rows, or `Columns`) into the room `take` reserved, then
    report it finished."""
    batch, start, reserved = taken
    if type(outputs) is tuple:
        if outputs[1] or reserved:
            out.put_columns(outputs[0], outputs[1], reserved)
    elif outputs or reserved:
        out.put_batch(outputs, reserved)
    if inq.progress is not None:
        inq.finish(start, batch_size(batch))
