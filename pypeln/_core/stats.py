"""Per-stage statistics of a run: what every worker counts, summed when someone reads.

Every worker (a thread, a coroutine, the parent's handle of a worker process, a sync
stage) owns one `Counters` and is its only writer, so counting takes no lock: a reader
(`StageStats`, from any thread, at any time) sums the counters of the stage's workers.
A worker's busy time is its life so far minus the time it waited for input and the time
it was blocked on a full output, so the hot path reads no clock per item.

``it = pl.thread.to_iterable(stage)`` carries the run's `RunStats` as ``it.stats`` (also
``iter(stage).stats``); ``pl.<backend>.run(..., stats=True)`` returns them. They are live
while the run goes on and complete once it has ended; ``stats.report()`` is a table that
names the bottleneck (and renders as HTML in Jupyter).
"""

from __future__ import annotations

import functools
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Union

if TYPE_CHECKING:
    from .report import Report

_clock = time.perf_counter

#: what `StageStats.as_dict` and the report show, in order
FIELDS = (
    "items_in",
    "items_out",
    "failed",
    "retried",
    "skipped",
    "timed_out",
    "busy",
    "waiting",
    "blocked",
    "queue_depth",
    "queue_peak",
    "workers_alive",
)


class Counters:
    """What one worker has done. Only that worker writes; anyone may read."""

    __slots__ = (
        "items_in",
        "items_out",
        "failed",
        "retried",
        "skipped",
        "timed_out",
        "waiting",
        "blocked",
        "busy_extra",
        "started",
        "ended",
    )

    def __init__(self) -> None:
        self.items_in = 0
        self.items_out = 0
        self.failed = 0
        self.retried = 0
        self.skipped = 0
        self.timed_out = 0
        #: seconds waiting for input / blocked on a full output
        self.waiting = 0.0
        self.blocked = 0.0
        #: busy seconds counted elsewhere (a worker process reports its own)
        self.busy_extra = 0.0
        #: when the worker started and ended (`_clock`); None: not yet / still running
        self.started: Optional[float] = None
        self.ended: Optional[float] = None

    def start(self) -> None:
        self.started = _clock()

    def end(self) -> None:
        if self.ended is None:
            self.ended = _clock()

    def busy(self) -> float:
        """Seconds spent on items: the worker's life minus its waits (or as reported)."""
        if self.busy_extra or self.started is None:
            return self.busy_extra
        end = self.ended if self.ended is not None else _clock()
        return max(0.0, end - self.started - self.waiting - self.blocked)


