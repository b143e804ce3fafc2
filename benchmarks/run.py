#!/usr/bin/env python3
"""Benchmark pypeln against its peers and against pypeln 0.4.9.

Run it as ``./dev bench [ARGS]`` (or ``python benchmarks/run.py [ARGS]`` in an environment
that has the ``bench`` extras). Every row runs in a fresh interpreter under a hard timeout;
see benchmarks/README.md for the workloads and the fairness rules.

Examples::

    ./dev bench                      # everything, best of 3 (about 6 minutes)
    ./dev bench --quick              # smaller sizes, one repetition: a smoke run
    ./dev bench --only thread        # rows whose name has a word starting with "thread"
    ./dev bench --only process,task --check
    ./dev bench --only ray --no-legacy   # the Ray rows (a local Ray per row)
    ./dev bench --list               # show the rows and exit
    ./dev bench --plot               # also draw the charts (PNG) of the run
    ./dev bench --plot-only          # redraw the charts of the last run, run nothing
    ./dev bench --plot --readme      # a full run, its charts and README.md's table
    ./dev bench --readme-only        # README.md's table from the last (full) run
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
WORKER = BENCH_DIR / "worker.py"
DEFAULT_RESULTS = BENCH_DIR / "results"
DEFAULT_LEGACY_VENV = BENCH_DIR / ".venv-pypeln049"
DOCS_IMG = REPO_DIR / "docs" / "img"
README = REPO_DIR / "README.md"

sys.path.insert(0, str(BENCH_DIR))

from suite import (  # noqa: E402
    FULL_SIZES,
    LATENCY,
    LATENCY_MS,
    LEGACY,
    LEGACY_VERSION,
    MEMORY,
    OURS,
    QUICK_SIZES,
    RATIO,
    RSS_ABOVE_MB,
    RSS_GROWTH_MB,
    STEADY,
    TARGETS,
    TIME_VS_IDEAL,
    Row,
    Target,
    build_rows,
)

EXIT_GRACE = 5.0  # seconds a finished row may take to exit before it is killed

WORKLOADS: Dict[str, str] = {
    "overhead": "Trivial function (x + 1; `async def` for task rows): the cost of the machinery "
    "per item. Higher items/s is better.",
    "io-sleep": "Every item sleeps 10 ms (time.sleep for threads and Ray actors, asyncio.sleep "
    "for tasks); ideal time = items x 10 ms / workers.",
    "pipeline": "map(x + 1) -> filter(even) -> map(x * 2), each stage with its own workers.",
    "first-item": "Time from starting to iterate a process stage over range(1,000,000) to its "
    "first item, pool start-up included. Lower is better.",
    "ordered": "A trivial map followed by `ordered` (items back in source order), vs the same "
    "map unordered and peers that keep order by nature. Higher items/s is better.",
    "ordered-first-item": "Time from starting to iterate process.map | ordered over a big "
    "input to its first item, vs the same stage without ordered. Lower is better.",
    "ordered-memory": "Peak RSS of the consuming process (VmHWM, children excluded) over a "
    "whole run of process.map | ordered, vs the same run without ordered; one run each. "
    "Lower is better.",
    "progress": "A trivial thread.map with a progress bar per stage (drawn to a null device) vs "
    "the same stage without bars. Higher items/s is better.",
    "big-items": "Items of 1 MB of bytes that f returns: each crosses to a worker and back. "
    "Higher items/s is better.",
    "depth": "Trivial map stages chained: 10 thread.map stages, and 5 stages mixing backends, "
    "each against one thread.map stage in the same run. Higher items/s is better.",
    "many-workers": "10 ms waits on many workers: 1,000 threads, 10,000 tasks; ideal time = "
    "items x 10 ms / workers.",
    "long-stream": "A long stream through 3 mixed stages with maxsize=1000, consumed item by "
    "item, against a short run of the same pipeline; one run each, timed from the first item "
    "out (the streaming rate, start-up apart). RSS growth: the consumer's peak RSS after the "
    "run minus its RSS before.",
    "sweep-items": "Curve: items/s against the number of items (start-up included).",
    "sweep-stages": "Curve: items/s against the number of trivial map stages.",
    "sweep-workers": "Curve: items/s of 10 ms sleeps against the number of workers, the same "
    "number of items per worker (the ideal time is the same for every point).",
    "sweep-payload": "Curve: items/s of bytes items that f returns, against their size.",
}


# --------------------------------------------------------------------------- results


@dataclass
class Result:
    row: Row
    status: str = "skipped"  # ok | n/a | error | timeout | skipped
    times: List[float] = field(default_factory=list)
    reason: str = ""
    traceback: str = ""
    notes: List[str] = field(default_factory=list)
    pypeln_version: Optional[str] = None
    measures: List[Dict[str, Optional[float]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and bool(self.times)

    @property
    def best(self) -> Optional[float]:
        return min(self.times) if self.ok else None

    @property
    def items_per_s(self) -> Optional[float]:
        best = self.best
        if best is None or self.row.metric == LATENCY:
            return None
        return self.row.n / best if best > 0 else float("inf")

    def measure(self, name: str) -> Optional[float]:
        """The largest value of a measure over the repetitions (e.g. ``peak_rss_mb``)."""
        values = [m[name] for m in self.measures if m.get(name) is not None] if self.ok else []
        return max(v for v in values if v is not None) if values else None

    @property
    def peak_rss_mb(self) -> Optional[float]:
        return self.measure("peak_rss_mb")

    @property
    def x_ideal(self) -> Optional[float]:
        best = self.best
        if best is None or not self.row.ideal:
            return None
        return best / self.row.ideal


def ratio(ours: Optional[Result], peer: Optional[Result]) -> Optional[float]:
    """How many times better ours is than peer: > 1 means ours wins."""
    if ours is None or peer is None or not ours.ok or not peer.ok:
        return None
    if ours.row.metric == MEMORY:
        return None  # compared by difference: see rss_above
    if ours.row.metric == LATENCY:
        assert ours.best is not None and peer.best is not None
        return peer.best / ours.best if ours.best > 0 else float("inf")
    assert ours.items_per_s is not None and peer.items_per_s is not None
    return ours.items_per_s / peer.items_per_s if peer.items_per_s > 0 else float("inf")


def rss_above(ours: Optional[Result], peer: Optional[Result]) -> Optional[float]:
    """MB by which ours's peak RSS is above peer's (negative: ours used less)."""
    if ours is None or peer is None:
        return None
    mine, theirs = ours.peak_rss_mb, peer.peak_rss_mb
    if mine is None or theirs is None:
        return None
    return mine - theirs


# --------------------------------------------------------------------------- running a row


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs. An exited process that its (exited)
    parent never waited for, such as multiprocessing's forkserver or resource tracker
    once the row's interpreter is gone, stays in the group as a zombie until the system
    reaps it: that one does not count (on Linux, where /proc tells)."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after the command's ")": state, ppid, pgrp, ...
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def _kill_group(pgid: int) -> bool:
    """Kill what is left of the process group the row started; True if anything was left."""
    if not _group_alive(pgid):
        return False
    time.sleep(0.5)  # children may still be on their way out
    if not _group_alive(pgid):
        return False
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def _tail(path: Path, lines: int = 1) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _wait(proc: subprocess.Popen[bytes], result_file: Path, timeout: float) -> str:
    """Wait for a row's worker; kill it on timeout or when it hangs after reporting.

    Returns why it was killed, or "" if it exited by itself.
    """
    deadline = time.monotonic() + timeout
    finished_at: Optional[float] = None
    while True:
        try:
            proc.wait(timeout=0.1)
            return ""
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if finished_at is None and result_file.exists():
            finished_at = now
        killed = ""
        if finished_at is not None and now - finished_at > EXIT_GRACE:
            killed = f"did not exit within {EXIT_GRACE:.0f} s of finishing; killed"
        elif finished_at is None and now > deadline:
            killed = "timeout"
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return killed


def run_row(
    row: Row, python: str, env: Dict[str, str], repeat: int, budget: float, timeout: float
) -> Result:
    result = Result(row)
    if row.runs is not None:
        repeat = min(repeat, row.runs)
    with tempfile.TemporaryDirectory(prefix="pypeln-bench-") as tmp:
        result_file = Path(tmp) / "result.json"
        stdout_file, stderr_file = Path(tmp) / "stdout", Path(tmp) / "stderr"
        spec = {
            "case": row.case,
            "n": row.n,
            "params": row.params,
            "check": row.check,
            "repeat": repeat,
            "budget": budget,
            "result_file": str(result_file),
        }
        with open(stdout_file, "wb") as out, open(stderr_file, "wb") as err:
            proc = subprocess.Popen(
                [python, str(WORKER), json.dumps(spec)],
                cwd=str(BENCH_DIR),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        try:
            killed = _wait(proc, result_file, timeout)
        except BaseException:  # Ctrl-C included: the row runs in its own session, end it
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        if _kill_group(proc.pid):
            result.notes.append("left processes running after exit; killed")

        if result_file.exists():
            data = json.loads(result_file.read_text(encoding="utf-8"))
            result.status = data["status"]
            result.times = [float(t) for t in data.get("times", [])]
            result.reason = data.get("reason", "")
            result.traceback = data.get("traceback", "")
            result.pypeln_version = data.get("pypeln_version")
            result.measures = list(data.get("measures", []))
            if killed:
                result.notes.append(killed)
        elif killed == "timeout":
            result.status, result.reason = "timeout", f"no result within {timeout:.0f} s"
        else:
            result.status = "error"
            result.reason = f"worker exited with code {proc.returncode}: " + (
                _tail(stderr_file) or "no output"
            )
            result.traceback = _tail(stderr_file, 40)
    return result


# --------------------------------------------------------------------------- pypeln 0.4.9


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def legacy_python(venv: Path) -> Tuple[Optional[str], str]:
    """The interpreter of a virtual environment holding pypeln 0.4.9, created on first use."""
    python = _venv_python(venv)
    stamp = venv / f".pypeln-{LEGACY_VERSION}-ready"
    if python.exists() and stamp.exists():
        return str(python), ""
    print(
        f"Setting up pypeln {LEGACY_VERSION} in {_display(venv)} (first run only) ...", flush=True
    )
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"pypeln=={LEGACY_VERSION}",
        ],
        [
            str(python),
            "-c",
            "import pypeln, sys; sys.exit(pypeln.__version__ != sys.argv[1])",
            LEGACY_VERSION,
        ],
    ]
    for step in steps:
        try:
            done = subprocess.run(
                step,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=600,
                cwd=str(BENCH_DIR),
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return None, f"setting up pypeln {LEGACY_VERSION} failed: {error}"
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
            return None, f"setting up pypeln {LEGACY_VERSION} failed: {last}"
    stamp.write_text(LEGACY_VERSION + "\n", encoding="utf-8")
    return str(python), ""


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_DIR))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- selection


def selected(rows: Sequence[Row], patterns: Sequence[str]) -> List[Row]:
    """Rows where some pattern starts a word of the row's key, label or kind (any case).

    Matching at word starts keeps ``sync`` from selecting ``asyncio`` rows.
    """
    if not patterns:
        return list(rows)
    regexes = [re.compile(r"(?<![a-z0-9])" + re.escape(p.lower())) for p in patterns]
    return [row for row in rows if any(r.search(row.search_text.lower()) for r in regexes)]


# --------------------------------------------------------------------------- tables


def _num(x: Optional[float], digits: int = 3) -> str:
    if x is None:
        return "—"
    if x == float("inf"):
        return "inf"
    if x >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}" if x < 1 else f"{x:,.{max(digits - len(str(int(x))), 0)}f}"


def _ratio_text(x: Optional[float]) -> str:
    if x is None:
        return "—"
    if x == float("inf"):
        return "inf"
    return f"{x:,.0f}x" if x >= 100 else f"{x:.3g}x"


def _status_text(result: Result) -> str:
    return result.status if result.status != "n/a" else "n/a"


def workload_tables(results: Sequence[Result]) -> List[Tuple[str, List[str], List[List[str]]]]:
    """(workload, headers, rows of cells) for every workload that has results."""
    by_key = {r.row.key: r for r in results}
    tables = []
    for workload in WORKLOADS:
        these = [r for r in results if r.row.workload == workload]
        if not these:
            continue
        latency = these[0].row.metric == LATENCY
        memory = these[0].row.metric == MEMORY
        with_ideal = any(r.row.ideal for r in these)
        with_growth = any(r.measure("rss_growth_mb") is not None for r in these)
        if latency:
            headers = ["group", "row", "first item ms", "row ÷ ours", "note"]
        elif memory:
            headers = ["group", "row", "items", "s", "peak RSS MB", "RSS before MB"]
            headers += ["ours − row MB", "largest child MB", "note"]
        else:
            headers = ["group", "row", "items", "best s", "items/s", "ours ÷ row"]
            if with_ideal:
                headers += ["ideal s", "÷ ideal"]
            if with_growth:
                headers += ["RSS growth MB", "largest child MB"]
            headers += ["note"]
        lines = []
        for r in these:
            ours = by_key.get(f"{workload}/{r.row.group}/ours")
            rel = ratio(ours, r) if r.row.kind != OURS else None
            note = "; ".join(n for n in [r.row.note, *r.notes] if n)
            if not r.ok:
                note = f"{r.reason}; {note}" if r.reason and note else (r.reason or note)
            if latency:
                ms = _num(r.best * 1000) if r.best is not None else _status_text(r)
                lines.append([r.row.group, r.row.label, ms, _ratio_text(rel), note])
                continue
            if memory:
                cells = [r.row.group, r.row.label, f"{r.row.n:,}"]
                if r.ok:
                    above = rss_above(ours, r) if r.row.kind != OURS else None
                    before = r.measure("peak_before_mb")
                    if before is not None and (r.peak_rss_mb or 0) <= before:
                        # the peak did not move: the process peaked before the run began
                        note = "; ".join(x for x in [note, "peak reached before the run"] if x)
                    cells += [
                        _num(r.best),
                        _num(r.peak_rss_mb, 4),
                        _num(r.measure("rss_before_mb"), 4),
                        "—" if above is None else f"{above:+,.1f}",
                        _num(r.measure("children_peak_mb"), 4),
                    ]
                else:
                    cells += [_status_text(r), "—", "—", "—", "—"]
                cells.append(note)
                lines.append(cells)
                continue
            cells = [r.row.group, r.row.label, f"{r.row.n:,}"]
            if r.ok:
                cells += [_num(r.best), _num(r.items_per_s), _ratio_text(rel)]
            else:
                cells += [_status_text(r), "—", "—"]
            if with_ideal:
                cells += [_num(r.row.ideal) if r.row.ideal else "—", _ratio_text(r.x_ideal)]
            if with_growth:
                growth = r.measure("rss_growth_mb")
                cells += ["—" if growth is None else f"{growth:+,.1f}"]
                cells += [_num(r.measure("children_peak_mb"), 4)]
            cells.append(note)
            lines.append(cells)
        tables.append((workload, headers, lines))
    return tables


def _is_numeric(header: str) -> bool:
    return header not in ("group", "row", "note")


def text_table(headers: List[str], lines: List[List[str]]) -> str:
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]

    def fmt(cells: List[str]) -> str:
        parts = [
            c.rjust(w) if _is_numeric(h) else c.ljust(w) for c, w, h in zip(cells, widths, headers)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([fmt(headers), fmt(["-" * w for w in widths]), *map(fmt, lines)])


def markdown_table(headers: List[str], lines: List[List[str]]) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    align = ["---:" if _is_numeric(h) else "---" for h in headers]
    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(esc(c) for c in line) + " |" for line in lines]
    return "\n".join(out)


# --------------------------------------------------------------------------- targets


@dataclass
class Verdict:
    target: Target
    status: str  # PASS | FAIL | N/A | SKIP
    measured: str


def judge(target: Target, by_key: Dict[str, Result]) -> Verdict:
    ours = by_key.get(target.ours)
    if ours is None or (target.peer is not None and target.peer not in by_key):
        return Verdict(target, "SKIP", "not run")
    if ours.status == "n/a":
        return Verdict(target, "N/A", f"ours: {ours.reason or 'n/a'}")
    if not ours.ok:
        return Verdict(target, "FAIL", f"ours: {ours.status}")
    assert ours.best is not None
    if target.kind == RATIO:
        peer = by_key[target.peer or ""]
        value = ratio(ours, peer)
        if value is None:
            return Verdict(target, "N/A", f"peer: {peer.status}")
        good = value > target.threshold if target.strict else value >= target.threshold
        return Verdict(target, "PASS" if good else "FAIL", _ratio_text(value))
    if target.kind == TIME_VS_IDEAL:
        ideal = ours.row.ideal or 0.0
        good = ours.best <= target.threshold * ideal
        return Verdict(
            target,
            "PASS" if good else "FAIL",
            f"{ours.best:.3f} s = {_ratio_text(ours.x_ideal)} ideal {ideal:.3g} s",
        )
    if target.kind == LATENCY_MS:
        ms = ours.best * 1000
        return Verdict(target, "PASS" if ms <= target.threshold else "FAIL", f"{ms:.1f} ms")
    if target.kind == RSS_ABOVE_MB:
        peer = by_key[target.peer or ""]
        above = rss_above(ours, peer)
        if above is None:
            which = "peer" if ours.peak_rss_mb is not None else "ours"
            status = peer.status if which == "peer" else "no peak RSS measured"
            return Verdict(target, "N/A", f"{which}: {status}")
        good = above <= target.threshold
        return Verdict(
            target,
            "PASS" if good else "FAIL",
            f"{ours.peak_rss_mb:,.1f} MB vs {peer.peak_rss_mb:,.1f} MB: {above:+,.1f} MB",
        )
    if target.kind == STEADY:
        peer = by_key[target.peer or ""]
        value = ratio(ours, peer)
        if value is None:
            return Verdict(target, "N/A", f"peer: {peer.status}")
        good = abs(value - 1) <= target.threshold
        decades = [  # the long run's own rates, decade by decade, where it measured them
            f"10^{name[len('items_per_s_1e') :]}: {_num(ours.measure(name))}/s"
            for name in sorted({k for m in ours.measures for k in m})
            if name.startswith("items_per_s_1e")
        ]
        within = f"; within the long run, by decade: {', '.join(decades)}" if decades else ""
        return Verdict(target, "PASS" if good else "FAIL", _ratio_text(value) + within)
    if target.kind == RSS_GROWTH_MB:
        growth = ours.measure("rss_growth_mb")
        if growth is None:
            return Verdict(target, "N/A", "ours: no RSS measured")
        good = growth < target.threshold if target.strict else growth <= target.threshold
        return Verdict(target, "PASS" if good else "FAIL", f"{growth:+,.1f} MB")
    raise ValueError(target.kind)


# --------------------------------------------------------------------------- main


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./dev bench", description="Benchmark pypeln against its peers and pypeln 0.4.9."
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PATTERN",
        help="run only rows with a word starting with PATTERN in their name "
        "(workload/group/row, label, or ours|peer|legacy); comma-separated "
        "or repeated patterns are OR-ed",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller sizes and one repetition: a smoke run, not a measurement",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        metavar="N",
        help="best of N runs per row (default 3, 1 with --quick)",
    )
    parser.add_argument(
        "--legacy-repeat",
        type=int,
        default=1,
        metavar="N",
        help=f"best of N for pypeln {LEGACY_VERSION} rows (default 1)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=8.0,
        metavar="SECONDS",
        help="stop repeating a row once its runs took this long (default 8)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="hard limit for each row (default 120)",
    )
    parser.add_argument("--check", action="store_true", help="exit non-zero if a target FAILs")
    parser.add_argument(
        "--no-legacy",
        action="store_true",
        help=f"leave out the pypeln {LEGACY_VERSION} rows (needs no extra venv)",
    )
    parser.add_argument(
        "--legacy-venv",
        type=Path,
        default=DEFAULT_LEGACY_VENV,
        metavar="DIR",
        help=f"virtual environment for pypeln {LEGACY_VERSION} (created on first use)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_RESULTS,
        metavar="DIR",
        help="where latest.md and latest.json are written",
    )
    parser.add_argument("--list", action="store_true", help="list the selected rows and exit")
    parser.add_argument(
        "--plot",
        action="store_true",
        help="after the run, draw its charts (bench-*.png) into the --out folder, and into "
        "docs/img when the run is a full one (needs matplotlib: the bench extra)",
    )
    parser.add_argument(
        "--plot-only",
        action="store_true",
        help="run nothing: draw the charts of the results already in the --out folder "
        "(latest.json)",
    )
    parser.add_argument(
        "--readme",
        action="store_true",
        help="after a full run, rewrite the performance table of README.md (between its "
        "two marker lines) from this run's results",
    )
    parser.add_argument(
        "--readme-only",
        action="store_true",
        help="run nothing: rewrite README.md's performance table from the results already "
        "in the --out folder (latest.json), if they are a full run's",
    )
    args = parser.parse_args(argv)
    args.only = [p.strip() for arg in args.only for p in arg.split(",") if p.strip()]
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    return args


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def plot_folders(data: Dict[str, object], out: Path) -> List[Path]:
    """Where the charts of `data` go: the results folder, and the docs' images when the
    results are a full measurement written to the default folder (a ``--quick`` or
    ``--only`` run would replace the published charts with partial ones)."""
    full = not data.get("quick") and not data.get("only")
    default_out = out.resolve() == DEFAULT_RESULTS.resolve()
    return [out, DOCS_IMG] if full and default_out else [out]


def draw_charts(data: Dict[str, object], out: Path) -> int:
    """Draw the charts of `data`; prints where they went. The exit code: 0, or 2 if they
    could not be drawn."""
    import plot

    folders = plot_folders(data, out)
    try:
        written = plot.draw(data, folders)
    except plot.PlotError as error:
        print(f"cannot draw the charts: {error}", file=sys.stderr)
        return 2
    for folder in folders:
        names = sorted(p.name for p in written if p.parent == folder)
        print(f"charts in {_display(folder)}: {', '.join(names)}")
    if DOCS_IMG not in folders:
        print(f"({_display(DOCS_IMG)} left as it is: only a full run's charts go there)")
    return 0


def write_readme(data: Dict[str, object]) -> int:
    """Rewrite README.md's performance table from `data`; 0, or 2 if it cannot be."""
    import readme

    try:
        changed = readme.rewrite(README, data)
    except readme.ReadmeError as error:
        print(f"README.md left as it is: {error}", file=sys.stderr)
        return 2
    print(f"README.md: performance table {'rewritten' if changed else 'unchanged'}")
    return 0


