"""One run of a pipeline: queues on the consumer's side, a runner per stage, one way to end.

How items flow, for ``src | thread.map(f) | process.map(g) | task.map(h) | ordered``::

    src --FeederRunner------> [queue A] --thread Supervisor: Workers take, f, put--->
        (a thread; a list,                 (threads of this process)
         tuple or range is
         sliced by A's takers)
    [queue B] --process Supervisor: feeder threads send batches of values through each
                worker's pipe; a collector thread puts the results back with their indices
    [queue C] --task stage on this run's event loop (a helper thread)-->
    [queue D] --ordered: the consumer itself sorts what D's watermark covers--> for x in ...

`Execution(stage, maxsize)` connects the stage graph: each stage gets an input
`IterableQueue` (bounded by its `maxsize`) and a runner from its backend that moves
items from that queue to the next stage's queue, wherever `f` runs (threads, processes,
an event loop). Stages that only move items (`ordered`, `batch`, `unbatch`, a bounded
`concat` or `from_iterable`) get a `MoveRunner` whatever their backend; unbounded
`concat` and `from_iterable` are fused away. Upstream of a streaming `ordered` the queues
are tracked: every runner reports the takes it has finished, so watermarks flow down to
`ordered` (`pypeln._core.progress`), and its window holds the sources back.

Ending: every producer of a queue calls ``done()``; the run is over when the output
queue ends. Errors, early exit and Ctrl-C all take the same path: `fail`/`cancel`
closes every queue (waking every waiter with `Cancelled`), then `close` joins the
runners and stops whatever did not end within a second.
"""

from __future__ import annotations

import sys
import threading
import time
from contextvars import ContextVar
from types import CodeType, FrameType
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Set, Tuple

from .batching import MAX_BATCH
from .columns import as_rows
from .contracts import Runner
from .docs import see
from .element import Item
from .errors import Cancelled
from .ops import FORWARD, ORDERED
from .progress import ALL_DONE, Window, admit
from .queue import IterableQueue
from .sources import SEQUENCES, source_batches
from .stage import Stage
from .stats import RunStats
from .threadstop import raise_in_thread

#: How long `close` waits for workers to end by themselves before stopping them.
GRACE_SECONDS = 1.0
#: How long `close` waits for a thread reading a source iterable.
SOURCE_WAIT_SECONDS = 0.05


class Region(NamedTuple):
    """Where a queue sits: upstream of a streaming `ordered` or not, and under which windows."""

    tracked: bool = False
    windows: Tuple[Window, ...] = ()


UNTRACKED = Region()


