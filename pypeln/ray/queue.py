"""`IterableQueue`: the queue between `pl.ray` stages, in the driver."""

from __future__ import annotations

from typing import TypeVar

from .._core.examples import QUEUE, example
from .._core.queue import IterableQueue as ThreadQueue

T = TypeVar("T")


@example(QUEUE, "pl.ray")
class IterableQueue(ThreadQueue[T]):
    """The bounded queue between `pl.ray` stages; it lives in the driver.

    Items reach the actors through calls, not through it: a stage's `Supervisor` takes
    batches from its input queue in the driver, submits each to an actor and puts the
    results into its output queue as they come back. So it is the core's thread-safe
    queue (`pypeln._core.queue.IterableQueue`), unchanged and interchangeable with it: a
    run builds its queues as the core's.
    """
