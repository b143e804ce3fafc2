"""`MoveRunner`: the stages that only move items, whatever their backend.

`concat` and `from_iterable` with a `maxsize` of their own, `ordered`, `batch` and
`unbatch` call no user function: they run in one thread of the consumer's process, on
the queues of the run, for every backend that runs on `Execution`s.

`ordered` streams: it keeps what arrives in a buffer and emits, sorted by index, every
item below the watermark of its input (see `pypeln._core.progress`), then moves its
`Window`, which lets the sources upstream read further. Without a watermark (a segment
that cannot report one) it waits for the end and sorts everything, as pypeln 0.4.9 did.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from operator import itemgetter
from typing import Any, List, Optional, Tuple

from .batching import MAX_BATCH
from .element import Item
from .errors import Cancelled
from .execution import Execution, ThreadRunner
from .ops import BATCH, ORDERED, UNBATCH, make_batch
from .progress import ALL_DONE, Window
from .queue import IterableQueue, deliver, take
from .stage import Stage

_by_index = itemgetter(0)


class MoveRunner(ThreadRunner):
    """Runs one item-moving stage of an `Execution` in a thread of its own."""

    def __init__(
        self,
        stage: Stage[Any],
        input: IterableQueue[Item],
        output: IterableQueue[Item],
        execution: Execution,
        window: Optional[Window] = None,
    ) -> None:
        super().__init__(execution, f"pypeln-{stage.where}")
        self.stage = stage
        self.input = input
        self.output = output
        self.window = window
        self.cap = min(MAX_BATCH, stage.maxsize or MAX_BATCH)
        #: this stage's watermark slot in a tracked output
        self.slot = output.progress_slot() if output.tracked and stage.op is ORDERED else -1
        output.add_producers(1)

    def start(self) -> None:
        self.spawn(self._main)

    def _main(self) -> None:
        op = self.stage.op
        try:
            if op is ORDERED:
                if self.window is not None:
                    self._ordered_streaming()
                else:
                    self._ordered_at_end()
            elif op is BATCH:
                self._batch()
            else:
                self._forward(op is UNBATCH)
            self.output.done()
        except Cancelled:
            pass
        except BaseException as e:
            self.execution.fail(e)

    def _forward(self, unbatch: bool) -> None:
        inq, out, cap = self.input, self.output, self.cap
        while True:
            taken = take(inq, out, cap)
            if taken is None:
                return
            deliver(inq, out, UNBATCH.batch(taken[0]) if unbatch else taken[0], taken)

    # -- batch ---------------------------------------------------------------------------

    def _batch(self) -> None:
        """Lists of up to `size` items; a partial one goes out after `flush` idle seconds,
        at the end, or when a window downstream waits for what it holds."""
        inq = self.input
        size: int = self.stage.options["size"]
        flush: float = self.stage.options.get("flush") or 0.0
        held: List[Item] = []
        takes: List[Tuple[int, int]] = []  # (first take, count): finished once emitted
        last = time.monotonic()
        while True:
            wait = max(0.0, last + flush - time.monotonic()) if flush and held else None
            got = inq.get_waking(size - len(held), wait)
            if got is None:
                break
            items, start = got
            if items:
                held.extend(items)
                takes.append((start, len(items)))
                last = time.monotonic()
            if not held:
                continue
            if (
                len(held) < size
                and not (flush and time.monotonic() - last >= flush)
                and not any(w.blocking() for w in inq.windows)  # a window waits for these
            ):
                continue
            self._emit_batch(held, takes)
            held, takes = [], []
        if held:
            self._emit_batch(held, takes)

    def _emit_batch(self, held: List[Item], takes: List[Tuple[int, int]]) -> None:
        self.output.put_batch([make_batch(held)])
        for start, n in takes:
            self.input.finish(start, n)

    # -- ordered -------------------------------------------------------------------------

    def _ordered_at_end(self) -> None:
        items: List[Item] = []
        for batch in iter(lambda: self.input.get_batch(1 << 30), None):
            items.extend(batch)
        items.sort(key=_by_index)
        self._put(items)

    def _ordered_streaming(self) -> None:
        inq, window = self.input, self.window
        assert inq.progress is not None and window is not None
        progress = inq.progress
        buffer: List[Item] = []
        head: float = 0
        while True:
            got = inq.get_waking(1 << 20)
            if got is None:
                break
            items, start = got
            if items:
                buffer.extend(items)
                inq.finish(start, len(items))  # held here: covered as far as we go
            covered = progress.covered
            if covered > head and buffer:
                buffer = self._emit_below(buffer, covered)
            if covered > head:
                head = covered
                self._advance(head)
                window.move(head)
        buffer.sort(key=_by_index)
        self._put(buffer)
        self._advance(ALL_DONE)

    def _emit_below(self, buffer: List[Item], watermark: float) -> List[Item]:
        """Emit, sorted, the items of `buffer` whose position is below `watermark`;
        return the rest."""
        buffer.sort(key=_by_index)
        if watermark == ALL_DONE or buffer[-1][0][0] < watermark:
            self._put(buffer)
            return []
        keys = [i for i, _ in buffer]
        cut = bisect_left(keys, (watermark,))
        if cut:
            self._put(buffer[:cut])
            del buffer[:cut]
        return buffer

    def _put(self, items: List[Item]) -> None:
        put = self.output.put_batch
        for start in range(0, len(items), MAX_BATCH):
            put(items[start : start + MAX_BATCH])

    def _advance(self, watermark: float) -> None:
        if self.slot >= 0:
            self.output.advance(self.slot, watermark)
