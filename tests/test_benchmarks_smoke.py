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
