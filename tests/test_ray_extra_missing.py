"""Without Ray, `pl.ray` fails on first use with an ImportError naming the extra, never on
``import pypeln``; a folder named ``ray`` that is not Ray gives the same clear error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import sys
{hide}
import pypeln as pl
assert "ray" not in sys.modules or sys.modules["ray"] is None, "import pypeln imported ray"
for build in (lambda: pl.ray.map(abs, [1, 2]), lambda: [1, 2] | pl.ray.map(abs)):
    try:
        build()
    except ImportError as e:
        print("ImportError:", e)
    else:
        print("no error")
"""


def _run(tmp_path: Path, hide: str) -> str:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT.format(hide=hide))
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_without_ray_the_error_names_the_extra(tmp_path: Path) -> None:
    out = _run(tmp_path, hide='sys.modules["ray"] = None  # as if Ray were not installed')
    assert out.count("ImportError:") == 2, out
    assert "pypeln[ray]" in out


def test_a_folder_named_ray_is_not_taken_for_ray(tmp_path: Path) -> None:
    # a package named `ray` beside the script, found before the real one (without Ray
    # installed, an empty folder named `ray` does the same, as a namespace package)
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "__init__.py").write_text("")
    out = _run(tmp_path, hide="")
    assert out.count("ImportError:") == 2, out
    assert "pypeln[ray]" in out and "found something else" in out
