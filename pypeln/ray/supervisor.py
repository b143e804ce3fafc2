"""`Supervisor`: runs one `pl.ray` stage of an `Execution`, from the driver.

::

    input queue --feeder thread: take a batch (room first), submit actor.run(values)-->
        [actor 0] [actor 1] ...   (Ray actors, anywhere in the cluster)
    --each call's completion (its ObjectRef's future) lands in `events`-->
    collector thread: decode, put the outputs into the output queue, give the actor credit

Each actor holds at most `BATCHES_IN_FLIGHT` batches (one it works on, the next ones
queued behind it, to hide the round trip), so results come back in completion order and
slow items spread over every actor; batches are sized so one takes about
`TARGET_SECONDS`, and one cut short by the items ready (the input runs dry) goes to an
actor that holds none. One thread, the collector, owns every actor's state changes that follow
a completion (results, readiness, death, finishing); the feeder only takes credit and
submits. An actor that dies is seen when its calls fail: the run fails with
`WorkerDiedError`, or, under a policy with retries, a new actor takes the batches it held.
"""

from __future__ import annotations

import queue
import re
import threading
import time
import warnings
from typing import Any, Dict, List, NamedTuple, Sequence, Tuple

from .._core.batching import MAX_BATCH, BatchSizer
from .._core.budget import Budget, take_within
from .._core.element import Item
from .._core.errors import Cancelled, WorkerDiedError
from .._core.examples import SUPERVISOR, example
from .._core.execution import Execution, StageRunner
from .._core.inject import parameter_names
from .._core.ops import fallback_outputs
from .._core.policy import SKIPPED, fallback
from .._core.queue import IterableQueue
from .._core.stage import Stage
from .._core.wire import add_counts, decode_results
from .session import actor_state, check_feasible, check_options, ensure_session
from .worker import actor_class

#: Batches an actor holds at once: one it works on, the next ones waiting in its queue.
BATCHES_IN_FLIGHT = 3
#: How long one batch should take in an actor: a call costs about a millisecond of the
#: actor's time, which the batches in flight cannot hide.
TARGET_SECONDS = 0.05

#: Batches an actor is sent before it has answered `start`.
EARLY_BATCHES = 1

#: Seconds the collector waits for a completion before it asks Ray which of the calls it
#: waits for have completed: a completion callback that never comes cannot hang the run.
POLL_SECONDS = 2.0

#: Seconds between looks at an actor that has not started when the input has ended.
START_CHECK_SECONDS = 10.0
#: Looks after which an actor Ray has not placed yet is given up on.
START_CHECKS = 3
#: Seconds after which an actor that needs no resource (so Ray can always place it) and
#: has not come up yet is replaced: under a burst of actor starts and kills Ray may never
#: start the process of one.
STUCK_START_SECONDS = 20.0
#: Replacements of such an actor before the run fails.
STUCK_STARTS = 3
#: Ray's states of an actor whose process has not come up.
NOT_UP = ("PENDING_CREATION", "DEPENDENCIES_UNREADY")

#: The terminal colour codes in the text of Ray's errors.
_ANSI_COLOR = re.compile(r"\x1b\[[0-9;]*m")

# What lands in `Supervisor.events`: (kind, handle, generation, ref)
_STARTED, _RESULT, _FINISHED, _INPUT_ENDED, _STOP = range(5)


class Held(NamedTuple):
    """A batch an actor holds, as two columns: its items' indices (to decode its results)
    and values (what is sent; a slice of a list, tuple or range source as is); its first
    take, whether it was taken with no room left downstream, and how often its actor
    died."""

    indices: List[Any]
    values: Sequence[Any]
    start: int
    beyond: bool
    deaths: int = 0

    def items(self) -> List[Item]:
        """Its items, ``(index, value)`` (to resend as they are, or to hand to ``on_error``)."""
        return list(zip(self.indices, self.values))


