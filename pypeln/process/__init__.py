"""Stages whose workers are processes: for CPU-bound Python code.

Items cross to the worker processes in batches, one pickle per batch. Under the ``fork``
start method the stage's functions are inherited; under ``spawn`` and ``forkserver`` they
are pickled (with cloudpickle when it is installed, for lambdas and closures). Choose the
start method for every run with `set_start_method`, or per stage with ``start_method=``.

>>> import pypeln as pl
>>> sorted(range(5) | pl.process.map(lambda x: x * 10, workers=2))
[0, 10, 20, 30, 40]
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from .._core.api import StageFunctions
from .._core.element import Element, Item
from .._core.execution import Execution, ExecutionBackend
from .._core.inject import StageStatus, WorkerInfo
from .._core.progress import Window
from .._core.queue import IterableQueue as ThreadQueue
from .._core.stage import Partial, Stage
from .channel import Channel as Channel  # not public: one worker's pipe end
from .methods import check_start_method, get_start_method, set_start_method
from .namespace import Namespace
from .queue import IterableQueue
from .supervisor import Supervisor
from .worker import Worker


class ProcessBackend(ExecutionBackend):
    name = "process"

    def runner(
        self,
        stage: Stage[Any],
        inq: ThreadQueue[Item],
        out: ThreadQueue[Item],
        execution: Execution,
    ) -> Supervisor:
        return Supervisor(stage, inq, out, execution)

    def source_runner(
        self,
        stage: Stage[Any],
        iterable: Any,
        out: ThreadQueue[Item],
        execution: Execution,
        windows: Tuple[Window, ...] = (),
    ) -> Supervisor:
        """Reads `iterable` in a process of its own (``from_iterable(..., use_thread=False)``)."""
        return Supervisor(stage, None, out, execution, source=iterable, windows=windows)


_START_METHOD_DOC = """
        ``start_method`` (`pl.process` only, keyword-only): ``"fork"``, ``"spawn"`` or
        ``"forkserver"`` for this stage's processes; None: `get_start_method()`.
        """


class ProcessStageFunctions(StageFunctions):
    """The contract's stage functions; map, filter, flat_map, each and from_iterable also
    take a keyword-only ``start_method``."""

    def __init__(self, backend: ProcessBackend) -> None:
        super().__init__(backend)
        for name in ("map", "filter", "flat_map", "each", "from_iterable"):
            function = getattr(self, name).__func__
            function.__doc__ = function.__doc__.rstrip() + "\n" + _START_METHOD_DOC

    def stage_options(self, where: str, options: Dict[str, Any]) -> Dict[str, Any]:
        others = {k: v for k, v in options.items() if k != "start_method"}
        super().stage_options(where, others)  # anything else is a mistake
        start_method = options.get("start_method")
        check_start_method(where, start_method)
        return {} if start_method is None else {"start_method": start_method}


BACKEND = ProcessBackend()
# Type checkers see the contract's typed overloads (so `pl.process.map(f, xs)` is a
# `Stage[B]`); at run time the functions also take the keyword-only ``start_method``.
_fns: StageFunctions = ProcessStageFunctions(BACKEND)

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
    "set_start_method",
    "get_start_method",
]


def __dir__() -> List[str]:
    """The public API only (`__all__`)."""
    return list(__all__)
