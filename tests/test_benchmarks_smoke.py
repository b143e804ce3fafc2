"""Smoke tests of the benchmark harness (benchmarks/run.py): it runs, reports and survives."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "benchmarks" / "run.py"


def _load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pypeln_benchmarks_run", RUN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def _sync_map_available() -> bool:
    try:
        import pypeln.sync
    except Exception:  # noqa: BLE001 - any failure means there is nothing to benchmark
        return False
    return hasattr(pypeln.sync, "map") and hasattr(pypeln.sync, "filter")


@pytest.mark.timeout(60)
def test_quick_sync_rows_run_and_are_written(tmp_path: Path) -> None:
    if not _sync_map_available():
        pytest.skip("pypeln.sync is not available yet")
    done = subprocess.run(
        [
            sys.executable,
            str(RUN),
            "--quick",
            "--only",
            "sync",
            "--no-legacy",
            "--timeout",
            "30",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=55,
        cwd=str(ROOT),
    )
    assert done.returncode == 0, done.stdout + done.stderr

    data = json.loads((tmp_path / "latest.json").read_text(encoding="utf-8"))
    rows = {row["key"]: row for row in data["rows"]}
    # "sync" selects the sync rows only: not the asyncio ones, not pypeln 0.4.9.
    assert set(rows) == {
        "overhead/sync/ours",
        "overhead/sync/builtin",
        "pipeline/sync/ours",
        "pipeline/sync/builtin",
    }
    for row in rows.values():
        assert row["status"] == "ok", row
        assert row["best_s"] > 0 and row["items_per_s"] > 0
    assert rows["overhead/sync/builtin"]["ours_over_row"] > 0

    markdown = (tmp_path / "latest.md").read_text(encoding="utf-8")
    assert "| pl.sync.map |" in markdown
    assert "overhead/sync/ours" in done.stdout


@pytest.mark.timeout(60)
def test_a_hanging_row_times_out_and_an_unknown_backend_is_na() -> None:
    harness = _load_harness()
    env = {"PATH": "", "PYTHONPATH": str(ROOT)}

    hang = harness.Row(
        "selftest",
        "sync",
        "hang",
        "hangs",
        "peer",
        "selftest_sleep",
        3,
        "identity",
        params={"seconds": 30},
    )
    result = harness.run_row(hang, sys.executable, env, repeat=1, budget=0, timeout=1)
    assert result.status == "timeout"

    quick = harness.Row(
        "selftest",
        "sync",
        "quick",
        "quick",
        "peer",
        "selftest_sleep",
        3,
        "identity",
        params={"seconds": 0},
    )
    result = harness.run_row(quick, sys.executable, env, repeat=2, budget=0, timeout=30)
    assert result.status == "ok" and len(result.times) == 2

    missing = harness.Row(
        "selftest",
        "nothing",
        "ours",
        "missing",
        "ours",
        "pl_map",
        3,
        "inc",
        params={"backend": "no_such_backend", "fn": "inc"},
    )
    result = harness.run_row(missing, sys.executable, env, repeat=1, budget=0, timeout=30)
    assert result.status == "n/a", result.reason


def test_only_matches_at_word_starts() -> None:
    harness = _load_harness()
    rows = harness.build_rows(harness.QUICK_SIZES)
    keys = {row.key for row in harness.selected(rows, ["sync"])}
    assert "overhead/sync/ours" in keys
    assert not any("/task/" in key for key in keys)
    assert {row.key for row in harness.selected(rows, ["pypeln049"])} == {
        row.key for row in rows if row.kind == "legacy"
    }


def test_ordered_rows_targets_and_checks() -> None:
    harness = _load_harness()
    rows = harness.build_rows(harness.FULL_SIZES)
    by_key = {row.key: row for row in rows}
    # "ordered" selects the three ordered workloads, unordered peers included, and nothing else.
    keys = {row.key for row in harness.selected(rows, ["ordered"])}
    assert keys == {row.key for row in rows if row.workload.startswith("ordered")}
    assert {"ordered/thread/unordered", "ordered-memory/process/unordered"} <= keys
    for target in harness.TARGETS:
        assert target.ours in by_key and (target.peer is None or target.peer in by_key), target

    # Memory rows compare peak RSS by difference, and their table renders.
    ours_row, peer_row = (
        by_key["ordered-memory/process/ours"],
        by_key["ordered-memory/process/unordered"],
    )
    assert ours_row.runs == 1 and peer_row.runs == 1
    target = next(t for t in harness.TARGETS if t.kind == harness.RSS_ABOVE_MB)

    def measured(row: object, mb: float) -> object:
        return harness.Result(row, status="ok", times=[1.0], measures=[{"peak_rss_mb": mb}])

    for mine, verdict in ((150.0, "PASS"), (250.0, "FAIL")):
        results = {ours_row.key: measured(ours_row, mine), peer_row.key: measured(peer_row, 100.0)}
        assert harness.judge(target, results).status == verdict
    ((workload, headers, lines),) = harness.workload_tables(list(results.values()))
    assert workload == "ordered-memory" and "peak RSS MB" in headers
    assert lines[1][headers.index("ours − row MB")] == "+150.0"

    # Ordered rows are checked in order; the first item after `ordered` can only be f(0).
    import cases

    assert cases.verify("inc-ordered", 3, [1, 2, 3]) is None
    assert "wrong order" in (cases.verify("inc-ordered", 3, [2, 1, 3]) or "")
    assert cases.verify("inc", 3, [2, 1, 3]) is None
    assert cases.verify("first-ordered", 5, [1]) is None
    assert cases.verify("first-ordered", 5, [2]) is not None


def test_limit_targets_checks_and_readme_table(tmp_path: Path) -> None:
    harness = _load_harness()
    import cases
    import readme

    rows = {row.key: row for row in harness.build_rows(harness.FULL_SIZES)}
    long_row, short_row = rows["long-stream/mixed/ours"], rows["long-stream/mixed/short"]
    # The 10^7-item row has a limit of its own; both stream rows run once.
    assert long_row.n == 10_000_000 and (long_row.timeout or 0) > 120
    assert long_row.runs == 1 and short_row.runs == 1
    steady = next(t for t in harness.TARGETS if t.kind == harness.STEADY)
    growth = next(t for t in harness.TARGETS if t.kind == harness.RSS_GROWTH_MB)

    def stream(row: object, seconds: float, mb: float) -> object:
        measures = [{"rss_before_mb": 30.0, "peak_rss_mb": 30.0 + mb, "rss_growth_mb": mb}]
        return harness.Result(row, status="ok", times=[seconds], measures=measures)

    short = stream(short_row, 1.0, 1.0)  # 10^5 items/s
    for seconds, mb, steady_verdict, growth_verdict in (
        (100.0, 4.0, "PASS", "PASS"),  # 10^5 items/s: 1x
        (130.0, 60.0, "FAIL", "FAIL"),  # 0.77x, +60 MB
        (80.0, 49.0, "FAIL", "PASS"),  # 1.25x: outside the band too
    ):
        results = {long_row.key: stream(long_row, seconds, mb), short_row.key: short}
        assert harness.judge(steady, results).status == steady_verdict
        assert harness.judge(growth, results).status == growth_verdict
    tables = harness.workload_tables(list(results.values()))
    ((_, headers, lines),) = tables
    assert lines[0][headers.index("RSS growth MB")] == "+49.0"

    # The new checks.
    assert cases.verify("add-10", 3, [10, 11, 12]) is None
    assert cases.verify("add-10", 3, [10, 11, 13]) is not None
    assert cases.verify("len-5", 2, [5, 5]) is None
    assert cases.verify("count-sum-add-3", 4, (4, 6 + 12)) is None
    assert cases.verify("count-sum-add-3", 4, (3, 6 + 12)) is not None

    # The README's table: from a full run only, between its markers, lines without results left out.
    data = {
        "generated": "2026-01-01T00:00:00+00:00",
        "quick": False,
        "only": [],
        "rows": [
            {"key": "overhead/thread/ours", "status": "ok", "best_s": 0.1,
             "items_per_s": 2e6},
            {"key": "overhead/thread/builtin", "status": "ok", "best_s": 0.01,
             "items_per_s": 2e7, "ours_over_row": 0.1},
        ],
    }  # fmt: skip
    page = tmp_path / "README.md"
    page.write_text(f"# x\n\n{readme.START}\nold\n{readme.END}\n\nafter\n", encoding="utf-8")
    assert readme.rewrite(page, data)
    text = page.read_text(encoding="utf-8")
    assert "old" not in text and text.endswith(f"{readme.END}\n\nafter\n")
    assert "| `thread.map`, trivial `f`, 4 workers | 2 M items/s | 0.1x plain" in text
    assert "`process.map`" not in text
    assert not readme.rewrite(page, data)  # the same results: unchanged
    with pytest.raises(readme.ReadmeError):
        readme.rewrite(page, dict(data, quick=True))
