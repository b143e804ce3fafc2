"""`InlineWorker`: a stage's worker that runs `f` in the thread that calls it.

`sync` runs its stages this way (in the consumer's thread, or a thread of another
backend's run), and so does each Ray actor of a `ray` stage. Its timeout is kept by a
`Deadline`, which interrupts the calling thread when an item overruns (a call blocked in C
code sees the interruption only once it returns).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Optional

from .element import Item
from .inject import Counter, Lifecycle
from .rate import RateLimiter
from .stage import Stage
from .stats import Counters
from .threadstop import Deadline, ItemTimeout


class _DeadlineWatch:
    """`AttemptWatch` for a stage with a timeout and a policy: a `Deadline` interrupts an
    attempt that overruns (the guard then retries or gives up)."""

    first = 0

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline

    def begin(self, attempt: int) -> None:
        self.deadline.begin()

    def end(self) -> None:
        self.deadline.end()


class InlineWorker:
    """One worker of `stage`: `start` (on_start), `apply` over items, `done` (on_done),
    then `close` (ends its deadline's watchdog)."""

    def __init__(
        self,
        stage: Stage[Any],
        counters: Counters,
        index: int = 0,
        limiter: Optional[RateLimiter] = None,
    ) -> None:
        self.stage = stage
        self.counters = counters
        policy = stage.policy
        if limiter is None and policy is not None and policy.rate:
            limiter = RateLimiter(policy.rate)
        self.deadline = Deadline(stage.timeout) if stage.timeout else None
        watch = _DeadlineWatch(self.deadline) if self.deadline and policy is not None else None
        self.life = Lifecycle(
            stage.where, stage.f, stage.on_start, stage.on_done, index, policy, counters,
            stage.op.name, limiter, watch, ItemTimeout, stage.timeout,
        )  # fmt: skip
        self.f: Any = None
        self.indexed = False

    def start(self) -> bool:
        """Run `on_start`; whether `f` takes ``element_index``."""
        self.f, self.indexed = self.life.start()
        return self.indexed

    def apply(self, items: Iterable[Item]) -> Iterator[Item]:
        """The outputs of `f` over `items`, lazily.

        With a timeout and no policy, item by item: an item whose `f` overruns is dropped,
        as in pypeln 0.4.9 (and counted). Under a policy, the guard times each attempt.
        """
        op, f, indexed = self.stage.op, self.f, self.indexed
        guarded = self.life.guarded
        deadline = self.deadline
        if deadline is None or guarded:
            return op.stream_for(guarded)(f, items, indexed)
        return self._apply_timed(deadline, items)

    def _apply_timed(self, deadline: Deadline, items: Iterable[Item]) -> Iterator[Item]:
        stream, f, indexed = self.stage.op.stream, self.f, self.indexed
        for item in items:
            try:
                deadline.begin()
                out = list(stream(f, (item,), indexed))
                deadline.end()
            except ItemTimeout:
                self.counters.timed_out += 1
                continue
            yield from out

    def done(self, active: Counter) -> None:
        """Run `on_done`; `active` counts the stage's workers still running."""
        self.life.done(active)

    def close(self) -> None:
        if self.deadline is not None:
            self.deadline.close()