def _latest(out: Path, what: str) -> Optional[Dict[str, object]]:
    source = out / "latest.json"
    if not source.exists():
        print(f"no results to {what}: {_display(source)} does not exist", file=sys.stderr)
        return None
    data: Dict[str, object] = json.loads(source.read_text(encoding="utf-8"))
    return data


def plot_only(out: Path) -> int:
    import plot

    try:
        plot.require_matplotlib()
    except plot.PlotError as error:
        print(f"cannot draw the charts: {error}", file=sys.stderr)
        return 2
    data = _latest(out, "draw")
    return 2 if data is None else draw_charts(data, out)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.plot_only or args.readme_only:
        code = plot_only(args.out) if args.plot_only else 0
        if args.readme_only:
            data = _latest(args.out, "put in the README")
            code = max(code, 2 if data is None else write_readme(data))
        return code
    if args.plot and not args.list:  # fail now, not after minutes of measuring
        import plot

        try:
            plot.require_matplotlib()
        except plot.PlotError as error:
            print(f"--plot: {error}", file=sys.stderr)
            return 2
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    rows = selected(build_rows(sizes), args.only)
    if args.no_legacy:
        rows = [r for r in rows if r.kind != LEGACY]
    if args.list:
        width = max((len(r.key) for r in rows), default=0)
        for row in rows:
            print(f"{row.key:{width}} {row.kind:6} n={row.n:<9,} {row.label}")
        return 0
    if not rows:
        print("no rows match", ", ".join(args.only), file=sys.stderr)
        return 2

    base_env = dict(os.environ)
    base_env.pop("PYTHONPATH", None)
    base_env["PYTHONNOUSERSITE"] = "1"
    ours_env = dict(base_env, PYTHONPATH=str(REPO_DIR))  # this checkout's pypeln, always
    legacy: Tuple[Optional[str], str] = (None, "")
    if any(r.kind == LEGACY for r in rows):
        legacy = legacy_python(args.legacy_venv)
        if legacy[0] is None:
            print(f"  {legacy[1]}", flush=True)

    print(
        f"pypeln benchmarks: {len(rows)} rows, python {platform.python_version()}, "
        f"{os.cpu_count()} cpus{', quick sizes' if args.quick else ''}",
        flush=True,
    )
    started = time.perf_counter()
    results: List[Result] = []
    width = max(len(r.key) for r in rows)
    for i, row in enumerate(rows, 1):
        print(f"[{i:2}/{len(rows)}] {row.key:{width}} ", end="", flush=True)
        if row.kind == LEGACY:
            python, env, repeat = legacy[0], base_env, args.legacy_repeat
        else:
            # peers too: some compare pypeln with itself (one stage, no progress bars)
            python, env, repeat = sys.executable, ours_env, args.repeat
        if python is None:
            result = Result(row, status="n/a", reason=legacy[1])
        else:
            timeout = max(args.timeout, row.timeout or 0.0)
            result = run_row(row, python, env, repeat, args.budget, timeout)
        results.append(result)
        if result.ok:
            assert result.best is not None
            if row.metric == LATENCY:
                print(f"{result.best * 1000:9.1f} ms", flush=True)
            elif row.metric == MEMORY:
                peak = result.peak_rss_mb
                print(
                    f"{result.best:9.3f} s  peak RSS {'?' if peak is None else f'{peak:,.1f}'} MB",
                    flush=True,
                )
            else:
                print(
                    f"{result.best:9.3f} s {result.items_per_s:12,.0f} items/s"
                    f"  (best of {len(result.times)})",
                    flush=True,
                )
        else:
            print(f"{result.status}: {result.reason}", flush=True)
        for note in result.notes:
            print(f"        {note}", flush=True)
    elapsed = time.perf_counter() - started

    by_key = {r.row.key: r for r in results}
    verdicts = [judge(t, by_key) for t in TARGETS]
    verdicts = [v for v in verdicts if v.status != "SKIP"]
    ours_version = next(
        (r.pypeln_version for r in results if r.row.kind == OURS and r.pypeln_version), None
    )
    with_legacy = any(r.row.kind == LEGACY for r in results)
    header = (
        f"python {platform.python_version()} on {platform.system()} "
        f"{platform.machine()}, {os.cpu_count()} cpus; "
        f"pypeln {ours_version or '(not importable)'}"
        f"{f' vs pypeln {LEGACY_VERSION}' if with_legacy else ''}; "
        f"best of {args.repeat}"
        f"{f' (pypeln {LEGACY_VERSION}: {args.legacy_repeat})' if with_legacy else ''}"
        f", fewer once a row has used {args.budget:g} s; "
        f"{'quick sizes; ' if args.quick else ''}run took {elapsed:.0f} s"
    )
    tables = workload_tables(results)

    print()
    print(header)
    for workload, headers, lines in tables:
        print(f"\n== {workload}: {WORKLOADS[workload]}")
        print(text_table(headers, lines))
    if verdicts:
        print("\nTargets (ours ÷ peer, higher is better for us):")
        for v in verdicts:
            print(f"  {v.status:4}  {v.target.text}  [{v.measured}]")
        if args.quick:
            print("  (quick sizes: indicative only)")

    command = " ".join(["./dev bench", *(argv if argv is not None else sys.argv[1:])])
    md = ["# pypeln benchmark results", "", header, "", f"Command: `{command}`", ""]
    md.append(
        "Ratios are ours ÷ row (items/s), so > 1x means pypeln is faster; for first-item "
        "latency it is row ÷ ours (ms); memory rows give ours − row (MB of peak RSS). "
        "Rules: see benchmarks/README.md."
    )
    for workload, headers, lines in tables:
        md += ["", f"## {workload}", "", WORKLOADS[workload], "", markdown_table(headers, lines)]
    if verdicts:
        md += ["", "## Targets", "", "| status | target | measured |", "| --- | --- | ---: |"]
        md += [f"| {v.status} | {v.target.text} | {v.measured} |" for v in verdicts]
    _write(args.out / "latest.md", "\n".join(md) + "\n")

    data = {
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpus": os.cpu_count(),
        "pypeln": ours_version,
        "legacy": LEGACY_VERSION,
        "quick": args.quick,
        "repeat": args.repeat,
        "legacy_repeat": args.legacy_repeat,
        "only": args.only,
        "seconds": round(elapsed, 1),
        "rows": [
            {
                "key": r.row.key,
                "workload": r.row.workload,
                "group": r.row.group,
                "label": r.row.label,
                "kind": r.row.kind,
                "items": r.row.n,
                "params": r.row.params,
                "metric": r.row.metric,
                "status": r.status,
                "times": r.times,
                "best_s": r.best,
                "items_per_s": r.items_per_s,
                "ours_over_row": ratio(by_key.get(f"{r.row.workload}/{r.row.group}/ours"), r)
                if r.row.kind != OURS
                else None,
                "ideal_s": r.row.ideal,
                "x": r.row.x,
                "series": r.row.series or None,
                "x_ideal": r.x_ideal,
                "peak_rss_mb": r.peak_rss_mb,
                "ours_minus_row_rss_mb": rss_above(
                    by_key.get(f"{r.row.workload}/{r.row.group}/ours"), r
                )
                if r.row.kind != OURS and r.row.metric == MEMORY
                else None,
                "measures": r.measures,
                "note": "; ".join(n for n in [r.row.note, *r.notes] if n),
                "reason": r.reason,
                "traceback": r.traceback,
            }
            for r in results
        ],
        "targets": [
            {
                "target": v.target.text,
                "status": v.status,
                "measured": v.measured,
                "kind": v.target.kind,
                "threshold": v.target.threshold,
                "ours": v.target.ours,
                "peer": v.target.peer,
            }
            for v in verdicts
        ],
    }
    _write(args.out / "latest.json", json.dumps(data, indent=2) + "\n")
    print(f"\nwrote {_display(args.out / 'latest.md')} and {_display(args.out / 'latest.json')}")
    plotted = draw_charts(data, args.out) if args.plot else 0
    if args.readme:
        plotted = max(plotted, write_readme(data))

    if args.check and any(v.status == "FAIL" for v in verdicts):
        return 1
    return plotted


if __name__ == "__main__":
    sys.exit(main())
