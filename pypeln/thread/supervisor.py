"""`Supervisor`: starts a thread stage's workers, replaces those whose item overruns its
timeout, and stops them when the run ends."""

from __future__ import annotations

import threading
import time
from typing import Any, List

from .._core.batching import MAX_BATCH
from .._core.element import Item
from .._core.execution import Execution, StageRunner
from .._core.inject import WorkerCount
from .._core.queue import IterableQueue
from .._core.stage import Stage
from .._core.threadstop import raise_in_thread
from .worker import Abandoned, Worker


class Supervisor(StageRunner):
    """Runs one thread stage of an `Execution`."""

    def __init__(
        self,
        stage: Stage[Any],
        input: IterableQueue[Item],
        output: IterableQueue[Item],
        execution: Execution,
    ) -> None:
        super().__init__(stage, input, output, execution)
        n = stage.workers
        self.active = WorkerCount(n)
        self.batch_cap = min(MAX_BATCH, stage.maxsize or MAX_BATCH)
        self.lock = threading.Lock()
        self.workers: List[Worker] = [Worker(self, i) for i in range(n)]
        self._stopped = threading.Event()
        output.add_producers(n)

    def start(self) -> None:
        for w in self.workers:
            w.start()
        if self.stage.timeout:
            self.spawn(self._watch)

    def cancel(self) -> None:
        self._stopped.set()

    def _drop(self, worker: Worker) -> None:
        """`worker`'s item overran: it is dropped (its room given back, its take finished)."""
        taken = worker.current
        if taken is not None:
            if taken[2]:
                self.output.put_batch([], taken[2])
            if self.input.progress is not None:
                self.input.finish(taken[1], len(taken[0]))

    def _watch(self) -> None:
        """Replace every worker whose current item has run longer than the timeout."""
        timeout = self.stage.timeout
        while not self._stopped.is_set():
            now = time.monotonic()
            wait = timeout
            with self.lock:
                for pos, w in enumerate(self.workers):
                    if w.started is None:
                        continue
                    left = w.started + timeout - now
                    if left <= 0:
                        w.abandoned = True
                        self._drop(w)
                        assert w.thread is not None
                        raise_in_thread(w.thread, Abandoned)
                        self.threads.remove(w.thread)
                        replacement = Worker(self, w.index)
                        self.workers[pos] = replacement
                        replacement.start()
                    else:
                        wait = min(wait, left)
            if self.active.value() <= 0:
                return
            self._stopped.wait(wait)
