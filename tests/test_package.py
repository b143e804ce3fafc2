"""The package's own facts: one version (`pypeln.__version__`) that the installed metadata,
pyproject.toml and the changelog agree with, and `py.typed` shipped beside the code.
Building the sdist and the wheel is .ci/wheel-check's job, not the tests'."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

import pypeln as pl

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(10)


def test_version_is_the_installed_metadata_version() -> None:
    try:
        installed = metadata.version("pypeln")
    except metadata.PackageNotFoundError:
        pytest.skip("pypeln is imported from the source tree, not installed")
    assert pl.__version__ == installed, (
        f"pl.__version__ is {pl.__version__} but the installed metadata says {installed}: "
        "reinstall the package (pip install -e .) after changing the version"
    )


def test_version_lives_only_in_the_package() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    project = pyproject.split("[project]", 1)[1].split("\n[", 1)[0]
    assert re.search(r"^dynamic\s*=.*\"version\"", project, re.M), "version is not dynamic"
    assert not re.search(r"^version\s*=", project, re.M), "pyproject.toml repeats the version"
    assert 'version = { attr = "pypeln.__version__" }' in pyproject
    assert re.fullmatch(r"\d+\.\d+\.\d+", pl.__version__), pl.__version__


def test_py_typed_ships_in_the_package() -> None:
    assert (Path(pl.__file__).parent / "py.typed").is_file()


def test_changelog_starts_with_the_current_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = re.findall(r"^## \[([^\]]+)\] - (\d{4}-\d{2}-\d{2})$", changelog, re.M)
    assert releases, "CHANGELOG.md has no '## [VERSION] - YYYY-MM-DD' entry"
    newest, _date = releases[0]
    assert newest == pl.__version__, f"newest changelog entry {newest}, package {pl.__version__}"
    assert f"[{newest}]: " in changelog, "the newest entry has no link"