class Execution:
    """A running pipeline; iterate it for batches of output items."""

    def __init__(
        self, stage: Stage[Any], maxsize: int = 0, stats: Optional[RunStats] = None
    ) -> None:
        #: what every stage of the run counts (`pypeln._core.stats`)
        self.stats = stats if stats is not None else RunStats()
        self._lock = threading.Lock()
        self.error: Optional[BaseException] = None
        self.cancelled = False
        self.finished = False
        self._queues: List[IterableQueue[Item]] = []
        self._runners: List[Runner] = []
        self._windows: List[Window] = []
        #: per-backend state shared by the runners of this run (e.g. one event loop)
        self.shared: Dict[str, Any] = {}
        #: what the thread that starts the run works for, if it works for another run
        self.inside = working_for()
        self.output = self.queue(maxsize or stage.maxsize, consumers=1)
        #: an `ordered` last stage, run by the consumer itself: its input and its window
        self._ordering: Optional[Tuple[IterableQueue[Item], Optional[Window]]] = None
        self._top = stage
        try:
            if stage.op is ORDERED and not maxsize:
                self._ordering = self._connect_ordered(stage, UNTRACKED)
            else:
                self.connect(stage, self.output)
            for runner in self._runners:
                runner.start()
        except BaseException:
            # e.g. a function that cannot be sent to a worker process: stop what began
            self.cancel()
            self.close()
            raise

    # -- building ------------------------------------------------------------------------

    def queue(
        self, maxsize: int, consumers: int, region: Region = UNTRACKED
    ) -> IterableQueue[Item]:
        """A queue of this run (closed when it is cancelled)."""
        q: IterableQueue[Item] = IterableQueue(maxsize, consumers, *region)
        self._queues.append(q)
        return q

    def add_runner(self, runner: Runner) -> None:
        self._runners.append(runner)

    def connect(self, node: Any, out: IterableQueue[Item], region: Region = UNTRACKED) -> None:
        """Make `node` (a Stage of any backend, or an iterable) produce into `out`.

        `region` says whether `out` is upstream of a streaming `ordered` (then every
        producer reports watermarks) and which windows bound the sources.
        """
        if isinstance(node, SEQUENCES):
            out.add_sequence(node)  # its consumers make its items on demand: no feeder thread
            return
        if not isinstance(node, Stage):
            out.add_producers(1)
            self.add_runner(FeederRunner(self, node, out, region.windows))
            return
        if not node.op.per_item and node.op is not FORWARD:
            self._connect_moving(node, out, region)
            return
        wire = getattr(node.backend, "connect", None)
        if wire is not None and not region.tracked:
            # The backend wires the stage (and the stages of its own it depends on) itself,
            # e.g. to run a whole segment of `task` stages on one event loop.
            wire(node, out, self)
            return
        if node.op is FORWARD and not node.maxsize and node.options.get("use_thread", True):
            for dep in node.deps:
                self.connect(dep, out, region)
            return
        read = getattr(node.backend, "source_runner", None)
        if node.op is FORWARD and read is not None and not node.options.get("use_thread", True):
            # The backend reads plain iterables itself (`process`: in a process of their own).
            target = self._input(node, region) if node.maxsize else out
            for dep in node.deps:
                if isinstance(dep, Stage):
                    self.connect(dep, target, region)
                else:
                    self.add_runner(read(node, dep, target, self, region.windows))
            if target is not out:
                self._link(target, out)
                self.add_runner(MoveRunner(node, target, out, self))
            return
        inq = self._input(node, region)
        for dep in node.deps:
            self.connect(dep, inq, region)
        self._link(inq, out)
        if node.op is FORWARD:
            self.add_runner(MoveRunner(node, inq, out, self))
        else:
            self.add_runner(node.backend.runner(node, inq, out, self))  # type: ignore[attr-defined]

    def _connect_moving(self, node: Stage[Any], out: IterableQueue[Item], region: Region) -> None:
        """`ordered`, `batch`, `unbatch` (of any backend): a `MoveRunner` on this run's queues."""
        if node.op is ORDERED:
            inq, window = self._connect_ordered(node, region)
            self.add_runner(MoveRunner(node, inq, out, self, window))
            return
        inq = self._input(node, region)
        for dep in node.deps:
            self.connect(dep, inq, region)
        self._link(inq, out)
        self.add_runner(MoveRunner(node, inq, out, self))

    def _connect_ordered(
        self, node: Stage[Any], region: Region
    ) -> Tuple[IterableQueue[Item], Optional[Window]]:
        """The input of an `ordered` stage, its upstream connected, and its window (None
        when something upstream reports no watermarks: it then waits for the end)."""
        window: Optional[Window] = None
        if streams(node):
            window = Window(node.options.get("window", 0))
            self._windows.append(window)
            region = Region(True, region.windows + (window,))
        else:
            region = UNTRACKED
        inq = self._input(node, region)
        for dep in node.deps:
            self.connect(dep, inq, region)
        return inq, window

    def _input(self, node: Stage[Any], region: Region) -> IterableQueue[Item]:
        return self.queue(node.maxsize, node.workers if node.op.per_item else 1, region)

    @staticmethod
    def _link(inq: IterableQueue[Item], out: IterableQueue[Item]) -> None:
        """The stage between `inq` and `out` passes on the watermarks it covers."""
        if inq.tracked:
            slot = out.progress_slot()
            inq.on_cover = lambda watermark: out.advance(slot, watermark)

    # -- ending --------------------------------------------------------------------------

    def fail(self, exc: BaseException) -> None:
        """Record the first error and cancel the run; later errors are consequences."""
        with self._lock:
            if self.error is not None or self.cancelled:
                return
            self.error = exc
        self.cancel()

    def cancel(self) -> None:
        with self._lock:
            if self.cancelled:
                return
            self.cancelled = True
        for q in self._queues:
            q.close()
        for window in self._windows:
            window.close()
        for runner in self._runners:
            runner.cancel()

    def close(self) -> None:
        """Join every runner; stop those still running after `GRACE_SECONDS`."""
        deadline = time.monotonic() + GRACE_SECONDS
        stragglers = [r for r in self._runners if not r.join(deadline)]
        for runner in stragglers:
            runner.kill()

    def __iter__(self) -> Iterator[List[Item]]:
        return self._ending(self._output_batches(False))

    def value_batches(self) -> Iterator[Sequence[Any]]:
        """Like iterating the run, the batches' values only (no items are made for them)."""
        return self._ending(self._output_batches(True))

    def _ending(self, batches: Iterator[Any]) -> Iterator[Any]:
        try:
            yield from batches
        except Cancelled:
            pass
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        if not self.cancelled:
            self.finished = True

    def _output_batches(self, values: bool) -> Iterator[Any]:
        if self._ordering is not None:
            # The last stage is `ordered`: the consumer sorts, with no thread in between.
            row = self.stats.stage(self._top)
            row.queue = self._ordering[0]
            c = row.counters()
            for ready, n, _ in ordered_items(*self._ordering):
                c.items_in += n
                c.items_out += n
                for piece in pieces(ready, MAX_BATCH):
                    if type(piece) is tuple:
                        yield piece[1] if values else as_rows(*piece)
                    else:
                        yield [x for _, x in piece] if values else piece
            return
        get: Callable[[int], Optional[Sequence[Any]]]
        get = self.output.get_values if values else self.output.get_batch
        # A bounded output is read in small takes: room is only freed for items the
        # consumer is about to use, so a paused consumer holds the pipeline back exactly.
        limit = max(1, self.output.maxsize // 4) if self.output.maxsize else 1 << 20
        while True:
            got = get(limit)
            if got is None:
                return
            yield got


class ModuleBackend:
    """Base of every backend: the one instance is its module's ``BACKEND``.

    Copies of a stage (pickle, `copy.copy`, `copy.deepcopy`) keep that very instance, so
    that a copied stage is still taken for one of its backend's own.
    """

    def __reduce__(self) -> str:
        return "BACKEND"  # the module-level name, looked up in the class's module


class ExecutionBackend(ModuleBackend):
    """Base of the backends whose runs are `Execution`s: a subclass adds its ``runner``."""

    name = ""
    #: its runners report watermarks in tracked queues (`ordered` after it can stream)
    reports_progress = True

    def start(self, stage: Stage[Any], maxsize: int, stats: Optional[RunStats] = None) -> Execution:
        """Run `stage` (and everything it depends on) for a consumer in this thread."""
        return Execution(stage, maxsize, stats)


class ThreadRunner:
    """Base for runners whose work happens in threads of this process."""

    #: the stage (or source iterable) its threads work for
    node: Any = None

    def __init__(self, execution: Execution, name: str) -> None:
        self.execution = execution
        self.name = name
        self.threads: List[threading.Thread] = []

    def spawn(self, target: Any, *args: Any) -> threading.Thread:
        t = threading.Thread(target=target, args=args, name=self.name, daemon=True)
        works_for(t, self.execution.inside + (() if self.node is None else (self.node,)))
        self.threads.append(t)
        t.start()
        return t

    def cancel(self) -> None:
        pass

    def join(self, deadline: float) -> bool:
        for t in self.joinable():
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self.joinable())

    def joinable(self) -> List[threading.Thread]:
        """Its threads that the current thread can wait for: started (a Ctrl-C may come
        between creating a thread and starting it), and not the current thread itself."""
        current = threading.current_thread()
        return [t for t in self.threads if t is not current and t.ident is not None]

    def kill(self) -> None:
        for t in self.threads:
            raise_in_thread(t, Cancelled)


