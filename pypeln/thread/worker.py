"""`Worker`: one thread that runs a stage's `f` over the items of its input queue."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Optional

from .._core.batching import BatchSizer
from .._core.errors import Cancelled
from .._core.inject import Lifecycle
from .._core.queue import Taken3, deliver, take

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
        #: the batch it works on under a timeout (the supervisor finishes it if it gives up)
        self.current: Optional[Taken3] = None
        self.thread: Optional[threading.Thread] = None

    def start(self) -> None:
        self.thread = self.supervisor.spawn(self._main)

    def _main(self) -> None:
        sup = self.supervisor
        stage = sup.stage
        try:
            life = Lifecycle(stage.where, stage.f, stage.on_start, stage.on_done, self.index)
            self._run_items(*life.start())
            sup.active.finish()
            life.done(sup.active)
            sup.output.done()
        except (Cancelled, Abandoned):
            pass
        except BaseException as e:
            if not self.abandoned:
                sup.execution.fail(e)

    def _run_items(self, f: Any, indexed: bool) -> None:
        """Apply `f` to batches of ready items, sized by how long the previous ones took.

        Only the time spent in `f` counts: waiting for room downstream is not slowness.
        With a timeout, items go one at a time, each under the supervisor's watch.
        """
        sup = self.supervisor
        stream, inq, out = sup.stage.op.stream, sup.input, sup.output
        watched = bool(sup.stage.timeout)
        sizer = BatchSizer(1 if watched else sup.batch_cap)
        clock = time.perf_counter
        while True:
            taken = take(inq, out, sizer.limit)
            if taken is None:
                return
            if watched:
                self._watch_item(taken)
            t = clock()
            outputs = list(stream(f, taken[0], indexed))
            if watched:
                self._watch_item(None)
            else:
                sizer.update(len(taken[0]), clock() - t)
            deliver(inq, out, outputs, taken)

    def _watch_item(self, taken: Optional[Taken3]) -> None:
        """Tell the supervisor an item starts (`taken`) or ends (None); raise `Abandoned`
        if it gave up on us."""
        with self.supervisor.lock:
            if self.abandoned:
                raise Abandoned()
            self.started = time.monotonic() if taken is not None else None
            self.current = taken
