"""One run of task stages on one event loop, and the ways to host it.

`TaskRun` turns a graph of stages into tasks on a loop: task stages are fused (their
queues are loop-side `IterableQueue`s), async iterables and in-memory sequences are read
on the loop, and everything else (sync iterables, stages of other backends) is read by a
`ThreadFeeder` that hands batches to the loop. It ends in one way, whatever the cause
(error, early exit, Ctrl-C): cancel every task, then await them all.

Hosting:
- on the caller's loop, for ``await stage`` and ``async for`` (`pypeln.task.consume`);
- on a `LoopThread` of its own, for a sync consumer (``list(stage)``, even called from a
  coroutine or a Jupyter cell) and for task stages inside another backend's pipeline:
  `SegmentRunner` is the `pypeln._core.execution.Runner` that all task stages of one
  `Execution` share.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import threading
import time
import weakref
from typing import Any, Callable, Coroutine, Dict, Iterator, List, Optional, Set

from .._core.element import Item
from .._core.errors import Cancelled
from .._core.execution import (
    GRACE_SECONDS,
    SOURCE_WAIT_SECONDS,
    Execution,
    working_for,
    works_for,
)
from .._core.ops import BATCH, FORWARD, ORDERED, UNBATCH, make_batch
from .._core.queue import IterableQueue as ThreadQueue
from .._core.sources import SEQUENCE_CHUNK, source_batches
from .._core.stage import Stage
from .._core.stats import Counters, RunStats, StageStats
from .._core.threadstop import raise_in_thread
from .queue import Channel, IterableQueue, Sink, ThreadSink, drain_channel, thread_queue_batches
from .supervisor import Supervisor
from .worker import cancelled_from_inside

#: Items read from a sync source on the loop between two yields to other tasks.
LOOP_READ_CHUNK = SEQUENCE_CHUNK

#: How far a feeder thread may read ahead of a stage whose input is unbounded: at most
#: this many items in the channel, and none taken from it while this many wait in the
#: stage's input. A thread reads a plain iterator much faster than the loop moves its
#: items through stages; without a bound it would fill memory on an endless source.
FEED_AHEAD = SEQUENCE_CHUNK

OpenBatches = Callable[[], Iterator[List[Item]]]


class LoopBackend:
    """Base of the backends whose stages a `TaskRun` runs as tasks on its loop (`TaskBackend`).

    A `TaskRun` fuses the stages of such a backend; stages of any other backend are run
    by their own backend and read by a feeder thread.
    """


class QueueSource:
    """Stands for a thread-side queue as the input of a stage (see `TaskBackend.runner`)."""

    def __init__(self, queue: ThreadQueue[Item]) -> None:
        self.queue = queue


class ThreadFeeder:
    """Reads batches in a thread of its own and hands them to the loop through a `Channel`."""

    def __init__(
        self,
        run: TaskRun,
        open_batches: OpenBatches,
        cap: int,
        on_cancel: Optional[Callable[[], None]] = None,
    ) -> None:
        self.run = run
        self.open_batches = open_batches
        self.channel = Channel(run.loop, cap)
        self.on_cancel = on_cancel
        self.thread = threading.Thread(target=self._main, name="pypeln-task-feeder", daemon=True)
        self.exited: Optional[asyncio.Future[None]] = None

    def start(self) -> None:
        self.exited = self.run.loop.create_future()
        self.thread.start()

    def cancel(self) -> None:
        """Any thread: make the feeder stop at its next hand-over."""
        self.channel.close()
        if self.on_cancel is not None:
            self.on_cancel()

    def kill(self) -> None:
        """Stop the thread if it is still stuck (in a source that does not return)."""
        exited = self.exited
        if exited is not None and not exited.done() and self.thread.is_alive():
            raise_in_thread(self.thread, Cancelled)

    def _main(self) -> None:
        run, channel = self.run, self.channel
        try:
            for batch in self.open_batches():
                channel.put(batch)
            channel.end()
        except Cancelled:
            pass
        except BaseException as e:
            run.fail_threadsafe(e)
        finally:
            exited = self.exited
            if exited is not None:
                try:
                    run.loop.call_soon_threadsafe(_set_done, exited)
                except RuntimeError:  # the loop is closed
                    pass


def _set_done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class ForeignRun:
    """A stage of another backend run by its own backend, read by a feeder thread; its
    stages count into the same `stats` as the task stages around them."""

    def __init__(self, stage: Stage[Any], stats: RunStats) -> None:
        self.stage = stage
        self.stats = stats
        self._lock = threading.Lock()
        self._execution: Any = None
        self._error: Optional[BaseException] = None
        self._cancelled = False

    def open(self) -> None:
        """Start the stage's run, if not yet: `TaskRun.start` does it before it starts any
        feeder thread, so that a process stage forks while no thread of the run exists.
        An error surfaces in `batches`, in the feeder's thread."""
        with self._lock:
            if self._cancelled or self._execution is not None or self._error is not None:
                return
            try:
                self._execution = self.stage.backend.start(
                    self.stage, self.stage.maxsize, self.stats
                )
            except BaseException as e:  # (a Ctrl-C too: the feeder fails the run with it)
                self._error = e

    def batches(self) -> Iterator[List[Item]]:
        self.open()
        with self._lock:
            execution, error = self._execution, self._error
        if error is not None:
            raise error
        if execution is None:  # cancelled before it started
            return
        try:
            yield from execution
        finally:
            execution.cancel()
            execution.close()

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            execution = self._execution
        if execution is not None:
            execution.cancel()


