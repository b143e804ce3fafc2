"""What an item is while it moves through a pipeline: its index and its value."""

from __future__ import annotations

from typing import Any, NamedTuple, Tuple

#: Position of an item in its source, extended by one level per `flat_map`.
Index = Tuple[int, ...]

#: The internal form of an item: a plain ``(index, value)`` pair (cheaper than `Element`).
Item = Tuple[Index, Any]


class Element(NamedTuple):
    """An item together with its index, as yielded by ``to_iterable(..., return_index=True)``.

    >>> import pypeln as pl
    >>> list(pl.sync.to_iterable([10, 20], return_index=True))
    [Element(index=(0,), value=10), Element(index=(1,), value=20)]
    """

    index: Index  # type: ignore[assignment]
    value: Any

    def set(self, value: Any) -> Element:
        """A copy of this element with another value.

        >>> import pypeln as pl
        >>> pl.Element((3,), "a").set("b")
        Element(index=(3,), value='b')
        """
        return Element(self.index, value)
