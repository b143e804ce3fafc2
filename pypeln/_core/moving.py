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
from itertools import islice
from operator import itemgetter, lt
from typing import Any, Iterator, List, Optional, Tuple

from .batching import MAX_BATCH
from .columns import as_rows, batch_size, joined, positions
from .element import Item
from .errors import Cancelled
from .execution import Execution, StageRunner
from .ops import BATCH, ORDERED, UNBATCH, make_batch
from .progress import ALL_DONE, Window
from .queue import AS_PUT, PARTS, ROWS, IterableQueue, deliver, take
from .stage import Stage

_by_index = itemgetter(0)


class MoveRunner(StageRunner):
    """Runs one item-moving stage of an `Execution` in a thread of its own."""

    def __init__(
        self,
        stage: Stage[Any],
        input: IterableQueue[Item],
        output: IterableQueue[Item],
        execution: Execution,
        window: Optional[Window] = None,
    ) -> None:
        super().__init__(stage, input, output, execution)
        self.window = window
        self.cap = min(MAX_BATCH, stage.maxsize or MAX_BATCH)
        #: this stage's watermark slot in a tracked output
        self.slot = output.progress_slot() if output.tracked and stage.op is ORDERED else -1
        output.add_producers(1)

    def start(self) -> None:
        self.spawn(self._main)

    def _main(self) -> None:
        op = self.stage.op
        self.counters = c = self.stats.counters()
        c.start()
        try:
            if op is ORDERED:
                self._ordered()
            elif op is BATCH:
                self._batch()
            else:
                self._forward(op is UNBATCH)
            self.output.done()
        except Cancelled:
            pass
        except BaseException as e:
            self.execution.fail(e)
        finally:
            c.end()

    def _forward(self, unbatch: bool) -> None:
        inq, out, cap, c = self.input, self.output, self.cap, self.counters
        while True:
            taken = take(inq, out, cap, ROWS if unbatch else AS_PUT)
            if taken is None:
                return
            outputs = UNBATCH.batch(taken[0]) if unbatch else taken[0]
            deliver(inq, out, outputs, taken)
            c.items_in += batch_size(taken[0])
            c.items_out += batch_size(outputs)

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
                and not waits_for(inq.windows, held)
            ):
                continue
            self._emit_batch(held, takes)
            held, takes = [], []
        if held:
            self._emit_batch(held, takes)

    def _emit_batch(self, held: List[Item], takes: List[Tuple[int, int]]) -> None:
        self.output.put_batch([make_batch(held)])
        self.counters.items_in += len(held)
        self.counters.items_out += 1
        for start, n in takes:
            self.input.finish(start, n)

    # -- ordered -------------------------------------------------------------------------

    def _ordered(self) -> None:
        out = self.output
        for ready, n, head in ordered_items(self.input, self.window):
            for piece in pieces(ready, MAX_BATCH):
                if type(piece) is tuple:
                    out.put_columns(*piece)
                else:
                    out.put_batch(piece)
            self.counters.items_in += n
            self.counters.items_out += n
            if self.slot >= 0:
                self.output.advance(self.slot, head)


def waits_for(windows: Tuple[Window, ...], held: List[Item]) -> bool:
    """Whether a window downstream holds a source back: `batch` then lets what it holds go
    (the window may be waiting for exactly those items; if it is only lagging, a batch
    goes out short, which costs less than a pipeline that never moves again)."""
    return bool(held) and any(w.blocking() for w in windows)


