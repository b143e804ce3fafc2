"""`Worker`: one worker process of a stage, seen from inside that process.

It runs `on_start`, then the stage's operator over each batch its supervisor sends, then
`on_done`, answering every batch with its results. A source worker (``from_iterable(...,
use_thread=False)``) reads the stage's iterable instead and sends its items.

Under an error policy, retries run here, where the item runs, and the worker reports what
its guard counted with each result; the stage's rate limit is shared by all its workers
(`RateLimiter.shared`).
"""

from __future__ import annotations

import pickle
import signal
import threading
import time
from typing import Any, Callable, List, NamedTuple, Optional, Sequence, Tuple

from .._core.batching import MAX_BATCH, handovers
from .._core.element import Item
from .._core.errors import Cancelled, Failure, cannot_send, stage_label
from .._core.examples import WORKER, example
from .._core.inject import Lifecycle
from .._core.ops import Operator
from .._core.policy import Policy
from .._core.queue import IterableQueue
from .._core.rate import RateLimiter
from .._core.sources import source_batches
from .._core.stats import Counters
from .._core.wire import LOCAL, REAL, encode_results, local_items, result_values, take_counts
from .channel import (
    ATTEMPT,
    COUNTS,
    DONE,
    END,
    FAILED,
    PART,
    READY,
    RESULT,
    RESUME,
    Channel,
    ChannelClosed,
    close_inherited_ends,
)
from .spawning import by_value_if_needed, unloadable

#: Items a source worker reads ahead of what its supervisor has taken.
SOURCE_READ_AHEAD = MAX_BATCH


class Job(NamedTuple):
    """What the workers of one stage run; sent to each worker process once, at its start."""

    where: str
    op: Operator
    f: Optional[Callable[..., Any]]
    on_start: Optional[Callable[..., Any]]
    on_done: Optional[Callable[..., Any]]
    #: for a source worker: the iterable it reads
    source: Any = None
    #: what f does on errors, and its rate (None: raise, no limit)
    policy: Optional[Policy] = None
    #: whether the parent times each attempt (a timeout and a policy): see `AttemptReport`
    timed: bool = False
    #: whether outputs go to the parent as they are made (`PART`), not with the batch's
    #: result: a streaming operator (`flat_map`) with no timeout and no policy
    streams: bool = False


class AttemptReport:
    """`AttemptWatch` in a worker process: tells the parent, which keeps the clock, when
    each attempt of the current item starts and ends."""

    def __init__(self, send: Callable[..., Any]) -> None:
        self.send = send
        self.first = 0

    def begin(self, attempt: int) -> None:
        self.send(ATTEMPT, attempt)

    def end(self) -> None:
        self.send(ATTEMPT, -1)


class ActiveWorkers:
    """How many workers of a stage are still running: one flag per worker in shared memory.

    Each worker only clears its own flag, so no lock is needed.
    """

    def __init__(self, flags: Optional[Sequence[int]]) -> None:
        self.flags = flags

    def value(self) -> int:
        return sum(self.flags) if self.flags is not None else 0


class ProcessFailure(Failure):
    """A `Failure` sent as a worker process can: an exception whose class has no name to be
    found by travels by value when cloudpickle is installed."""

    __slots__ = ()
    dumps = staticmethod(by_value_if_needed)


