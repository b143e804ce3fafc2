"""The stage functions of the contract, written once and bound to each backend.

Each backend module does ``_fns = StageFunctions(backend)`` and exports its bound methods
(``map = _fns.map``, ...). Docstrings are templates: ``{pl}`` becomes the module's name.
"""

from __future__ import annotations

import functools
import types
from typing import (
    Any,
    AsyncIterable,
    Callable,
    Dict,
    Iterable,
    List,
    Optional,
    Tuple,
    Type,
    TypeVar,
    Union,
    overload,
)

from typing_extensions import Literal

from . import checks
from .element import Element
from .ops import BATCH, EACH, FILTER, FLAT_MAP, FORWARD, MAP, ORDERED, UNBATCH, Operator
from .policy import DEFAULT_BACKOFF, OnError, make_policy
from .stage import UNDEFINED, Backend, Partial, PipelineIterator, Stage, Undefined
from .stats import RunStats

A = TypeVar("A")
B = TypeVar("B")

Source = Union[Stage[A], Iterable[A], AsyncIterable[A]]
OptionalCallback = Optional[Callable[..., Any]]
#: ``progress=``: False, True (a bar per stage when the output is a terminal or Jupyter) or
#: ``"force"`` (bars whatever the output)
Progress = Union[bool, Literal["force"]]
RetryOn = Union[Type[BaseException], Tuple[Type[BaseException], ...]]

#: How many source items `ordered` lets into the pipeline while its head is not out yet.
DEFAULT_WINDOW = 16384

_PUBLIC = (
    "map",
    "filter",
    "flat_map",
    "each",
    "ordered",
    "batch",
    "unbatch",
    "concat",
    "from_iterable",
    "to_iterable",
    "run",
)


def _checking_arguments(
    function: Callable[..., Any], prefix: str, declared: Callable[..., Any]
) -> Callable[..., Any]:
    """`function`, whose wrong calls (an unknown keyword, a missing or extra argument)
    raise in the ``"pl.<backend>.<name>: ..."`` form of every other bad argument.

    `declared` gives the signature to check a call against: the method `function` is a
    copy of, read through any decorator that wraps it (whose own code may take
    ``*args, **kwargs``; `function` keeps only that code)."""

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except TypeError:
            # the call itself may be wrong: then say so the usual way (a TypeError from
            # inside, a call that binds, is passed on as it is)
            checks.arguments(f"{prefix}.{function.__name__}", declared, args, kwargs)
            raise

    return call


