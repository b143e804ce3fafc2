"""`IterableQueue`: the queue between process stages, on the parent's side."""

from __future__ import annotations

from typing import TypeVar

from .._core.examples import QUEUE, example
from .._core.queue import IterableQueue as ThreadQueue

T = TypeVar("T")


@example(QUEUE, "pl.process")
class IterableQueue(ThreadQueue[T]):
    """The bounded queue between process stages; it lives in the parent process.

    Items never cross a process boundary through it: a stage's `Supervisor` takes batches
    from its input queue in the parent, sends them to each worker process through that
    worker's own pipe, and puts the results into its output queue. So it is the core's
    thread-safe queue (`pypeln._core.queue.IterableQueue`), unchanged, and interchangeable
    with it: a run builds its queues as the core's.
    """
