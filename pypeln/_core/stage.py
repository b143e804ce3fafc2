"""The stage graph: immutable descriptions of work, composed with ``|``.

A `Stage` only describes work. Iterating it asks its backend to `start` a run (an
`Execution` of queues, workers and supervisors, or `sync`'s generators) that yields
batches of items and is torn down when the consumer finishes, breaks out or fails. Stages
of other backends and plain iterables may stand anywhere upstream: each backend feeds them
in through the same hooks (`pypeln._core.contracts`).
"""

from __future__ import annotations

import os
from typing import (
    Any,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    Generator,
    Generic,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Tuple,
    TypeVar,
    Union,
)

from .contracts import Backend as Backend  # what a stage function is bound to (api.py)
from .contracts import Startable
from .element import Element
from .ops import Operator
from .policy import Policy
from .stats import RunStats

T = TypeVar("T")
R = TypeVar("R")


class Undefined:
    """Marks a parameter that was not given (the stage of a `Partial`)."""

    _instance: Optional[Undefined] = None

    def __new__(cls) -> Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED = Undefined()


class AsyncConsumer(NamedTuple):
    """How stages are consumed from asyncio code; a backend provides it (`task`)."""

    #: ``to_async_iterable(stage)``: the stage's values, for ``async for``
    to_async_iterable: Callable[[Any], AsyncIterable[Any]]
    #: ``collect(stage)``: an awaitable of the list of the stage's values
    collect: Callable[[Any], Awaitable[List[Any]]]


_async_consumer: Optional[AsyncConsumer] = None


def set_async_consumer(
    to_async_iterable: Callable[[Any], AsyncIterable[Any]],
    collect: Callable[[Any], Awaitable[List[Any]]],
) -> None:
    """Make every Stage consumable with ``async for`` and ``await``, through these two.

    The core runs no event loop of its own: the backend that does (`task`) registers
    its consumers when imported.
    """
    global _async_consumer
    _async_consumer = AsyncConsumer(to_async_iterable, collect)


#: Imports the backend that registers the async consumers, when none has yet (set by the
#: package, which imports its backends on first use).
_async_consumer_loader: Optional[Callable[[], Any]] = None


def set_async_consumer_loader(load: Callable[[], Any]) -> None:
    global _async_consumer_loader
    _async_consumer_loader = load


def _get_async_consumer() -> AsyncConsumer:
    if _async_consumer is None and _async_consumer_loader is not None:
        _async_consumer_loader()
    if _async_consumer is None:
        raise RuntimeError(
            "await and async for on a stage need a backend that runs stages on an event "
            "loop, and none is registered: import pypeln.task (importing pypeln does)"
        )
    return _async_consumer


class Stage(Generic[T]):
    """An immutable description of a pipeline stage, runnable any number of times.

    The stage functions of every backend (``pl.thread.map``, ...) return one; a Stage only
    describes work. Iterate it (``for``, ``list``, `to_iterable`, `run`) to run it and every
    stage it depends on; iterating it again runs it again. ``stage | f`` is ``f(stage)``, so
    stages chain with ``|`` and ``stage | list`` collects the output. A task stage (or any
    stage, from asyncio code) also supports ``await stage`` (a list) and ``async for``.
    ``pl.BaseStage`` is another name for this class (as in pypeln 0.4.9).

    >>> import pypeln as pl
    >>> stage = [1, 2, 3] | pl.thread.map(lambda x: x + 1, workers=2)
    >>> isinstance(stage, pl.Stage)
    True
    >>> sorted(stage), sorted(stage)  # each iteration is a new run
    ([2, 3, 4], [2, 3, 4])
    >>> stage | pl.sync.ordered | list
    [2, 3, 4]
    """

    __slots__ = (
        "backend",
        "op",
        "f",
        "deps",
        "workers",
        "maxsize",
        "timeout",
        "on_start",
        "on_done",
        "options",
        "where",
        "policy",
    )

    def __init__(
        self,
        backend: Startable,
        op: Operator,
        deps: Tuple[Any, ...],
        f: Optional[Callable[..., Any]] = None,
        workers: int = 1,
        maxsize: int = 0,
        timeout: float = 0,
        on_start: Optional[Callable[..., Any]] = None,
        on_done: Optional[Callable[..., Any]] = None,
        options: Optional[Dict[str, Any]] = None,
        where: str = "",
        policy: Optional[Policy] = None,
    ) -> None:
        self.backend = backend
        self.op = op
        self.deps = deps
        self.f = f
        self.workers = workers
        self.maxsize = maxsize
        self.timeout = timeout
        self.on_start = on_start
        self.on_done = on_done
        self.options: Dict[str, Any] = options or {}
        self.where = where or f"pl.{backend.name}.{op.name}"
        #: what it does when `f` fails, and its rate (None: raise, no limit)
        self.policy = policy

    def __repr__(self) -> str:
        name = getattr(self.f, "__qualname__", None)
        return f"<Stage {self.where}{'(' + name + ')' if name else ''} workers={self.workers}>"

    def __iter__(self) -> Iterator[T]:
        return iter_values(self, 0)

    def __or__(self, f: Callable[[Stage[T]], R]) -> R:
        return f(self)

    def to_iterable(self, maxsize: int = 0, return_index: bool = False) -> Iterable[Any]:
        """Run the stage, iterating its values (or `Element`s with ``return_index=True``).

        ``maxsize`` bounds the items waiting for the consumer (0: the stage's own bound).

        >>> import pypeln as pl
        >>> list(pl.sync.map(str, [1, 2]).to_iterable(return_index=True))
        [Element(index=(0,), value='1'), Element(index=(1,), value='2')]
        """
        if return_index:
            return iter_elements(self, maxsize)
        return iter_values(self, maxsize)

    # Every stage can be consumed from asyncio code, through the registered consumer.
    def __aiter__(self) -> AsyncIterator[T]:
        iterable: AsyncIterable[T] = _get_async_consumer().to_async_iterable(self)
        return iterable.__aiter__()

    def __await__(self) -> Generator[Any, None, List[T]]:
        values: Awaitable[List[T]] = _get_async_consumer().collect(self)
        return values.__await__()


