"""`Budget`: how many items a stage whose workers run elsewhere (worker processes, Ray
actors) may take from its input, so that ``maxsize`` downstream stays an exact bound.

Such a stage sends batches away and puts their results into its output from one thread
when they come back. Room in the output is not reserved in the queue (a result waiting to
be put would hold back the room of those behind it): the stage counts the items it has
sent and not yet delivered, and takes no more than the output's room minus those, except
one item when there is no room left (computed, then waiting to be put, as a thread worker
holding a finished item does). `take_within` is the loop every such stage runs.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional, Sequence, Tuple, TypeVar

from .queue import IterableQueue

#: What a take returns: its items (or their indices) first, then anything else.
T = TypeVar("T", bound=Tuple[Sequence[Any], Any])


class Budget:
    """Items a stage has taken and not yet delivered, against its output's room."""

    def __init__(self, output: IterableQueue[Any]) -> None:
        self.output = output
        self.bounded = bool(output.maxsize)
        #: items taken and not yet delivered
        self.in_flight = 0
        self._lock = threading.Lock()

    def grant(self, limit: int) -> Tuple[int, bool]:
        """How many items the next batch may take, and whether it is the one item beyond
        the room (the output is full)."""
        if not self.bounded:
            return limit, False
        with self._lock:
            room = self.output.room() - self.in_flight
            n, beyond = (min(limit, room), False) if room > 0 else (1, True)
            self.in_flight += n
        return n, beyond

    def release(self, n: int) -> None:
        """`n` granted items were delivered (or never taken)."""
        if self.bounded and n:
            with self._lock:
                self.in_flight -= n


def take_within(
    budget: Budget,
    input: IterableQueue[Any],
    limit: int,
    get: Callable[[int, bool], Optional[T]],
) -> Optional[Tuple[T, bool]]:
    """The next batch, ``get(n, block)`` within the budget (a tuple whose first element
    holds its items), and whether it is beyond the room; None once `input` has ended.
    With a bounded output nothing is taken blocking: no room is held while waiting."""
    while True:
        n, beyond = budget.grant(limit)
        taken = get(n, not budget.bounded)
        budget.release(n - (len(taken[0]) if taken is not None else 0))
        if taken is None:
            return None
        if taken[0]:
            return taken, beyond
        input.wait_ready()
