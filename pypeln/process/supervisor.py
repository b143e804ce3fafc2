"""`Supervisor`: runs one process stage of an `Execution`, from the parent process.

It starts the stage's worker processes (each with a pipe of its own), and, in threads of
the parent, feeds them batches taken from the stage's input queue and puts their results
into the output queue. Each worker holds at most a few batches at once (one item at a time
with a timeout, so the parent knows which item overran), so slow items spread over all
workers. Waiting is on pipes and process sentinels together: a worker that dies, whatever
the cause, is seen at once.

Under an error policy, retries run in the worker process, where the item runs; the parent
adds up what they counted. An item that overruns the timeout is tried again by the
worker's replacement when the policy says so, else dropped or handed to ``on_error``
here, in the parent, which holds a copy of it for that while it runs.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from multiprocessing.connection import wait
from typing import Any, Deque, Dict, List, NamedTuple, Optional, Sequence, Tuple

from .._core.batching import MAX_BATCH, BatchSizer
from .._core.budget import Budget, take_within
from .._core.columns import batch_size, index_list
from .._core.element import Item
from .._core.errors import Cancelled, WorkerDiedError, cannot_send, stage_label
from .._core.examples import SUPERVISOR, example
from .._core.execution import Execution, ThreadRunner
from .._core.ops import fallback_outputs
from .._core.policy import retry_timed_out, timed_out
from .._core.progress import ALL_DONE, Window, admit
from .._core.queue import IterableQueue
from .._core.rate import RateLimiter
from .._core.stage import Stage
from .._core.stats import Counters
from .._core.wire import add_counts, decode_columns, decode_results
from . import methods, spawning
from .channel import (
    ATTEMPT,
    BATCH,
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
    parent_end,
)
from .worker import Job, Worker, run_worker

#: Batches a worker holds at once without a timeout: one it works on, one waiting.
BATCHES_IN_FLIGHT = 2
#: About the most bytes one batch should pickle to: large items travel in smaller batches.
BATCH_BYTES = 1 << 20
#: How long `kill` waits for a killed process to be reaped.
REAP_SECONDS = 1.0
#: The longest single wait for results (a day); a longer `timeout` is waited out in turns
#: (`multiprocessing.connection.wait` takes at most ~24.8 days, in milliseconds as a C int).
LONGEST_WAIT = 86400.0

_NO_SOURCE = object()


class Held(NamedTuple):
    """A batch a worker holds: its items' indices, its first take, and whether it was
    taken with no room left downstream.

    With a timeout (batches of one item) also what was sent, to send it again, its value,
    for ``on_error``, and its attempt number (0 first).
    """

    indices: Sequence[Any]
    start: int
    beyond: bool
    payload: Any = None
    value: Any = None
    attempt: int = 0


#: What a source worker's results stand for (it holds no batch of ours).
SOURCE_BATCH = Held((), 0, False)

Taken4 = Tuple[Sequence[Any], Any, int, bool]


class WorkerHandle:
    """The parent's side of one worker process: its pipe, and the batches it holds."""

    def __init__(self, index: int, cap: int) -> None:
        self.index = index
        self.process: Any = None
        self.channel: Optional[Channel[Item]] = None
        #: bumped each time the process is replaced
        self.generation = 0
        #: batches the worker may still be sent (0 until it is READY)
        self.credit = 0
        #: the batches it holds, oldest first (only values travel)
        self.held: Deque[Held] = deque()
        #: batches it holds that were taken with no room left downstream (at most one)
        self.beyond_room = 0
        #: f takes ``element_index``: batches travel with their indices
        self.indexed = False
        #: when its current item was sent (timeout watch)
        self.started: Optional[float] = None
        #: an overrun item its replacement tries again (also still in `held`)
        self.resend: Optional[Held] = None
        #: its current process reported READY (it has started)
        self.ready = False
        #: end of stream was sent
        self.ended = False
        #: the worker reported DONE (or the stage gave up on it)
        self.finished = False
        self.sizer = BatchSizer(cap)
        #: most items per batch for its pickle to stay near `BATCH_BYTES`
        self.byte_limit = cap
        self.cond = threading.Condition(threading.Lock())
        #: what its feeder thread counts (its waits for input); None for a source worker
        self.counters: Optional[Counters] = None