def iter_batches(
    stage: Any,
    maxsize: int,
    stats: Optional[RunStats] = None,
    progress: Any = None,
    values: bool = False,
) -> Generator[Any, None, None]:
    """Run `stage` (a Stage of any backend) and yield its output batches; tears down at the end.

    With `values`, the batches hold the items' values only.

    The run counts into `stats` (a fresh `RunStats` if None); `progress` (True, "force")
    draws a bar per stage while it runs (`pypeln._core.bars`).
    """
    if stats is None:
        stats = RunStats()
    if progress is None:
        progress = progress_from_environment()
        if progress:
            from .bars import environment_bars_possible

            progress = environment_bars_possible(os.environ["PYPELN_PROGRESS"]) and progress
    bars = None
    from .execution import check_not_inside  # (it builds on this module)

    check_not_inside(stage)
    stats.plan(stage)
    stats.start()
    try:
        execution = stage.backend.start(stage, maxsize, stats)
        try:
            if progress:
                from .bars import Bars

                bars = Bars(stats, stage, progress)
            if not values:
                yield from execution
            elif hasattr(execution, "value_batches"):
                yield from execution.value_batches()
            else:
                yield from ([x for _, x in batch] for batch in execution)
        finally:
            execution.cancel()
            execution.close()
    finally:
        stats.end()
        if bars is not None:
            bars.close()


def iter_values(
    stage: Stage[T], maxsize: int, stats: Optional[RunStats] = None, progress: Any = None
) -> Iterator[T]:
    for values in iter_batches(stage, maxsize, stats, progress, values=True):
        yield from values


def iter_elements(
    stage: Stage[Any], maxsize: int, stats: Optional[RunStats] = None, progress: Any = None
) -> Iterator[Element]:
    make = Element._make
    for batch in iter_batches(stage, maxsize, stats, progress):
        for item in batch:
            yield make(item)


def progress_from_environment() -> Any:
    """``PYPELN_PROGRESS=1`` (or ``force``) turns progress bars on for every run."""
    value = os.environ.get("PYPELN_PROGRESS", "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    return "force" if value == "force" else True


class PipelineIterator(Generic[T]):
    """What `to_iterable` returns: the run's output, and its statistics as `stats`.

    The run starts on the first `next` (or ``iter``); `stats` (a `RunStats`) can be read
    from any thread from the start, live while the run goes on, complete once it ended.
    ``for x in it`` iterates the run's generator itself, at no cost per item.

    >>> import pypeln as pl
    >>> it = pl.thread.to_iterable(pl.thread.map(abs, [-1, -2, 3], workers=2))
    >>> sorted(it)
    [1, 2, 3]
    >>> it.stats[0].items_out
    3
    """

    __slots__ = ("stats", "_generator")

    def __init__(
        self,
        stage: Stage[Any],
        maxsize: int,
        return_index: bool = False,
        progress: Any = None,
    ) -> None:
        self.stats = RunStats()
        make = iter_elements if return_index else iter_values
        self._generator: Iterator[T] = make(  # type: ignore[assignment]
            stage, maxsize, self.stats, progress
        )

    def __iter__(self) -> Iterator[T]:
        return self._generator

    def __next__(self) -> T:
        return next(self._generator)

    def close(self) -> None:
        """Stop the run now (as breaking out of the loop does): its workers stop, and the
        iterator yields nothing more.

        >>> import itertools, pypeln as pl
        >>> it = pl.thread.to_iterable(pl.thread.map(abs, itertools.count()))
        >>> next(it)
        0
        >>> it.close()
        >>> list(it)
        []
        """
        self._generator.close()  # type: ignore[attr-defined]


class Partial(Generic[R]):
    """A stage function waiting for its input: ``iterable | partial`` is ``partial(iterable)``.

    Every stage function called without its ``stage`` (or ``iterable``) argument returns one,
    which is how pipelines are written with ``|``.

    >>> import pypeln as pl
    >>> double = pl.sync.map(lambda x: 2 * x)
    >>> isinstance(double, pl.Partial)
    True
    >>> list(double([1, 2])), list([1, 2] | double)
    ([2, 4], [2, 4])
    """

    __slots__ = ("f",)

    def __init__(self, f: Callable[[Any], R]) -> None:
        self.f = f

    def __call__(self, stage: Any) -> R:
        return self.f(stage)

    def __ror__(self, stage: Any) -> R:
        return self.f(stage)

    def __or__(self, stage: Any) -> R:
        return self.f(stage)


StageOrIterable = Union[Stage[T], Iterable[T]]