def ordered_items(
    inq: IterableQueue[Item], window: Optional[Window]
) -> Iterator[Tuple[List[Any], int, float]]:
    """`ordered`: the items of `inq` sorted by index, as (batches, count, watermark): the
    batches (rows or columns, see `Held`) hold `count` items in order, and every item
    below the watermark has been emitted once they are.

    With a `window` it emits whatever the input's watermark covers and moves the window
    to it; without (a segment that cannot report watermarks) it waits for the end.
    """
    held = Held()
    if window is None:
        while True:
            got = inq.get_tracked(1 << 30, True, PARTS)
            if got is None:
                break
            held.add(got[0])
        yield held.below(ALL_DONE) + (ALL_DONE,)
        return
    progress = inq.progress
    assert progress is not None
    head: float = 0
    while True:
        got = inq.get_waking(1 << 20, form=PARTS)
        if got is None:
            break
        taken, start = got
        n = held.add(taken)
        if n:
            inq.finish(start, n)  # held here: covered as far as we go
        covered = progress.covered
        if covered > head:
            head = covered
            ready = held.below(covered)
            window.move(head)  # the sources read on while these go out
            yield ready + (head,)
    yield held.below(ALL_DONE) + (ALL_DONE,)


class Held:
    """What `ordered` holds.

    While every batch came as columns of positions (see `pypeln._core.columns`), it keeps
    them as they came, each sorted by position, and lets them go a batch at a time: the
    batches of consecutive takes seldom overlap (each worker took a run of positions), so
    putting them in order sorts the batches, not the items. Otherwise it holds rows of
    items and sorts those.
    """

    def __init__(self) -> None:
        self.chunks: List[Tuple[Any, Any]] = []
        self.rows: Optional[List[Item]] = None

    def add(self, parts: List[Any]) -> int:
        """Hold the parts of a take (rows or columns); returns how many items they have."""
        n = 0
        for part in parts:
            size = batch_size(part)
            if not size:
                continue
            n += size
            if self.rows is None:
                if type(part) is tuple and positions(part[0]):
                    self.chunks.append(in_order(*part))
                    continue
                self.rows = [row for chunk in self.chunks for row in as_rows(*chunk)]
                self.chunks = []
            self.rows += as_rows(*part) if type(part) is tuple else part
        return n

    def below(self, watermark: float) -> Tuple[List[Any], int]:
        """Let go of the items below `watermark`, sorted by index: (batches, count)."""
        if self.rows is not None:
            ready, self.rows = split_below(self.rows, watermark)
            return ([ready] if ready else []), len(ready)
        chunks = self.chunks
        chunks.sort(key=_first_position)
        if any(a[0][-1] >= b[0][0] for a, b in zip(chunks, chunks[1:])):
            chunks = [in_order(*joined(chunks))]  # overlapping runs: sort the items
        out: List[Any] = []
        n = 0
        for i, (at, values) in enumerate(chunks):
            if watermark != ALL_DONE and at[-1] >= watermark:
                cut = bisect_left(at, watermark)
                if cut:
                    out.append((at[:cut], values[:cut]))
                    n += cut
                    chunks[i] = (at[cut:], values[cut:])
                self.chunks = chunks[i:]
                return out, n
            out.append((at, values))
            n += len(values)
        self.chunks = []
        return out, n


def _first_position(chunk: Tuple[Any, Any]) -> int:
    return chunk[0][0]  # type: ignore[no-any-return]


def in_order(at: Any, values: Any) -> Tuple[Any, Any]:
    """Columns of positions sorted by position (as they are when they already are)."""
    if type(at) is range or all(map(lt, at, islice(at, 1, None))):
        return at, values
    order = sorted(range(len(at)), key=at.__getitem__)
    return list(map(at.__getitem__, order)), list(map(values.__getitem__, order))


def pieces(batches: List[Any], size: int) -> Iterator[Any]:
    """`batches` (rows or columns) in pieces of at most `size` items."""
    for batch in batches:
        n = batch_size(batch)
        if n <= size:
            yield batch
            continue
        for start in range(0, n, size):
            if type(batch) is tuple:
                yield batch[0][start : start + size], batch[1][start : start + size]
            else:
                yield batch[start : start + size]


def split_below(items: List[Item], watermark: float) -> Tuple[List[Item], List[Item]]:
    """`items` sorted by index, cut into those whose position is below `watermark` and
    the rest."""
    if not items:
        return [], items
    items.sort(key=_by_index)
    if watermark == ALL_DONE or items[-1][0][0] < watermark:
        return items, []
    cut = bisect_left([i for i, _ in items], (watermark,))
    return items[:cut], items[cut:]
