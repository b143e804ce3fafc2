"""The benchmark charts (benchmarks/plot.py, ``run.py --plot-only``), drawn from a small
made-up results file: no benchmark runs here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List, Optional

import pytest
from test_benchmarks_smoke import _load_harness

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "benchmarks" / "run.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _plot_module() -> ModuleType:
    _load_harness()  # puts benchmarks/ on sys.path
    import plot

    return plot


def _row(key: str, kind: str, metric: str = "throughput", **fields: Any) -> Dict[str, Any]:
    workload, group, _ = key.split("/")
    row: Dict[str, Any] = {
        "key": key,
        "workload": workload,
        "group": group,
        "label": key,
        "kind": kind,
        "items": 1000,
        "metric": metric,
        "status": "ok",
        "best_s": 0.1,
        "items_per_s": 10_000.0,
        "ours_over_row": None,
        "x_ideal": None,
        "peak_rss_mb": None,
    }
    row.update(fields)
    return row


def _results(quick: bool = False) -> Dict[str, Any]:
    rows: List[Dict[str, Any]] = [
        _row("overhead/thread/ours", "ours", items_per_s=1_000_000.0),
        _row("overhead/thread/tpe", "peer", items_per_s=40_000.0, ours_over_row=25.0),
        _row("overhead/thread/pypeln049", "legacy", items_per_s=20_000.0, ours_over_row=50.0),
        _row("overhead/task/ours", "ours", items_per_s=500_000.0),
        _row("overhead/task/gather", "peer", status="error", best_s=None, items_per_s=None),
        _row("io-sleep/thread/ours", "ours", best_s=0.24, items_per_s=8_000.0, x_ideal=1.2),
        _row("first-item/process/ours", "ours", "latency", best_s=0.008, items_per_s=None),
        _row("first-item/process/pool", "peer", "latency", best_s=0.011, ours_over_row=1.4),
        _row("ordered-memory/process/ours", "ours", "memory", peak_rss_mb=66.0),
        _row("ordered-memory/process/unordered", "peer", "memory", peak_rss_mb=65.0),
        _row(
            "long-stream/mixed/ours",
            "ours",
            items_per_s=400_000.0,
            measures=[{"rss_before_mb": 30.0, "peak_rss_mb": 40.0, "rss_growth_mb": 10.0}],
        ),
        _row("long-stream/mixed/short", "peer", items_per_s=500_000.0, ours_over_row=0.8),
    ]
    for x in (1000, 10_000, 100_000):  # a sweep: a line for pypeln, a line for a peer
        for slug, kind, rate in (("ours", "ours", x * 10.0), ("pool", "peer", x * 5.0)):
            rows.append(_row(f"sweep-items/process@{x}/{slug}", kind, items_per_s=rate,
                             x=float(x), series=f"{slug} line"))  # fmt: skip
    targets = [
        {  # a target as results write them now: kind and bound included
            "target": "thread.map >= 10x ThreadPoolExecutor",
            "status": "PASS",
            "measured": "25x",
            "kind": "ratio",
            "threshold": 10,
            "ours": "overhead/thread/ours",
            "peer": "overhead/thread/tpe",
        },
        {  # as results written before: found in the harness's targets by its text
            "target": "thread 10 ms sleeps, workers=100: time <= 1.5 x ideal",
            "status": "PASS",
            "measured": "0.24 s = 1.2x ideal 0.2 s",
        },
        {"target": "a target the harness no longer has", "status": "FAIL", "measured": "?"},
    ]
    return {"quick": quick, "only": [], "rows": rows, "targets": targets}


def test_headroom_turns_every_kind_of_target_into_times_the_bound() -> None:
    plot = _plot_module()
    data = _results()
    rows = {r["key"]: r for r in data["rows"]}

    def headroom(target: Dict[str, Any]) -> Optional[float]:
        value: Optional[float] = plot.headroom(target, rows)
        return value

    assert headroom(data["targets"][0]) == pytest.approx(2.5)  # 25x over a bound of 10x
    assert headroom(data["targets"][1]) == pytest.approx(1.25)  # 1.5 / 1.2
    assert headroom(data["targets"][2]) is None
    latency = {
        "target": "l",
        "kind": "latency-ms",
        "threshold": 100,
        "ours": "first-item/process/ours",
    }
    assert headroom(latency) == pytest.approx(12.5)  # 100 ms / 8 ms
    memory = {
        "target": "m",
        "kind": "rss-above-mb",
        "threshold": 100,
        "ours": "ordered-memory/process/ours",
        "peer": "ordered-memory/process/unordered",
    }
    assert headroom(memory) == pytest.approx(165 / 66)  # (peer + bound) / ours
    stream = {"ours": "long-stream/mixed/ours", "peer": "long-stream/mixed/short"}
    steady = {"target": "s", "kind": "steady", "threshold": 0.2, **stream}
    assert headroom(steady) == pytest.approx(1.2 / 1.2)  # 0.8x: just on the band's edge
    growth = {"target": "g", "kind": "rss-growth-mb", "threshold": 50, **stream}
    assert headroom(growth) == pytest.approx(80 / 40)  # (before + bound) / peak


@pytest.mark.timeout(90)
def test_plot_only_draws_the_charts_of_the_results_file(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    (tmp_path / "latest.json").write_text(json.dumps(_results()), encoding="utf-8")
    docs_img = ROOT / "docs" / "img"
    before = {p.name: p.stat().st_mtime_ns for p in docs_img.glob("*.png")}

    done = subprocess.run(
        [sys.executable, str(RUN), "--plot-only", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=80,
        cwd=str(ROOT),
    )
    assert done.returncode == 0, done.stdout + done.stderr

    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == [
        "bench-first-item.png",
        "bench-io-sleep.png",
        "bench-long-stream.png",
        "bench-overhead.png",
        "bench-sweep-items.png",
        "bench-targets.png",
    ]
    for name in names:
        content = (tmp_path / name).read_bytes()
        assert content.startswith(PNG_SIGNATURE)
        assert len(content) < 150_000
    # results outside the default folder never replace the published charts
    assert {p.name: p.stat().st_mtime_ns for p in docs_img.glob("*.png")} == before


def test_a_missing_matplotlib_names_the_bench_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    harness = _load_harness()
    (tmp_path / "latest.json").write_text(json.dumps(_results()), encoding="utf-8")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails

    assert harness.main(["--plot-only", "--out", str(tmp_path)]) == 2
    assert harness.main(["--plot", "--only", "nothing-at-all", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "matplotlib" in err and "bench" in err
    assert not list(tmp_path.glob("*.png"))


def test_only_a_full_run_in_the_default_folder_goes_to_the_docs(tmp_path: Path) -> None:
    harness = _load_harness()
    default = harness.DEFAULT_RESULTS
    assert harness.plot_folders({"quick": False, "only": []}, default) == [
        default,
        harness.DOCS_IMG,
    ]
    assert harness.plot_folders({"quick": True, "only": []}, default) == [default]
    assert harness.plot_folders({"quick": False, "only": ["thread"]}, default) == [default]
    assert harness.plot_folders({"quick": False, "only": []}, tmp_path) == [tmp_path]
