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
    """Starts at one item and doubles while batches stay under `TARGET_SECONDS`."""

    __slots__ = ("limit", "cap", "target")

    def __init__(self, cap: int = MAX_BATCH, target: float = TARGET_SECONDS) -> None:
        self.cap = max(1, cap)
        self.limit = 1
        #: how long one batch should take (longer where each batch costs a round trip)
        self.target = target

    def update(self, items: int, seconds: float) -> None:
        """Record that `items` items took `seconds` to process."""
        ideal = self.cap if seconds <= 0 else int(items * self.target / seconds)
        self.limit = max(1, min(self.cap, ideal, self.limit * 2))
