"""Dependency injection: what `on_start`, `f` and `on_done` receive, by parameter name.

`on_start(worker_info?)` may return a dict of resources; `f` and `on_done` receive any of
those entries whose name they declare as a parameter, plus the special names
`worker_info` (both), `element_index` (`f`) and `stage_status` (`on_done`).
"""

from __future__ import annotations

import inspect
import threading
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    Iterator,
    Mapping,
    NamedTuple,
    Optional,
    Protocol,
    Tuple,
)

from .guard import AttemptWatch, guard, guard_async
from .policy import Policy
from .rate import RateLimiter
from .stats import Counters


class WorkerInfo(NamedTuple):
    """Who a worker is: ``index`` runs from 0 to ``workers - 1``.

    `f`, `on_start` and `on_done` receive it when they have a parameter named
    ``worker_info``.

    >>> import pypeln as pl
    >>> def tag(x, worker_info):
    ...     return worker_info.index
    >>> set(pl.thread.map(tag, range(20), workers=2)) <= {0, 1}
    True
    """

    index: int  # type: ignore[assignment]


class Counter(Protocol):
    """How many workers of a stage are still running (shared across threads or processes)."""

    def value(self) -> int: ...


class WorkerCount:
    """How many workers of a stage are still running, in one process (a `Counter`)."""

    def __init__(self, n: int = 0) -> None:
        self._n = n
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self._n += n

    def finish(self) -> int:
        """One worker has finished its items; how many are left."""
        with self._lock:
            self._n -= 1
            return self._n

    def value(self) -> int:
        return self._n


class StageStatus:
    """Passed to `on_done` as ``stage_status``: how far the stage has come.

    >>> import pypeln as pl
    >>> seen = []
    >>> def on_done(stage_status):
    ...     seen.append(stage_status.active_workers)
    >>> pl.thread.each(print, [], workers=3, on_done=on_done, run=True)
    >>> sorted(seen)  # each worker, as it finishes, sees how many are left
    [0, 1, 2]
    """

    def __init__(self, counter: Counter) -> None:
        self._counter = counter

    @property
    def active_workers(self) -> int:
        """Workers of the stage that have not finished yet (see the class's example)."""
        return self._counter.value()

    @property
    def done(self) -> bool:
        """True once every worker of the stage has finished its items: in `on_done`, the
        last worker to finish sees True (e.g. to close what the workers shared).

        >>> import pypeln as pl
        >>> last = []
        >>> def on_done(stage_status):
        ...     last.append(stage_status.done)
        >>> pl.thread.each(print, [], workers=2, on_done=on_done, run=True)
        >>> sorted(last)
        [False, True]
        """
        return self.active_workers == 0

    def __repr__(self) -> str:
        return f"StageStatus(done={self.done}, active_workers={self.active_workers})"


_NO_PARAMS: FrozenSet[str] = frozenset()


def parameter_names(f: Callable[..., Any]) -> FrozenSet[str]:
    """Names `f` accepts by keyword (builtins without a signature accept none)."""
    try:
        params = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return _NO_PARAMS
    return frozenset(
        p.name
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    )


def pick(f: Callable[..., Any], available: Mapping[str, Any]) -> Dict[str, Any]:
    """The entries of `available` that `f` declares as parameters."""
    names = parameter_names(f)
    return {k: v for k, v in available.items() if k in names}


class Resources:
    """One worker's view of injection: builds what `f` and `on_done` are called with.

    The calls themselves are left to the backend (a `task` backend awaits them).
    """

    def __init__(self, where: str, f: Optional[Callable[..., Any]], index: int) -> None:
        self.where = where
        self.f = f
        self.info = WorkerInfo(index)
        self.values: Dict[str, Any] = {"worker_info": self.info}

    def on_start_kwargs(self, on_start: Callable[..., Any]) -> Dict[str, Any]:
        return pick(on_start, {"worker_info": self.info})

    def add(self, returned: Any) -> None:
        """Take what `on_start` returned: a dict of resources, or None."""
        if returned is None:
            return
        if not isinstance(returned, Mapping):
            raise TypeError(
                f"{self.where}: on_start must return a dict of resources or None, "
                f"got {returned!r} ({type(returned).__name__})"
            )
        self.values.update(returned)

    def bound_f(self) -> tuple[Callable[..., Any], bool]:
        """`f` with its resources bound, and whether it takes ``element_index``.

        The returned callable is called as ``g(x)``, or ``g(x, index)`` when the flag is set.
        """
        f = self.f
        assert f is not None
        names = parameter_names(f)
        kwargs = {k: v for k, v in self.values.items() if k in names}
        if "element_index" in names:
            if kwargs:
                return (lambda x, i: f(x, element_index=i, **kwargs)), True
            return (lambda x, i: f(x, element_index=i)), True
        if kwargs:
            return (lambda x: f(x, **kwargs)), False
        return f, False

    def on_done_kwargs(self, on_done: Callable[..., Any], status: StageStatus) -> Dict[str, Any]:
        return pick(on_done, {**self.values, "stage_status": status})