@example(WORKER, "pl.process")
class Worker:
    """One worker process: built in the parent, `run` in the child.

    ``job`` is a `Job`, or its pickle under the spawn and forkserver start methods.
    ``active`` holds one flag per worker of the stage (shared memory) when it has an
    `on_done` (for ``stage_status``). ``limiter`` is the stage's rate limit, shared by all
    its worker processes (it travels as an argument of the process, never in the job: its
    lock and clock live in shared memory).
    """

    def __init__(
        self,
        index: int,
        job: Any,
        conn: Any,
        active: Any = None,
        limiter: Optional[RateLimiter] = None,
        where: str = "pl.process",
    ) -> None:
        self.index = index
        #: the stage's name, for errors raised before its `Job` is loaded
        self.where = where
        self.job = job
        self.conn = conn
        self.active = active
        self.limiter = limiter
        #: in the child: what the guard counts under an error policy (sent with results)
        self.counters: Optional[Counters] = None

    def run(self) -> None:
        """The worker process's main function."""
        # Ctrl-C is the parent's to handle: it tears the run down and stops this process.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        close_inherited_ends()
        channel: Channel[Item] = Channel(self.conn)
        self.counters = Counters()
        try:
            job = self.job if isinstance(self.job, Job) else self._load()
            self.where = stage_label(job.where, job.f)
            if job.source is not None:
                self._read(job, channel)
            else:
                self._process(job, channel)
        except ChannelClosed:
            pass  # the run is over: the supervisor closed its end
        except BaseException as e:
            try:
                counts = take_counts(self.counters) if self.counters is not None else None
                if counts is not None:  # e.g. the retries before a final failure
                    channel.send(COUNTS, counts)
                channel.send(FAILED, ProcessFailure(e, self.where))
            except BaseException:
                pass
        finally:
            channel.close()

    def _load(self) -> Job:
        try:
            job: Job = pickle.loads(self.job)
        except Exception as e:
            raise unloadable(self.where, e) from None
        return job

    def _process(self, job: Job, channel: Channel[Item]) -> None:
        counters = self.counters
        assert counters is not None
        watch = AttemptReport(channel.send) if job.timed else None
        life = Lifecycle(
            job.where,
            job.f,
            job.on_start,
            job.on_done,
            self.index,
            job.policy,
            counters,
            job.op.name,
            self.limiter,
            watch,
        )
        f, indexed = life.start()
        op = job.op
        stream = op.stream_for(life.guarded)
        guarded = life.guarded
        clock = time.perf_counter
        recv, send = channel.recv, channel.send
        send(READY, indexed)
        while True:
            kind, batch = recv()
            if kind == END:
                break
            if kind == RESUME:
                assert watch is not None
                watch.first = batch
                continue
            start = clock()
            result: Any = None if guarded or indexed else op.over_values(f, batch)
            if result is not None:
                pass
            elif job.streams:
                result = self._stream(stream, f, indexed, batch, send, self.where)
            elif indexed:
                result = (REAL, list(stream(f, batch, True)))
            else:
                result = encode_results(list(stream(f, local_items(batch), False)), len(batch))
            seconds = clock() - start
            if watch is not None:
                watch.first = 0
            counts = take_counts(counters) if guarded else None
            try:
                if counts is None:
                    send(RESULT, (seconds, *result))
                else:
                    send(RESULT, (seconds, *result, counts))
            except ChannelClosed:
                raise
            except Exception as e:  # a result that cannot be pickled
                raise cannot_send(self.where, "a result", result_values(*result), e) from None
        if self.active is not None:
            self.active[self.index] = 0
        life.done(ActiveWorkers(self.active))
        send(DONE)

    @staticmethod
    def _stream(
        stream: Any, f: Any, indexed: bool, batch: Any, send: Callable[..., Any], where: str
    ) -> Tuple[int, Any]:
        """The outputs of `batch` handed on as they are made: every list `handovers` makes
        but the last goes to the parent at once (`PART`); the last is the batch's result.
        A parent that has no room downstream stops reading the pipe, and `send` then waits:
        `f` is held back."""
        items = batch if indexed else local_items(batch)
        last: List[Item] = []
        for chunk in handovers(stream(f, items, indexed)):
            if last:
                try:
                    send(PART, (REAL, last) if indexed else (LOCAL, last))
                except ChannelClosed:
                    raise
                except Exception as e:  # a result that cannot be pickled
                    values = [value for _, value in last]
                    raise cannot_send(where, "a result", values, e) from None
            last = chunk
        return (REAL, last) if indexed else (LOCAL, last)

    def _read(self, job: Job, channel: Channel[Item]) -> None:
        """Read the source in a thread; send whatever it has read whenever the pipe is free."""
        queue: IterableQueue[Item] = IterableQueue(SOURCE_READ_AHEAD)
        queue.add_producers(1)
        errors: List[BaseException] = []

        def read() -> None:
            try:
                for batch in source_batches(job.source):
                    queue.put_batch(batch)
            except Cancelled:
                return
            except BaseException as e:
                errors.append(e)
            queue.done()

        threading.Thread(target=read, name="pypeln-source", daemon=True).start()
        try:
            while True:
                batch = queue.get_batch(MAX_BATCH)
                if batch is None:
                    break
                try:
                    channel.send(RESULT, (0.0, REAL, batch))
                except ChannelClosed:
                    raise
                except Exception as e:  # an item that cannot be pickled
                    values = [value for _, value in batch]
                    raise cannot_send(self.where, "an item of the source", values, e) from None
        finally:
            queue.close()
        if errors:
            raise errors[0]
        channel.send(DONE)


def run_worker(worker: Worker) -> None:
    """Target of a worker process."""
    worker.run()
