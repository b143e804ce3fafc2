"""The performance table of the project's README, written from one run's ``latest.json``.

``run.py --readme`` (after a full run) and ``run.py --readme-only`` (from the results
already written) replace what lies between the two marker lines of README.md with a table
made here, so every number in it comes from one run. A line whose pypeln row is missing
from the run, or did not finish, is left out; so is a peer that did not run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

START = "<!-- benchmarks:start (written by ./dev bench --readme from one run; do not edit) -->"
END = "<!-- benchmarks:end -->"

RATE, SECONDS, FIRST_ITEM = "rate", "seconds", "first-item"


@dataclass(frozen=True)
class Line:
    """One line of the table: a pypeln row and the rows it is compared with."""

    text: str  # the workload, as the table says it
    ours: str  # row key
    peers: Sequence[Tuple[str, str]] = ()  # (row key, how the table names it)
    show: str = RATE  # RATE: items/s and ratios; SECONDS: time, ideal, peers' times
    growth: bool = False  # also the RSS growth of the ours row


LINES: List[Line] = [
    Line("`thread.map`, trivial `f`, 4 workers", "overhead/thread/ours", (
        ("overhead/thread/builtin", "plain `list(map(f, xs))` in one thread"),
        ("overhead/thread/tpe", "`ThreadPoolExecutor(4).map`"),
        ("overhead/thread/pypeln049", "pypeln 0.4.9"))),
    Line("`process.map`, trivial `f`, 2 workers", "overhead/process/ours", (
        ("overhead/process/pool", "`Pool.imap_unordered(chunksize=256)`"),
        ("overhead/process/ppe", "`ProcessPoolExecutor`"),
        ("overhead/process/mpire", "mpire"),
        ("overhead/process/pypeln049", "pypeln 0.4.9"))),
    Line("`process.map`, 1 MB `bytes` items, 2 workers", "big-items/process/ours", (
        ("big-items/process/pool", "`Pool.imap_unordered`"),)),
    Line("`task.map`, trivial coroutine, 100 workers", "overhead/task/ours", (
        ("overhead/task/gather", "`gather` + `Semaphore`"),
        ("overhead/task/aiostream", "aiostream"),
        ("overhead/task/pypeln049", "pypeln 0.4.9"))),
    Line("`thread.map \\| ordered` (streaming), 4 workers", "ordered/thread/ours", (
        ("ordered/thread/unordered", "the same without `ordered`"),
        ("ordered/thread/tpe", "`ThreadPoolExecutor(4).map`"))),
    Line("10 `thread.map` stages, 4 workers each", "depth/thread/ours", (
        ("depth/thread/one", "one stage"),)),
    Line("5 stages: thread, process, task, process, thread", "depth/mixed/ours", (
        ("depth/mixed/one", "one `thread.map` stage"),)),
    Line("2,000 × 10 ms `time.sleep`, 100 thread workers", "io-sleep/thread/ours", (
        ("io-sleep/thread/tpe", "`ThreadPoolExecutor(100)`"),), SECONDS),
    Line("20,000 × 10 ms `time.sleep`, 1,000 thread workers", "many-workers/thread/ours", (
        ("many-workers/thread/tpe", "`ThreadPoolExecutor(1000)`"),
        ("many-workers/thread/bare", "1,000 plain threads, no queue"),), SECONDS),
    Line("10,000 × 10 ms `asyncio.sleep`, 1,000 task workers", "io-sleep/task/ours", (
        ("io-sleep/task/gather", "`gather` + `Semaphore(1000)`"),), SECONDS),
    Line("100,000 × 10 ms `asyncio.sleep`, 10,000 task workers", "many-workers/task/ours", (
        ("many-workers/task/gather", "unlimited `gather`"),), SECONDS),
    Line("10⁷ items, 3 mixed stages, `maxsize=1000`", "long-stream/mixed/ours", (
        ("long-stream/mixed/short", "10⁵ items"),), growth=True),
    Line("first item of a process stage over 10⁶ items", "first-item/process/ours", (
        ("first-item/process/pool", "`Pool.imap_unordered`"),), FIRST_ITEM),
    Line("first item of `process.map \\| ordered` over 10⁶ items",
         "ordered-first-item/process/ours", (), FIRST_ITEM),
    Line("`ray.map`, trivial `f`, 2 actors, 100k items (actor start included)",
         "overhead/ray/ours", (
             ("overhead/ray/actors", "a hand-written pool of 2 actors"),
             ("overhead/ray/actorpool", "`ActorPool.map_unordered`"))),
    Line("2,000 × 10 ms `time.sleep`, 2 ray actors", "io-sleep/ray/ours", (), SECONDS),
]  # fmt: skip


def _rate(items_per_s: float) -> str:
    if items_per_s >= 1e6:
        return f"{items_per_s / 1e6:.2g} M items/s"
    if items_per_s >= 1e3:
        return f"{items_per_s / 1e3:.3g} k items/s"
    return f"{items_per_s:.3g} items/s"


def _times(x: float) -> str:
    return f"{x:,.0f}x" if x >= 100 else f"{x:.2g}x"


def _seconds(s: float) -> str:
    return f"{s:.3g} s"


def _ok(row: Optional[Dict[str, Any]]) -> bool:
    return row is not None and row.get("status") == "ok" and row.get("best_s") is not None


def _cells(line: Line, rows: Dict[str, Dict[str, Any]]) -> Optional[Tuple[str, str]]:
    """The (pypeln, vs) cells of a line, or None when its pypeln row did not run."""
    ours = rows.get(line.ours)
    if ours is None or not _ok(ours):
        return None
    peers = [(rows[key], name) for key, name in line.peers if _ok(rows.get(key))]
    if line.show == SECONDS:
        mine = _seconds(float(ours["best_s"]))
        vs = [f"ideal {_seconds(float(ours['ideal_s']))}"] if ours.get("ideal_s") else []
        vs += [f"{name} {_seconds(float(row['best_s']))}" for row, name in peers]
        return mine, "; ".join(vs)
    if line.show == FIRST_ITEM:
        mine = f"{float(ours['best_s']) * 1000:.3g} ms"
        return mine, ", ".join(f"{name} {float(r['best_s']) * 1000:.3g} ms" for r, name in peers)
    if not ours.get("items_per_s"):
        return None
    mine = _rate(float(ours["items_per_s"]))
    if line.growth:
        growth = next(
            (m["rss_growth_mb"] for m in ours.get("measures") or [] if "rss_growth_mb" in m),
            None,
        )
        if growth is not None:
            mine += f", RSS {growth:+.0f} MB"
    vs = [
        f"{_times(float(row['ours_over_row']))} {name}"
        for row, name in peers
        if row.get("ours_over_row") is not None
    ]
    return mine, ", ".join(vs)


def table(data: Dict[str, Any]) -> str:
    """The README's block (markers excluded): the table, and the run it comes from."""
    rows = {row["key"]: row for row in data.get("rows", [])}
    out = ["| workload | pypeln | vs |", "|---|---|---|"]
    for line in LINES:
        cells = _cells(line, rows)
        if cells is not None:
            out.append(f"| {line.text} | {cells[0]} | {cells[1]} |")
    when = str(data.get("generated", "?"))[:16].replace("T", " ")
    legacy = f" vs pypeln {data['legacy']}" if any(k.endswith("pypeln049") for k in rows) else ""
    out += [
        "",
        f"(One run of `./dev bench` at {when} UTC: python {data.get('python', '?')}, "
        f"{data.get('cpus', '?')} cpus, pypeln {data.get('pypeln', '?')}{legacy}, best of "
        f"{data.get('repeat', '?')}; ratios are pypeln's items/s over the row's. Every "
        "pypeln row runs with its statistics counted, as they always are. Absolute numbers "
        "move with the machine's load, ratios much less.)",
    ]
    return "\n".join(out)


class ReadmeError(RuntimeError):
    """Raised when the README cannot be rewritten (no markers, results not a full run)."""


def rewrite(readme: Path, data: Dict[str, Any]) -> bool:
    """Replace the block between the markers of `readme` with the table of `data`; whether
    the file changed. Only a full run (no ``--quick``, no ``--only``) may write it."""
    if data.get("quick") or data.get("only"):
        raise ReadmeError("only a full run (no --quick, no --only) writes the README's table")
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ReadmeError(f"{readme.name} has no block between {START!r} and {END!r}")
    new = text[: start + len(START)] + "\n" + table(data) + "\n" + text[end:]
    if new == text:
        return False
    readme.write_text(new, encoding="utf-8")
    return True