class StageRunner(ThreadRunner):
    """Base for the runners of one stage between two queues of this process (its own
    threads take from `input` and put into `output`)."""

    def __init__(
        self,
        stage: Stage[Any],
        input: IterableQueue[Item],
        output: IterableQueue[Item],
        execution: Execution,
    ) -> None:
        super().__init__(execution, f"pypeln-{stage.where}")
        self.stage = self.node = stage
        self.input = input
        self.output = output
        self.stats = execution.stats.stage(stage)
        self.stats.queue = input


class FeederRunner(ThreadRunner):
    """Reads a plain iterable (or async iterable) into a queue, in a thread of its own.

    Upstream of a streaming `ordered`, it reads no position its windows do not admit yet,
    and reports a watermark with each item.
    """

    def __init__(
        self,
        execution: Execution,
        iterable: Any,
        out: IterableQueue[Item],
        windows: Tuple[Window, ...] = (),
    ) -> None:
        super().__init__(execution, "pypeln-source")
        self.iterable = self.node = iterable
        self.out = out
        self.windows = windows
        self.slot = out.progress_slot() if out.tracked else -1

    def start(self) -> None:
        self.spawn(self._main)

    def join(self, deadline: float) -> bool:
        """Its thread ends at once unless the iterable blocks (a generator waiting on the
        network): then it is stopped, without being waited for (a call into C returns
        first; the closed queue takes nothing more from it)."""
        if not super().join(min(deadline, time.monotonic() + SOURCE_WAIT_SECONDS)):
            self.kill()
        return True

    def _main(self) -> None:
        out = self.out
        try:
            if not hasattr(self.iterable, "__iter__") and hasattr(self.iterable, "__aiter__"):
                import asyncio  # here: most runs never read an async iterable

                asyncio.run(self._drain_async())
            elif self.slot >= 0 or self.windows:
                for i, x in enumerate(self.iterable):
                    self._put_tracked(i, x)
            else:
                for batch in source_batches(self.iterable):
                    if len(batch) == 1:
                        out.put(batch[0])
                    else:
                        out.put_batch(batch)
            if self.slot >= 0:
                out.advance(self.slot, ALL_DONE)
            out.done()
        except Cancelled:
            pass
        except BaseException as e:
            self.execution.fail(e)

    def _put_tracked(self, i: int, x: Any) -> None:
        if self.windows:
            admit(self.windows, i)
        self.out.put(((i,), x))
        if self.slot >= 0:
            self.out.advance(self.slot, i + 1)

    async def _drain_async(self) -> None:
        i = 0
        tracked = self.slot >= 0 or bool(self.windows)
        async for x in self.iterable:
            if tracked:
                self._put_tracked(i, x)
            else:
                self.out.put(((i,), x))
            i += 1


