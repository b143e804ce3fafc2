"""The progress and statistics notebook runs top to bottom in a real Jupyter kernel, with
a widget bar per stage and the statistics rendered as HTML."""

from __future__ import annotations

import os
from pathlib import Path

import nbclient
import nbformat
import pytest

import pypeln

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "progress_and_stats.ipynb"
WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.mark.timeout(180)
def test_notebook_runs_in_a_kernel() -> None:
    pytest.importorskip("tqdm")
    pytest.importorskip("ipywidgets")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    # the kernel imports the pypeln under test, wherever it comes from
    package_root = str(Path(pypeln.__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    client.execute(env={**os.environ, "PYTHONPATH": path})
    outputs = [out for cell in notebook.cells for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.get("output_type") == "error"]
    assert not [out for out in outputs if out.get("name") == "stderr"]
    bars = [out["data"]["text/plain"] for out in outputs if WIDGET in out.get("data", {})]
    assert [bar.split(":")[0].strip() for bar in bars] == [
        "thread.map(download)",
        "process.map(parse)",
        "task.map(store)",
    ]
    assert all("/200" in bar for bar in bars)
    html = "".join(out.get("data", {}).get("text/html", "") for out in outputs)
    assert "<table class='pypeln-stats'>" in html and "pl.thread.map(download)" in html
    texts = "".join(out.get("text", "") for out in outputs)
    assert "200 results in" in texts
    assert "Bottleneck: pl.thread.map(download)" in texts
    assert "running: True" in texts and "running: False" in texts
