"""Charts of a benchmark run (PNG, matplotlib), drawn from its ``latest.json``.

Used by ``run.py --plot`` (after a run) and ``run.py --plot-only`` (from the last results,
without running anything). Every chart has a fixed file name, ``bench-<name>.png``:

- ``bench-<workload>.png`` for each workload measured in items/s (overhead, io-sleep,
  pipeline, ordered, progress, big-items, depth, many-workers, long-stream): one bar per
  row, pypeln's rows and the peers' side by side, group by group, on a log scale when the
  bars span more than a factor of 30;
- ``bench-sweep-<name>.png`` for each sweep (items, stages, workers, payload): items/s
  against the sweep's x, one line per implementation, pypeln's solid and the peers' dashed;
- ``bench-first-item.png``: the first-item latencies (lower is better);
- ``bench-targets.png``: every target, as the measured value over the target's bound, so
  that the line at 1 is the target and a bar past it passes.

matplotlib is imported only here, and only when a chart is drawn; it comes with the
``bench`` extra.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from suite import (
    LATENCY,
    LATENCY_MS,
    RATIO,
    RSS_ABOVE_MB,
    RSS_GROWTH_MB,
    STEADY,
    SWEEPS,
    TARGETS,
    THROUGHPUT,
    TIME_VS_IDEAL,
)

COLORS = {"ours": "#1565c0", "peer": "#9e9e9e", "legacy": "#ef8f00"}
LINE_COLORS = {  # the lines of a sweep chart, by kind, in the order their series come
    "ours": ["#1565c0", "#00897b", "#6a1b9a"],
    "peer": ["#757575", "#bdbdbd", "#424242"],
    "legacy": ["#ef8f00"],
}
KIND_NAMES = {"ours": "pypeln", "peer": "peers", "legacy": "pypeln 0.4.9"}
STATUS_COLORS = {"PASS": "#2e7d32", "FAIL": "#c62828", "N/A": "#9e9e9e"}
LOG_SPREAD = 30.0  # a log scale once the largest bar is this many times the smallest
DPI = 100
WIDTH = 10.0  # inches


class PlotError(RuntimeError):
    """Raised when charts cannot be drawn (matplotlib missing, no results)."""


def require_matplotlib() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend, or a `PlotError` naming the
    extra that provides it."""
    try:
        import matplotlib
    except ImportError:
        raise PlotError(
            "drawing charts needs matplotlib, which the `bench` extra installs: "
            "pip install -e '.[bench]' (./dev bench sets it up), or pip install matplotlib"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# --------------------------------------------------------------------------- numbers


def _compact(x: float, unit: str = "") -> str:
    for bound, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= bound:
            return f"{x / bound:.3g}{suffix}{unit}"
    return f"{x:.3g}{unit}"


def _workloads(rows: Sequence[Dict[str, Any]], metric: str) -> List[str]:
    """The workloads whose rows have `metric`, in the order of the results."""
    names: List[str] = []
    for row in rows:
        if row["metric"] == metric and row["workload"] not in names:
            names.append(row["workload"])
    return names


def _target_spec(entry: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """A target's kind, bound and rows: from the results when they hold them, else from the
    harness's list of targets (results written before these fields were), matched by text."""
    if "kind" in entry and "threshold" in entry:
        return entry
    for target in TARGETS:
        if target.text == entry["target"]:
            return {
                "kind": target.kind,
                "threshold": target.threshold,
                "ours": target.ours,
                "peer": target.peer,
            }
    return None


def headroom(entry: Dict[str, Any], rows: Dict[str, Dict[str, Any]]) -> Optional[float]:
    """How far a target is met: the measured value over the target's bound, turned so that
    above 1 is better (a ratio over its minimum; the bound over a time, latency or peak
    memory). None when it cannot be computed from the rows."""
    spec = _target_spec(entry)
    if spec is None:
        return None
    ours = rows.get(spec["ours"])
    if ours is None or ours.get("status") != "ok":
        return None
    kind, bound = spec["kind"], float(spec["threshold"])
    value: Optional[float] = None
    if kind == RATIO:
        peer = rows.get(spec.get("peer") or "")
        ratio = peer.get("ours_over_row") if peer else None
        value = ratio / bound if ratio is not None and bound > 0 else None
    elif kind == TIME_VS_IDEAL:
        x_ideal = ours.get("x_ideal")
        value = bound / x_ideal if x_ideal else None
    elif kind == LATENCY_MS:
        best = ours.get("best_s")
        value = bound / (best * 1000) if best else None
    elif kind == RSS_ABOVE_MB:
        peer = rows.get(spec.get("peer") or "")
        mine, theirs = ours.get("peak_rss_mb"), peer.get("peak_rss_mb") if peer else None
        value = (theirs + bound) / mine if mine and theirs is not None else None
    elif kind == STEADY:  # |ratio - 1| <= bound, as (1 + bound) / (1 + |ratio - 1|) >= 1
        peer = rows.get(spec.get("peer") or "")
        ratio = peer.get("ours_over_row") if peer else None
        value = (1 + bound) / (1 + abs(ratio - 1)) if ratio is not None else None
    elif kind == RSS_GROWTH_MB:  # (RSS before + bound) over the peak
        measures = ours.get("measures") or [{}]
        before, peak = measures[0].get("rss_before_mb"), measures[0].get("peak_rss_mb")
        value = (before + bound) / peak if before is not None and peak else None
    if value is None or math.isnan(value) or value <= 0:
        return None
    return value


# --------------------------------------------------------------------------- charts


def _bar_chart(
    plt: Any,
    rows: Sequence[Dict[str, Any]],
    values: Sequence[Optional[float]],
    texts: Sequence[str],
    title: str,
    xlabel: str,
) -> Any:
    """Horizontal bars, one per row (top to bottom in the results' order), coloured by
    kind, separated by group; a row without a value shows its status instead of a bar."""
    n = len(rows)
    fig, ax = plt.subplots(figsize=(WIDTH, 1.3 + 0.34 * n), dpi=DPI)
    ys = list(range(n))[::-1]
    present = [v for v in values if v is not None and v > 0]
    log = bool(present) and max(present) / min(present) > LOG_SPREAD
    for y, row, value in zip(ys, rows, values):
        if value is not None and value > 0:
            ax.barh(y, value, color=COLORS.get(row["kind"], COLORS["peer"]), height=0.7)
    if log:
        ax.set_xscale("log")
    top = max(present) if present else 1.0
    if log:  # room for the numbers after the longest bar
        ax.set_xlim(min(present) / 3, top * 30)
    else:
        ax.set_xlim(0, top * 1.45)
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda x, _: _compact(x)))
    for y, value, text in zip(ys, values, texts):
        x = value if value is not None and value > 0 else ax.get_xlim()[0]
        ax.text(x, y, "  " + text, va="center", fontsize=8)
    ax.set_yticks(ys)
    ax.set_yticklabels([row["label"] for row in rows], fontsize=8)
    previous = None
    for y, row in zip(ys, rows):
        if row["group"] != previous:
            if previous is not None:
                ax.axhline(y + 0.5, color="#bdbdbd", linewidth=0.8)
            ax.text(  # the group's name, in the right margin
                1.01,
                y,
                row["group"],
                transform=ax.get_yaxis_transform(),
                ha="left",
                va="center",
                fontsize=8,
                fontweight="bold",
                color="#616161",
            )
            previous = row["group"]
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_xlabel(xlabel, fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    kinds = [k for k in COLORS if any(row["kind"] == k for row in rows)]
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLORS[k]) for k in kinds]
    ax.legend(
        handles,
        [KIND_NAMES[k] for k in kinds],
        fontsize=8,
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncol=len(kinds),
        frameon=False,
        borderaxespad=0.2,
    )
    ax.grid(axis="x", color="#eeeeee", linewidth=0.8)
    ax.set_axisbelow(True)
    fig.tight_layout()
    return fig


