"""How many items a worker takes at once: what is ready, sized so a batch stays short.

Fast items travel in large batches (low overhead); slow items go one at a time so that
they spread over every worker.
"""

from __future__ import annotations

import time
from typing import Iterable, Iterator, List, TypeVar

T = TypeVar("T")

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


#: Most outputs of a streaming operator (`flat_map`) a worker gathers before handing them on.
HANDOVER_ITEMS = 1024
#: Longest a worker holds outputs it has gathered before handing them on, in seconds.
HANDOVER_SECONDS = 0.02


def handovers(
    outputs: Iterable[T], size: int = HANDOVER_ITEMS, seconds: float = HANDOVER_SECONDS
) -> Iterator[List[T]]:
    """`outputs` in lists, one every `size` outputs or as soon as `seconds` have passed since
    the last one, whichever comes first: a fast `f` hands on large lists, a slow one each
    output as it comes, and nothing is made ahead of what the consumer takes (the caller
    puts each list downstream before the next output is made)."""
    clock = time.monotonic
    chunk: List[T] = []
    last = clock()
    for y in outputs:
        chunk.append(y)
        if len(chunk) >= size or clock() - last >= seconds:
            yield chunk
            chunk = []
            last = clock()
    if chunk:
        yield chunk
