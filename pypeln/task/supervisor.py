"""`Supervisor`: runs one task stage: its callbacks, and a pool of worker tasks that grows
with the work waiting, up to ``workers`` (0: no limit).

In `task`, a stage's ``workers`` is the most items in flight at once, as in pypeln 0.4.9:
`on_start` and `on_done` run once for the stage (``worker_info.index`` is 0) and the
resources `on_start` returns are shared by every item in flight, e.g. one HTTP session.
The pool starts with one worker and at most doubles each time items wait with every worker
busy, so a stage of quick coroutines stays small and a stage of slow ones reaches its
limit within a few loop iterations.

Under an error policy (`pypeln._core.policy`) `f` is guarded once for the stage: its
retries, backoffs and rate waits suspend only the item's own worker task, and each
attempt gets the stage's ``timeout``; a `flat_map` item's outputs are made within its
attempt, so a generator that fails or overruns midway is retried or handled whole. The
stage's row of statistics sums its worker
tasks' `Counters`; the policy's outcomes (retried, skipped, ...) count into the first
worker's, since every task of a stage runs on the same thread.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

from .._core.element import Item
from .._core.examples import SUPERVISOR_ASYNC, example
from .._core.execution import task_works_for, working_for
from .._core.inject import Lifecycle, WorkerCount
from .._core.ops import FLAT_MAP
from .._core.rate import RateLimiter
from .._core.stage import Stage
from .._core.stats import Counters
from .queue import IterableQueue, Sink
from .worker import Worker

if TYPE_CHECKING:
    from .loop import TaskRun


@example(SUPERVISOR_ASYNC, "pl.task")
class Supervisor:
    """Starts a task stage's workers, reads its callbacks' resources, ends its output."""

    def __init__(
        self, run: TaskRun, stage: Stage[Any], input: IterableQueue[Item], output: Sink
    ) -> None:
        self.run = run
        self.stage = stage
        self.input = input
        self.output = output
        self.cap = stage.workers or sys.maxsize
        self.size = 0
        #: worker tasks not finished yet
        self.active = WorkerCount()
        self.starting = 0
        self.f: Any = None
        self.indexed = False
        policy = stage.policy
        #: the guard times each attempt of a stage with a policy; else the worker times
        #: the item as a whole
        self.timeout = stage.timeout if policy is None else 0
        #: the stage's rate limit, shared by its worker tasks
        self.limiter = RateLimiter(policy.rate) if policy is not None and policy.rate else None
        #: worker tasks running now
        self.alive = 0
        self.stats = run.row(stage, input)
        #: what its worker tasks work for: this stage, in the runs it is nested in
        outer = run.execution.inside if run.execution is not None else working_for()
        self.inside = (*outer, stage)
        self.stats.alive = lambda: self.alive
        #: the first worker's counters, which the policy's outcomes count into too
        self._first: Optional[Counters] = None
        self._finished: Optional[asyncio.Future[None]] = None
        #: it reports each finished item to a tracked input (see `ThreadSink.finished`)
        self.tracked = getattr(output, "report", None) is not None
        output.add_producers(1)

    async def main(self) -> None:
        """on_start, the workers until the input ends, on_done, then end the output."""
        stage = self.stage
        task_works_for(self.inside)  # (on_start and on_done run in this task)
        self._first = self.stats.counters()
        f = stage.f
        if stage.policy is not None and stage.op is FLAT_MAP and f is not None:
            f = outputs_within_attempt(f)
        life = Lifecycle(
            stage.where,
            f,
            stage.on_start,
            stage.on_done,
            0,
            stage.policy,
            self._first,
            stage.op.name,
            self.limiter,
        )
        self.f, self.indexed = await life.start_async(stage.timeout)
        self._finished = asyncio.get_running_loop().create_future()
        self.input.on_backlog = self._backlog
        self._spawn(1)
        await self._finished
        await life.done_async(self.active)
        self.output.done()

    def _backlog(self) -> None:
        if not self.starting:
            self.grow()

    def grow(self) -> None:
        """Items wait and every worker is busy: add workers (at most doubling the pool)."""
        n = min(self.cap - self.size, self.size, len(self.input))
        if n > 0:
            self._spawn(n)

    def _spawn(self, n: int) -> None:
        self.starting += n
        self.active.add(n)
        for _ in range(n):
            counters = self._first if self._first is not None else self.stats.counters()
            self._first = None
            self.run.spawn(Worker(self, self.size, counters).run())
            self.size += 1

    def worker_finished(self) -> None:
        left = self.active.finish()
        if left == 0 and self._finished is not None and not self._finished.done():
            self._finished.set_result(None)


def outputs_within_attempt(f: Callable[..., Any]) -> Callable[..., Any]:
    """`f` for a `flat_map` under a policy: it returns its outputs made, as a list, when
    they come from a generator or an async iterable, so that the policy's guard sees
    their errors and its timeout covers them. (Its signature is `f`'s, for injection.)"""

    @functools.wraps(f)
    async def call(*args: Any, **kwargs: Any) -> Any:
        result = f(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        if hasattr(result, "__aiter__"):
            return [y async for y in result]
        if isinstance(result, Iterator):
            return list(result)
        return result

    return call
