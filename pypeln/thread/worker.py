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
            if stage.op.per_item:
                self._run_items(f, indexed)
            else:
                put = sup.output.put_batch
                for out in run_batches(stage.op, self._ready()):
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

    def _ready(self) -> Iterator[List[Item]]:
        """The input, in batches of whatever is ready."""
        get, cap = self.supervisor.input.get_batch, self.supervisor.batch_cap
        while True:
            batch = get(cap)
            if batch is None:
                return
            yield batch

    def _run_items(self, f: Any, indexed: bool) -> None:
        """Apply `f` to batches of ready items, sized by how long the previous ones took.

        Only the time spent in `f` counts: waiting for room downstream is not slowness.
        With a timeout, items go one at a time, each under the supervisor's watch.
        """
        sup = self.supervisor
        stream, get, put = sup.stage.op.stream, sup.input.get_batch, sup.output.put_batch
        watched = bool(sup.stage.timeout)
        sizer = BatchSizer(1 if watched else sup.batch_cap)
        clock = time.perf_counter
        while True:
            batch = get(sizer.limit)
            if batch is None:
                return
            if watched:
                self._watch_item(True)
            t = clock()
            out = list(stream(f, batch, indexed))
            if watched:
                self._watch_item(False)
            else:
                sizer.update(len(batch), clock() - t)
            if out:
                put(out)

    def _watch_item(self, starting: bool) -> None:
        """Tell the supervisor an item starts or ends; raise `Abandoned` if it gave up on us."""
        with self.supervisor.lock:
            if self.abandoned:
                raise Abandoned()
            self.started = time.monotonic() if starting else None