class ActorHandle:
    """The driver's side of one actor of the stage: the batches it holds."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.actor: Any = None
        #: bumped when the actor is replaced: completions of an older one are stale
        self.generation = 0
        self.ready = False
        #: may be sent batches before it has answered `start` (they queue behind it)
        self.early = False
        #: batches it may still be sent
        self.credit = 0
        #: its calls not answered yet, by ObjectRef
        self.pending: Dict[Any, Held] = {}
        #: batches of a dead predecessor, sent again once it is ready
        self.resend: List[Held] = []
        #: holds a batch taken with no room left downstream (then takes nothing more)
        self.beyond = False
        #: looks taken at whether it can still start, once the input ended, and when the
        #: next is due (`time.monotonic`)
        self.start_checks = 0
        self.next_start_check = 0.0
        #: when its actor was created (`time.monotonic`), and how often it did not come up
        self.launched = 0.0
        self.stuck_starts = 0
        #: on_done was sent (or it never started); then finished
        self.finishing = False
        self.finished = False


@example(SUPERVISOR, "pl.ray", run=False)
class Supervisor(StageRunner):
    """Starts, feeds and stops the actors of one `pl.ray` stage."""

    def __init__(
        self,
        stage: Stage[Any],
        input: IterableQueue[Item],
        output: IterableQueue[Item],
        execution: Execution,
    ) -> None:
        super().__init__(stage, input, output, execution)
        self.ray = ensure_session()
        self.actor_options = check_options(stage.where, stage.options)
        check_feasible(stage.where, self.ray, self.actor_options)
        #: what the actors run: the stage without its upstream
        self.job: Stage[Any] = Stage(
            stage.backend, stage.op, (), f=stage.f, workers=stage.workers,
            maxsize=stage.maxsize, timeout=stage.timeout, on_start=stage.on_start,
            on_done=stage.on_done, where=stage.where, policy=stage.policy,
        )  # fmt: skip
        self.job_ref: Any = None
        #: calls that were running when the run was cancelled
        self.dying: List[Any] = []
        self.handles = [ActorHandle(i) for i in range(stage.workers)]
        self.cond = threading.Condition(threading.Lock())
        self.events: queue.SimpleQueue[Tuple[int, Any, int, Any]] = queue.SimpleQueue()
        #: the calls whose completion the collector waits for: ref -> its event
        self.watched: Dict[Any, Tuple[int, Any, int, Any]] = {}
        #: items sent to actors and not yet delivered count against the output's room
        self.budget = Budget(output)
        self.sizer = BatchSizer(min(MAX_BATCH, stage.maxsize or MAX_BATCH), TARGET_SECONDS, 8)
        #: whether batches carry indices: `f` takes ``element_index``
        self.indexed = stage.f is not None and "element_index" in parameter_names(stage.f)
        self.cancelled = False
        self.input_ended = False
        #: handles not finished yet (``stage_status.active_workers`` for on_done)
        self.unfinished = stage.workers
        self.stats.alive = self._alive
        self.counters = self.stats.counters()  # the collector's
        self.feeder_counters = self.stats.counters()
        output.add_producers(stage.workers)

    # -- runner --------------------------------------------------------------------------

    def start(self) -> None:
        # Serialized once for all the stage's actors (and their replacements).
        self.job_ref = self.ray.put(self.job)
        for h in self.handles:
            self._launch(h)
        self.spawn(self._feed)
        self.spawn(self._collect)

    def cancel(self) -> None:
        with self.cond:
            self.cancelled = True
            self.cond.notify_all()
            # the calls still running: they fail once their actor is really gone
            self.dying = [ref for h in self.handles for ref in h.pending]
        self.events.put((_STOP, None, 0, None))
        self._kill_all()

    def join(self, deadline: float) -> bool:
        done = super().join(deadline)
        self._kill_all()
        if self.dying:  # `ray.kill` returns at once: wait until the actors have stopped
            left = max(0.0, deadline - time.monotonic())
            ready, _ = self.ray.wait(self.dying, num_returns=len(self.dying), timeout=left)
            done = done and len(ready) == len(self.dying)
            self.dying = [] if done else self.dying
        return done

    def kill(self) -> None:
        """Kill the actors; the threads end once their calls into Ray return (an exception
        raised into a thread inside Ray's client would corrupt its connections)."""
        self._kill_all()

    def _kill_all(self) -> None:
        for h in self.handles:
            self._kill(h)

    def _kill(self, h: ActorHandle) -> None:
        actor, h.actor = h.actor, None
        self._kill_actor(actor)

    def _kill_actor(self, actor: Any) -> None:
        if actor is not None:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:  # already gone, or the session is shutting down
                pass

    def _alive(self) -> int:
        return sum(1 for h in self.handles if h.ready and not h.finished)

    # -- actors --------------------------------------------------------------------------

    def _launch(self, h: ActorHandle) -> None:
        """Create `h`'s actor (the first, or a replacement) and ask it to run `on_start`."""
        cls = actor_class(self.ray)
        if self.actor_options:
            cls = cls.options(**self.actor_options)
        actor = cls.remote(self.job_ref, h.index)
        with self.cond:
            h.actor = actor
            h.generation += 1
            h.ready = False
            # The first batches may queue behind `start` (a round trip saved) where the
            # actor is sure to be placed: default options ask for no resource to run.
            h.early = not self.actor_options and not h.resend and h.generation == 1
            h.credit = EARLY_BATCHES if h.early else 0
            h.launched = time.monotonic()
            generation = h.generation
        self._watch(_STARTED, h, generation, actor.start.remote())
        if self.cancelled:
            self._kill(h)

    def _watch(self, kind: int, h: ActorHandle, generation: int, ref: Any) -> None:
        """Post `ref`'s completion to the collector."""
        events, event = self.events, (kind, h, generation, ref)
        with self.cond:
            self.watched[ref] = event
        ref.future().add_done_callback(lambda _: events.put(event))

    # -- feeding: one thread per stage ---------------------------------------------------

    def _feed(self) -> None:
        c = self.feeder_counters
        clock = time.perf_counter
        try:
            while True:
                self._next_actor(take=False)  # no batch is taken before one can be sent
                t0 = clock()
                got = take_within(self.budget, self.input, self.sizer.limit, self._get)
                c.waiting += clock() - t0
                if got is None:
                    break
                (indices, values, start), beyond = got
                # A batch cut short by the items ready (the input runs dry, e.g. the end
                # of a burst) goes to an actor that holds nothing: queued behind another
                # batch it could wait for a slow one, while another actor sits idle.
                h = self._next_actor(idle=len(indices) < self.sizer.limit)
                self._submit(h, Held(indices, values, start, beyond))
            self.events.put((_INPUT_ENDED, None, 0, None))
        except Cancelled:
            pass
        except BaseException as e:  # e.g. an item Ray cannot serialize
            self.execution.fail(e)

    def _get(self, n: int, block: bool) -> Any:
        return self.input.get_columns(n, block)

    def _next_actor(self, idle: bool = False, take: bool = True) -> ActorHandle:
        """Wait for an actor that may be sent a batch (one that holds none, if `idle`);
        the one with the most credit, which it spends if `take`."""
        with self.cond:
            while True:
                if self.cancelled:
                    raise Cancelled()
                free = [
                    h
                    for h in self.handles
                    if (h.ready or h.early)
                    and h.credit > 0
                    and not h.beyond
                    and not (idle and (h.pending or h.resend))
                ]
                if free:
                    h = max(free, key=lambda h: h.credit)
                    if take:
                        h.credit -= 1
                    return h
                self.cond.wait()

    def _submit(self, h: ActorHandle, held: Held) -> None:
        batch = held.items() if self.indexed else held.values
        with self.cond:
            if held.beyond:
                h.beyond = True
            actor, generation = h.actor, h.generation
            if actor is None:  # killed: the run is ending
                return
            if not (h.ready or h.early):  # replaced: its successor gets it once started
                h.resend.append(held)
                return
            ref = actor.run.remote(batch)
            h.pending[ref] = held
        self._watch(_RESULT, h, generation, ref)

    # -- collecting: one thread per stage ------------------------------------------------

    def _collect(self) -> None:
        try:
            while not self.cancelled:
                try:
                    kind, h, generation, ref = self.events.get(timeout=self._idle_wait())
                except queue.Empty:
                    self._check_starts()
                    self._poll()
                    self._replace_stuck()
                    continue
                if kind == _STOP or self.cancelled:
                    return
                if kind == _INPUT_ENDED:
                    self.input_ended = True
                    for other in self.handles:
                        self._maybe_finish(other)
                elif not self._unwatch(ref):
                    pass  # seen already (by `_poll`)
                elif generation == h.generation and not h.finishing:
                    self._completed(kind, h, ref)
                elif generation == h.generation and kind == _FINISHED:
                    self._completed(kind, h, ref)
                if all(other.finished for other in self.handles):
                    return
        except Cancelled:
            pass
        except BaseException as e:
            self.execution.fail(e)

    def _idle_wait(self) -> float:
        """How long the collector may wait for the next event: until the next look at an
        actor that has not started, and never longer than `POLL_SECONDS`, even with no call
        watched: the feeder may send one while the collector waits, and if that call's
        completion report is lost, only `_poll` sees it."""
        due = [h.next_start_check - time.monotonic() for h in self.handles if h.next_start_check]
        return max(0.0, min([POLL_SECONDS, *due]))

    def _replace_stuck(self) -> None:
        """Replace the actors that need no resource and have not come up in
        `STUCK_START_SECONDS`, the batches sent to them included (see `_stuck`)."""
        if self.actor_options:  # it may wait for room in the cluster: `_check_start`
            return
        late = time.monotonic() - STUCK_START_SECONDS
        for h in self.handles:
            with self.cond:
                stuck = h.actor is not None and not h.ready and h.launched < late
                actor = h.actor
            if stuck and not h.finishing and actor_state(actor) in NOT_UP:
                self._stuck(h)

    def _stuck(self, h: ActorHandle) -> None:
        h.stuck_starts += 1
        where = f"{self.stage.where}: worker actor {h.index}"
        if h.stuck_starts > STUCK_STARTS:
            raise WorkerDiedError(
                f"{where} did not start: Ray did not bring up its process in "
                f"{STUCK_START_SECONDS:g} s, {STUCK_STARTS + 1} times in a row"
            )
        warnings.warn(
            f"{where} had not started {STUCK_START_SECONDS:g} s after it was created "
            "(Ray had not brought up its process); started another in its place",
            RuntimeWarning,
            stacklevel=1,
        )
        with self.cond:
            actor = h.actor
            h.resend = [*h.pending.values(), *h.resend]
            h.pending.clear()
            h.ready = h.early = False
            h.credit = 0
        self._kill_actor(actor)
        self._launch(h)

    def _unwatch(self, ref: Any) -> bool:
        """Whether `ref`'s completion is still to be handled (and now is)."""
        with self.cond:
            return self.watched.pop(ref, None) is not None

    def _poll(self) -> None:
        """Ask Ray which of the watched calls have completed, and handle those: their
        completion callbacks may come late, or, under a heavy load, never."""
        with self.cond:
            refs = list(self.watched)
        if refs:
            ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=False)
            for ref in ready:
                with self.cond:
                    event = self.watched.get(ref)
                if event is not None:
                    self.events.put(event)

    def _completed(self, kind: int, h: ActorHandle, ref: Any) -> None:
        ray = self.ray
        try:
            ok, answer = ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError) as e:
            self._died(h, kind, e)
            return
        if not ok:
            raise answer.exception()
        if kind == _STARTED:
            self._ready(h, answer)
        elif kind == _RESULT:
            self._result(h, ref, answer)
        else:  # _FINISHED
            h.finished = True
            self._kill(h)
            self.output.done()

    def _ready(self, h: ActorHandle, indexed: bool) -> None:
        self.indexed = indexed
        with self.cond:
            h.ready = True
            h.early = False
            resend, h.resend = h.resend, []
            h.credit = max(0, BATCHES_IN_FLIGHT - len(resend) - len(h.pending))
            self.cond.notify_all()
        for held in resend:
            self._submit(h, held)
        self._maybe_finish(h)

    def _result(self, h: ActorHandle, ref: Any, answer: Any) -> None:
        seconds, result_kind, encoded, counts = answer
        c = self.counters
        with self.cond:
            held = h.pending.pop(ref)
        if counts is not None:
            add_counts(c, counts)
        c.busy_extra += seconds
        self.sizer.update(len(held.indices), seconds)
        outputs = decode_results(held.indices, result_kind, encoded)
        self._deliver(h, held, outputs)
        self._maybe_finish(h)

    def _deliver(self, h: ActorHandle, held: Held, outputs: List[Item]) -> None:
        c = self.counters
        if outputs:
            t0 = time.perf_counter()
            self.output.put_batch(outputs)
            c.blocked += time.perf_counter() - t0
        self.budget.release(len(held.indices))
        self.input.finish(held.start, len(held.indices))
        c.items_in += len(held.indices)
        c.items_out += len(outputs)
        with self.cond:
            if held.beyond:
                h.beyond = False
            h.credit += 1
            self.cond.notify_all()

    def _maybe_finish(self, h: ActorHandle) -> None:
        """Once the input has ended and `h` holds nothing, run its `on_done`. An actor that
        has not started yet is waited for, unless it waits for room in the cluster."""
        with self.cond:
            if not self.input_ended or h.finishing or h.pending or h.resend:
                return
            if h.actor is not None and not h.ready:
                if not h.start_checks:
                    h.start_checks = 1
                    self._schedule_start_check(h)
                return
            h.finishing = True
            self.unfinished -= 1
            remaining = self.unfinished
            actor, generation = h.actor, h.generation
        if actor is None:
            self._end_unstarted(h)
            return
        self._watch(_FINISHED, h, generation, actor.finish.remote(remaining))

    def _schedule_start_check(self, h: ActorHandle) -> None:
        h.next_start_check = time.monotonic() + START_CHECK_SECONDS

    def _check_starts(self) -> None:
        now = time.monotonic()
        for h in self.handles:
            if h.next_start_check and h.next_start_check <= now:
                h.next_start_check = 0.0
                self._check_start(h)

    def _check_start(self, h: ActorHandle) -> None:
        """The input has ended and `h`'s actor has still not started: wait on while it runs
        `on_start`; give up on it while Ray has found no room for it."""
        with self.cond:
            if h.ready or h.finishing or h.actor is None:
                return
            actor = h.actor
        if actor_state(actor) in ("ALIVE", "RESTARTING") or h.start_checks < START_CHECKS:
            h.start_checks += 1
            self._schedule_start_check(h)
            return
        waited = START_CHECK_SECONDS * START_CHECKS
        warnings.warn(
            f"{self.stage.where}: worker {h.index} had not started {waited:g} s after the "
            "stage's input ended (no room in the Ray cluster for its resources "
            f"{self.actor_options or '(the defaults)'}?); the stage finished without it",
            RuntimeWarning,
            stacklevel=1,
        )
        with self.cond:
            h.finishing = True
            self.unfinished -= 1
        self._end_unstarted(h)

    def _end_unstarted(self, h: ActorHandle) -> None:
        h.finished = True
        self._kill(h)
        self.output.done()

    # -- actors that die -----------------------------------------------------------------

    def _died(self, h: ActorHandle, kind: int, error: BaseException) -> None:
        """`h`'s actor is gone (killed, out of memory, node lost). Before it was ready, or
        without retries, the run fails; else a new actor takes the batches it held."""
        with self.cond:
            lost = list(h.pending.values())
            h.pending.clear()
            started = h.ready
            h.ready = False
            h.early = False
            h.beyond = False
        policy = self.stage.policy
        where = f"{self.stage.where}: worker actor {h.index}"
        said = _ANSI_COLOR.sub("", str(error))  # Ray colours the names in its messages
        if not started:  # (a batch sent early, before `start` answered, reports it too)
            raise WorkerDiedError(f"{where} could not start: {said}") from error
        died = WorkerDiedError(
            f"{where} died while working on its items (killed, out of memory, or its node "
            f"lost?): {type(error).__name__}: {said}"
        )
        again: List[Held] = []
        for held in lost:
            if policy is not None and policy.retryable(died, held.deaths):
                self.counters.retried += len(held.indices)
                again.append(held._replace(deaths=held.deaths + 1))
            else:
                self._give_up(h, held, died)
        if kind == _FINISHED and not again:
            raise died
        with self.cond:  # and what was taken for it meanwhile (see `_submit`)
            h.resend = [*again, *h.resend]
        self._launch(h)

    def _give_up(self, h: ActorHandle, held: Held, died: WorkerDiedError) -> None:
        """The items of a batch whose actor died too often: the policy decides."""
        policy = self.stage.policy
        c = self.counters
        c.failed += len(held.indices)
        if policy is None or policy.on_error == "raise":
            raise died
        outputs: List[Item] = []
        op = self.stage.op
        for item in held.items():
            if policy.on_error == "skip":
                c.skipped += 1
                continue
            outcome = fallback(op.name, policy.on_error(died, item[1]))
            if outcome is SKIPPED:
                c.skipped += 1
            outputs.extend(fallback_outputs(op, outcome, [item]))
        self._deliver(h, held, outputs)