#: The attribute of a thread that works for a run: what it works for (`works_for`).
_WORKS_FOR = "_pypeln_works_for"


def works_for(thread: threading.Thread, nodes: Tuple[Any, ...]) -> None:
    """Mark `thread` as working for `nodes` (stages, source iterables), those of the runs it
    is nested in first: a run it starts must not contain any of them (`check_not_inside`)."""
    setattr(thread, _WORKS_FOR, nodes)


#: What the current asyncio task works for: the workers of every task stage of a run share
#: one thread (their event loop's), so each worker task says which stage it is (`task_works_for`).
_TASK_WORKS_FOR: ContextVar[Tuple[Any, ...]] = ContextVar("pypeln_works_for", default=())


def task_works_for(nodes: Tuple[Any, ...]) -> None:
    """Mark the current asyncio task (and the tasks it creates) as working for `nodes`."""
    _TASK_WORKS_FOR.set(nodes)


def working_for() -> Tuple[Any, ...]:
    """What the current thread (and asyncio task) works for (`works_for`, `task_works_for`);
    () for the consumer's own threads and tasks."""
    nodes: Tuple[Any, ...] = getattr(threading.current_thread(), _WORKS_FOR, ())
    return nodes + _TASK_WORKS_FOR.get()


#: Code of the generators that run a stage's worker in the consumer's thread (`sync`'s),
#: each holding that stage in its local ``stage``: while one is on the call stack, the
#: thread works for that stage.
_INLINE_CODES: Set[CodeType] = set()


def runs_stage_inline(code: CodeType) -> None:
    """Register the code of a generator that runs its local ``stage`` in the calling thread."""
    _INLINE_CODES.add(code)


def check_not_inside(stage: Stage[Any]) -> None:
    """Refuse to run `stage` from a worker (or source) of a run it belongs to: each run
    would start another, without end."""
    inside = working_for()
    frame: Optional[FrameType] = sys._getframe(1)
    while frame is not None:  # (only running frames: suspended generators are not here)
        if frame.f_code in _INLINE_CODES:
            inside += (frame.f_locals.get("stage"),)
        frame = frame.f_back
    if not inside:
        return
    ids = {id(node) for node in inside}
    pending: List[Any] = [stage]
    while pending:
        node = pending.pop()
        if id(node) in ids:
            raise RuntimeError(reused_while_running(stage, node))
        if isinstance(node, Stage):
            pending.extend(node.deps)


def reused_while_running(stage: Stage[Any], node: Any) -> str:
    if node is stage:
        where = "by one of its own workers (e.g. in its f)"
    elif isinstance(node, Stage):
        where = f"by a worker of {node!r}, a stage it is built on"
    else:
        where = f"by its own source (a {type(node).__name__})"
    return (
        f"{stage.where}: {stage!r} was iterated {where} while it was running: each run "
        "would start another one, without end. A pipeline cannot be consumed from inside "
        "itself: pass the values f needs as items (or through on_start), or build a "
        f"separate stage for them (a stage is only a description). {see('concepts/stages')}"
    )


def streams(ordered: Stage[Any]) -> bool:
    """Whether an `ordered` stage can stream: every stage upstream reports watermarks."""
    pending: List[Any] = list(ordered.deps)
    while pending:
        node = pending.pop()
        if isinstance(node, Stage):
            if not getattr(node.backend, "reports_progress", False):
                return False
            pending.extend(node.deps)
    return True


from .moving import MoveRunner, ordered_items, pieces  # noqa: E402  (it builds on ThreadRunner, above)
