"""What a backend provides to the core: typed, documented contracts.

A backend is a package beside `_core` (`thread`, `process`, `task`, `sync`). The core
knows it only through the hooks below; it never imports a backend.

How a run uses them::

    for x in stage:                 # the consumer iterates the last stage
        stage.backend.start(stage, maxsize)  -> a Run: an iterator of batches
            Execution(stage, maxsize)        (thread, process, task: the core's run)
                for each stage of the graph, from the output upwards:
                    backend.connect(stage, output, execution)   if the backend has it
                    else: an input queue, its upstream connected to it, then
                          backend.runner(stage, input, output, execution) -> a Runner
                for a plain iterable under ``from_iterable(..., use_thread=False)``:
                    backend.source_runner(stage, iterable, output, execution)
                runner.start() for every runner
            ...batches of (index, value) items...
            run.cancel(); run.close()  -> runner.cancel(), runner.join(deadline), runner.kill()

A backend with workers (`thread`, `process`, `task`) is built from three parts, each
exported by its module: a `Worker` runs the stage's function, a `Supervisor` runs one
stage's workers, and an `IterableQueue` carries items between stages. Their shapes differ
with where the work runs (threads block, processes are reached through pipes, tasks
await), so the protocols here hold only what the three really share.

Every method is declared positional-only (``/``): the core calls the hooks positionally,
so an implementation may name its parameters as it likes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, List, Optional, Tuple, TypeVar

from typing_extensions import Protocol

from .element import Item

if TYPE_CHECKING:
    from .execution import Execution
    from .progress import Window
    from .queue import IterableQueue as ThreadQueue
    from .stage import Stage
    from .stats import RunStats

T = TypeVar("T")


# -- running a pipeline --------------------------------------------------------------------


class Run(Protocol):
    """A running pipeline, as its consumer sees it: an iterator of batches of items.

    `Startable.start` returns one; the core's `Execution` is the run of the `thread`,
    `process` and `task` backends, `sync` has its own. The consumer (``iter(stage)``,
    `to_iterable`, `run`) iterates it, then always calls `cancel` and then `close`,
    whether the iteration ended, failed or was abandoned.
    """

    def __iter__(self) -> Iterator[List[Item]]:
        """The output, in batches of ``(index, value)`` items (each batch non-empty).

        Ends when the pipeline is done; raises the first error of the run, as raised.
        """

    def cancel(self) -> None:
        """Stop everything the run started. Idempotent; callable from any thread."""

    def close(self) -> None:
        """Release what the run holds (join its workers); called once, after `cancel`."""


class Runner(Protocol):
    """Runs one stage (or one segment of stages) of an `Execution`: its workers, their
    supervision and their ending.

    Built by `Backend.runner` (or `SourceReadingBackend.source_runner`) while the run is
    being connected. By the time it is built, its producers are registered on its output
    queue (``add_producers``), and no item moves before `start` (`process` starts its
    worker processes when built, before any thread of the run exists). Each producer
    calls the output's ``done()`` once it has put its last item. An error is reported with
    ``execution.fail(exc)``, never raised from a worker; a queue that raises
    `pypeln._core.errors.Cancelled` means the run is being torn down, and the worker ends
    quietly.
    """

    def start(self) -> None:
        """Start the workers; called once, after every stage of the run is connected."""

    def cancel(self) -> None:
        """The run is cancelled (its queues are already closed): stop taking items.

        Called from any thread, possibly before `start`; must not block.
        """

    def join(self, deadline: float, /) -> bool:
        """Wait, until `deadline` (a `time.monotonic` time), for every worker to end.

        Returns whether they all did; called once the run is over or cancelled.
        """

    def kill(self) -> None:
        """Stop, by force, the workers still running after `join` gave up."""


# -- backends ------------------------------------------------------------------------------


class Startable(Protocol):
    """The part of a `Backend` that a `Stage` and its consumer use."""

    @property
    def name(self) -> str:
        """The module's short name (``"thread"``); stages are named ``pl.<name>.<op>``."""

    def start(self, stage: Stage[Any], maxsize: int, stats: Optional[RunStats] = None, /) -> Run:
        """Run `stage`, whose backend this is, and everything it depends on.

        Called when a consumer iterates `stage`; `maxsize` bounds the items waiting for
        the consumer (0: the stage's own ``maxsize``). Stages of other backends and plain
        iterables may stand anywhere upstream: a backend whose runs are `Execution`s gets
        that for free, each stage being wired by its own backend's hooks. Its workers
        count into `stats` (`RunStats.stage(stage)` gives a stage's row).
        """


class Backend(Startable, Protocol):
    """What every backend provides: a name, `start`, and a `runner` per stage.

    Optional hooks, probed on the backend object (an attribute set to None counts as
    absent): `ConnectingBackend.connect` and `SourceReadingBackend.source_runner`.
    """

    @property
    def reports_progress(self) -> bool:
        """Whether its runners keep watermarks in tracked queues, so that an `ordered`
        downstream can stream (see `pypeln._core.progress`).

        A runner whose `input` is tracked (``input.tracked``) takes its batches with
        ``input.get_tracked`` (or `pypeln._core.queue.take`) and calls
        ``input.finish(first_take, n)`` once the outputs of those takes are in `output`,
        or are dropped; the core passes the watermarks it covers on to `output`.
        """

    def runner(
        self,
        stage: Stage[Any],
        input: ThreadQueue[Item],
        output: ThreadQueue[Item],
        execution: Execution,
        /,
    ) -> Runner:
        """The `Runner` of one of this backend's stages inside `execution`.

        `input` was made for the stage by the execution (bounded by ``stage.maxsize``,
        shared by ``stage.workers`` consumers for a per-item operator, else by one) and
        its upstream is already connected to it; the runner takes items from it until it
        ends and puts the results into `output`. Called for every per-item stage of the
        backend (map, filter, flat_map, each) that is not wired by
        `ConnectingBackend.connect`; the stages that only move items (``ordered``,
        ``batch``, ``unbatch``, ``concat`` and ``from_iterable``) are run by the core for
        every backend. A worker computes no more items than `output` has room for, plus
        one when it is full (`pypeln._core.queue.take`): that is what makes ``maxsize``
        an exact bound.
        """


