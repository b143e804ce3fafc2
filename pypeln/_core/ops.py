"""What each operator does to the items that reach it, written once for every backend.

An operator turns a stream of items ``(index, value)`` into another. Backends feed it
in whatever unit suits them: `sync` a lazy stream, `thread` and `process` one batch at a
time (``list(op.stream(f, batch, indexed))``); `task` item by item with `apply_async`.
An operator that `streams` (`flat_map`: one item, many outputs) has its outputs handed on
as they are made, in lists (`pypeln._core.batching.handovers`, `FlatMap.apply_streaming`).
"""

from __future__ import annotations

import inspect
import time
import types
from itertools import compress
from typing import Any, Awaitable, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

from .batching import HANDOVER_ITEMS, HANDOVER_SECONDS
from .element import Item
from .policy import SKIPPED
from .wire import PICK, SAME


class Operator:
    """Base: a per-item operator calls the stage's `f` once per item."""

    name = "operator"
    per_item = True
    #: whether one item may have many outputs, handed on as they are made (`flat_map`)
    streams = False
    #: whether `over_values` has a form (then a plain `f` may work on columns)
    columnar = False

    def stream(self, f: Any, items: Iterable[Item], indexed: bool) -> Iterator[Item]:
        """The outputs of `f` over `items` (`f` is None for operators without one)."""
        raise NotImplementedError

    def stream_for(self, guarded: bool) -> Callable[[Any, Iterable[Item], bool], Iterator[Item]]:
        """`stream`, or its form for an `f` under an error policy (which may return
        `SKIPPED`: false and empty, so only `map` needs a form of its own)."""
        return self.stream

    def over_values(self, f: Any, values: Sequence[Any]) -> Optional[Tuple[int, Any]]:
        """The outputs of a plain `f` (no index, no policy) over a batch's `values`, as
        `encode_results` would send them, made without building items (in C but for `f`
        itself); None for an operator without such a form."""
        return None

    async def apply_async(
        self, f: Callable[..., Any], item: Item, indexed: bool, out: List[Item]
    ) -> None:
        """Apply `f` (sync or async) to one item, appending the outputs to `out`."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name

    def __reduce__(self) -> str:
        # one instance each (`MAP`, ...), compared by identity: copies of a stage keep it
        return self.name.upper()


async def _call_async(f: Callable[..., Any], item: Item, indexed: bool) -> Any:
    result = f(item[1], item[0]) if indexed else f(item[1])
    if type(result) is _Coroutine or inspect.isawaitable(result):
        result = await result
    return result


_Coroutine = types.CoroutineType


class Map(Operator):
    name = "map"
    columnar = True

    def stream(self, f: Callable[..., Any], items: Iterable[Item], indexed: bool) -> Iterator[Item]:
        if indexed:
            return ((i, f(x, i)) for i, x in items)
        return ((i, f(x)) for i, x in items)

    def stream_for(self, guarded: bool) -> Callable[[Any, Iterable[Item], bool], Iterator[Item]]:
        return self._stream_skipping if guarded else self.stream

    def over_values(self, f: Any, values: Sequence[Any]) -> Optional[Tuple[int, Any]]:
        return SAME, list(map(f, values))

    @staticmethod
    def _stream_skipping(
        f: Callable[..., Any], items: Iterable[Item], indexed: bool
    ) -> Iterator[Item]:
        if indexed:
            for i, x in items:
                y = f(x, i)
                if y is not SKIPPED:
                    yield i, y
        else:
            for i, x in items:
                y = f(x)
                if y is not SKIPPED:
                    yield i, y

    async def apply_async(
        self, f: Callable[..., Any], item: Item, indexed: bool, out: List[Item]
    ) -> None:
        # `_call_async` inlined: this runs once per item of every task map.
        result = f(item[1], item[0]) if indexed else f(item[1])
        if type(result) is _Coroutine or inspect.isawaitable(result):
            result = await result
        if result is not SKIPPED:
            out.append((item[0], result))


class Filter(Operator):
    name = "filter"
    columnar = True

    def stream(self, f: Callable[..., Any], items: Iterable[Item], indexed: bool) -> Iterator[Item]:
        if indexed:
            return ((i, x) for i, x in items if f(x, i))
        return ((i, x) for i, x in items if f(x))

    def over_values(self, f: Any, values: Sequence[Any]) -> Optional[Tuple[int, Any]]:
        kept = list(map(f, values))
        return PICK, (list(compress(range(len(kept)), kept)), list(compress(values, kept)))

    async def apply_async(
        self, f: Callable[..., Any], item: Item, indexed: bool, out: List[Item]
    ) -> None:
        if await _call_async(f, item, indexed):
            out.append(item)


class FlatMap(Operator):
    """Each output of ``f(x)`` gets the index of x extended by its position."""

    name = "flat_map"
    streams = True

    def stream(self, f: Callable[..., Any], items: Iterable[Item], indexed: bool) -> Iterator[Item]:
        if indexed:
            return ((i + (j,), y) for i, x in items for j, y in enumerate(f(x, i)))
        return ((i + (j,), y) for i, x in items for j, y in enumerate(f(x)))

    async def apply_async(
        self, f: Callable[..., Any], item: Item, indexed: bool, out: List[Item]
    ) -> None:
        i = item[0]
        result = await _call_async(f, item, indexed)
        if hasattr(result, "__aiter__"):
            j = 0
            async for y in result:
                out.append((i + (j,), y))
                j += 1
        else:
            out.extend((i + (j,), y) for j, y in enumerate(result))

    async def apply_streaming(
        self,
        f: Callable[..., Any],
        item: Item,
        indexed: bool,
        out: List[Item],
        hand_on: Callable[[], Awaitable[None]],
    ) -> None:
        """`apply_async` awaiting ``hand_on()`` (which empties `out`) every
        `HANDOVER_ITEMS` outputs or `HANDOVER_SECONDS`, whichever comes first: outputs flow
        on as they are made, and a full output holds `f` back."""
        i = item[0]
        result = await _call_async(f, item, indexed)
        clock = time.monotonic
        last = clock()
        j = 0
        if hasattr(result, "__aiter__"):
            async for y in result:
                out.append((i + (j,), y))
                j += 1
                if len(out) >= HANDOVER_ITEMS or clock() - last >= HANDOVER_SECONDS:
                    await hand_on()
                    last = clock()
        else:
            for y in result:
                out.append((i + (j,), y))
                j += 1
                if len(out) >= HANDOVER_ITEMS or clock() - last >= HANDOVER_SECONDS:
                    await hand_on()
                    last = clock()


class Each(Operator):
    """Calls ``f(x)`` for its side effect; emits nothing."""

    name = "each"

    def stream(self, f: Callable[..., Any], items: Iterable[Item], indexed: bool) -> Iterator[Item]:
        if indexed:
            for i, x in items:
                f(x, i)
        else:
            for _, x in items:
                f(x)
        return iter(())

    async def apply_async(
        self, f: Callable[..., Any], item: Item, indexed: bool, out: List[Item]
    ) -> None:
        await _call_async(f, item, indexed)


class Forward(Operator):
    """Passes items through unchanged: `from_iterable` and `concat`."""

    name = "forward"
    per_item = False

    def stream(self, f: Any, items: Iterable[Item], indexed: bool) -> Iterator[Item]:
        return iter(items)


class Ordered(Operator):
    """Emits items in source order (by index): `pypeln._core.moving` does it, streaming
    what the watermark of its input covers (`pl.sync`, whose items come in order, passes
    them on)."""

    name = "ordered"
    per_item = False


class Batch(Operator):
    """Groups items into lists of up to ``size`` (`stream`'s `f`); a list's index is the
    smallest index of its items."""

    name = "batch"
    per_item = False

    def stream(self, f: Any, items: Iterable[Item], indexed: bool) -> Iterator[Item]:
        size: int = f
        chunk: List[Item] = []
        for item in items:
            chunk.append(item)
            if len(chunk) >= size:
                yield make_batch(chunk)
                chunk = []
        if chunk:
            yield make_batch(chunk)


def make_batch(items: List[Item]) -> Item:
    """One item holding the values of `items`, indexed by the smallest of their indices."""
    return (min(i for i, _ in items), [x for _, x in items])


class Unbatch(Operator):
    """Emits the values of each item (a list or any iterable) one by one; each gets its
    list's index extended by its position, as `flat_map` does."""

    name = "unbatch"
    per_item = False

    def stream(self, f: Any, items: Iterable[Item], indexed: bool) -> Iterator[Item]:
        return ((i + (j,), y) for i, xs in items for j, y in enumerate(xs))

    def batch(self, items: List[Item]) -> List[Item]:
        return [(i + (j,), y) for i, xs in items for j, y in enumerate(xs)]


MAP = Map()
FILTER = Filter()
FLAT_MAP = FlatMap()
EACH = Each()
FORWARD = Forward()
ORDERED = Ordered()
BATCH = Batch()
UNBATCH = Unbatch()


def fallback_outputs(op: Operator, value: Any, items: Iterable[Item]) -> List[Item]:
    """What `op` makes of `items` when `f` is replaced by a constant `value` (the fallback
    of an `on_error` handler, or `SKIPPED`)."""
    return list(op.stream_for(True)(lambda *_: value, items, False))