@example(SUPERVISOR, "pl.process")
class Supervisor(ThreadRunner):
    """Starts, feeds, watches and stops the worker processes of one stage.

    With ``source`` set it runs a single source worker that reads that iterable
    (``from_iterable(..., use_thread=False)``) instead of taking items from `input`.
    The processes start in the constructor, before any thread of the run, so that a
    forked worker inherits no thread's half-taken lock.
    """

    def __init__(
        self,
        stage: Stage[Any],
        input: Optional[IterableQueue[Item]],
        output: IterableQueue[Item],
        execution: Execution,
        source: Any = _NO_SOURCE,
        windows: Tuple[Window, ...] = (),
    ) -> None:
        super().__init__(execution, f"pypeln-{stage.where}")
        self.stage = self.node = stage
        self.input = input
        self.output = output
        self.reads_source = source is not _NO_SOURCE
        self.windows = windows
        #: a source worker's watermark slot in a tracked output
        self.slot = output.progress_slot() if output.tracked and self.reads_source else -1
        policy = None if self.reads_source else stage.policy
        #: the workers report when each attempt starts and ends (a timeout and a policy)
        self.timed_attempts = (
            bool(stage.timeout) and stage.policy is not None and not self.reads_source
        )
        job = Job(
            stage.where,
            stage.op,
            stage.f,
            stage.on_start,
            stage.on_done,
            source if self.reads_source else None,
            policy,
            self.timed_attempts,
            stage.op.streams and not stage.timeout and policy is None,
        )
        parts = (
            ("f", stage.f),
            ("on_start", stage.on_start),
            ("on_done", stage.on_done),
            ("on_error", policy.on_error if policy is not None else None),
            ("iterable", job.source),
        )
        # a worker that overruns the timeout is replaced from the collector thread
        method, data = methods.choose(
            stage.options.get("start_method"),
            job,
            later_forks=bool(stage.timeout) and not self.reads_source,
        )
        spawning.refuse_while_importing_main(stage.where, method)
        spawning.refuse_in_daemon(stage.where)
        self.method = method
        self.context: Any = methods.context(method)
        self.payload = data if data is not None else spawning.pack(stage.where, method, job, parts)
        n = 1 if self.reads_source else stage.workers
        self.timeout = 0.0 if self.reads_source else float(stage.timeout)
        self.in_flight = 1 if self.timeout else BATCHES_IN_FLIGHT
        cap = min(MAX_BATCH, stage.maxsize or MAX_BATCH)
        self.active = self.context.RawArray("b", [1] * n) if stage.on_done is not None else None
        self.handles = [WorkerHandle(i, cap) for i in range(n)]
        #: the stage's rate limit, shared by its worker processes (and their replacements)
        self.limiter = (
            RateLimiter.shared(policy.rate, self.context)
            if policy is not None and policy.rate
            else None
        )
        self.stats = execution.stats.stage(stage)
        self.stats.queue = input
        self.stats.alive = self._alive
        #: what the collector thread counts (results, outputs, busy, blocked, failures)
        self.counters = self.stats.counters()
        if not self.reads_source:
            for h in self.handles:
                h.counters = self.stats.counters()
        self.cancelled = False
        #: channels of replaced workers, closed at the end (a sender may still hold one)
        self.retired: List[Channel[Item]] = []
        self.released = False
        #: items sent to workers and not yet delivered count against the output's room
        self.budget = Budget(output)
        output.add_producers(n)
        try:
            for h in self.handles:
                self._launch(h)
        except BaseException:
            self.cancel()
            self.kill()
            raise

    # -- processes -----------------------------------------------------------------------

    def _launch(self, h: WorkerHandle, retry: Optional[Held] = None) -> List[Held]:
        """Start `h`'s worker process (the first, or a replacement); the batches the one it
        replaces held. `retry`, if given, stays held and is sent to the new one again."""
        ours, child_end = self.context.Pipe(duplex=True)
        parent_end(ours)
        worker = Worker(
            h.index, self.payload, child_end, self.active, self.limiter, self.stage.where
        )
        process = self.context.Process(
            target=run_worker,
            args=(worker,),
            name=f"pypeln-{self.stage.where}-{h.index}",
            daemon=True,
        )
        try:
            process.start()
        except (EOFError, ConnectionError) as e:
            if self.method != "forkserver":
                raise
            raise WorkerDiedError(
                spawning.forkserver_failed(self.stage.where, h.index, e)
            ) from None
        finally:
            child_end.close()
        with h.cond:
            h.process = process
            h.channel = Channel(ours)
            h.generation += 1
            h.credit = 0
            h.ready = False
            dropped = list(h.held)
            h.held.clear()
            if retry is not None:
                h.held.append(retry)
            h.resend = retry
            h.started = None
        if self.cancelled:
            process.terminate()
        return dropped

    def _replace(self, h: WorkerHandle) -> None:
        """Stop a worker whose item overran the timeout and start another, which tries the
        item again if the stage's policy says so; else the item is dropped, or what
        ``on_error`` returns for it is delivered in its place."""
        old_process, old_channel = h.process, h.channel
        if not self._kill_overran(h):
            return
        old_process.close()
        assert old_channel is not None
        self.retired.append(old_channel)
        with h.cond:
            overran = h.held[0] if h.held else None
        c = self.counters
        c.timed_out += 1
        retry = None
        if overran is not None and retry_timed_out(self.stage.policy, overran.attempt):
            c.retried += 1
            retry = overran._replace(attempt=overran.attempt + 1)
        dropped = self._launch(h, retry)
        with h.cond:
            ended, channel = h.ended, h.channel
            h.cond.notify_all()
        # (A retry is never pending here: the feeder ends only after its last item's result.)
        if ended:  # the feeder already sent end of stream to the old process
            assert channel is not None
            channel.send(END)
        for k, held in enumerate(dropped):
            if k == 0 and retry is None:
                self._deliver(h, held, self._timed_out(h, held))
            elif k > 0:
                self._deliver(h, held, [])

    def _kill_overran(self, h: WorkerHandle) -> bool:
        """Kill `h`'s worker, whose item overran; False if its result came meanwhile.

        A worker waits for its rate slot holding the stage's limiter lock, which a killed
        holder would never release: the kill waits until this process holds the lock (a
        holder keeps it about one rate interval at most).
        """
        limiter, process, channel = self.limiter, h.process, h.channel
        assert channel is not None
        locked = False
        if limiter is not None:
            deadline = time.monotonic() + 2 * limiter.interval + 1.0
            while not (locked or self.cancelled) and time.monotonic() < deadline:
                locked = limiter.lock.acquire(timeout=0.05)
        try:
            if locked and channel.poll():
                return False  # it finished while we waited: its result is handled as usual
            process.kill()
            process.join()
        finally:
            if locked:
                assert limiter is not None
                limiter.lock.release()
        return True

    def _timed_out(self, h: WorkerHandle, held: Held) -> List[Item]:
        """The outputs of an item that overran for good: none, or those of what
        ``on_error`` returns for it (if it raises, the run fails with its error)."""
        stage = self.stage
        outcome = timed_out(stage.policy, self.counters, stage.op.name, held.value, self.timeout)
        index = held.indices[0][0] if h.indexed else index_list(held.indices[:1])[0]
        return fallback_outputs(stage.op, outcome, [(index, held.value)])

    def _alive(self) -> int:
        """How many of its worker processes are running now (for its statistics)."""
        if self.released:
            return 0
        n = 0
        for h in self.handles:
            process = h.process
            if process is None or h.finished:
                continue
            try:
                n += not wait([process.sentinel], 0)
            except (ValueError, OSError):  # closed meanwhile: the run is over
                pass
        return n

    # -- runner --------------------------------------------------------------------------

    def start(self) -> None:
        if not self.reads_source:
            for h in self.handles:
                self.spawn(self._feed, h)
        self.spawn(self._collect)

    def cancel(self) -> None:
        self.cancelled = True
        for h in self.handles:
            with h.cond:
                h.cond.notify_all()
                process = h.process if not h.finished else None
            if process is not None and process.exitcode is None:
                process.terminate()

    def join(self, deadline: float) -> bool:
        done = super().join(deadline)
        for h in self.handles:
            if h.process is not None:
                h.process.join(max(0.0, deadline - time.monotonic()))
                done = done and h.process.exitcode is not None
        if done:
            self._release()
        return done

    def kill(self) -> None:
        for h in self.handles:
            if h.process is not None and h.process.exitcode is None:
                h.process.kill()
        for h in self.handles:
            if h.process is not None:
                h.process.join(REAP_SECONDS)
        super().kill()
        super().join(time.monotonic() + REAP_SECONDS)
        self._release()

    def _release(self) -> None:
        """Close every pipe and process handle (no file descriptor outlives the run)."""
        if self.released:
            return
        self.released = True
        for h in self.handles:
            if h.channel is not None:
                h.channel.close()
            if h.process is not None and h.process.exitcode is not None:
                h.process.close()
        for channel in self.retired:
            channel.close()

    # -- feeding: one thread per worker --------------------------------------------------

    def _feed(self, h: WorkerHandle) -> None:
        timeout = self.timeout
        counters = h.counters
        assert counters is not None
        clock = time.perf_counter
        try:
            while True:
                with h.cond:
                    while h.credit <= 0 and not self.cancelled:
                        h.cond.wait()
                    if self.cancelled:
                        return
                    indexed = h.indexed
                    resend = h.resend
                    if resend is not None:
                        h.resend = None
                        h.credit -= 1
                if resend is not None:
                    if not self._resend(h, resend):
                        return
                    continue
                limit = 1 if timeout else min(h.sizer.limit, h.byte_limit)
                t0 = clock()
                taken = self._take(h, limit, indexed)
                counters.waiting += clock() - t0
                with h.cond:
                    channel, generation = h.channel, h.generation
                    if taken is None:
                        h.ended = True
                    else:
                        indices, payload, start, beyond = taken
                        h.credit -= 1
                        h.beyond_room += beyond
                        # (indexed: only the length of `indices` is used)
                        if timeout:  # one item: kept to send again or hand to on_error
                            value = payload[0][1] if indexed else payload[0]
                            h.held.append(Held(indices, start, beyond, payload, value))
                            # (under a policy the worker says when each attempt starts)
                            h.started = None if self.timed_attempts else time.monotonic()
                        else:
                            h.held.append(Held(indices, start, beyond))
                assert channel is not None
                try:
                    if taken is None:
                        channel.send(END)
                        return
                    size = channel.send(BATCH, payload)
                    h.byte_limit = max(1, BATCH_BYTES * len(payload) // max(1, size))
                except ChannelClosed:
                    if generation != h.generation:
                        continue  # the worker was replaced; its item is dropped
                    return  # it died: `_collect` reports it
                except Exception as e:  # an item that cannot be pickled
                    values = [v for _, v in payload] if indexed else payload
                    raise cannot_send(
                        stage_label(self.stage.where, self.stage.f), "an item", values, e
                    ) from None
        except Cancelled:
            pass
        except BaseException as e:  # e.g. an item that cannot be pickled
            self.execution.fail(e)

    def _resend(self, h: WorkerHandle, held: Held) -> bool:
        """Send `h`'s new worker the item its predecessor overran, after the policy's
        backoff; False if the run ends meanwhile, or the worker is gone."""
        policy = self.stage.policy
        assert policy is not None
        deadline = time.monotonic() + policy.delay(held.attempt)
        with h.cond:
            while not self.cancelled:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                h.cond.wait(left)
            if self.cancelled:
                return False
            channel, generation = h.channel, h.generation
            h.started = None if self.timed_attempts else time.monotonic()
        assert channel is not None
        try:
            if self.timed_attempts:
                channel.send(RESUME, held.attempt)
            channel.send(BATCH, held.payload)
        except ChannelClosed:
            return generation != h.generation  # replaced again: go on; else `_collect` reports it
        return True

    def _take(self, h: WorkerHandle, limit: int, indexed: bool) -> Optional[Taken4]:
        """The next batch for `h`: (indices, what to send, first take, beyond the room).

        With a bounded output, the batches of all the stage's workers together take no
        more items than the output has room for, except one batch per worker (of one
        item) when it is full: that one is computed and then waits for room, as a worker
        holding a finished item does. The next waits until that one is delivered. Only
        values travel, unless f takes element_index.
        """
        inq = self.input
        assert inq is not None
        if self.budget.bounded:
            with h.cond:
                while h.beyond_room and not self.cancelled:
                    h.cond.wait()
                if self.cancelled:
                    raise Cancelled()
        get: Any = inq.get_tracked if indexed else self._get_columns
        got = take_within(self.budget, inq, limit, get)
        if got is None:
            return None
        taken, beyond = got
        return (*taken, beyond) if not indexed else (taken[0], taken[0], taken[1], beyond)

    def _get_columns(self, n: int, block: bool) -> Any:
        assert self.input is not None
        return self.input.get_columns(n, block, ranges=True)

    # -- collecting: one thread per stage ------------------------------------------------

    def _collect(self) -> None:
        try:
            self._collect_until_done()
        except (Cancelled, ChannelClosed):
            pass
        except BaseException as e:
            self.execution.fail(e)

    def _collect_until_done(self) -> None:
        handles = self.handles
        while not self.cancelled:
            waiting: Dict[Any, WorkerHandle] = {}
            sentinels: Dict[Any, WorkerHandle] = {}
            for h in handles:
                if not h.finished:
                    assert h.channel is not None
                    waiting[h.channel.conn] = h
                    sentinels[h.process.sentinel] = h
            if not waiting:
                return
            ready = wait(list(waiting) + list(sentinels), self._until_next_deadline())
            if self.cancelled:
                return
            for obj in ready:
                if obj in waiting:
                    self._receive(waiting[obj])
            for obj in ready:
                if obj in sentinels:
                    self._ended(sentinels[obj])
            if self.timeout:
                self._expire()

    def _receive(self, h: WorkerHandle) -> None:
        """Handle one message from `h`."""
        if h.finished:
            return
        assert h.channel is not None
        try:
            kind, payload = h.channel.recv()
        except ChannelClosed:
            kind = -1  # (`_ended` outside the handler: its error is not "during" this one)
        if kind == -1:
            self._ended(h)
            return
        self._dispatch(h, kind, payload)

    def _dispatch(self, h: WorkerHandle, kind: int, payload: Any) -> None:
        if kind == RESULT:
            if len(payload) == 3:
                seconds, result_kind, encoded = payload
            else:  # what the worker's error policy counted comes along
                seconds, result_kind, encoded, counts = payload
                add_counts(self.counters, counts)
            self.counters.busy_extra += seconds
            with h.cond:
                h.credit += 1
                h.started = None
                held = h.held.popleft() if h.held else SOURCE_BATCH
                h.cond.notify()
            if held.indices:
                h.sizer.update(len(held.indices), seconds)
            if self.reads_source:
                self._put_read(decode_results(held.indices, result_kind, encoded))
            else:
                columns = decode_columns(held.indices, result_kind, encoded)
                if columns is not None:
                    self._deliver(h, held, columns)
                else:
                    self._deliver(h, held, decode_results(held.indices, result_kind, encoded))
        elif kind == PART:  # some outputs of the oldest batch `h` holds, ahead of its RESULT
            with h.cond:
                held = h.held[0]
            out = decode_results(held.indices, *payload)
            self.counters.items_out += len(out)
            t0 = time.perf_counter()
            self.output.put_batch(out)
            self.counters.blocked += time.perf_counter() - t0
        elif kind == READY:
            with h.cond:
                h.ready = True
                h.indexed = payload
                h.credit = self.in_flight
                h.cond.notify()
        elif kind == DONE:
            h.finished = True
            if self.slot >= 0:
                self.output.advance(self.slot, ALL_DONE)
            self.output.done()
        elif kind == FAILED:
            h.finished = True
            self.execution.fail(payload.exception())
        elif kind == COUNTS:
            add_counts(self.counters, payload)
        elif kind == ATTEMPT:
            with h.cond:
                if payload < 0:
                    h.started = None
                else:
                    h.started = time.monotonic()
                    if h.held:
                        h.held[0] = h.held[0]._replace(attempt=payload)

    def _deliver(self, h: WorkerHandle, held: Held, out: Any) -> None:
        """Put a batch's results (items, or `Columns`) downstream and report it finished."""
        c = self.counters
        c.items_in += len(held.indices)
        n = batch_size(out)
        if n:
            c.items_out += n
            t0 = time.perf_counter()
            if type(out) is tuple:
                self.output.put_columns(*out)
            else:
                self.output.put_batch(out)
            c.blocked += time.perf_counter() - t0
        if self.output.maxsize:
            self.budget.release(len(held.indices))
            if held.beyond:
                with h.cond:
                    h.beyond_room -= 1
                    h.cond.notify_all()
        assert self.input is not None
        if self.input.progress is not None:
            self.input.finish(held.start, len(held.indices))

    def _put_read(self, items: List[Item]) -> None:
        """Items a source worker read: within the windows, with their watermark."""
        if not items:
            return
        last = items[-1][0][0]
        admit(self.windows, last)
        c = self.counters
        c.items_out += len(items)
        t0 = time.perf_counter()
        self.output.put_batch(items)
        c.blocked += time.perf_counter() - t0
        if self.slot >= 0:
            self.output.advance(self.slot, last + 1)

    def _ended(self, h: WorkerHandle) -> None:
        """`h`'s process has exited: fine after DONE, else it died and the run fails."""
        assert h.channel is not None
        while not h.finished and h.channel.poll():
            try:
                kind, payload = h.channel.recv()
            except ChannelClosed:
                break
            self._dispatch(h, kind, payload)
        if h.finished or self.cancelled:
            return
        h.finished = True
        h.process.join(REAP_SECONDS)
        code = h.process.exitcode
        if code == 1 and not h.ready and self.method != "fork":
            raise WorkerDiedError(
                spawning.main_guard_error(self.stage.where, h.index, h.process.pid, self.method)
            )
        how = (
            f"was killed by signal {-code}"
            if code is not None and code < 0
            else (f"exited with code {code}")
        )
        raise WorkerDiedError(
            f"{self.stage.where}: worker process {h.index} (pid {h.process.pid}) {how} "
            "without finishing its items (killed from outside, out of memory, or a crash "
            "in native code?)"
        )

    def _until_next_deadline(self) -> Optional[float]:
        if not self.timeout:
            return None
        now = time.monotonic()
        starts = [h.started for h in self.handles if h.started is not None and not h.finished]
        # An item a feeder starts after this look expires no sooner than a timeout from now.
        return min(LONGEST_WAIT, max(0.0, min(starts, default=now) + self.timeout - now))

    def _expire(self) -> None:
        now = time.monotonic()
        for h in self.handles:
            started = h.started
            if started is None or h.finished or now - started < self.timeout:
                continue
            assert h.channel is not None
            if h.channel.poll():
                continue  # its result is here: take it first
            self._replace(h)