def _throughput_chart(plt: Any, workload: str, rows: Sequence[Dict[str, Any]]) -> Any:
    values: List[Optional[float]] = []
    texts: List[str] = []
    for row in rows:
        ok = row["status"] == "ok" and row.get("items_per_s")
        values.append(float(row["items_per_s"]) if ok else None)
        if not ok:
            texts.append(row["status"])
            continue
        text = _compact(float(row["items_per_s"]), "/s")
        if row.get("x_ideal") is not None:
            text += f"   ({_ratio(row['x_ideal'])} the ideal time)"
        if row.get("ours_over_row") is not None:
            text += f"   (pypeln {_ratio(row['ours_over_row'])})"
        texts.append(text)
    return _bar_chart(
        plt,
        rows,
        values,
        texts,
        f"{workload}: items/s (higher is better)",
        "items/s"
        + (" (log scale)" if _spread(values) > LOG_SPREAD else "")
        + "; in brackets: pypeln's items/s ÷ the row's",
    )


def _latency_chart(plt: Any, rows: Sequence[Dict[str, Any]]) -> Any:
    values: List[Optional[float]] = []
    texts: List[str] = []
    for row in rows:
        ok = row["status"] == "ok" and row.get("best_s") is not None
        values.append(float(row["best_s"]) * 1000 if ok else None)
        texts.append(f"{float(row['best_s']) * 1000:.3g} ms" if ok else row["status"])
    by_workload = [dict(row, group=row["workload"]) for row in rows]
    return _bar_chart(
        plt,
        by_workload,
        values,
        texts,
        "first item (lower is better)",
        "ms from starting to iterate to the first result, start-up included"
        + (" (log scale)" if _spread(values) > LOG_SPREAD else ""),
    )


