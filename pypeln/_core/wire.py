"""How a batch's results travel back from a worker elsewhere (a process, a Ray actor):
compactly, with the indices left behind.

A worker gets only the values of a batch (indices stay with the sender: they cost more to
pickle than most values), indexes them locally ``(0,), (1,), ...``, and sends its outputs
back in the most compact form that fits (`encode_results`); the sender puts the real
indices back (`decode_results`). What the worker's error policy counted travels along, only
when it is not all zero (`take_counts`, `add_counts`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple

from .columns import Columns, Indices, as_rows, index_list, picked

if TYPE_CHECKING:
    from .stats import Counters

# How a batch's output indices relate to its input's (see `encode_results`):
SAME = 0  #: payload: values; one output per input, same indices in the same order (map)
PICK = 1  #: payload: (positions, values); each output has the index of one input (filter)
LOCAL = 2  #: payload: items indexed from local positions, extended (flat_map)
REAL = 3  #: payload: items with their real indices (``element_index`` was used)

#: Local indices ``(0,), (1,), ...`` a worker gives the values of a batch.
_LOCAL_INDICES: List[Tuple[int]] = [(k,) for k in range(1 << 12)]


def _local_indices(n: int) -> List[Tuple[int]]:
    return _LOCAL_INDICES[:n] if n <= len(_LOCAL_INDICES) else [(k,) for k in range(n)]


def local_items(values: Sequence[Any]) -> List[Tuple[Tuple[int], Any]]:
    """A batch's values indexed by position (indices stay in the parent: they cost more to
    pickle than most values)."""
    return list(zip(_local_indices(len(values)), values))


def encode_results(out: List[Any], n: int) -> Tuple[int, Any]:
    """The outputs of a batch of `n` local items, in the most compact form that fits.

    Every operator gives an output the index of the input it came from, possibly extended
    (`flat_map`); the parent maps local positions back to real indices (`decode_results`).
    """
    indices = [i for i, _ in out]
    values = [y for _, y in out]
    if len(indices) == n and indices == _local_indices(n):
        return SAME, values
    if max(map(len, indices), default=1) == 1:
        return PICK, ([i[0] for i in indices], values)
    return LOCAL, out


def decode_results(indices: Indices, kind: int, payload: Any) -> List[Any]:
    """Items with real indices, from what `encode_results` made of a batch with `indices`."""
    if kind == SAME:
        return as_rows(indices, payload)
    if kind == PICK:
        kept, values = payload
        return as_rows(picked(indices, kept), values)
    if kind == LOCAL:
        real = index_list(indices)
        return [(real[i[0]] + i[1:], y) for i, y in payload]
    return payload  # type: ignore[no-any-return]


def decode_columns(indices: Indices, kind: int, payload: Any) -> Optional[Columns]:
    """Like `decode_results`, as columns, for the kinds that keep one index per output
    (`SAME`, `PICK`); None for the others."""
    if kind == SAME:
        return indices, payload
    if kind == PICK:
        positions, values = payload
        return picked(indices, positions), values
    return None


def result_values(kind: int, payload: Any) -> List[Any]:
    """The output values in what `encode_results` made (to say which cannot be sent)."""
    if kind == SAME:
        return list(payload)
    if kind == PICK:
        return list(payload[1])
    return [y for _, y in payload]


#: What a worker counts (its guard, its timeouts) and its result carries along, in order:
#: how many of those events the batch saw.
COUNTED = ("failed", "retried", "skipped", "timed_out")


def take_counts(c: Counters) -> Optional[Tuple[int, ...]]:
    """In a worker: what it counted since the last call (`COUNTED`; None: nothing), reset."""
    if not (c.failed or c.retried or c.skipped or c.timed_out):
        return None
    counts = (c.failed, c.retried, c.skipped, c.timed_out)
    c.failed = c.retried = c.skipped = c.timed_out = 0
    return counts


def add_counts(c: Counters, counts: Sequence[int]) -> None:
    """On the sending side: add what a worker reported (`take_counts`) to its counters."""
    failed, retried, skipped, timed_out = counts
    c.failed += failed
    c.retried += retried
    c.skipped += skipped
    c.timed_out += timed_out
