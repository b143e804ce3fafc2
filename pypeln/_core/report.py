"""`Report`: a run's statistics as a table, with the bottleneck named in one line."""

from __future__ import annotations

from typing import List, Optional, Sequence

from .stats import FIELDS, RunStats, StageStats

#: The least share of the run's time that counts as evidence: a stage busy less than this is
#: not named the bottleneck, and a neighbour blocked or waiting less is not cited.
NOTICEABLE = 0.05


def utilization(row: StageStats, elapsed: float) -> float:
    """The share of its workers' time the stage spent on items (0 to 1)."""
    return _share(row.busy, row, elapsed)


def _share(seconds: float, row: StageStats, elapsed: float) -> float:
    """`seconds` summed over the stage's workers, as a share of their time (0 to 1)."""
    with row._lock:
        n = row.workers or len(row._counters) or 1
    return min(1.0, seconds / (n * elapsed)) if elapsed > 0 else 0.0


class Report:
    """A rendering of `RunStats`: ``str()`` gives a text table, Jupyter shows HTML.

    The stage marked ``*`` is the bottleneck, named again in the last line with why.

    >>> import pypeln as pl
    >>> stats = pl.thread.run(pl.thread.map(abs, range(3)), stats=True)
    >>> report = stats.report()
    >>> isinstance(report, pl.Report), report.rows[0]["items_out"]
    (True, 3)
    >>> print(report)  # doctest: +ELLIPSIS
    stage ... workers ...
    ...pl.thread.map(abs) ...
    1 stage(s), finished, ...
    """

    HEADERS = (
        "stage",
        "workers",
        "in",
        "out",
        "failed",
        "retried",
        "skipped",
        "timed out",
        "busy",
        "waiting",
        "blocked",
        "queue",
        "peak",
        "alive",
    )

    def __init__(self, stats: RunStats) -> None:
        self.stats = stats
        self.elapsed = stats.elapsed
        self.rows = [row.as_dict() for row in stats.stages]
        self.bottleneck, self.why = find_bottleneck(stats.stages, self.elapsed)

    def _seconds(self, seconds: float, row: StageStats) -> str:
        """Seconds, and their share of the stage's workers' time."""
        if self.elapsed <= 0:
            return f"{seconds:.2f}s"
        return f"{seconds:.2f}s {_share(seconds, row, self.elapsed):.0%}"

    def _cells(self) -> List[List[str]]:
        cells = []
        for d, row in zip(self.rows, self.stats.stages):
            mark = "* " if row is self.bottleneck else ""
            counts = [str(d[k]) for k in FIELDS[:6]]
            times = [self._seconds(d[k], row) for k in ("busy", "waiting", "blocked")]
            now = [str(d[k]) for k in FIELDS[9:]]
            cells.append([mark + d["name"], str(d["workers"]), *counts, *times, *now])
        return cells

    def summary(self) -> str:
        """The table's last line: how many stages, running or finished, the elapsed time,
        and the bottleneck with the reason.

        >>> import pypeln as pl
        >>> stats = pl.sync.run(pl.sync.map(abs, [1]), stats=True)
        >>> stats.report().summary()  # doctest: +ELLIPSIS
        '1 stage(s), finished, ...'
        """
        state = "running" if self.stats.running else "finished"
        return f"{len(self.rows)} stage(s), {state}, {self.elapsed:.2f}s. {self.why}"

    def __str__(self) -> str:
        rows = [list(self.HEADERS), *self._cells()]
        widths = [max(len(r[k]) for r in rows) for k in range(len(self.HEADERS))]
        lines = [
            "  ".join(
                v.ljust(w) if k == 0 else v.rjust(w) for k, (v, w) in enumerate(zip(r, widths))
            )
            for r in rows
        ]
        return "\n".join([*lines, self.summary()])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        from html import escape

        head = "".join(f"<th>{escape(h)}</th>" for h in self.HEADERS)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(v)}</td>" for v in c) + "</tr>" for c in self._cells()
        )
        return (
            f"<table class='pypeln-stats'><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table><p>{escape(self.summary())}</p>"
        )


def find_bottleneck(rows: Sequence[StageStats], elapsed: float) -> tuple[Optional[StageStats], str]:
    """The stage the others wait for, and why, in one line (None: no stage stands out)."""
    working = [r for r in rows if r.op in ("map", "filter", "flat_map", "each")]
    if not working or elapsed <= 0:
        return None, "No stage has done any work yet."
    scored = [(utilization(r, elapsed), k, r) for k, r in enumerate(working)]
    score, k, best = max(scored, key=lambda t: (t[0], -t[1]))
    last = working[-1]
    blocked_last = _share(last.blocked, last, elapsed)
    if score < 0.5 and blocked_last > 0.5:
        return None, (
            f"The consumer is the bottleneck: {last.name} was blocked on its full output "
            f"{blocked_last:.0%} of the time."
        )
    first = working[0]
    waiting_first = _share(first.waiting, first, elapsed)
    if score < 0.5 and waiting_first > 0.5:
        return None, (
            f"The source is the bottleneck: {first.name} waited for input "
            f"{waiting_first:.0%} of the time."
        )
    if score < NOTICEABLE:
        if not any(r.items_in for r in working):
            return None, "No stage has done any work yet."
        return None, (
            f"No stage stands out: the busiest, {best.name}, was busy {score:.0%} of the "
            "time; the time went to the source, the consumer or starting the workers."
        )
    why = [f"Bottleneck: {best.name}: its workers were busy {score:.0%} of the time"]
    if k > 0:
        b = working[k - 1]
        blocked = _share(b.blocked, b, elapsed)
        if blocked >= NOTICEABLE:
            why.append(f"{b.name} before it was blocked on a full queue {blocked:.0%}")
        elif best.queue_peak:
            why.append(f"up to {best.queue_peak} items waited for it at once")
    if k + 1 < len(working):
        a = working[k + 1]
        waiting = _share(a.waiting, a, elapsed)
        if waiting >= NOTICEABLE:
            why.append(f"{a.name} after it waited for input {waiting:.0%}")
    return best, "; ".join(why) + "."
