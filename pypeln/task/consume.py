"""Consuming a pipeline from a coroutine: ``async for``, ``await stage``, `collect`.

The run's task stages live on the caller's event loop; stages of other backends and sync
iterables are read by threads that hand batches to it. However the consumer stops
(end, error, ``break``, cancellation), every task of the run is cancelled and awaited
before control returns.

Every run counts into a `RunStats` of its own (its stages of other backends included):
``it = pl.task.to_async_iterable(stage)`` carries it as ``it.stats``, as `to_iterable`'s
iterator does.
"""

from __future__ import annotations

import asyncio
from typing import (
    Any,
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Generic,
    Iterable,
    List,
    Optional,
    Type,
    TypeVar,
    Union,
)

from .._core.element import Element, Item
from .._core.errors import Cancelled
from .._core.stage import Stage
from .._core.stats import RunStats
from .loop import TaskRun
from .queue import IterableQueue

T = TypeVar("T")


class LoopConsumer:
    """One run on the running loop, read batch by batch; use with ``async with``."""

    def __init__(self, stage: Any, maxsize: int = 0, stats: Optional[RunStats] = None) -> None:
        self.stage = stage
        self.output: IterableQueue[Item] = IterableQueue(
            maxsize or (stage.maxsize if isinstance(stage, Stage) else 0)
        )
        self.stats = stats if stats is not None else RunStats()
        self.run: Optional[TaskRun] = None

    async def __aenter__(self) -> LoopConsumer:
        stats = self.stats
        stats.plan(self.stage)
        stats.start()
        run = self.run = TaskRun(asyncio.get_running_loop(), self._on_error, stats=stats)
        try:
            run.connect(self.stage, self.output)
            run.start()
        except BaseException:
            stats.end()
            raise
        return self

    def _on_error(self, exc: BaseException) -> None:
        self.output.close()

    async def next_batch(self) -> Optional[List[Item]]:
        """The next output batch, or None at the end; raises the run's error."""
        try:
            return await self.output.get_batch(1 << 20)
        except Cancelled:
            run = self.run
            if run is not None and run.error is not None:
                error, run.error = run.error, None
                raise error from None
            raise

    async def __aexit__(self, exc_type: Optional[Type[BaseException]], *args: Any) -> None:
        try:
            if self.run is not None:
                await self.run.aclose()
        finally:
            self.stats.end()


async def iterate(
    stage: Any, maxsize: int, return_index: bool, stats: Optional[RunStats] = None
) -> AsyncGenerator[Any, None]:
    """The values (or `Element`s) of `stage`, run on the running loop."""
    async with LoopConsumer(stage, maxsize, stats) as consumer:
        make = Element._make
        while True:
            batch = await consumer.next_batch()
            if batch is None:
                return
            if return_index:
                for item in batch:
                    yield make(item)
            else:
                for _, value in batch:
                    yield value


class AsyncPipelineIterator(Generic[T]):
    """What `to_async_iterable` returns: the run's output, for ``async for``, and its
    statistics as `stats` (a `RunStats`: live while the run goes on, complete once it
    has ended).

    The run starts on the first ``__anext__``; ``async for x in it`` iterates the run's
    async generator itself, at no cost per item.
    """

    __slots__ = ("stats", "_generator")

    def __init__(self, stage: Any, maxsize: int = 0, return_index: bool = False) -> None:
        self.stats = RunStats()
        self._generator: AsyncGenerator[T, None] = iterate(stage, maxsize, return_index, self.stats)

    def __aiter__(self) -> AsyncIterator[T]:
        return self._generator

    async def __anext__(self) -> T:
        return await self._generator.__anext__()

    async def aclose(self) -> None:
        """Stop the run now (as breaking out of the loop does), and wait for its end."""
        await self._generator.aclose()


async def collect(
    stage: Union[Stage[T], Iterable[T], AsyncIterable[T]], maxsize: int = 0
) -> List[T]:
    """Run `stage` on the running loop and return the list of its values.

    ``await stage`` is the same as ``await collect(stage)``.

    >>> import asyncio, pypeln as pl
    >>> async def double(x):
    ...     return 2 * x
    >>> sorted(asyncio.run(pl.task.collect(pl.task.map(double, range(3)))))
    [0, 2, 4]
    """
    values: List[Any] = []
    async with LoopConsumer(stage, maxsize) as consumer:
        while True:
            batch = await consumer.next_batch()
            if batch is None:
                return values
            values.extend([value for _, value in batch])
