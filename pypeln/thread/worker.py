"""`Worker`: one thread that runs a stage's `f` over the items of its input queue."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

from .._core.batching import BatchSizer, handovers
from .._core.element import Item
from .._core.errors import Cancelled
from .._core.examples import WORKER, example
from .._core.inject import Lifecycle
from .._core.queue import COLUMNS, Taken3, deliver, take
from .._core.threadstop import raise_in_thread
from .._core.wire import decode_columns

if TYPE_CHECKING:
    from .supervisor import Supervisor


class Abandoned(BaseException):
    """Raised in a worker whose item overran the stage's timeout; it has been replaced."""


@example(WORKER, "pl.thread")
class Worker:
    """Runs `on_start`, then `f` over batches of its stage's input, then `on_done`."""

    def __init__(
        self,
        supervisor: Supervisor,
        index: int,
        retry: Optional[Tuple[Taken3, int]] = None,
    ) -> None:
        self.supervisor = supervisor
        self.index = index
        #: an overrun item (and its attempt number) to try again first
        self.retry = retry
        self.attempt = 0
        #: the attempt number a retried item resumes at (`AttemptWatch.first`)
        self.first = 0
        self.timed_attempts = False
        self.counters = supervisor.stats.counters()
        #: when the current item started (timeout watch), None between items
        self.started: Optional[float] = None
        self.abandoned = False
        #: the batch it works on under a timeout (the supervisor finishes it if it gives up)
        self.current: Optional[Taken3] = None
        self.thread: Optional[threading.Thread] = None
        #: runs the user's `f` now (guarded by the supervisor's lock)
        self.in_f = False
        #: was stopped inside `f` when the run was cancelled
        self.interrupted = False

    def start(self) -> None:
        self.thread = self.supervisor.spawn(self._main)

    def _main(self) -> None:
        # (set here too: a Ctrl-C may interrupt `start` after the thread began)
        self.thread = threading.current_thread()
        sup = self.supervisor
        stage = sup.stage
        counters = self.counters
        counters.start()
        try:
            life = Lifecycle(
                stage.where,
                stage.f,
                stage.on_start,
                stage.on_done,
                self.index,
                stage.policy,
                counters,
                stage.op.name,
                sup.limiter,
                self if stage.timeout else None,
            )
            self.timed_attempts = stage.timeout > 0 and life.guarded
            f, indexed = life.start()
            if self.retry is not None:
                self._retry(f, indexed, *self.retry)
            op = stage.op
            if op.columnar and not (stage.timeout or life.guarded or indexed):
                self._run_columns(f, op.over_values)
            else:
                streams = op.streams and not stage.timeout and not life.guarded
                self._run_items(f, indexed, op.stream_for(life.guarded), streams)
            sup.active.finish()
            life.done(sup.active)
            sup.output.done()
        except (Cancelled, Abandoned):
            pass
        except BaseException as e:
            if not self.abandoned:
                sup.execution.fail(e)
        finally:
            counters.end()

    def _run_items(self, f: Any, indexed: bool, stream: Any, streams: bool) -> None:
        """Apply `f` to batches of ready items, sized by how long the previous ones took.

        Only the time spent in `f` counts: waiting for room downstream is not slowness.
        With a timeout, items go one at a time, each under the supervisor's watch. With
        `streams` (`flat_map`, no timeout, no policy) outputs go on as they are made
        (`_hand_on`).
        """
        sup = self.supervisor
        inq, out = sup.input, sup.output
        watched = bool(sup.stage.timeout)
        sizer = BatchSizer(1 if watched else sup.batch_cap)
        clock = time.perf_counter
        c = self.counters
        outputs: List[Item] = []
        blocked = 0.0
        while True:
            t0 = clock()
            taken = take(inq, out, sizer.limit)
            t = clock()
            c.waiting += t - t0
            if taken is None:
                return
            if watched:
                self._watch_item(taken)
            self._enter_f()
            try:
                if streams:
                    taken, blocked = self._hand_on(f, indexed, stream, taken)
                else:
                    outputs = list(stream(f, taken[0], indexed))
            finally:
                self._leave_f()
            t1 = clock()
            if watched:
                self._watch_item(None)
            else:
                sizer.update(len(taken[0]), t1 - t - blocked)
            deliver(inq, out, outputs, taken)
            c.blocked += clock() - t1 + blocked
            c.items_in += len(taken[0])
            c.items_out += len(outputs)

    def _run_columns(self, f: Any, over_values: Any) -> None:
        """Like `_run_items`, for a plain `map` or `filter` (no timeout, policy or index):
        batches come and go as columns, and `f` runs over the values alone."""
        sup = self.supervisor
        inq, out = sup.input, sup.output
        sizer = BatchSizer(sup.batch_cap)
        clock = time.perf_counter
        c = self.counters
        while True:
            t0 = clock()
            taken = take(inq, out, sizer.limit, COLUMNS)
            t = clock()
            c.waiting += t - t0
            if taken is None:
                return
            indices, values = taken[0]
            self._enter_f()
            try:
                result = over_values(f, values)
            finally:
                self._leave_f()
            t1 = clock()
            sizer.update(len(values), t1 - t)
            outputs = decode_columns(indices, *result)
            deliver(inq, out, outputs, taken)
            c.blocked += clock() - t1
            c.items_in += len(values)
            c.items_out += len(outputs[1])  # type: ignore[index]

    def _enter_f(self) -> None:
        """Say that the user's code runs now: a cancelled run interrupts it (`interrupt`)."""
        with self.supervisor.lock:
            if self.supervisor.stopping:
                raise Cancelled()
            self.in_f = True

    def _leave_f(self) -> None:
        """The user's code has returned: no interruption is raised in this thread from now
        on, and one raised before lands here, inside `_main` (at the call below)."""
        with self.supervisor.lock:
            self.in_f = False
        _checkpoint()

    def interrupt(self) -> bool:
        """Called by the supervisor with its lock held when the run is cancelled: stop the
        user's code if it runs, with `Cancelled` at its next Python instruction; whether it
        did (a call into C, e.g. ``time.sleep``, only sees it once it returns)."""
        if not self.in_f or self.thread is None or self.thread is threading.current_thread():
            return False
        self.in_f = False
        self.interrupted = True
        raise_in_thread(self.thread, Cancelled)
        return True

    def _hand_on(self, f: Any, indexed: bool, stream: Any, taken: Taken3) -> Tuple[Taken3, float]:
        """Put the outputs of a batch downstream as they are made (`handovers`): an endless
        generator streams, and a full output holds `f` back. The batch is finished (for
        `ordered`) only once all its outputs are put, by `deliver`. Returns the batch with
        what is left of its reserved room, and the seconds spent waiting for room."""
        out, c, clock = self.supervisor.output, self.counters, time.perf_counter
        items, start, reserved = taken
        blocked = 0.0
        for chunk in handovers(stream(f, items, indexed)):
            t = clock()
            out.put_batch(chunk, reserved)
            reserved = 0
            blocked += clock() - t
            c.items_out += len(chunk)
        return (items, start, reserved), blocked

    def _retry(self, f: Any, indexed: bool, taken: Taken3, attempt: int) -> None:
        """Try again the item its predecessor abandoned when it overran the timeout."""
        sup = self.supervisor
        time.sleep(sup.stage.policy.delay(attempt) if sup.stage.policy is not None else 0)
        self._watch_item(taken, attempt)
        self.first = attempt
        outputs = list(sup.stage.op.stream_for(True)(f, taken[0], indexed))
        self.first = 0
        self._watch_item(None)
        deliver(sup.input, sup.output, outputs, taken)
        self.counters.items_in += len(taken[0])
        self.counters.items_out += len(outputs)

    def _watch_item(self, taken: Optional[Taken3], attempt: int = 0) -> None:
        """Tell the supervisor an item starts (`taken`, its `attempt`) or ends (None); raise
        `Abandoned` if it gave up on us. Under a policy the clock runs only while an
        attempt does (`begin`/`end`), not while the item waits for a rate slot or a backoff.
        """
        with self.supervisor.lock:
            if self.abandoned:
                raise Abandoned()
            timed = taken is not None and not self.timed_attempts
            self.started = time.monotonic() if timed else None
            self.current = taken
            self.attempt = attempt

    # `AttemptWatch`: how the guard of a policy times each attempt of the current item.

    def begin(self, attempt: int) -> None:
        self.attempt = attempt
        self.started = time.monotonic()

    def end(self) -> None:
        self.started = None


def _checkpoint() -> None:
    """A Python call: where an exception raised into the thread from outside lands."""
