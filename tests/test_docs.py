"""The examples in the public docstrings run and give what they show, for every backend."""

from __future__ import annotations

import doctest
import re
from pathlib import Path
from typing import Any, Dict, List

import pytest
from conftest import BACKEND_NAMES, STAGE_FUNCTIONS

import pypeln as pl

pytestmark = pytest.mark.timeout(120)

#: examples whose output is printed by `f`, which in `process` runs in a child process (in
#: `ray`, in an actor, whose output Ray shows with a prefix of its own)
PRINTS_IN_WORKER = {("process", "each"), ("process", "run"), ("ray", "each"), ("ray", "run")}


def _examples(name: str) -> List[doctest.DocTest]:
    module = getattr(pl, name)
    finder = doctest.DocTestFinder(recurse=False)
    tests = finder.find(module, f"pl.{name}")
    for function in STAGE_FUNCTIONS:
        if (name, function) in PRINTS_IN_WORKER:
            continue
        tests += finder.find(getattr(module, function), f"pl.{name}.{function}", globs={})
    return [t for t in tests if t.examples]


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_docstring_examples(name: str) -> None:
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = _examples(name)
    assert len(tests) >= 5
    for test in tests:
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) failed (see above)"


def test_top_level_docstrings() -> None:
    runner = doctest.DocTestRunner()
    finder = doctest.DocTestFinder(recurse=False)
    for obj, name in ((pl.Element, "pl.Element"), (pl.thread.Namespace, "pl.thread.Namespace")):
        for test in finder.find(obj, name, globs={}):
            runner.run(test)
    assert runner.failures == 0


GUIDE = Path(__file__).resolve().parent.parent / "docs" / "guide.md"


def _guide_section(title: str) -> str:
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def test_guide_progress_section_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """The guide's progress and statistics examples run as shown, in order."""
    pytest.importorskip("tqdm")
    section = _guide_section("Progress bars and statistics")
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) >= 3
    namespace: Dict[str, Any] = {"__name__": "guide"}
    for block in blocks:
        exec(compile(block, str(GUIDE), "exec"), namespace)
    assert sorted(namespace["results"]) == [2 * x for x in range(200)]
    out = capsys.readouterr().out
    assert "Bottleneck: pl.thread.map(fetch)" in out
    assert "pl.thread.map(fetch): " in out and " of 100 taken" in out
