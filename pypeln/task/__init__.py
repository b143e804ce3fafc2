"""Stages whose workers are asyncio tasks: for async I/O, thousands of requests at once.

`f`, `on_start` and `on_done` may be plain functions or coroutine functions; sources may
be iterables or async iterables. A task stage can be consumed in three ways:

- from sync code: ``list(stage)``, ``for x in stage`` (the run gets an event loop in a
  helper thread, so this also works inside a coroutine or a Jupyter cell);
- ``await stage`` (a list) and ``async for x in stage``, on the running loop;
- as the input of a stage of another backend.

>>> import asyncio, pypeln as pl
>>> async def slow_double(x):
...     await asyncio.sleep(0.01)
...     return 2 * x
>>> sorted(range(5) | pl.task.map(slow_double, workers=5))
[0, 2, 4, 6, 8]
"""

from __future__ import annotations

from typing import Any, List

from .._core.element import Element, Item
from .._core.execution import Execution, ExecutionBackend
from .._core.inject import StageStatus, WorkerInfo
from .._core.queue import IterableQueue as ThreadQueue
from .._core.stage import Partial, Stage, set_async_consumer
from .api import TaskStageFunctions
from .consume import collect
from .loop import LoopBackend, QueueSource, SegmentRunner
from .namespace import Namespace
from .queue import IterableQueue
from .supervisor import Supervisor
from .worker import Worker


class TaskBackend(ExecutionBackend, LoopBackend):
    """Runs task stages on an event loop; see the module's documentation."""

    name = "task"

    def connect(self, stage: Stage[Any], out: ThreadQueue[Item], execution: Execution) -> None:
        """Wire `stage` and the task stages it depends on into `execution`'s event loop."""
        SegmentRunner.of(execution).connect(stage, out)

    def runner(
        self,
        stage: Stage[Any],
        inq: ThreadQueue[Item],
        out: ThreadQueue[Item],
        execution: Execution,
    ) -> _Registered:
        """`stage` alone, between two thread-side queues (its inputs already wired to `inq`)."""
        runner = SegmentRunner.of(execution)
        alone: Stage[Any] = Stage(
            self,
            stage.op,
            (QueueSource(inq),),
            f=stage.f,
            workers=stage.workers,
            maxsize=stage.maxsize,
            timeout=stage.timeout,
            on_start=stage.on_start,
            on_done=stage.on_done,
            options=stage.options,
            where=stage.where,
            policy=stage.policy,
        )
        runner.run.stand_for(alone, stage)
        runner.connect(alone, out)
        return _Registered()


class _Registered:
    """Stands for the execution's `SegmentRunner`, which is already one of its runners."""

    def start(self) -> None:
        pass

    def cancel(self) -> None:
        pass

    def join(self, deadline: float) -> bool:
        return True

    def kill(self) -> None:
        pass


BACKEND = TaskBackend()
_fns = TaskStageFunctions(BACKEND)

map = _fns.map
filter = _fns.filter
flat_map = _fns.flat_map
each = _fns.each
ordered = _fns.ordered
batch = _fns.batch
unbatch = _fns.unbatch
concat = _fns.concat
from_iterable = _fns.from_iterable
to_iterable = _fns.to_iterable
to_async_iterable = _fns.to_async_iterable
run = _fns.run

# ``async for x in stage`` and ``await stage``, for a Stage of any backend.
set_async_consumer(to_async_iterable, collect)

__all__ = [
    "map",
    "filter",
    "flat_map",
    "each",
    "ordered",
    "batch",
    "unbatch",
    "concat",
    "from_iterable",
    "to_iterable",
    "to_async_iterable",
    "collect",
    "run",
    "Namespace",
    "Stage",
    "Partial",
    "Element",
    "Worker",
    "Supervisor",
    "IterableQueue",
    "WorkerInfo",
    "StageStatus",
]


def __dir__() -> List[str]:
    """The public API only (`__all__`); `TaskBackend` stays importable, for extensions."""
    return list(__all__)
