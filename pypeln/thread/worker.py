"""`Worker`: one thread that runs a stage's `f` over the items of its input queue."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Iterator, List, Optional

from .._core.batching import BatchSizer
from .._core.element import Item
from .._core.errors import Cancelled
from .._core.inject import Resources, StageStatus
from .._core.ops import run_batches

if TYPE_CHECKING:
    from .supervisor import Supervisor


class Abandoned(BaseException):
    """Raised in a worker whose item overran the stage's timeout; it has been replaced."""


class Worker:
    """Runs `on_start`, then `f` over batches of its stage's input, then `on_done`."""

    def __init__(self, supervisor: Supervisor, index: int) -> None:
        self.supervisor = supervisor
        self.index = index
        #: when the current item started (timeout watch), None between items
        self.started: Optional[float] = None
        self.abandoned = False
        self.thread: Optional[threading.Thread] = None

    def start(self) -> None:
        self.thread = self.supervisor.spawn(self._main)

    def _main(self) -> None:
        sup = self.supervisor
        stage = sup.stage
        try:
            resources = Resources(stage.where, stage.f, self.index)
            if stage.on_start is not None:
                resources.add(stage.on_start(**resources.on_start_kwargs(stage.on_start)))
            f, indexed = resources.bound_f() if stage.f is not None else (None, False)
            put = sup.output.put_batch
            if stage.timeout:
                self._run_watched(f, indexed)
            else:
                for out in run_batches(stage.op, f, self._batches(sup.batch_cap), indexed):
                    put(out)
            sup.worker_finished()
            if stage.on_done is not None:
                status = StageStatus(sup.active)
                stage.on_done(**resources.on_done_kwargs(stage.on_done, status))
            sup.output.done()
        except (Cancelled, Abandoned):
            pass
        except BaseException as e:
            if not self.abandoned:
                sup.execution.fail(e)

    def _batches(self, cap: int) -> Iterator[List[Item]]:
        """Ready items, in batches sized by how long the previous ones took."""
        get = self.supervisor.input.get_batch
        sizer = BatchSizer(cap)
        clock = time.perf_counter
        while True:
            batch = get(sizer.limit)
            if batch is None:
                return
            t = clock()
            yield batch
            sizer.update(len(batch), clock() - t)

    def _run_watched(self, f: Any, indexed: bool) -> None:
        """One item at a time, each under the supervisor's timeout watch."""
        sup = self.supervisor
        stream, get, put = sup.stage.op.stream, sup.input.get_batch, sup.output.put_batch
        lock = sup.lock
        while True:
            batch = get(1)
            if batch is None:
                return
            with lock:
                if self.abandoned:
                    raise Abandoned()
                self.started = time.monotonic()
            out = list(stream(f, batch, indexed))
            with lock:
                self.started = None
                if self.abandoned:
                    raise Abandoned()
            if out:
                put(out)
