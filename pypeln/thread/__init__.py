"""Stages whose workers are threads: for blocking I/O and C code that releases the GIL.

>>> import pypeln as pl
>>> sorted(range(5) | pl.thread.map(lambda x: x * 10, workers=3))
[0, 10, 20, 30, 40]
"""

from __future__ import annotations

from typing import Any, List

from .._core.api import StageFunctions
from .._core.element import Element, Item
from .._core.execution import Execution, ExecutionBackend
from .._core.inject import StageStatus, WorkerInfo
from .._core.namespace import Namespace
from .._core.queue import IterableQueue
from .._core.stage import Partial, Stage
from .supervisor import Supervisor
from .worker import Worker


class ThreadBackend(ExecutionBackend):
    name = "thread"

    def runner(
        self,
        stage: Stage[Any],
        inq: IterableQueue[Item],
        out: IterableQueue[Item],
        execution: Execution,
    ) -> Supervisor:
        return Supervisor(stage, inq, out, execution)


BACKEND = ThreadBackend()
_fns = StageFunctions(BACKEND)

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
run = _fns.run

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
    """The public API only (`__all__`)."""
    return list(__all__)