class ConnectingBackend(Backend, Protocol):
    """A backend that wires its stages into an `Execution` itself (`task`: to run every
    task stage of a run as tasks on one event loop)."""

    def connect(
        self, stage: Stage[Any], output: ThreadQueue[Item], execution: Execution, /
    ) -> None:
        """Make `stage` produce into `output` in `execution`, its upstream included.

        Called, instead of any wiring of the core (no fusion, no input queue, no
        `Backend.runner`), for each of this backend's per-item stages that the execution
        meets while connecting the graph, except upstream of a streaming ``ordered``
        (where `Backend.runner` runs each stage alone between tracked queues). The
        backend registers its producers on `output`, connects upstream stages of other
        backends and plain iterables through ``execution.connect(node, queue)`` into
        queues from ``execution.queue(maxsize, consumers)``, and adds its runners with
        ``execution.add_runner``.
        """


class SourceReadingBackend(Backend, Protocol):
    """A backend that reads plain iterables itself when asked to
    (``from_iterable(..., use_thread=False)``; `process`: in a process of their own)."""

    def source_runner(
        self,
        stage: Stage[Any],
        iterable: Any,
        output: ThreadQueue[Item],
        execution: Execution,
        windows: Tuple[Window, ...],
        /,
    ) -> Runner:
        """The `Runner` that reads `iterable`, an input of `stage`, into `output`.

        Upstream of a streaming ``ordered`` it reads no position that `windows` do not
        admit yet (`pypeln._core.progress.admit`) and, if `output` is tracked, advances
        its own watermark slot as it reads.

        Called for the input of a ``from_iterable(..., use_thread=False)`` stage of this
        backend when it is not a Stage (lists, tuples and ranges included; a Stage input
        is connected as usual). With a ``maxsize``, `output` is a bounded queue of the
        stage's own, which `Backend.runner` then moves on. The runner gives each item the
        index ``(position,)`` in `iterable`. Without this hook, the stage is run by
        `Backend.runner`, its input read by a thread of the core.
        """


# -- the three parts of a backend with workers --------------------------------------------


class Worker(Protocol):
    """Runs one stage's function over items: `on_start`, then `f` per item, then `on_done`.

    Where it runs is the backend's: a thread (`thread`: started with ``start()``), a child
    process (`process`: built in the parent, ``run()`` in the child, reached through its
    pipe), a task on the event loop (`task`: ``await run()``; a stage's workers share one
    `on_start`).
    """

    @property
    def index(self) -> int:
        """Its position among the stage's workers (``worker_info.index``)."""


class Supervisor(Protocol):
    """Runs one stage: starts its workers, watches their timeouts, ends its output.

    The `thread` and `process` supervisors are also the stage's `Runner` (what
    `Backend.runner` returns); a `task` supervisor is a coroutine (``main()``) of the
    run's event loop, which ends it by cancelling its tasks.
    """

    @property
    def stage(self) -> Stage[Any]:
        """The stage it runs."""

    @property
    def input(self) -> Any:
        """The queue its workers take items from (None for a `process` source stage)."""

    @property
    def output(self) -> Any:
        """The queue its workers put results into; it counts as its producers."""


class IterableQueue(Protocol):
    """The bounded queue between stages; it ends once every producer is done.

    A producer is registered with `add_producers` before it starts and calls `done` once;
    once every registered producer is done and the queue is empty, consumers see its end
    (``get_batch`` returns None). `close` cancels it. Items are ``(index, value)``.
    """

    @property
    def maxsize(self) -> int:
        """The most items it holds at once (0: no bound); a full queue blocks producers."""

    def __len__(self) -> int:
        """How many items are ready."""

    def add_producers(self, n: int, /) -> None:
        """Register `n` more producers; each calls `done` once."""

    def done(self) -> None:
        """One producer has no more items."""

    def close(self) -> None:
        """Cancel: every waiting and later put or get raises `Cancelled`."""


class BlockingIterableQueue(IterableQueue, Protocol[T]):
    """An `IterableQueue` for threads (`thread`, `process`'s parent side, the consumer):
    its methods block, and any thread may call them."""

    def put(self, item: T, /) -> None:
        """Add `item`, blocking while the queue is full."""

    def put_batch(self, items: List[T], /) -> None:
        """Add `items`, blocking while the queue is full."""

    def get_batch(self, limit: int, /) -> Optional[List[T]]:
        """Up to `limit` ready items (at least one, waiting for one), or None at the end."""

    def __iter__(self) -> Iterator[T]:
        """The items until the queue ends (one consumer's view)."""


class AsyncIterableQueue(IterableQueue, Protocol[T]):
    """An `IterableQueue` on one event loop (`task`): its methods run on the loop's thread,
    and waiting suspends the task instead of blocking the loop."""

    async def put(self, item: T, /) -> None:
        """Add `item`, waiting while the queue is full."""

    async def put_many(self, items: List[T], /) -> None:
        """Add `items`, waiting for room as needed."""

    async def get(self) -> Optional[T]:
        """The next item (waiting for one), or None at the end."""

    async def get_batch(self, limit: int, /) -> Optional[List[T]]:
        """Up to `limit` ready items (at least one, waiting for one), or None at the end."""
