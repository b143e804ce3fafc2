"""The contract's stage functions for `task`: sync or async `f`, plus `to_async_iterable`."""

from __future__ import annotations

from typing import (
    Any,
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
    Optional,
    TypeVar,
    Union,
    overload,
)

from typing_extensions import Literal

from .._core import checks
from .._core.api import OptionalCallback, RetryOn, Source, StageFunctions
from .._core.element import Element
from .._core.ops import FLAT_MAP, MAP
from .._core.policy import DEFAULT_BACKOFF, OnError
from .._core.stage import UNDEFINED, Partial, Stage, Undefined
from .consume import AsyncPipelineIterator

A = TypeVar("A")
B = TypeVar("B")

FlatResult = Union[Iterable[B], AsyncIterable[B], Awaitable[Iterable[B]]]


class TaskStageFunctions(StageFunctions):
    """`StageFunctions` whose `f`, `on_start` and `on_done` may be coroutine functions.

    `filter` and `each` are the shared ones: their `f` already returns anything.
    """

    min_workers = 0
    accepts_async = True

    @overload  # type: ignore[override]
    def map(
        self,
        f: Callable[..., Awaitable[B]],
        stage: Source[Any],
        workers: int = 1,
        maxsize: int = 0,
        timeout: float = 0,
        on_start: OptionalCallback = None,
        on_done: OptionalCallback = None,
        *,
        on_error: OnError = "raise",
        retries: int = 0,
        backoff: float = DEFAULT_BACKOFF,
        retry_on: RetryOn = (Exception,),
        rate: Optional[float] = None,
    ) -> Stage[B]: ...

    @overload
    def map(
        self,
        f: Callable[..., B],
        stage: Source[Any],
        workers: int = 1,
        maxsize: int = 0,
        timeout: float = 0,
        on_start: OptionalCallback = None,
        on_done: OptionalCallback = None,
        *,
        on_error: OnError = "raise",
        retries: int = 0,
        backoff: float = DEFAULT_BACKOFF,
        retry_on: RetryOn = (Exception,),
        rate: Optional[float] = None,
    ) -> Stage[B]: ...

    @overload
    def map(
        self,
        f: Callable[..., Awaitable[B]],
        stage: Undefined = UNDEFINED,
        workers: int = 1,
        maxsize: int = 0,
        timeout: float = 0,
        on_start: OptionalCallback = None,
        on_done: OptionalCallback = None,
        *,
        on_error: OnError = "raise",
        retries: int = 0,
        backoff: float = DEFAULT_BACKOFF,
        retry_on: RetryOn = (Exception,),
        rate: Optional[float] = None,
    ) -> Partial[Stage[B]]: ...

    @overload
    def map(
        self,
        f: Callable[..., B],
        stage: Undefined = UNDEFINED,
        workers: int = 1,
        maxsize: int = 0,
        timeout: float = 0,
        on_start: OptionalCallback = None,
        on_done: OptionalCallback = None,
        *,
        on_error: OnError = "raise",
        retries: int = 0,
        backoff: float = DEFAULT_BACKOFF,
        retry_on: RetryOn = (Exception,),
        rate: Optional[float] = None,
    ) -> Partial[Stage[B]]: ...

    def map(
        self,
        f: Callable[..., Any],
        stage: Any = UNDEFINED,
        workers: int = 1,
        maxsize: int = 0,
        timeout: float = 0,
        on_start: OptionalCallback = None,
        on_done: OptionalCallback = None,
        *,
        on_error: OnError = "raise",
        retries: int = 0,
        backoff: float = DEFAULT_BACKOFF,
        retry_on: RetryOn = (Exception,),
        rate: Optional[float] = None,
    ) -> Any:
        """Apply ``f`` to each item: ``y = f(x)`` or ``y = await f(x)``.

        >>> import asyncio, pypeln as pl
        >>> async def double(x):
        ...     await asyncio.sleep(0.01)
        ...     return 2 * x
        >>> sorted({pl}.map(double, range(4), workers=4))
        [0, 2, 4, 6]

        Args:
            f: a function or coroutine function; it may also declare parameters named
                after `on_start`'s resources, ``worker_info`` or ``element_index``.
            stage: a Stage of any backend, an iterable or an async iterable; omitted, a
                `Partial` is returned.
            workers: the most items in flight at once (0: no limit).
            maxsize: the most items the stage holds at once (0: no bound).
            timeout: seconds one item may take (0: no limit); an overrunning item is
                cancelled and dropped.
            on_start: runs once for the stage first (may be async); may return a dict
                of resources, shared by every item in flight.
            on_done: runs once for the stage last (may be async).
        """
        return self._per_item(
            MAP,
            f,
            stage,
            workers,
            maxsize,
            timeout,
            on_start,
            on_done,
            {},
            (on_error, retries, backoff, retry_on, rate),
        )

    @overload
    def flat_map(
        self,
        f: Callable[..., FlatResult[B]],
        stage: Source[Any],
        workers: int = 1,
        maxsize: int = 0,
        timeout: float = 0,
        on_start: OptionalCallback = None,
        on_done: OptionalCallback = None,
        *,
        on_error: OnError = "raise",
        retries: int = 0,
        backoff: float = DEFAULT_BACKOFF,
        retry_on: RetryOn = (Exception,),
        rate: Optional[float] = None,
    ) -> Stage[B]: ...

    @overload
    def flat_map(
        self,
        f: Callable[..., FlatResult[B]],
        stage: Undefined = UNDEFINED,
        workers: int = 1,
        maxsize: int = 0,
        timeout: float = 0,
        on_start: OptionalCallback = None,
        on_done: OptionalCallback = None,
        *,
        on_error: OnError = "raise",
        retries: int = 0,
        backoff: float = DEFAULT_BACKOFF,
        retry_on: RetryOn = (Exception,),
        rate: Optional[float] = None,
    ) -> Partial[Stage[B]]: ...

    def flat_map(
        self,
        f: Callable[..., Any],
        stage: Any = UNDEFINED,
        workers: int = 1,
        maxsize: int = 0,
        timeout: float = 0,
        on_start: OptionalCallback = None,
        on_done: OptionalCallback = None,
        *,
        on_error: OnError = "raise",
        retries: int = 0,
        backoff: float = DEFAULT_BACKOFF,
        retry_on: RetryOn = (Exception,),
        rate: Optional[float] = None,
    ) -> Any:
        """Emit, one by one, the items of what ``f(x)`` returns: an iterable, an async
        iterable (e.g. an async generator) or an awaitable of an iterable.

        >>> import pypeln as pl
        >>> async def repeat(x):
        ...     for _ in range(x):
        ...         yield x
        >>> sorted({pl}.flat_map(repeat, range(4), workers=2))
        [1, 2, 2, 3, 3, 3]

        Parameters are those of `map`.
        """
        return self._per_item(
            FLAT_MAP,
            f,
            stage,
            workers,
            maxsize,
            timeout,
            on_start,
            on_done,
            {},
            (on_error, retries, backoff, retry_on, rate),
        )

    @overload
    def to_async_iterable(
        self, stage: Source[A], maxsize: int = 0, return_index: Literal[False] = False
    ) -> AsyncPipelineIterator[A]: ...

    @overload
    def to_async_iterable(
        self, stage: Source[Any], maxsize: int = 0, *, return_index: Literal[True]
    ) -> AsyncPipelineIterator[Element]: ...

    @overload
    def to_async_iterable(
        self, stage: Undefined = UNDEFINED, maxsize: int = 0, return_index: bool = False
    ) -> Partial[AsyncPipelineIterator[Any]]: ...

    def to_async_iterable(
        self, stage: Any = UNDEFINED, maxsize: int = 0, return_index: bool = False
    ) -> Any:
        """Run the pipeline on the running event loop, for ``async for``.

        Yields the values (or `Element`s with ``return_index=True``). Leaving the loop
        early (``break``, an error, cancellation) stops the whole pipeline.

        >>> import asyncio, pypeln as pl
        >>> async def main():
        ...     return [x async for x in pl.task.to_async_iterable(range(3))]
        >>> asyncio.run(main())
        [0, 1, 2]

        The iterator carries the run's statistics, live and after the end:

        >>> async def counted():
        ...     it = pl.task.to_async_iterable(pl.task.map(abs, [-1, 2]))
        ...     values = sorted([x async for x in it])
        ...     return values, it.stats[0].items_out
        >>> asyncio.run(counted())
        ([1, 2], 2)
        """
        where = self._where("to_async_iterable")
        checks.integer(where, "maxsize", maxsize, 0)
        checks.flag(where, "return_index", return_index)
        if isinstance(stage, Undefined):
            return Partial(lambda s: self.to_async_iterable(s, maxsize, return_index))
        checks.source(where, "stage", stage, self.accepts_async)
        return AsyncPipelineIterator(stage, maxsize, return_index)