class StageStats:
    """The statistics of one stage in one run: readable live and after the run.

    Attributes (all read-only):
        name: the stage, e.g. ``pl.thread.map(fetch)``.
        workers: how many workers it was given (`task`: the most items in flight; 0 = no
            limit).
        items_in, items_out: items it finished taking, items it emitted.
        failed: items whose `f` failed for good (after any retries) under an error
            policy: raised, skipped or handed to `on_error` (without a policy, the first
            error stops the run and is raised instead of counted).
        retried: extra attempts made (`retries`).
        skipped: failed items dropped by ``on_error="skip"``.
        timed_out: attempts that overran the stage's `timeout`.
        busy, waiting, blocked: seconds, summed over its workers: working on items,
            waiting for input, blocked on a full output.
        queue_depth, queue_peak: items waiting in its input queue (the one its
            ``maxsize`` bounds), now and at most.
        workers_alive: its workers running now.

    >>> import pypeln as pl
    >>> stats = pl.sync.run(pl.sync.filter(bool, [0, 1, 2]), stats=True)
    >>> row = stats[0]
    >>> row.name, row.items_in, row.items_out
    ('pl.sync.filter(bool)', 3, 2)
    """

    def __init__(self, name: str, workers: int, op: str = "") -> None:
        self.name = name
        self.workers = workers
        self.op = op
        self._counters: List[Counters] = []
        self._lock = threading.Lock()
        #: the queue the stage takes from (for its depth), set by the run
        self.queue: Any = None
        #: how many of its workers run now, set by its runner
        self.alive: Optional[Callable[[], int]] = None
        #: the known number of items it will take (for progress bars), or None
        self.total: Optional[int] = None

    def counters(self) -> Counters:
        """A new worker's own counters (a run calls it once per worker it starts).

        >>> import pypeln as pl
        >>> row = pl.StageStats("pl.thread.map(f)", workers=1)
        >>> c = row.counters()
        >>> c.items_in += 2
        >>> row.items_in
        2
        """
        c = Counters()
        with self._lock:
            self._counters.append(c)
        return c

    def _sum(self, name: str) -> Any:
        with self._lock:
            counters = list(self._counters)
        return sum(getattr(c, name) for c in counters)

    items_in = property(lambda self: self._sum("items_in"))
    items_out = property(lambda self: self._sum("items_out"))
    failed = property(lambda self: self._sum("failed"))
    retried = property(lambda self: self._sum("retried"))
    skipped = property(lambda self: self._sum("skipped"))
    timed_out = property(lambda self: self._sum("timed_out"))
    waiting = property(lambda self: float(self._sum("waiting")))
    blocked = property(lambda self: float(self._sum("blocked")))

    @property
    def busy(self) -> float:
        """Seconds its workers spent on items, summed over them."""
        with self._lock:
            counters = list(self._counters)
        return float(sum(c.busy() for c in counters))

    @property
    def queue_depth(self) -> int:
        """Items waiting in its input queue now."""
        return len(self.queue) if self.queue is not None else 0

    @property
    def queue_peak(self) -> int:
        """The most items that waited in its input queue at once."""
        return int(getattr(self.queue, "peak", 0)) if self.queue is not None else 0

    @property
    def workers_alive(self) -> int:
        """Its workers running now."""
        if self.alive is not None:
            return max(0, int(self.alive()))
        with self._lock:
            return sum(1 for c in self._counters if c.started is not None and c.ended is None)

    def as_dict(self) -> Dict[str, Any]:
        """Every figure, by name (a snapshot).

        >>> import pypeln as pl
        >>> stats = pl.sync.run(pl.sync.map(abs, [-1]), stats=True)
        >>> d = stats[0].as_dict()
        >>> d["name"], d["items_out"]
        ('pl.sync.map(abs)', 1)
        """
        return {"name": self.name, "workers": self.workers, **{k: getattr(self, k) for k in FIELDS}}

    def __repr__(self) -> str:
        return (
            f"<StageStats {self.name}: in={self.items_in} out={self.items_out} "
            f"failed={self.failed} busy={self.busy:.3f}s>"
        )