def _targets_chart(
    plt: Any, targets: Sequence[Dict[str, Any]], rows: Dict[str, Dict[str, Any]]
) -> Any:
    n = len(targets)
    fig, ax = plt.subplots(figsize=(WIDTH + 2, 1.4 + 0.34 * n), dpi=DPI)
    ys = list(range(n))[::-1]
    values = [headroom(t, rows) for t in targets]
    present = [v for v in values if v is not None]
    low = min(present + [1.0]) / 1.5
    high = max(present + [1.0]) * 10
    for y, target, value in zip(ys, targets, values):
        color = STATUS_COLORS.get(target["status"], STATUS_COLORS["N/A"])
        if value is not None:  # from the target's line to the measured value
            ax.barh(y, value - 1.0, left=1.0, color=color, height=0.7)
        text = f"  {target['status']}  {target['measured']}"
        ax.text(max(value or 1.0, 1.0), y, text, va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    ax.axvline(1.0, color="black", linewidth=1.2)
    ax.text(1.0, n - 0.45, " target", fontsize=8, va="bottom")
    ax.set_yticks(ys)
    ax.set_yticklabels([t["target"] for t in targets], fontsize=8)
    ax.set_ylim(-0.6, n + 0.2)
    ax.set_title("targets: right of the line, the target is met", fontsize=10, loc="left")
    ax.set_xlabel(
        "measured ÷ target (times, latencies, memory: target ÷ measured), log scale", fontsize=9
    )
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", color="#eeeeee", linewidth=0.8)
    ax.set_axisbelow(True)
    fig.tight_layout()
    return fig


def _sweep_chart(plt: Any, workload: str, rows: Sequence[Dict[str, Any]]) -> Any:
    """Items/s against the sweep's x, a line per series (pypeln's solid, the peers'
    dashed); a point that did not run is left out of its line."""
    xlabel, log_x = SWEEPS[workload]
    fig, ax = plt.subplots(figsize=(WIDTH, 5.0), dpi=DPI)
    series: List[Tuple[str, str]] = []  # (series, kind) in the order of the results
    for row in rows:
        if (row.get("series"), row["kind"]) not in series:
            series.append((row.get("series") or row["label"], row["kind"]))
    used: Dict[str, int] = {}
    values: List[float] = []
    for name, kind in series:
        points = sorted(
            (float(row["x"]), float(row["items_per_s"]))
            for row in rows
            if (row.get("series") or row["label"]) == name
            and row["status"] == "ok"
            and row.get("items_per_s")
            and row.get("x") is not None
        )
        palette = LINE_COLORS.get(kind, LINE_COLORS["peer"])
        color = palette[used.get(kind, 0) % len(palette)]
        used[kind] = used.get(kind, 0) + 1
        label = f"{name} (peer)" if kind == "peer" else name
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o", markersize=4, color=color, label=label,
                    linestyle="-" if kind == "ours" else "--")  # fmt: skip
            values.extend(ys)
    ideal = sorted(  # where every row has an ideal time: the items/s it would give
        {(float(r["x"]), r["items"] / float(r["ideal_s"])) for r in rows if r.get("ideal_s")}
    )
    if ideal and len(ideal) == len({r["x"] for r in rows}):
        xs, ys = zip(*ideal)
        ax.plot(xs, ys, color="#2e7d32", linestyle=":", linewidth=1.2, label="ideal")
    if log_x:
        ax.set_xscale("log")
    else:  # a tick at every point
        ax.set_xticks(sorted({float(r["x"]) for r in rows if r.get("x") is not None}))
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda x, _: f"{x:g}"))
    if _spread(values) > LOG_SPREAD:
        ax.set_yscale("log")
    else:
        ax.set_ylim(0, max(values + [1.0]) * 1.15)
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda y, _: _compact(y)))
    ax.set_title(f"{workload}: items/s (higher is better)", fontsize=10, loc="left")
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel("items/s", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(color="#eeeeee", linewidth=0.8)
    ax.set_axisbelow(True)
    if values:
        ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def _ratio(x: float) -> str:
    return f"{x:,.0f}x" if x >= 100 else f"{x:.3g}x"


def _spread(values: Sequence[Optional[float]]) -> float:
    present = [v for v in values if v is not None and v > 0]
    return max(present) / min(present) if present else 1.0


# --------------------------------------------------------------------------- files


def charts(data: Dict[str, Any]) -> List[Tuple[str, Any]]:
    """(file name, figure) for every chart the results allow, in a fixed order."""
    plt = require_matplotlib()
    rows: List[Dict[str, Any]] = list(data.get("rows", []))
    out: List[Tuple[str, Any]] = []

    for workload in _workloads(rows, THROUGHPUT):
        these = [r for r in rows if r["workload"] == workload]
        if workload in SWEEPS:
            out.append((f"bench-{workload}.png", _sweep_chart(plt, workload, these)))
        else:
            out.append((f"bench-{workload}.png", _throughput_chart(plt, workload, these)))
    latency = [r for r in rows if r["metric"] == LATENCY]
    if latency:
        out.append(("bench-first-item.png", _latency_chart(plt, latency)))
    targets = list(data.get("targets", []))
    if targets:
        by_key = {r["key"]: r for r in rows}
        out.append(("bench-targets.png", _targets_chart(plt, targets, by_key)))
    if data.get("quick"):
        for _, fig in out:
            ax = fig.axes[0]
            title = ax.get_title(loc="left") + "   [quick sizes: indicative only]"
            ax.set_title(title, fontsize=10, loc="left")
    return out


def _png(fig: Any) -> bytes:
    """The figure as a small PNG: 8-bit palette (the charts have few colours), no metadata,
    so the same results give the same bytes."""
    from PIL import Image  # matplotlib depends on Pillow

    raw = io.BytesIO()
    fig.savefig(raw, format="png", metadata={"Software": None})
    raw.seek(0)
    with Image.open(raw) as image:
        small = image.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)
    return out.getvalue()


def draw(data: Dict[str, Any], folders: Sequence[Path]) -> List[Path]:
    """Write every chart of `data` (a ``latest.json``) into each of `folders`; the paths
    written. Raises `PlotError` if matplotlib is missing or there is nothing to draw."""
    plt = require_matplotlib()
    figures = charts(data)
    if not figures:
        raise PlotError("the results hold no row that can be charted")
    written: List[Path] = []
    try:
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            for name, fig in figures:
                path = folder / name
                path.write_bytes(_png(fig))
                written.append(path)
    finally:
        for _, fig in figures:
            plt.close(fig)
    return written
