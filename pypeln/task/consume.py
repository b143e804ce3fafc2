"""Consuming a pipeline from a coroutine: ``async for``, ``await stage``, `collect`.

The run's task stages live on the caller's event loop; stages of other backends and sync
iterables are read by threads that hand batches to it. However the consumer stops
(end, error, ``break``, cancellation), every task of the run is cancelled and awaited
before control returns.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterable, AsyncIterator, Iterable, List, Optional, Type, TypeVar, Union

from .._core.element import Element, Item
from .._core.errors import Cancelled
from .._core.stage import Stage
from .queue import IterableQueue
from .run import TaskRun

T = TypeVar("T")


class LoopConsumer:
    """One run on the running loop, read batch by batch; use with ``async with``."""

    def __init__(self, stage: Any, maxsize: int = 0) -> None:
        self.stage = stage
        self.output: IterableQueue[Item] = IterableQueue(
            maxsize or (stage.maxsize if isinstance(stage, Stage) else 0)
        )
        self.run: Optional[TaskRun] = None

    async def __aenter__(self) -> LoopConsumer:
        run = self.run = TaskRun(asyncio.get_running_loop(), self._on_error)
        run.connect(self.stage, self.output)
        run.start()
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
        if self.run is not None:
            await self.run.aclose()


async def iterate(stage: Any, maxsize: int, return_index: bool) -> AsyncIterator[Any]:
    """The values (or `Element`s) of `stage`, run on the running loop."""
    async with LoopConsumer(stage, maxsize) as consumer:
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
