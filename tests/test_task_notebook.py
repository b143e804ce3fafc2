"""The example notebook runs top to bottom in a real Jupyter kernel (``await`` and ``list``)."""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "task_thread_process.ipynb"


@pytest.mark.timeout(180)
def test_notebook_runs_in_a_kernel() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    outputs = [out for cell in notebook.cells for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.get("output_type") == "error"]
    texts = "".join(out.get("text", "") for out in outputs)
    assert "100 fetches" in texts
    assert texts.count("caught: ('no threes', 3)") == 2
