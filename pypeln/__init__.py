"""pypeln: concurrent data pipelines made easy.

One API, five backends: `pypeln.process` (processes, for CPU work), `pypeln.thread`
(threads, for blocking I/O), `pypeln.task` (asyncio, for async I/O), `pypeln.sync`
(plain generators) and `pypeln.ray` (Ray actors, on a cluster; an optional extra).
Stages compose with ``|`` and mix across backends::

    import pypeln as pl
    results = range(10) | pl.thread.map(lambda x: x * 2, workers=4) | pl.sync.ordered | list
"""

from __future__ import annotations

from . import process, ray, sync, task, thread
from ._core.element import Element
from ._core.errors import RemoteTraceback, WorkerDiedError
from ._core.policy import ItemTimeoutError
from ._core.report import Report
from ._core.stage import Partial, PipelineIterator, Stage
from ._core.stats import RunStats, StageStats

__version__ = "0.5.0"

BaseStage = Stage

__all__ = [
    "process",
    "ray",
    "sync",
    "thread",
    "task",
    "Element",
    "Stage",
    "BaseStage",
    "Partial",
    "RemoteTraceback",
    "WorkerDiedError",
    "ItemTimeoutError",
    "PipelineIterator",
    "RunStats",
    "StageStats",
    "Report",
    "__version__",
]
