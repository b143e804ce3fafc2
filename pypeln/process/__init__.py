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

from typing import Any, Optional

from .._core import checks
from .._core.api import OptionalCallback, StageFunctions
from .._core.element import Element, Item
from .._core.execution import Execution, ExecutionBackend
from .._core.inject import StageStatus, WorkerInfo
from .._core.queue import IterableQueue
from .._core.stage import UNDEFINED, Partial, Stage, Undefined
from ..thread.supervisor import Supervisor as ThreadSupervisor
from .channel import Channel
from .namespace import Namespace
from .spawning import check_start_method, get_start_method, set_start_method
from .supervisor import Supervisor
from .worker import Worker


class ProcessBackend(ExecutionBackend):
    name = "process"

    def runner(
        self,
        stage: Stage[Any],
        inq: IterableQueue[Item],
        out: IterableQueue[Item],
        execution: Execution,
    ) -> Any:
        if not stage.op.per_item:  # ordered, concat, from_iterable: moving items only
            return ThreadSupervisor(stage, inq, out, execution)
        return Supervisor(stage, inq, out, execution)

    def source_runner(
        self, stage: Stage[Any], iterable: Any, out: IterableQueue[Item], execution: Execution
    ) -> Supervisor:
        """Reads `iterable` in a process of its own (``from_iterable(..., use_thread=False)``)."""
        return Supervisor(stage, None, out, execution, source=iterable)


def _with_start_method(result: Any, start_method: Optional[str]) -> Any:
    """`result` (a Stage or a Partial making one) with its stage's start method set."""
    if start_method is None:
        return result
    if isinstance(result, Partial):
        partial = result
        return Partial(lambda s: _with_start_method(partial(s), start_method))
    stage: Stage[Any] = result
    return Stage(
        stage.backend,
        stage.op,
        stage.deps,
        f=stage.f,
        workers=stage.workers,
        maxsize=stage.maxsize,
        timeout=stage.timeout,
        on_start=stage.on_start,
        on_done=stage.on_done,
        options={**stage.options, "start_method": start_method},
        where=stage.where,
    )


_START_METHOD_DOC = """
        ``start_method`` (`pl.process` only): ``"fork"``, ``"spawn"`` or ``"forkserver"`` for
        this stage's processes; None: `get_start_method()`.
        """


class ProcessStageFunctions(StageFunctions):
    """The contract's stage functions, plus a ``start_method`` keyword for process stages."""

    def _with(self, name: str, start_method: Optional[str], *args: Any) -> Any:
        """The base function `name` called with `args`, its stage given `start_method`."""
        check_start_method(self._where(name), start_method)
        result = getattr(StageFunctions, name)(self, *args)
        return _with_start_method(result, start_method)

    def map(
        self,
        f: Any,
        stage: Any = UNDEFINED,
        workers: int = 1,
        maxsize: int = 0,
        timeout: float = 0,
        on_start: OptionalCallback = None,
        on_done: OptionalCallback = None,
        *,
        start_method: Optional[str] = None,
    ) -> Any:
        return self._with(
            "map", start_method, f, stage, workers, maxsize, timeout, on_start, on_done
        )

    def filter(
        self,
        f: Any,
        stage: Any = UNDEFINED,
        workers: int = 1,
        maxsize: int = 0,
        timeout: float = 0,
        on_start: OptionalCallback = None,
        on_done: OptionalCallback = None,
        *,
        start_method: Optional[str] = None,
    ) -> Any:
        return self._with(
            "filter", start_method, f, stage, workers, maxsize, timeout, on_start, on_done
        )

    def flat_map(
        self,
        f: Any,
        stage: Any = UNDEFINED,
        workers: int = 1,
        maxsize: int = 0,
        timeout: float = 0,
        on_start: OptionalCallback = None,
        on_done: OptionalCallback = None,
        *,
        start_method: Optional[str] = None,
    ) -> Any:
        return self._with(
            "flat_map", start_method, f, stage, workers, maxsize, timeout, on_start, on_done
        )

    def each(
        self,
        f: Any,
        stage: Any = UNDEFINED,
        workers: int = 1,
        maxsize: int = 0,
        timeout: float = 0,
        on_start: OptionalCallback = None,
        on_done: OptionalCallback = None,
        run: bool = False,
        *,
        start_method: Optional[str] = None,
    ) -> Any:
        where = self._where("each")
        check_start_method(where, start_method)
        checks.flag(where, "run", run)
        if start_method is None:
            return StageFunctions.each(
                self, f, stage, workers, maxsize, timeout, on_start, on_done, run
            )
        if isinstance(stage, Undefined):
            checks.stage_params(where, f, workers, maxsize, timeout, on_start, on_done)
            return Partial(
                lambda s: self.each(
                    f,
                    s,
                    workers,
                    maxsize,
                    timeout,
                    on_start,
                    on_done,
                    run,
                    start_method=start_method,
                )
            )
        result = self._with(
            "each", start_method, f, stage, workers, maxsize, timeout, on_start, on_done, False
        )
        if run:
            for _ in result:
                pass
            return None
        return result

    def from_iterable(
        self,
        iterable: Any = UNDEFINED,
        use_thread: bool = True,
        maxsize: int = 0,
        *,
        start_method: Optional[str] = None,
    ) -> Any:
        return self._with("from_iterable", start_method, iterable, use_thread, maxsize)


for _name in ("map", "filter", "flat_map", "each", "from_iterable"):
    getattr(ProcessStageFunctions, _name).__doc__ = (
        (getattr(StageFunctions, _name).__doc__ or "").rstrip() + "\n" + _START_METHOD_DOC
    )

BACKEND = ProcessBackend()
# Type checkers see the contract's typed overloads (so `pl.process.map(f, xs)` is a
# `Stage[B]`); at run time the functions also take the keyword-only ``start_method``.
_fns: StageFunctions = ProcessStageFunctions(BACKEND)

map = _fns.map
filter = _fns.filter
flat_map = _fns.flat_map
each = _fns.each
ordered = _fns.ordered
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
    "Channel",
    "WorkerInfo",
    "StageStatus",
    "set_start_method",
    "get_start_method",
]
