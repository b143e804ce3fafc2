"""pypeln: concurrent data pipelines made easy.

One API, five backends: `pypeln.process` (processes, for CPU work), `pypeln.thread`
(threads, for blocking I/O), `pypeln.task` (asyncio, for async I/O), `pypeln.sync`
(plain generators) and `pypeln.ray` (Ray actors, on a cluster; an optional extra).
Stages compose with ``|`` and mix across backends:

>>> import pypeln as pl
>>> range(10) | pl.thread.map(lambda x: x * 2, workers=4) | pl.sync.ordered | list
[0, 2, 4, 6, 8, 10, 12, 14, 16, 18]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._core.element import Element
from ._core.errors import PypelnError, RemoteTraceback, UnpicklableError, WorkerDiedError
from ._core.policy import ItemTimeoutError
from ._core.report import Report
from ._core.stage import Partial, PipelineIterator, Stage, set_async_consumer_loader
from ._core.stats import RunStats, StageStats

__version__ = "0.5.0"

#: The backend modules, imported on first use (a Ray actor or a worker process that needs
#: only one of them does not pay for the others).
_BACKENDS = ("process", "ray", "sync", "task", "thread")

if TYPE_CHECKING:
    from . import process, ray, sync, task, thread


def _load_task() -> Any:
    return importlib.import_module(".task", __name__)


set_async_consumer_loader(_load_task)  # `await stage` and `async for` run stages there


def __getattr__(name: str) -> Any:
    if name in _BACKENDS:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'pypeln' has no attribute {name!r}")


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
    "PypelnError",
    "RemoteTraceback",
    "UnpicklableError",
    "WorkerDiedError",
    "ItemTimeoutError",
    "PipelineIterator",
    "RunStats",
    "StageStats",
    "Report",
    "__version__",
]
