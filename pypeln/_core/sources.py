"""Reading a plain iterable into indexed items, shared by the backends' feeders."""

from __future__ import annotations

from typing import Any, Iterable, Iterator, List, Sequence

from .element import Item

#: Sources read by slicing: they never block and know their length.
SEQUENCES = (list, tuple, range)

#: Most items in one batch read from a sequence (lists, tuples and ranges never block).
SEQUENCE_CHUNK = 1024


def source_batches(iterable: Iterable[Any]) -> Iterator[List[Item]]:
    """Batches of ``((position,), value)``: chunks for in-memory sequences, else one by one.

    An arbitrary iterator may block between items, so its items go out as soon as they
    are read; a list, tuple or range cannot block, so it is cut into chunks.
    """
    if isinstance(iterable, SEQUENCES):
        n = len(iterable)
        for start in range(0, n, SEQUENCE_CHUNK):
            yield sequence_items(iterable, start, start + SEQUENCE_CHUNK)
    else:
        for i, x in enumerate(iterable):
            yield [((i,), x)]


def sequence_items(seq: Sequence[Any], start: int, end: int) -> List[Item]:
    """The items of ``seq[start:end]``, indexed by position (built in C: ``zip`` of a
    range makes the 1-tuples)."""
    return list(zip(zip(range(start, end)), seq[start:end]))
