"""Reading a plain iterable into indexed items, shared by the backends' feeders."""

from __future__ import annotations

from typing import Any, Iterable, Iterator, List

from .element import Item

#: Most items in one batch read from a sequence (lists, tuples and ranges never block).
SEQUENCE_CHUNK = 1024


def source_batches(iterable: Iterable[Any]) -> Iterator[List[Item]]:
    """Batches of ``((position,), value)``: chunks for in-memory sequences, else one by one.

    An arbitrary iterator may block between items, so its items go out as soon as they
    are read; a list, tuple or range cannot block, so it is cut into chunks.
    """
    if isinstance(iterable, (list, tuple, range)):
        n = len(iterable)
        for start in range(0, n, SEQUENCE_CHUNK):
            chunk = iterable[start : start + SEQUENCE_CHUNK]
            yield [((i,), x) for i, x in enumerate(chunk, start)]
    else:
        for i, x in enumerate(iterable):
            yield [((i,), x)]
