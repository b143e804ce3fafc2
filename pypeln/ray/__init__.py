"""Stages whose workers are Ray actors: the same pipelines, on a cluster.

Each worker is an actor (`on_start` runs where it lives, and its resources stay there);
items travel to the actors in batches and results come back as they are ready. A stage
uses the Ray session of the driver (``ray.init(...)`` before the run), or starts one:
``ray.init()``, which joins the cluster named by ``RAY_ADDRESS``, or else starts a local
Ray (a few seconds, once per process). Ray is an optional extra: ``pip install
'pypeln[ray]'``.

Besides the contract's parameters, ``map``, ``filter``, ``flat_map`` and ``each`` take
keyword-only resource requests for each of the stage's actors: ``num_cpus``, ``num_gpus``,
``memory`` (bytes), ``resources`` (custom resources, a dict) and ``ray_options`` (a dict
of any other `ActorClass.options`, e.g. ``runtime_env`` or ``scheduling_strategy``).

>>> import pypeln as pl
>>> sorted(range(5) | pl.ray.map(lambda x: x * 10, workers=2))  # doctest: +SKIP
[0, 10, 20, 30, 40]
"""

from __future__ import annotations

from typing import Any, Dict, List

from .._core.api import StageFunctions
from .._core.element import Element, Item
from .._core.execution import Execution, ExecutionBackend
from .._core.inject import StageStatus, WorkerInfo
from .._core.queue import IterableQueue as ThreadQueue
from .._core.stage import Partial, Stage
from .namespace import Namespace
from .queue import IterableQueue
from .session import check_options, ray_module
from .supervisor import Supervisor
from .worker import Worker


class RayBackend(ExecutionBackend):
    name = "ray"

    def runner(
        self,
        stage: Stage[Any],
        inq: ThreadQueue[Item],
        out: ThreadQueue[Item],
        execution: Execution,
    ) -> Supervisor:
        return Supervisor(stage, inq, out, execution)


_RESOURCES_DOC = """
        Resource requests (`pl.ray` only, keyword-only), for each of the stage's actors:
        ``num_cpus``, ``num_gpus``, ``memory`` (bytes), ``resources`` (a dict of custom
        resources) and ``ray_options`` (a dict of other Ray actor options).
        """


class RayStageFunctions(StageFunctions):
    """The contract's stage functions; map, filter, flat_map and each also take resource
    requests for their actors."""

    def __init__(self, backend: RayBackend) -> None:
        super().__init__(backend)
        for name in ("map", "filter", "flat_map", "each"):
            function = getattr(self, name).__func__
            function.__doc__ = function.__doc__.rstrip() + "\n" + _RESOURCES_DOC

    def stage_options(self, where: str, options: Dict[str, Any]) -> Dict[str, Any]:
        ray_module()  # fails here, naming the extra, when Ray is not installed
        check_options(where, options)
        return {k: v for k, v in options.items() if v is not None}


BACKEND = RayBackend()
# Type checkers see the contract's typed overloads; at run time the per-item functions
# also take the resource requests.
_fns: StageFunctions = RayStageFunctions(BACKEND)

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
