"""Static checks: the package passes mypy --strict, and typed user code is inferred right."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _mypy(*args: str) -> subprocess.CompletedProcess:
    pytest.importorskip("mypy")
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


@pytest.mark.timeout(300)
def test_package_passes_mypy_strict():
    result = _mypy("--strict", "pypeln")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(300)
def test_user_code_types_are_inferred():
    result = _mypy("--strict", "tests/typing/user_code.py")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(120)
def test_ruff_clean():
    ruff = shutil.which("ruff", path=os.path.dirname(sys.executable))
    if ruff is None:
        pytest.skip("ruff is not installed")
    result = subprocess.run(
        [ruff, "check", "pypeln", "tests", "benchmarks", "examples"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(300)
def test_backends_provide_the_core_contracts():
    result = _mypy("--strict", "tests/typing/backend_contracts.py")
    assert result.returncode == 0, result.stdout + result.stderr
