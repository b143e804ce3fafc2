"""Stages as plain generators: no workers, source order kept, nothing running in the background.

Useful to debug a pipeline, and as the reference the other backends are tested against.

>>> import pypeln as pl
>>> list(range(5) | pl.sync.map(lambda x: x * 10) | pl.sync.filter(lambda x: x > 10))
[20, 30, 40]
"""

from __future__ import annotations

import heapq
import time
from operator import itemgetter
from typing import Any, Generator, Iterator, List, Optional

from .._core.api import StageFunctions
from .._core.batching import MAX_BATCH
from .._core.element import Element, Item
from .._core.errors import Cancelled
from .._core.execution import Execution, ModuleBackend, StageRunner, runs_stage_inline
from .._core.inject import StageStatus, WorkerCount, WorkerInfo
from .._core.inline import InlineWorker
from .._core.namespace import Namespace
from .._core.ops import BATCH, FLAT_MAP, FORWARD, ORDERED, UNBATCH
from .._core.queue import IterableQueue, deliver, take
from .._core.sources import source_batches
from .._core.stage import Partial, Stage, iter_batches
from .._core.stats import Counters, RunStats

_by_index = itemgetter(0)


def _items(node: Any, stats: RunStats) -> Generator[Item, None, None]:
    """The items of `node`, lazily, in the calling thread."""
    if not isinstance(node, Stage):
        for batch in source_batches(node):
            yield from batch
        return
    # Upstream runs are closed explicitly: an exception's traceback keeps these frames,
    # and with them any generator they hold, alive long after the error.
    if node.backend is not BACKEND:
        yield from _foreign(node, stats)
        return
    if node.op is ORDERED:
        upstream = _sorted_items(node.deps[0], node.options.get("window", 0), stats)
    else:
        upstream = _alternating(node.deps, stats)
    try:
        yield from _apply(node, upstream, stats)
    finally:
        upstream.close()


def _foreign(node: Stage[Any], stats: RunStats) -> Generator[Item, None, None]:
    """The items of a stage of another backend, run by its backend."""
    batches = iter_batches(node, node.maxsize, stats, False)
    try:
        for batch in batches:
            yield from batch
    finally:
        batches.close()


def _alternating(deps: Any, stats: RunStats) -> Generator[Item, None, None]:
    """The items of `deps` taken in turn, one from each input still going (as 0.4.9's
    `concat`); an input is started when its first item is asked for."""
    if len(deps) == 1:  # the common case, without the turn taking
        yield from _closing(_items(deps[0], stats))
        return
    waiting = [_items(dep, stats) for dep in deps]  # generators: nothing runs yet
    try:
        while waiting:
            going = []
            for items in waiting:
                item = next(items, _DONE)
                if item is not _DONE:
                    going.append(items)
                    yield item
            waiting = going
    finally:
        for items in waiting:
            items.close()


_DONE: Any = object()


def _closing(items: Generator[Item, None, None]) -> Generator[Item, None, None]:
    try:
        yield from items
    finally:
        items.close()


def _sorted_items(node: Any, window: int, stats: RunStats) -> Generator[Item, None, None]:
    """The items of `node` in index order, lazily: what a sync `ordered` emits.

    Sources and sync operators keep index order, a `concat` merges its inputs' sorted
    streams, and a stage of another backend is run through its own streaming `ordered`.
    """
    if not isinstance(node, Stage):
        upstream = _items(node, stats)
    elif node.backend is not BACKEND:
        ordered: Stage[Any] = Stage(node.backend, ORDERED, (node,), options={"window": window})
        upstream = _foreign(ordered, stats)
    elif node.op is FORWARD:
        streams = [_sorted_items(dep, window, stats) for dep in node.deps]
        try:
            yield from heapq.merge(*streams, key=_by_index)
        finally:
            for stream in streams:
                stream.close()
        return
    else:
        inner = _sorted_items(node.deps[0], window, stats)
        try:
            if node.op in (FLAT_MAP, UNBATCH):
                yield from _extended_in_order(node, inner, stats)
            else:  # outputs keep their input's index (batch: the smallest): still sorted
                yield from _apply(node, inner, stats)
        finally:
            inner.close()
        return
    try:
        yield from upstream
    finally:
        upstream.close()


def _extended_in_order(stage: Stage[Any], items: Iterator[Item], stats: RunStats) -> Iterator[Item]:
    """`flat_map` or `unbatch` over sorted `items`, sorted: the outputs of inputs that share
    an index (a `concat` of two branches) are sorted together."""
    current: List[Any] = [None]

    def noting(items: Iterator[Item]) -> Iterator[Item]:
        for item in items:
            current[0] = item[0]
            yield item

    group: List[Item] = []
    group_of = None
    for item in _apply(stage, noting(items), stats):
        if current[0] != group_of:
            group.sort(key=_by_index)
            yield from group
            group, group_of = [], current[0]
        group.append(item)
    group.sort(key=_by_index)
    yield from group