class Lifecycle:
    """One worker's life, written once for every backend: `on_start`, then `f` for each
    item (its resources injected), then `on_done`.

    A backend only decides where it runs (a thread, a worker process, an event loop);
    `task` awaits the callbacks with `start_async` and `done_async`.
    """

    def __init__(
        self,
        where: str,
        f: Optional[Callable[..., Any]],
        on_start: Optional[Callable[..., Any]],
        on_done: Optional[Callable[..., Any]],
        index: int = 0,
        policy: Optional[Policy] = None,
        counters: Optional[Counters] = None,
        op_name: str = "",
        limiter: Optional[RateLimiter] = None,
        watch: Optional[AttemptWatch] = None,
        interrupt: Optional[type[BaseException]] = None,
        timeout: float = 0,
    ) -> None:
        self.resources = Resources(where, f, index)
        self.on_start = on_start
        self.on_done = on_done
        self.policy = policy
        self.counters = counters if counters is not None else Counters()
        self.op_name = op_name
        self.limiter = limiter
        #: under a policy, how each attempt is timed (see `pypeln._core.policy.guard`)
        self.watch = watch
        self.interrupt = interrupt
        self.timeout = timeout

    @property
    def guarded(self) -> bool:
        """Whether `f` runs under an error policy or rate (then it may return `SKIPPED`)."""
        return self.policy is not None

    def start(self) -> Tuple[Callable[..., Any], bool]:
        """Run `on_start`; `f` with its resources bound (and its policy applied), and
        whether it takes the index."""
        r, on_start = self.resources, self.on_start
        if on_start is not None:
            r.add(on_start(**r.on_start_kwargs(on_start)))
        f, indexed = r.bound_f()
        if self.policy is not None:
            if self.op_name == "flat_map":
                f = outputs_within_attempt(f)
            f = guard(
                f,
                indexed,
                self.policy,
                self.counters,
                self.op_name,
                self.limiter,
                self.watch,
                self.interrupt,
                self.timeout,
            )
        return f, indexed

    def done(self, active: Counter) -> None:
        """Run `on_done`; `active` counts the stage's workers still running."""
        r, on_done = self.resources, self.on_done
        if on_done is not None:
            on_done(**r.on_done_kwargs(on_done, StageStatus(active)))

    async def start_async(self, timeout: float = 0) -> Tuple[Callable[..., Any], bool]:
        """`start` on an event loop; under a policy, each attempt of `f` gets `timeout`."""
        r, on_start = self.resources, self.on_start
        if on_start is not None:
            r.add(await call_maybe_async(on_start, **r.on_start_kwargs(on_start)))
        f, indexed = r.bound_f()
        if self.policy is not None:
            f = guard_async(
                f, indexed, self.policy, self.counters, self.op_name, self.limiter, timeout
            )
        return f, indexed

    async def done_async(self, active: Counter) -> None:
        r, on_done = self.resources, self.on_done
        if on_done is not None:
            await call_maybe_async(on_done, **r.on_done_kwargs(on_done, StageStatus(active)))


async def call_maybe_async(f: Callable[..., Any], **kwargs: Any) -> Any:
    """``f(**kwargs)``, awaited if it returns an awaitable."""
    result = f(**kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


def outputs_within_attempt(f: Callable[..., Any]) -> Callable[..., Any]:
    """`f` for a `flat_map` under a policy: its outputs made within the attempt, as a list
    when they come from an iterator, so that the guard sees an error raised midway and
    retries or handles the item whole (no output twice, none of a failed attempt).
    `task` has its own, for async iterables (`pypeln.task.supervisor`)."""

    def call(*args: Any) -> Any:
        result = f(*args)
        return list(result) if isinstance(result, Iterator) else result

    return call