class StageFunctions:
    """The contract's stage functions for one backend."""

    #: the smallest `workers` the backend accepts (`task` takes 0 for "no limit")
    min_workers = 1
    #: whether a source may be an async iterable (`task`)
    accepts_async = False

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        prefix = f"pl.{backend.name}"
        for name in _PUBLIC:
            method = getattr(type(self), name)
            copy = types.FunctionType(
                method.__code__, method.__globals__, name, method.__defaults__, method.__closure__
            )
            copy.__kwdefaults__ = method.__kwdefaults__
            copy.__doc__ = (method.__doc__ or "").replace("{pl}", prefix)
            copy.__qualname__ = name
            copy.__module__ = f"pypeln.{backend.name}"
            copy.__annotations__ = method.__annotations__
            setattr(self, name, types.MethodType(_checking_arguments(copy, prefix, method), self))

    # -- helpers -------------------------------------------------------------------------

    def _where(self, name: str) -> str:
        return f"pl.{self.backend.name}.{name}"

    def _per_item(
        self,
        op: Operator,
        f: Any,
        stage: Any,
        workers: Any,
        maxsize: Any,
        timeout: Any,
        on_start: Any,
        on_done: Any,
        options: Dict[str, Any],
        policy: Tuple[Any, ...] = (),
    ) -> Any:
        where = self._where(op.name)
        timeout = checks.stage_params(
            where, f, workers, maxsize, timeout, on_start, on_done, self.min_workers
        )
        options = self.stage_options(where, options)
        checked = make_policy(where, *policy)
        if isinstance(stage, Undefined):
            return Partial(
                lambda s: self._per_item(
                    op, f, s, workers, maxsize, timeout, on_start, on_done, options, policy
                )
            )
        checks.source(where, "stage", stage, self.accepts_async)
        return Stage(
            self.backend,
            op,
            (stage,),
            f=f,
            workers=workers,
            maxsize=maxsize,
            timeout=timeout,
            on_start=on_start,
            on_done=on_done,
            options=options,
            where=where,
            policy=checked,
        )

    def stage_options(self, where: str, options: Dict[str, Any]) -> Dict[str, Any]:
        """Check a backend's own keyword-only options (none here); what the Stage keeps.

        A backend with options of its own (`process`: ``start_method``) overrides this.
        """
        if options:
            raise checks.unexpected(where, options)
        return {}

    # -- per-item operators --------------------------------------------------------------

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
        **options: Any,
    ) -> Any:
        """Apply ``f`` to each item: ``f(x) -> y``.

        >>> import pypeln as pl
        >>> sorted({pl}.map(lambda x: x * 2, range(4), workers=2))
        [0, 2, 4, 6]

        Args:
            f: the function; it may also declare parameters named after `on_start`'s
                resources, ``worker_info`` or ``element_index``.
            stage: a Stage of any backend or an iterable; omitted, a `Partial` is returned.
            workers: how many workers run ``f`` at once.
            maxsize: the most items the stage holds at once (0: no bound).
            timeout: seconds one item may take (0 or ``inf``: no limit); an overrunning item
                is dropped.
            on_start: runs once per worker first; may return a dict of resources.
            on_done: runs once per worker last.
            on_error: what to do with an item whose ``f`` still fails after its retries:
                ``"raise"`` (stop the pipeline with the error), ``"skip"`` (drop the item)
                or a callable ``handler(exception, value)`` whose return value stands for
                what ``f`` would have returned (if it raises, the pipeline stops).
            retries: how many more times a failing item is tried (0: none). A timed-out
                item is retried too; one that still overruns is dropped (or handed to a
                callable ``on_error`` as an ``ItemTimeoutError``).
            backoff: seconds before the first retry; each next one waits twice as long
                (at most 30 s), lengthened at random by up to a quarter.
            retry_on: the exception types that are retried (default: any ``Exception``).
            rate: the most attempts the stage starts per second, over all its workers
                (None: no limit). Starts are spaced evenly (bursts of at most ``rate /
                1000`` items above 1000 a second).

        >>> flaky = {pl}.map(lambda x: 1 / x, [1, 0, 2], on_error="skip")
        >>> sorted(flaky)
        [0.5, 1.0]
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
            options,
            (on_error, retries, backoff, retry_on, rate),
        )

    @overload
    def filter(
        self,
        f: Callable[..., Any],
        stage: Source[A],
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
    ) -> Stage[A]: ...

    @overload
    def filter(
        self,
        f: Callable[..., Any],
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
    ) -> Partial[Stage[Any]]: ...

    def filter(
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
        **options: Any,
    ) -> Any:
        """Keep the items ``x`` for which ``f(x)`` is truthy.

        >>> import pypeln as pl
        >>> sorted({pl}.filter(lambda x: x % 2 == 0, range(6), workers=2))
        [0, 2, 4]

        Parameters are those of `map`.
        """
        return self._per_item(
            FILTER,
            f,
            stage,
            workers,
            maxsize,
            timeout,
            on_start,
            on_done,
            options,
            (on_error, retries, backoff, retry_on, rate),
        )

    @overload
    def flat_map(
        self,
        f: Callable[..., Iterable[B]],
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
        f: Callable[..., Iterable[B]],
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
        **options: Any,
    ) -> Any:
        """Emit, one by one, the items of the iterable ``f(x)`` returns.

        Each output's index is its input's index extended by its position, so `ordered`
        restores source order after a `flat_map`. The outputs go on as they are made, so
        ``f(x)`` may be an endless generator; under an error policy or a `timeout` each
        item's outputs are made first (see the docs' page on stages).

        >>> import pypeln as pl
        >>> sorted({pl}.flat_map(lambda x: [x] * x, range(4)))
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
            options,
            (on_error, retries, backoff, retry_on, rate),
        )

    @overload
    def each(
        self,
        f: Callable[..., Any],
        stage: Source[Any],
        workers: int = 1,
        maxsize: int = 0,
        timeout: float = 0,
        on_start: OptionalCallback = None,
        on_done: OptionalCallback = None,
        run: Literal[False] = False,
        *,
        on_error: OnError = "raise",
        retries: int = 0,
        backoff: float = DEFAULT_BACKOFF,
        retry_on: RetryOn = (Exception,),
        rate: Optional[float] = None,
    ) -> Stage[None]: ...

    @overload
    def each(
        self,
        f: Callable[..., Any],
        stage: Source[Any],
        workers: int = 1,
        maxsize: int = 0,
        timeout: float = 0,
        on_start: OptionalCallback = None,
        on_done: OptionalCallback = None,
        *,
        run: Literal[True],
        on_error: OnError = "raise",
        retries: int = 0,
        backoff: float = DEFAULT_BACKOFF,
        retry_on: RetryOn = (Exception,),
        rate: Optional[float] = None,
    ) -> None: ...

    @overload
    def each(
        self,
        f: Callable[..., Any],
        stage: Undefined = UNDEFINED,
        workers: int = 1,
        maxsize: int = 0,
        timeout: float = 0,
        on_start: OptionalCallback = None,
        on_done: OptionalCallback = None,
        run: bool = False,
        *,
        on_error: OnError = "raise",
        retries: int = 0,
        backoff: float = DEFAULT_BACKOFF,
        retry_on: RetryOn = (Exception,),
        rate: Optional[float] = None,
    ) -> Partial[Any]: ...

    def each(
        self,
        f: Callable[..., Any],
        stage: Any = UNDEFINED,
        workers: int = 1,
        maxsize: int = 0,
        timeout: float = 0,
        on_start: OptionalCallback = None,
        on_done: OptionalCallback = None,
        run: bool = False,
        *,
        on_error: OnError = "raise",
        retries: int = 0,
        backoff: float = DEFAULT_BACKOFF,
        retry_on: RetryOn = (Exception,),
        rate: Optional[float] = None,
        **options: Any,
    ) -> Any:
        """Call ``f(x)`` on each item for its side effect; the stage emits nothing.

        With ``run=True`` the pipeline runs at once and None is returned.

        >>> import pypeln as pl
        >>> {pl}.each(print, [1], run=True)
        1

        Parameters are those of `map`.
        """
        checks.flag(self._where("each"), "run", run)
        if isinstance(stage, Undefined):
            checks.stage_params(
                self._where("each"),
                f,
                workers,
                maxsize,
                timeout,
                on_start,
                on_done,
                self.min_workers,
            )
            self.stage_options(self._where("each"), options)
            make_policy(self._where("each"), on_error, retries, backoff, retry_on, rate)
            return Partial(
                lambda s: self.each(
                    f,
                    s,
                    workers,
                    maxsize,
                    timeout,
                    on_start,
                    on_done,
                    run,
                    on_error=on_error,
                    retries=retries,
                    backoff=backoff,
                    retry_on=retry_on,
                    rate=rate,
                    **options,
                )
            )
        result = self._per_item(
            EACH,
            f,
            stage,
            workers,
            maxsize,
            timeout,
            on_start,
            on_done,
            options,
            (on_error, retries, backoff, retry_on, rate),
        )
        if run:
            for _ in result:
                pass
            return None
        return result

    # -- whole-stream stages -------------------------------------------------------------

    @overload
    def ordered(
        self, stage: Source[A], maxsize: int = 0, window: int = DEFAULT_WINDOW
    ) -> Stage[A]: ...

    @overload
    def ordered(
        self, stage: Undefined = UNDEFINED, maxsize: int = 0, window: int = DEFAULT_WINDOW
    ) -> Partial[Stage[Any]]: ...

    def ordered(
        self, stage: Any = UNDEFINED, maxsize: int = 0, window: int = DEFAULT_WINDOW
    ) -> Any:
        """Emit the items in the order of their source (by index), as soon as they can be.

        An item goes out once every item before it has gone out or been dropped (by a
        filter, an empty flat_map, a timeout), so `ordered` streams, even on an endless
        source. While the item at the head is still being worked on, at most ``window``
        source items (the head included) are read into the pipeline; 0 lifts that bound.

        >>> import pypeln as pl, time
        >>> def slow(x):
        ...     time.sleep(0.01 * (3 - x))
        ...     return x
        >>> list({pl}.map(slow, range(3), workers=3) | {pl}.ordered)
        [0, 1, 2]

        Args:
            stage: a Stage of any backend or an iterable; omitted, a `Partial` is returned.
            maxsize: the most items the stage holds in its input queue (0: no bound).
            window: the most source items in the pipeline while the head is not out yet.
        """
        where = self._where("ordered")
        checks.integer(where, "maxsize", maxsize, 0)
        checks.integer(where, "window", window, 0)
        if isinstance(stage, Undefined):
            return Partial(lambda s: self.ordered(s, maxsize, window))
        checks.source(where, "stage", stage, self.accepts_async)
        return Stage(
            self.backend,
            ORDERED,
            (stage,),
            maxsize=maxsize,
            options={"window": window},
            where=where,
        )

    @overload
    def batch(
        self, size: int, stage: Source[A], timeout: float = 0, maxsize: int = 0
    ) -> Stage[List[A]]: ...

    @overload
    def batch(
        self, size: int, stage: Undefined = UNDEFINED, timeout: float = 0, maxsize: int = 0
    ) -> Partial[Stage[List[Any]]]: ...

    def batch(self, size: int, stage: Any = UNDEFINED, timeout: float = 0, maxsize: int = 0) -> Any:
        """Group items into lists of up to ``size`` (the last one may be shorter).

        ``timeout`` (seconds, 0 or ``inf``: never): a partial list goes out when no item has arrived
        for that long, for work that must not wait on a trickling source (`pl.sync`, which
        reads its source only when asked, ignores it). A list's index is the smallest index
        of its items, so ``ordered`` after ``batch`` orders the lists, and ``unbatch``
        restores the items.

        >>> import pypeln as pl
        >>> list({pl}.ordered(range(5)) | {pl}.batch(2) | {pl}.ordered)
        [[0, 1], [2, 3], [4]]
        """
        where = self._where("batch")
        checks.integer(where, "size", size, 1)
        timeout = checks.seconds(where, "timeout", timeout)
        checks.integer(where, "maxsize", maxsize, 0)
        if isinstance(stage, Undefined):
            return Partial(lambda s: self.batch(size, s, timeout, maxsize))
        checks.source(where, "stage", stage, self.accepts_async)
        options = {"size": size, "flush": float(timeout)}
        return Stage(self.backend, BATCH, (stage,), maxsize=maxsize, options=options, where=where)

    @overload
    def unbatch(self, stage: Source[Iterable[A]], maxsize: int = 0) -> Stage[A]: ...

    @overload
    def unbatch(self, stage: Undefined = UNDEFINED, maxsize: int = 0) -> Partial[Stage[Any]]: ...

    def unbatch(self, stage: Any = UNDEFINED, maxsize: int = 0) -> Any:
        """Emit the items of each list (or any iterable) one by one: the inverse of `batch`.

        Each item's index is its list's index extended by its position, as after `flat_map`.

        >>> import pypeln as pl
        >>> list({pl}.unbatch([[1, 2], [], [3]]) | {pl}.ordered)
        [1, 2, 3]
        """
        where = self._where("unbatch")
        checks.integer(where, "maxsize", maxsize, 0)
        if isinstance(stage, Undefined):
            return Partial(lambda s: self.unbatch(s, maxsize))
        checks.source(where, "stage", stage, self.accepts_async)
        return Stage(self.backend, UNBATCH, (stage,), maxsize=maxsize, where=where)

    def concat(self, stages: List[Source[A]], maxsize: int = 0) -> Stage[A]:
        """Merge the items of several stages or iterables.

        The concurrent backends pass items on as they come (in no particular order);
        `pl.sync` takes one item from each input in turn, leaving out the finished ones
        (``pl.sync.concat([[1, 2, 3], [4, 5, 6, 7]])`` gives 1, 4, 2, 5, 3, 6, 7).

        >>> import pypeln as pl
        >>> sorted({pl}.concat([range(2), {pl}.map(lambda x: x * 10, range(1, 3))]))
        [0, 1, 10, 20]
        """
        where = self._where("concat")
        checks.integer(where, "maxsize", maxsize, 0)
        if isinstance(stages, (str, bytes)) or not hasattr(stages, "__iter__"):
            raise TypeError(
                f"{where}: stages must be a list of stages or iterables, got {stages!r}"
            )
        stages = list(stages)
        for i, s in enumerate(stages):
            checks.source(where, f"stages[{i}]", s, self.accepts_async)
        return Stage(self.backend, FORWARD, tuple(stages), maxsize=maxsize, where=where)

    @overload
    def from_iterable(
        self, iterable: Source[A], use_thread: bool = True, maxsize: int = 0
    ) -> Stage[A]: ...

    @overload
    def from_iterable(
        self, iterable: Undefined = UNDEFINED, use_thread: bool = True, maxsize: int = 0
    ) -> Partial[Stage[Any]]: ...

    def from_iterable(
        self,
        iterable: Any = UNDEFINED,
        use_thread: bool = True,
        maxsize: int = 0,
        **options: Any,
    ) -> Any:
        """A stage that emits the items of `iterable`, indexed by position.

        ``use_thread`` (`process`: read the source in a thread of the parent rather than in a
        process of its own; `task`: iterate a sync iterable in a thread, not on the loop).

        >>> import pypeln as pl
        >>> list({pl}.from_iterable(range(3)))
        [0, 1, 2]
        """
        where = self._where("from_iterable")
        checks.flag(where, "use_thread", use_thread)
        checks.integer(where, "maxsize", maxsize, 0)
        options = self.stage_options(where, options)
        if isinstance(iterable, Undefined):
            return Partial(lambda s: self.from_iterable(s, use_thread, maxsize, **options))
        checks.source(where, "iterable", iterable, self.accepts_async)
        return Stage(
            self.backend,
            FORWARD,
            (iterable,),
            maxsize=maxsize,
            options={"use_thread": use_thread, **options},
            where=where,
        )

    # -- consuming -----------------------------------------------------------------------

    @overload
    def to_iterable(
        self,
        stage: Source[A],
        maxsize: int = 0,
        return_index: Literal[False] = False,
        *,
        progress: Progress = False,
    ) -> PipelineIterator[A]: ...

    @overload
    def to_iterable(
        self,
        stage: Source[Any],
        maxsize: int = 0,
        *,
        return_index: Literal[True],
        progress: Progress = False,
    ) -> PipelineIterator[Element]: ...

    @overload
    def to_iterable(
        self,
        stage: Undefined = UNDEFINED,
        maxsize: int = 0,
        return_index: bool = False,
        *,
        progress: Progress = False,
    ) -> Partial[PipelineIterator[Any]]: ...

    def to_iterable(
        self,
        stage: Any = UNDEFINED,
        maxsize: int = 0,
        return_index: bool = False,
        *,
        progress: Progress = False,
    ) -> Any:
        """Run the pipeline, yielding its values (or `Element`s with ``return_index=True``).

        >>> import pypeln as pl
        >>> list({pl}.to_iterable(range(2), return_index=True))
        [Element(index=(0,), value=0), Element(index=(1,), value=1)]

        The iterator carries the run's statistics, live and after the end:

        >>> it = {pl}.to_iterable({pl}.map(abs, [-1, 2]))
        >>> sorted(it)
        [1, 2]
        >>> it.stats[0].items_out
        2

        Args:
            maxsize: the most items waiting for the consumer (0: the stage's own bound).
            return_index: yield ``Element(index, value)`` pairs.
            progress: True draws one progress bar per stage while the run goes on
                (`tqdm.auto`: a widget in Jupyter, text in a terminal, nothing when the
                output is not a terminal unless ``"force"``); needs ``pypeln[progress]``.
                ``PYPELN_PROGRESS=1`` in the environment turns bars on for every run.
        """
        where = self._where("to_iterable")
        checks.integer(where, "maxsize", maxsize, 0)
        checks.flag(where, "return_index", return_index)
        check_progress(where, progress)
        if isinstance(stage, Undefined):
            return Partial(lambda s: self.to_iterable(s, maxsize, return_index, progress=progress))
        checks.source(where, "stage", stage, self.accepts_async)
        if not isinstance(stage, Stage):
            stage = Stage(self.backend, FORWARD, (stage,), where=where)
        return PipelineIterator(stage, maxsize, return_index, progress or None)

    @overload
    def run(
        self,
        *stages: Any,
        maxsize: int = 0,
        progress: Progress = False,
        stats: Literal[False] = False,
    ) -> None: ...

    @overload
    def run(
        self, *stages: Any, maxsize: int = 0, progress: Progress = False, stats: Literal[True]
    ) -> RunStats: ...

    def run(
        self, *stages: Any, maxsize: int = 0, progress: Progress = False, stats: bool = False
    ) -> Optional[RunStats]:
        """Run one or more stages to completion, discarding their output.

        >>> import pypeln as pl
        >>> {pl}.run({pl}.each(print, ["a"]))
        a

        Args:
            progress: draw a progress bar per stage (see `to_iterable`).
            stats: return the run's statistics (a `RunStats`; ``print`` it for a report).
        """
        where = self._where("run")
        checks.integer(where, "maxsize", maxsize, 0)
        check_progress(where, progress)
        checks.flag(where, "stats", stats)
        if len(stages) == 1 and isinstance(stages[0], list):
            stages = tuple(stages[0])
        for i, s in enumerate(stages):  # (here: the mistake is named where it is made)
            checks.source(where, f"stages[{i}]", s, self.accepts_async)
        stage = stages[0] if len(stages) == 1 and isinstance(stages[0], Stage) else None
        if stage is None:
            stage = self.concat(list(stages), maxsize=maxsize)
        it: PipelineIterator[Any] = PipelineIterator(stage, maxsize, False, progress or None)
        for _ in it:
            pass
        return it.stats if stats else None


def check_progress(where: str, progress: Any) -> None:
    """``progress`` is False, True or "force"; bars need the `progress` extra (tqdm)."""
    if progress not in (False, True, "force") or (
        progress and not isinstance(progress, (bool, str))
    ):
        raise ValueError(f"{where}: progress must be False, True or 'force', got {progress!r}")
    if progress:
        from .bars import require_tqdm

        require_tqdm(where)