def _apply(stage: Stage[Any], items: Iterator[Item], stats: RunStats) -> Iterator[Item]:
    """Run `stage` over `items` as its single worker (index 0), on_start and on_done
    included, counting into its row of `stats`."""
    row = stats.stage(stage)
    row.workers = 1  # whatever `workers` says, a sync stage runs one
    c = row.counters()
    c.start()
    try:
        yield from _counted(c, _apply_op(stage, _taking(c, items), c))
    finally:
        c.end()


runs_stage_inline(_apply.__code__)  # a stage its own f iterates is refused


def _taking(c: Counters, items: Iterator[Item]) -> Iterator[Item]:
    """`items`, counting them and the time spent waiting for them."""
    clock = time.perf_counter
    items = iter(items)
    while True:
        t = clock()
        try:
            item = next(items)
        except StopIteration:
            c.waiting += clock() - t
            return
        c.waiting += clock() - t
        c.items_in += 1
        yield item


def _counted(c: Counters, outputs: Iterator[Item]) -> Iterator[Item]:
    """`outputs`, counting them and the time the consumer keeps each (blocked)."""
    clock = time.perf_counter
    for item in outputs:
        c.items_out += 1
        t = clock()
        yield item
        c.blocked += clock() - t


def _apply_op(stage: Stage[Any], items: Iterator[Item], c: Counters) -> Iterator[Item]:
    op = stage.op
    if op is BATCH:
        yield from op.stream(stage.options["size"], items, False)
        return
    if not op.per_item:
        yield from (items if op is ORDERED else op.stream(None, items, False))
        return
    worker = InlineWorker(stage, c)
    try:
        worker.start()
        yield from worker.apply(items)
        worker.done(WorkerCount(0))
    finally:
        worker.close()


class SyncExecution:
    """A sync run: generators in the consumer's thread, one item per batch."""

    def __init__(self, stage: Stage[Any], stats: RunStats) -> None:
        self._items = _items(stage, stats)

    def __iter__(self) -> Iterator[List[Item]]:
        for item in self._items:
            yield [item]

    def cancel(self) -> None:
        pass

    def close(self) -> None:
        self._items.close()


class SyncRunner(StageRunner):
    """A sync stage inside another backend's run: its one worker, in a thread of its own."""

    def __init__(
        self,
        stage: Stage[Any],
        inq: IterableQueue[Item],
        out: IterableQueue[Item],
        execution: Execution,
    ) -> None:
        super().__init__(stage, inq, out, execution)
        out.add_producers(1)

    def start(self) -> None:
        self.spawn(self._main)

    def _main(self) -> None:
        stage, inq, out = self.stage, self.input, self.output
        self.stats.workers = 1
        c = self.stats.counters()
        c.start()
        clock = time.perf_counter
        worker = InlineWorker(stage, c)
        try:
            worker.start()
            while True:
                t0 = clock()
                taken = take(inq, out, MAX_BATCH)
                t = clock()
                c.waiting += t - t0
                if taken is None:
                    break
                outputs = list(worker.apply(taken[0]))
                t1 = clock()
                deliver(inq, out, outputs, taken)
                c.blocked += clock() - t1
                c.items_in += len(taken[0])
                c.items_out += len(outputs)
            worker.done(WorkerCount(0))
            out.done()
        except Cancelled:
            pass
        except BaseException as e:
            self.execution.fail(e)
        finally:
            c.end()
            worker.close()


class SyncBackend(ModuleBackend):
    name = "sync"
    reports_progress = True

    def start(
        self, stage: Stage[Any], maxsize: int, stats: Optional[RunStats] = None
    ) -> SyncExecution:
        return SyncExecution(stage, stats if stats is not None else RunStats())

    def runner(
        self,
        stage: Stage[Any],
        inq: IterableQueue[Item],
        out: IterableQueue[Item],
        execution: Execution,
    ) -> SyncRunner:
        return SyncRunner(stage, inq, out, execution)


BACKEND = SyncBackend()
_fns = StageFunctions(BACKEND)

map = _fns.map
filter = _fns.filter
flat_map = _fns.flat_map
each = _fns.each
ordered = _fns.ordered
batch = _fns.batch
unbatch = _fns.unbatch
concat = _fns.concat
from_iterable = _fns.from_iterable
to_iterable = _fns.to_iterable
run = _fns.run

__all__ = [
    "map",
    "filter",
    "flat_map",
    "each",
    "ordered",
    "batch",
    "unbatch",
    "concat",
    "from_iterable",
    "to_iterable",
    "run",
    "Namespace",
    "Stage",
    "Partial",
    "Element",
    "WorkerInfo",
    "StageStatus",
]


def __dir__() -> List[str]:
    """The public API only (`__all__`)."""
    return list(__all__)