class TaskRun:
    """The tasks and feeder threads of one run on one event loop.

    Build it with `connect` (from any thread), then `start` it on the loop. `fail` records
    the first error and cancels everything; `aclose` cancels what is left and awaits it.
    Every stage it runs counts into `stats`: the execution's, or `stats` (a new
    `RunStats` if None) for a run of its own.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_error: Callable[[BaseException], None],
        execution: Optional[Execution] = None,
        stats: Optional[RunStats] = None,
    ) -> None:
        self.loop = loop
        self.on_error = on_error
        #: with an `Execution`, stages of other backends join it rather than run apart
        self.execution = execution
        self.stats: RunStats = (
            execution.stats if execution is not None else stats if stats is not None else RunStats()
        )
        #: stages that stand for another in the statistics (see `TaskBackend.runner`)
        self._stands_for: Dict[int, Stage[Any]] = {}
        self.error: Optional[BaseException] = None
        self.cancelled = False
        self.tasks: Set[asyncio.Task[Any]] = set()
        self.feeders: List[ThreadFeeder] = []
        self._starters: List[Callable[[], Coroutine[Any, Any, None]]] = []
        #: stages of other backends run apart, started by `start` (see `ForeignRun.open`)
        self._foreign: List[ForeignRun] = []
        #: the stages whose workers run on this run's loop
        self.stages: List[Stage[Any]] = []
        self._started = 0

    # -- building (any thread, before `start`) --------------------------------------------

    def stand_for(self, copy: Stage[Any], stage: Stage[Any]) -> None:
        """`copy` runs `stage`'s work: it counts into `stage`'s row."""
        self._stands_for[id(copy)] = stage

    def row(self, stage: Stage[Any], input: Any) -> StageStats:
        """The statistics row of `stage`, whose input queue is `input`."""
        row = self.stats.stage(self._stands_for.get(id(stage), stage))
        row.queue = input
        return row

    def connect(self, node: Any, out: Sink, use_thread: bool = True) -> None:
        """Make `node` (a Stage of any backend, or an iterable) produce into `out`."""
        cap = getattr(out, "maxsize", 0)
        if isinstance(node, Stage) and isinstance(node.backend, LoopBackend):
            self._connect_stage(node, out)
        elif isinstance(node, Stage):
            self._connect_foreign(node, out)
        elif isinstance(node, QueueSource):
            self._feed(lambda: thread_queue_batches(node.queue), out, cap)
        elif hasattr(node, "__aiter__") and not hasattr(node, "__iter__"):
            out.add_producers(1)
            self._starters.append(lambda: _read_async(node, out))
        elif isinstance(node, (list, tuple, range)) or not use_thread:
            out.add_producers(1)
            self._starters.append(lambda: _read_on_loop(node, out))
        else:
            self._feed(lambda: source_batches(node), out, cap)
            inside = self.execution.inside if self.execution is not None else working_for()
            works_for(self.feeders[-1].thread, inside + (node,))

    def _connect_stage(self, node: Stage[Any], out: Sink) -> None:
        if self.execution is not None and node.op in (ORDERED, BATCH, UNBATCH):
            self._connect_foreign(node, out)  # the run's own runner for these
            return
        use_thread = bool(node.options.get("use_thread", True))
        if node.op is FORWARD and not node.maxsize:
            for dep in node.deps:
                self.connect(dep, out, use_thread)
            return
        inq: IterableQueue[Item] = IterableQueue(node.maxsize)
        for dep in node.deps:
            self.connect(dep, inq, use_thread)
        if not node.op.per_item:  # ordered, batch, unbatch, a bounded concat
            c = self.row(node, inq).counters()
            out.add_producers(1)
            if node.op is ORDERED:
                self._starters.append(lambda: _emit_ordered(inq, out, c))
            elif node.op is BATCH:
                self._starters.append(lambda: _batch(node, inq, out, c))
            elif node.op is UNBATCH:
                self._starters.append(lambda: _relay(inq, out, c, UNBATCH.batch))
            else:
                self._starters.append(lambda: _relay(inq, out, c))
        else:
            source = node.deps[0] if len(node.deps) == 1 else None
            if isinstance(source, QueueSource) and source.queue.tracked:
                assert isinstance(out, ThreadSink)
                out.report = source.queue.finish  # the stage alone, upstream of `ordered`
            self._starters.append(Supervisor(self, node, inq, out).main)
            self.stages.append(node)

    def _connect_foreign(self, node: Stage[Any], out: Sink) -> None:
        cap = getattr(out, "maxsize", 0)
        if self.execution is not None:
            queue = self.execution.queue(cap, consumers=1)
            self.execution.connect(node, queue)
            self._feed(lambda: thread_queue_batches(queue), out, cap)
        else:
            foreign = ForeignRun(node, self.stats)
            self._feed(foreign.batches, out, cap, foreign.cancel)
            self._foreign.append(foreign)

    def _feed(
        self,
        open_batches: OpenBatches,
        out: Sink,
        cap: int,
        on_cancel: Optional[Callable[[], None]] = None,
    ) -> None:
        ahead = FEED_AHEAD if isinstance(out, IterableQueue) and not out.maxsize else 0
        feeder = ThreadFeeder(self, open_batches, cap or ahead, on_cancel)
        self.feeders.append(feeder)
        out.add_producers(1)
        self._starters.append(lambda: drain_channel(feeder.channel, out, ahead))

    # -- running (on the loop) -----------------------------------------------------------

    def start(self) -> None:
        """Start what `connect` added since the last start (call on the loop's thread)."""
        starters, self._starters = self._starters, []
        foreign, self._foreign = self._foreign, []
        for run in foreign:
            if not self.cancelled:
                run.open()
        for make in starters:
            self.spawn(make())
        feeders, self._started = self.feeders[self._started :], len(self.feeders)
        for feeder in feeders:
            if self.cancelled:
                break
            feeder.start()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        if self.cancelled:
            task.cancel()
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            if not self.cancelled:
                self.fail(cancelled_from_inside("pl.task", None))
            return
        exc = task.exception()
        if exc is not None:
            self.fail(exc)

    def fail(self, exc: BaseException) -> None:
        """Record the first error and cancel the run (on the loop's thread)."""
        if self.error is not None or self.cancelled:
            return
        self.error = exc
        self.on_error(exc)
        self.cancel()

    def fail_threadsafe(self, exc: BaseException) -> None:
        try:
            self.loop.call_soon_threadsafe(self.fail, exc)
        except RuntimeError:  # the loop is closed: the run is over
            pass

    def cancel(self) -> None:
        """Cancel every task and feeder (on the loop's thread); idempotent."""
        if self.cancelled:
            return
        self.cancelled = True
        for task in list(self.tasks):
            task.cancel()
        for feeder in self.feeders:
            feeder.cancel()

    async def aclose(self, grace: float = GRACE_SECONDS) -> None:
        """Cancel what is left and await every task. A feeder thread reading a source gets
        `SOURCE_WAIT_SECONDS` (at most `grace`): one still reading is stopped, not waited
        for (a source blocked in C returns first; its closed channel takes nothing more);
        one running another backend's stage gets `grace` to stop that run."""
        self.cancel()
        # Only the pending ones: gathering done tasks may not suspend (Python 3.12+), and
        # their done callbacks must get to run.
        pending = [task for task in self.tasks if not task.done()]
        while pending:
            await asyncio.gather(*pending, return_exceptions=True)
            pending = [task for task in self.tasks if not task.done()]
        deadline = self.loop.time() + grace
        exits = [f.exited for f in self.feeders if f.exited is not None and not f.exited.done()]
        if exits:
            await asyncio.wait(exits, timeout=min(grace, SOURCE_WAIT_SECONDS))
        # A feeder running another backend's stage stops it (its workers, its processes)
        # once cancelled: that gets the whole grace period.
        foreign = [
            f.exited
            for f in self.feeders
            if f.on_cancel is not None and f.exited is not None and not f.exited.done()
        ]
        if foreign:
            await asyncio.wait(foreign, timeout=max(0.0, deadline - self.loop.time()))
        for feeder in self.feeders:
            feeder.kill()


async def _read_async(iterable: Any, out: Sink) -> None:
    i = 0
    full, put = out.full, out.put_nowait
    async for x in iterable:
        if full():
            await out.wait_room()
        put(((i,), x))
        i += 1
    out.done()


async def _read_on_loop(iterable: Any, out: Sink) -> None:
    """A sync source read on the loop, yielding to other tasks between chunks."""
    if isinstance(iterable, (list, tuple, range)):
        for batch in source_batches(iterable):
            await out.put_many(batch)
            await asyncio.sleep(0)
    else:
        chunk: List[Item] = []
        for i, x in enumerate(iterable):
            chunk.append(((i,), x))
            if len(chunk) >= LOOP_READ_CHUNK:
                await out.put_many(chunk)
                chunk = []
                await asyncio.sleep(0)
        if chunk:
            await out.put_many(chunk)
    out.done()


async def _take(
    inq: IterableQueue[Item], limit: int, c: Counters, flush: Optional[float] = None
) -> Optional[List[Item]]:
    """Up to `limit` items of `inq` (None at its end; [] after `flush` idle seconds),
    counted, the wait included."""
    t = time.perf_counter()
    try:
        if flush is None:
            batch = await inq.get_batch(limit)
        else:
            try:
                batch = await asyncio.wait_for(inq.get_batch(limit), flush)
            except asyncio.TimeoutError:
                batch = []
    finally:
        c.waiting += time.perf_counter() - t
    if batch:
        c.items_in += len(batch)
    return batch


async def _give(out: Sink, items: List[Item], c: Counters) -> None:
    """Put `items` into `out`, counted, the wait for room included."""
    t = time.perf_counter()
    await out.put_many(items)
    c.blocked += time.perf_counter() - t
    c.items_out += len(items)


async def _emit_ordered(inq: IterableQueue[Item], out: Sink, c: Counters) -> None:
    c.start()
    try:
        items: List[Item] = []
        while True:
            batch = await _take(inq, 1 << 30, c)
            if batch is None:
                break
            items.extend(batch)
        items.sort(key=lambda item: item[0])
        for start in range(0, len(items), LOOP_READ_CHUNK):
            await _give(out, items[start : start + LOOP_READ_CHUNK], c)
        out.done()
    finally:
        c.end()


async def _batch(stage: Stage[Any], inq: IterableQueue[Item], out: Sink, c: Counters) -> None:
    """`batch` on the loop: lists of up to `size` items; a partial one after `flush` idle
    seconds, or at the end."""
    size: int = stage.options["size"]
    flush: Optional[float] = stage.options.get("flush") or None
    held: List[Item] = []
    c.start()
    try:
        while True:
            got = await _take(inq, size - len(held), c, flush)
            if got is None:
                break
            held.extend(got)
            if held and (len(held) >= size or not got):
                await _give(out, [make_batch(held)], c)
                held = []
        if held:
            await _give(out, [make_batch(held)], c)
        out.done()
    finally:
        c.end()


async def _relay(
    inq: IterableQueue[Item],
    out: Sink,
    c: Counters,
    items: Optional[Callable[[List[Item]], List[Item]]] = None,
) -> None:
    """Pass on what `inq` holds: each batch taken as it is, or what `items` makes of it
    (unbatch: the items of its lists)."""
    c.start()
    try:
        while True:
            batch = await _take(inq, LOOP_READ_CHUNK, c)
            if batch is None:
                break
            await _give(out, batch if items is None else items(batch), c)
        out.done()
    finally:
        c.end()


class LoopThread:
    """An event loop running in a helper thread, for runs that a sync caller consumes."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, name="pypeln-task-loop", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self, deadline: float) -> bool:
        """Stop the loop and wait, until `deadline`, for its thread to end."""
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:  # already closed
            pass
        if self.thread is not threading.current_thread():
            self.thread.join(max(0.0, deadline - time.monotonic()))
        return not self.thread.is_alive()


class SegmentRunner:
    """The task stages of one `Execution`: one `TaskRun` on one `LoopThread`.

    Registered once per execution (in ``execution.shared``) as its runner; every task
    stage the execution meets is wired into the same run.
    """

    def __init__(self, execution: Execution) -> None:
        self.execution = execution
        self.host = LoopThread()
        self.loop = self.host.loop
        self.run = TaskRun(self.loop, execution.fail, execution)
        _live_runners.add(self)

    @classmethod
    def of(cls, execution: Execution) -> SegmentRunner:
        runner = execution.shared.get("task")
        if runner is None:
            runner = execution.shared["task"] = cls(execution)
            execution.add_runner(runner)
        assert isinstance(runner, SegmentRunner)
        return runner

    def connect(self, node: Any, out: ThreadQueue[Item]) -> None:
        self.run.connect(node, ThreadSink(self.loop, out))
        works_for(self.host.thread, self.execution.inside)  # (its tasks: `task_works_for`)

    def start(self) -> None:
        self.host.call(self.run.start)

    def cancel(self) -> None:
        for feeder in self.run.feeders:
            feeder.cancel()
        try:
            self.host.call(self.run.cancel)
        except RuntimeError:  # the loop is closed
            pass

    def join(self, deadline: float) -> bool:
        closed = True
        closing = self.run.aclose(max(0.0, deadline - time.monotonic()))
        try:
            done = self.host.submit(closing)
        except RuntimeError:  # the loop is closed
            closing.close()
            return self.host.stop(deadline)
        try:
            done.result(max(0.0, deadline - time.monotonic()))
        except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
            closed = False
        return self.host.stop(deadline) and closed

    def kill(self) -> None:
        for feeder in self.run.feeders:
            feeder.kill()
        self.host.stop(time.monotonic() + GRACE_SECONDS)


_live_runners: weakref.WeakSet[SegmentRunner] = weakref.WeakSet()


@atexit.register
def _close_abandoned_runs() -> None:
    """At exit, end the runs whose consumer never finished (an iterator left open)."""
    deadline = time.monotonic() + GRACE_SECONDS
    for runner in list(_live_runners):
        if runner.host.thread.is_alive():
            runner.execution.cancel()
            runner.join(deadline)