class RunStats:
    """The statistics of one run, one `StageStats` per stage, upstream first.

    ``stats["pl.thread.map(f)"]`` or ``stats[0]`` picks one; ``stats.report()`` renders
    them with the bottleneck named; ``stats.elapsed`` is the run's wall time so far.

    >>> import pypeln as pl
    >>> stage = [1, 2, 3] | pl.thread.map(abs) | pl.thread.filter(bool)
    >>> stats = pl.thread.run(stage, stats=True)
    >>> [row.name for row in stats]
    ['pl.thread.map(abs)', 'pl.thread.filter(bool)']
    >>> stats["pl.thread.filter(bool)"].items_out, stats.running
    (3, False)
    """

    def __init__(self) -> None:
        self.stages: List[StageStats] = []
        self.started: Optional[float] = None
        self.ended: Optional[float] = None
        self._by_id: Dict[int, StageStats] = {}

    def stage(self, stage: Any) -> StageStats:
        """The row of `stage` (a Stage), made on first use.

        >>> import pypeln as pl
        >>> stage = pl.sync.map(abs, [1])
        >>> stats = pl.RunStats()
        >>> stats.stage(stage) is stats.stage(stage), len(stats)
        (True, 1)
        """
        row = self._by_id.get(id(stage))
        if row is None:
            row = StageStats(stage_name(stage), stage.workers, stage.op.name)
            self._by_id[id(stage)] = row
            self.stages.append(row)
        return row

    def plan(self, stage: Any) -> None:
        """Make a row for every stage `stage` runs, upstream first, each with the number
        of items it will take when the sources' lengths tell (`StageStats.total`).

        >>> import pypeln as pl
        >>> stats = pl.RunStats()
        >>> stats.plan(pl.sync.map(abs, [1, 2]) | pl.sync.batch(2))
        >>> [(row.name, row.total) for row in stats]
        [('pl.sync.map(abs)', 2), ('pl.sync.batch(2)', 2)]
        """
        self._plan(stage, {})

    def _plan(self, node: Any, seen: Dict[int, Optional[int]]) -> Optional[int]:
        """Register `node`'s stages; how many items it emits, if known."""
        if id(node) in seen:
            return seen[id(node)]
        deps = getattr(node, "deps", None)
        op = getattr(node, "op", None)
        if deps is None or op is None:  # a plain iterable
            n: Optional[int] = len(node) if isinstance(node, (list, tuple, range)) else None
            seen[id(node)] = n
            return n
        totals = [self._plan(dep, seen) for dep in deps]
        total = None if any(t is None for t in totals) else sum(totals)  # type: ignore[arg-type]
        emits: Optional[int] = None
        if op.name in ("map", "filter", "flat_map", "each", "batch", "unbatch", "ordered"):
            self.stage(node).total = total
            if op.name in ("map", "ordered"):
                emits = total
            elif op.name == "each":
                emits = 0
            elif op.name == "batch" and total is not None:
                emits = -(-total // int(node.options.get("size", 1)))
        else:
            emits = total
        seen[id(node)] = emits
        return emits

    def start(self) -> None:
        """Mark the run as started (a run calls it; again has no effect).

        >>> import pypeln as pl
        >>> stats = pl.RunStats()
        >>> stats.start()
        >>> stats.running
        True
        """
        if self.started is None:
            self.started = _clock()

    def end(self) -> None:
        """Mark the run as ended: `elapsed` stops growing.

        >>> import pypeln as pl
        >>> stats = pl.RunStats()
        >>> stats.start()
        >>> stats.end()
        >>> stats.running, stats.elapsed >= 0
        (False, True)
        """
        if self.started is not None and self.ended is None:
            self.ended = _clock()

    @property
    def running(self) -> bool:
        """True while the run goes on (started and not ended)."""
        return self.started is not None and self.ended is None

    @property
    def elapsed(self) -> float:
        """The run's wall time in seconds: so far while it runs, its total once it ended."""
        if self.started is None:
            return 0.0
        return (self.ended if self.ended is not None else _clock()) - self.started

    def __getitem__(self, key: Union[int, str]) -> StageStats:
        if isinstance(key, int):
            return self.stages[key]
        for row in self.stages:
            if row.name == key:
                return row
        raise KeyError(key)

    def __iter__(self) -> Any:
        return iter(self.stages)

    def __len__(self) -> int:
        return len(self.stages)

    def report(self) -> Report:
        """A table of every stage, naming the bottleneck (HTML in Jupyter).

        >>> import pypeln as pl
        >>> stats = pl.sync.run(pl.sync.map(abs, [-1, 2]), stats=True)
        >>> print(stats.report())  # doctest: +ELLIPSIS
        stage ...
        * pl.sync.map(abs) ...
        1 stage(s), finished, ...
        """
        from .report import Report

        return Report(self)

    def __repr__(self) -> str:
        return str(self.report())

    def _repr_html_(self) -> str:
        return self.report()._repr_html_()


def stage_name(stage: Any) -> str:
    f = stage.f
    while isinstance(f, functools.partial):  # named after the function that does the work
        f = f.func
    name = getattr(f, "__qualname__", None) or getattr(f, "__name__", None)
    if stage.op.name == "batch":
        name = str(stage.options.get("size"))
    return f"{stage.where}({name})" if name else stage.where
