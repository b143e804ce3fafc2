"""Every ```python block of every docs page (and of README.md) runs.

A page's blocks run in order, as one script, in a fresh Python whose working directory is
a temporary directory, so a block sees what the blocks before it defined and may write
files. A block that cannot run is preceded, on the line just before its fence, by
``<!-- norun: reason -->``; the reason is required.

Under ``--start-method spawn`` (or ``forkserver``) the pages' process stages use that start
method, as they would by default on macOS, Windows or Python 3.14.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
#: seconds one page's script may take (the test's own timeout is a little longer); the Ray
#: page's actors take long to start on a small machine
PAGE_TIMEOUT = 60
RAY_PAGE_TIMEOUT = 150

FENCE = re.compile(r"^```(\S*)\s*$")
NORUN = re.compile(r"^<!--\s*norun(?::\s*(?P<reason>.*?))?\s*-->\s*$")
#: comments that look meant as a norun marker but are spelled otherwise
LOOKALIKE = re.compile(r"^<!--\s*(no|not|skip|dont|do-not)[-_ ]?(run|test)", re.I)


def _pages() -> List[str]:
    """Every page, by its path relative to docs/ (README.md as itself)."""
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    return pages + ["README.md"]


def _path(page: str) -> Path:
    return README if page == "README.md" else DOCS / page


def _is_ray_page(page: str) -> bool:
    return page == "ray.md"


def python_blocks(text: str, where: str) -> Tuple[List[Tuple[int, str]], List[str]]:
    """The page's runnable python blocks as (first line number, code), and its problems.

    A fence opens a block at any indentation; the block's code is dedented by the fence's
    indentation. A norun comment with no reason is a problem, as is one that does not come
    right before a python fence.
    """
    lines = text.splitlines()
    blocks: List[Tuple[int, str]] = []
    problems: List[str] = []
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        norun = NORUN.match(stripped)
        if norun is None and LOOKALIKE.match(stripped):
            problems.append(f"{where}:{i + 1}: write the marker as <!-- norun: reason -->")
        if norun:
            fence = FENCE.match(lines[i + 1].strip()) if i + 1 < len(lines) else None
            if not norun.group("reason"):
                problems.append(f"{where}:{i + 1}: a norun comment needs a reason")
            if fence is None or fence.group(1) != "python":
                problems.append(f"{where}:{i + 1}: a norun comment must precede a python fence")
        fence = FENCE.match(stripped)
        if fence is None:
            i += 1
            continue
        indent = len(lines[i]) - len(lines[i].lstrip())
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            problems.append(f"{where}:{i + 1}: a code block is not closed")
        body = [line[indent:] for line in lines[i + 1 : end]]
        skipped = i > 0 and NORUN.match(lines[i - 1].strip()) is not None
        if fence.group(1) == "python" and not skipped:
            blocks.append((i + 2, "\n".join(body) + "\n"))
        i = end + 1
    return blocks, problems


def script_of(page: str) -> str:
    """The page's python blocks as one script; each block keeps its own line numbers in a
    comment, so an error points at the page."""
    text = _path(page).read_text(encoding="utf-8")
    blocks, problems = python_blocks(text, page)
    assert not problems, "\n".join(problems)
    parts = [f"# {page}, line {line}\n{code}" for line, code in blocks]
    return "\n".join(parts)


def _join_the_sessions_ray() -> Dict[str, str]:
    """The environment in which the page's first run joins the test session's Ray (started
    for every ray test) instead of starting one more."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return {}
    return {"RAY_ADDRESS": ray.get_runtime_context().gcs_address}


def _timeout(page: str) -> int:
    return RAY_PAGE_TIMEOUT if _is_ray_page(page) else PAGE_TIMEOUT


def _param(page: str) -> object:
    marks = [pytest.mark.timeout(_timeout(page) + 30)]
    if _is_ray_page(page):
        marks.append(pytest.mark.ray)
    return pytest.param(page, id=page, marks=marks)


def test_only_the_ray_page_is_a_ray_test() -> None:
    """conftest takes a test whose parameter id has the word "ray" between dashes for a Ray
    test; no page id may look like one by accident (the Ray page is marked by name)."""
    pages = _pages()
    assert "index.md" in pages and "concepts/stages.md" in pages and "README.md" in pages
    assert [p for p in pages if "ray" in p.split("-")] == []


def test_norun_needs_a_reason_and_a_python_fence() -> None:
    text = "\n".join(
        [
            "<!-- norun -->",
            "```python",
            "x = 1",
            "```",
            "<!-- norun: a fragment -->",
            "```text",
            "```",
            "<!-- norun: needs a cluster -->",
            "```python",
            "connect()",
            "```",
            "```python",
            "    y = 2",
            "```",
            "<!-- not-run: a typo -->",
            "```python",
            "```",
        ]
    )
    blocks, problems = python_blocks(text, "page.md")
    assert blocks == [(13, "    y = 2\n"), (17, "\n")]
    assert problems == [
        "page.md:1: a norun comment needs a reason",
        "page.md:5: a norun comment must precede a python fence",
        "page.md:15: write the marker as <!-- norun: reason -->",
    ]


@pytest.mark.parametrize("page", [_param(p) for p in _pages()])
def test_page_code_runs(page: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if _is_ray_page(page) and importlib.util.find_spec("ray") is None:
        pytest.skip("Ray is not installed")
    script = script_of(page)
    if not script.strip():
        return
    method = request.config.getoption("--start-method")
    if method is not None:
        script = f"import pypeln\npypeln.process.set_start_method({method!r})\n{script}"
    path = tmp_path / "page.py"
    path.write_text(script, encoding="utf-8")
    env = dict(os.environ)
    env.pop("PYPELN_PROGRESS", None)
    if _is_ray_page(page):
        env.update(_join_the_sessions_ray())
    try:
        done = subprocess.run(
            [sys.executable, str(path)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=_timeout(page),
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{page}: its code did not finish within {_timeout(page)} s\n{e.stderr}")
    assert done.returncode == 0, f"{page}: its code failed:\n{done.stderr}"
