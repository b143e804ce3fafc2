"""How many items a worker takes at once: what is ready, sized so a batch stays short.

Fast items travel in large batches (low overhead); slow items go one at a time so that
they spread over every worker.
"""

from __future__ import annotations

#: Most items a worker takes at once.
MAX_BATCH = 1024
#: How long one batch should take to process, in seconds.
TARGET_SECONDS = 0.002


class BatchSizer:
    """Starts at one item and grows (doubles, by default) while batches stay under their
    target time (`TARGET_SECONDS`, by default)."""

    __slots__ = ("limit", "cap", "target", "growth")

    def __init__(
        self, cap: int = MAX_BATCH, target: float = TARGET_SECONDS, growth: int = 2
    ) -> None:
        self.cap = max(1, cap)
        self.limit = 1
        #: how long one batch should take (longer where each batch costs a round trip)
        self.target = target
        #: how much faster the next batch may grow (faster where each costs a round trip)
        self.growth = growth

    def update(self, items: int, seconds: float) -> None:
        """Record that `items` items took `seconds` to process."""
        ideal = self.cap if seconds <= 0 else int(items * self.target / seconds)
        self.limit = max(1, min(self.cap, ideal, self.limit * self.growth))
