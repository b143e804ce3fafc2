"""A batch as two columns, its items' indices and their values, and as rows of items.

Where a stage's operator maps or filters values one for one (`Operator.over_values`),
items move as columns: no ``(index, value)`` pair is made per item, and a queue holds a
batch as two lists instead of one tuple per item (which Python's garbage collector would
otherwise visit again and again while they wait). Indices of the form ``(position,)``
(items straight from a source, not from a `flat_map`) are kept as their positions: the
`range` of them where they are consecutive, else a list of ints.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple, Union

from .element import Index, Item

#: A column of indices: positions, each one the index ``(position,)`` (a `range`, or a
#: list of ints), or a list of index tuples.
Indices = Sequence[Any]
#: A batch as columns: its indices and its values, as long as each other.
Columns = Tuple[Indices, Sequence[Any]]
#: Part of a take from a queue: a list of items (rows), or a tuple of columns.
Part = Union[List[Any], Columns]


def positions(indices: Indices) -> bool:
    """Whether a column holds positions (see `Indices`) rather than index tuples."""
    return type(indices) is range or (len(indices) > 0 and type(indices[0]) is int)


def as_rows(indices: Indices, values: Sequence[Any]) -> List[Item]:
    """The ``(index, value)`` items of a batch given as columns."""
    if positions(indices):
        return list(zip(zip(indices), values))
    return list(zip(indices, values))


def as_columns(rows: Sequence[Item]) -> Tuple[List[Index], List[Any]]:
    """A batch of items as its two columns."""
    return [i for i, _ in rows], [x for _, x in rows]


def index_list(indices: Indices) -> List[Index]:
    """The index tuples of a column."""
    if positions(indices):
        return list(zip(indices))
    return indices if type(indices) is list else list(indices)


def picked(indices: Indices, kept: Sequence[int]) -> List[Any]:
    """The indices at places `kept` of a column (the items a filter kept), as a column of
    the same kind."""
    return list(map(indices.__getitem__, kept))


def joined(parts: Sequence[Columns]) -> Columns:
    """One batch of columns made of several, in order."""
    if len(parts) == 1:
        return parts[0]
    flat = all(positions(part_indices) or not part_indices for part_indices, _ in parts)
    indices: List[Any] = []
    values: List[Any] = []
    for part_indices, part_values in parts:
        indices += part_indices if flat else index_list(part_indices)
        values += part_values
    return indices, values


def rows_of(taken: Optional[List[Part]]) -> Optional[List[Any]]:
    """Parts of a take, as a list of items (None stays None: the end)."""
    if taken is None:
        return None
    if len(taken) == 1:
        part = taken[0]
        return as_rows(*part) if isinstance(part, tuple) else part
    rows: List[Any] = []
    for part in taken:
        rows += as_rows(*part) if isinstance(part, tuple) else part
    return rows


def values_of(part: Part) -> Sequence[Any]:
    """The values of one part of a take."""
    return part[1] if type(part) is tuple else [x for _, x in part]


def columns_of(taken: List[Part]) -> Columns:
    """Parts of a take, as columns."""
    if not taken:
        return [], []
    return joined([part if isinstance(part, tuple) else as_columns(part) for part in taken])


def batch_size(batch: Any) -> int:
    """Items in a batch of rows or of columns."""
    return len(batch[1]) if type(batch) is tuple else len(batch)
