"""Completion: how a stage learns that every item before a source position is finished.

An item's index starts with its *position* in its source; every operator keeps that first
number (`flat_map` and `unbatch` only extend the index, `batch` takes its items' smallest).
A *watermark* ``w`` on a queue promises: every item with a position below ``w`` that will
ever reach this queue has reached it. Watermarks only exist where they are needed: in the
queues upstream of a streaming `ordered` (the *tracked* region of a run).

How a watermark travels, batch by batch (never item by item)::

    source --put items, advance(slot, next position)--> queue A
    queue A: `Progress` records a mark (items put so far, watermark)
    stage S takes a batch from A (take numbers t..t+n), runs f, puts the outputs in B,
        then `finish(t, n)` on A
    A: once every take below a mark's count is finished, the mark is *covered*:
        S's outputs for every position below it are in B, so A calls
        ``on_cover(w)`` = ``B.advance(S's slot, w)``
    ... stage by stage, down to `ordered`, which emits what is below the watermark (sorted)
        and moves its `Window` forward, letting its sources read further.

A producer that ends advances its slot to `ALL_DONE`. Everything here runs under the lock of the
queue that owns it (or on the event loop that owns it); callbacks run after that lock is
released.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from .errors import Cancelled
from .signals import wait

#: The watermark of a producer that has ended: above every position.
ALL_DONE = float("inf")


class Progress:
    """Watermark bookkeeping of one tracked queue (its owner holds the lock)."""

    __slots__ = ("put", "taken", "slots", "marks", "low", "done", "finished", "covered")

    def __init__(self) -> None:
        #: items put so far, and taken so far (take numbers are 0, 1, 2, ...)
        self.put = 0
        self.taken = 0
        #: each producer's watermark
        self.slots: List[float] = []
        #: (items put when it was recorded, watermark), oldest first
        self.marks: Deque[Tuple[int, float]] = deque()
        #: the smallest slot, as last recorded in `marks`
        self.low: float = 0
        #: every take below this number is finished
        self.done = 0
        #: finished take ranges beyond `done`: start -> end
        self.finished: Dict[int, int] = {}
        #: the watermark of what consumers have finished
        self.covered: float = 0

    def slot(self) -> int:
        """Register a producer; its watermark starts at 0."""
        self.slots.append(0)
        return len(self.slots) - 1

    def advance(self, slot: int, watermark: float) -> bool:
        """Producer `slot` promises nothing below `watermark` is still to come from it.

        Returns True when `covered` moved (the owner then calls its ``on_cover``).
        """
        slots = self.slots
        if watermark <= slots[slot]:
            return False
        slots[slot] = watermark
        low = min(slots)
        if low > self.low:
            self.low = low
            self.marks.append((self.put, low))
        return self._cover()

    def finish(self, start: int, n: int) -> bool:
        """Takes ``start .. start + n - 1`` are finished (their outputs are downstream)."""
        end = start + n
        if start == self.done:
            finished = self.finished
            while end in finished:
                end = finished.pop(end)
            self.done = end
        else:
            self.finished[start] = end
        return self._cover()

    def _cover(self) -> bool:
        marks, done = self.marks, self.done
        covered = self.covered
        while marks and marks[0][0] <= done:
            covered = marks.popleft()[1]
        if covered > self.covered:
            self.covered = covered
            return True
        return False


class Window:
    """The admission bound of a streaming `ordered`: sources upstream of it read position
    ``p`` only once ``p < head + size``, where ``head`` is the lowest position `ordered`
    has not yet emitted. ``size`` 0 is no bound.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.head: float = 0
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        #: sources waiting for the window to move
        self.waiting = 0
        #: a consumer of a list, tuple or range source found nothing it may read yet
        self.starved = False
        #: called (without locks held) when the window moves or a source starts waiting
        self.listeners: List[Callable[[], None]] = []

    def limit(self) -> float:
        """Positions below this may be read now."""
        return self.head + self.size if self.size else ALL_DONE

    def admit(self, position: int) -> None:
        """Block until `position` may be read; raises `Cancelled` if the run ends."""
        if not self.size or position < self.head + self.size:
            return
        with self._cond:
            self.waiting += 1
        try:
            self._notify()  # a `batch` holding items may have to let them go
            with self._cond:
                while position >= self.head + self.size and not self._closed:
                    wait(self._cond)
                if self._closed:
                    raise Cancelled()
        finally:
            with self._cond:
                self.waiting -= 1

    def move(self, head: float) -> None:
        """`ordered` has emitted every position below `head`."""
        if head <= self.head:
            return
        with self._cond:
            self.head = head
            self.starved = False
            self._cond.notify_all()
        self._notify()

    def starve(self) -> None:
        """A reader of a sequence source waits for the window to move."""
        self.starved = True
        self._notify()

    def blocking(self) -> bool:
        """Whether a source waits for this window to move."""
        return bool(self.waiting) or self.starved

    def _notify(self) -> None:
        for listener in self.listeners:
            listener()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def limit_of(windows: Tuple[Window, ...]) -> float:
    """The first position the `windows` do not admit yet."""
    return min((w.limit() for w in windows), default=ALL_DONE)


def admit(windows: Tuple[Window, ...], position: int) -> None:
    for w in windows:
        w.admit(position)


OnCover = Optional[Callable[[float], Any]]
