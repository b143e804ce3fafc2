"""`Supervisor`: runs one task stage: its callbacks, and a pool of worker tasks that grows
with the work waiting, up to ``workers`` (0: no limit).

In `task`, a stage's ``workers`` is the most items in flight at once, as in pypeln 0.4.9:
`on_start` and `on_done` run once for the stage (``worker_info.index`` is 0) and the
resources `on_start` returns are shared by every item in flight, e.g. one HTTP session.
The pool starts with one worker and at most doubles each time items wait with every worker
busy, so a stage of quick coroutines stays small and a stage of slow ones reaches its
limit within a few loop iterations.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any, Optional

from .._core.element import Item
from .._core.inject import Lifecycle, WorkerCount
from .._core.stage import Stage
from .queue import IterableQueue, Sink
from .worker import Worker

if TYPE_CHECKING:
    from .run import TaskRun


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
        self._finished: Optional[asyncio.Future[None]] = None
        #: it reports each finished item to a tracked input (see `ThreadSink.finished`)
        self.tracked = getattr(output, "report", None) is not None
        output.add_producers(1)

    async def main(self) -> None:
        """on_start, the workers until the input ends, on_done, then end the output."""
        stage = self.stage
        life = Lifecycle(stage.where, stage.f, stage.on_start, stage.on_done)
        self.f, self.indexed = await life.start_async()
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
            self.run.spawn(Worker(self, self.size).run())
            self.size += 1

    def worker_finished(self) -> None:
        left = self.active.finish()
        if left == 0 and self._finished is not None and not self._finished.done():
            self._finished.set_result(None)
