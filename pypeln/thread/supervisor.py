"""`Supervisor`: starts a thread stage's workers, replaces those whose item overruns its
timeout, and stops them when the run ends."""

from __future__ import annotations

import threading
import time
from typing import Any, List

from .._core.batching import MAX_BATCH
from .._core.element import Item
from .._core.errors import Cancelled
from .._core.examples import SUPERVISOR, example
from .._core.execution import Execution, StageRunner
from .._core.inject import WorkerCount
from .._core.ops import fallback_outputs
from .._core.policy import retry_timed_out, timed_out
from .._core.queue import IterableQueue, deliver
from .._core.rate import RateLimiter
from .._core.stage import Stage
from .._core.threadstop import raise_in_thread
from .worker import Abandoned, Worker

#: How long teardown waits for a worker interrupted inside `f` to end.
INTERRUPTED_WAIT_SECONDS = 0.05


@example(SUPERVISOR, "pl.thread")
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
        #: the run was cancelled: workers call `f` no more (guarded by `lock`)
        self.stopping = False
        policy = stage.policy
        #: the stage's rate limit, shared by its workers
        self.limiter = RateLimiter(policy.rate) if policy is not None and policy.rate else None
        self.stats.alive = self.active.value
        output.add_producers(n)

    def start(self) -> None:
        for w in self.workers:
            w.start()
        if self.stage.timeout:
            self.spawn(self._watch)

    def cancel(self) -> None:
        self._stopped.set()
        with self.lock:
            self.stopping = True
            for w in self.workers:
                w.interrupt()

    def join(self, deadline: float) -> bool:
        """Wait for the workers until `deadline`; those interrupted inside `f` only briefly:
        one blocked in a call into C (a sleep, a read) ends when the call returns, and is
        not waited for (its thread is a daemon; it calls `f` no more)."""
        soon = min(deadline, time.monotonic() + INTERRUPTED_WAIT_SECONDS)
        lingering = {w.thread for w in self.workers if w.interrupted}
        for t in self.joinable():
            t.join(max(0.0, (soon if t in lingering else deadline) - time.monotonic()))
            if t in lingering and t.is_alive():
                # Once more: an exception that lands in a `__del__` or a gc callback is
                # dropped by Python; one blocked in C finds it when the call returns.
                raise_in_thread(t, Cancelled)
        return not any(t.is_alive() for t in self.joinable() if t not in lingering)

    def _overran(self, worker: Worker) -> Worker:
        """`worker`'s item overran: its replacement, which tries the item again if the
        stage's policy says so; else the item is dropped (or handed to `on_error`)."""
        taken, stage = worker.current, self.stage
        worker.counters.timed_out += 1
        if taken is not None and retry_timed_out(stage.policy, worker.attempt):
            worker.counters.retried += 1
            return Worker(self, worker.index, retry=(taken, worker.attempt + 1))
        if taken is not None:
            value = taken[0][0][1]
            outcome = timed_out(stage.policy, worker.counters, stage.op.name, value, stage.timeout)
            outputs = fallback_outputs(stage.op, outcome, taken[0])
            deliver(self.input, self.output, outputs, taken)
            worker.counters.items_in += len(taken[0])
            worker.counters.items_out += len(outputs)
        return Worker(self, worker.index)

    def _watch(self) -> None:
        """Replace every worker whose current item has run longer than the timeout."""
        timeout = self.stage.timeout
        try:
            while not self._stopped.is_set():
                now = time.monotonic()
                wait = timeout
                overran = []
                with self.lock:
                    for pos, w in enumerate(self.workers):
                        if w.started is None:
                            continue
                        left = w.started + timeout - now
                        if left <= 0:
                            w.abandoned = True
                            assert w.thread is not None
                            raise_in_thread(w.thread, Abandoned)
                            self.threads.remove(w.thread)
                            w.counters.end()
                            overran.append((pos, w))
                        else:
                            wait = min(wait, left)
                for pos, w in overran:  # (a handler or a full output may take time)
                    replacement = self._overran(w)
                    with self.lock:
                        self.workers[pos] = replacement
                    replacement.start()
                if self.active.value() <= 0:
                    return
                self._stopped.wait(0 if overran else wait)
        except Cancelled:
            pass
        except BaseException as e:
            self.execution.fail(e)
