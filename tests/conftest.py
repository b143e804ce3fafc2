"""Shared fixtures: the backends under test."""

from __future__ import annotations

import pytest

import pypeln as pl

BACKEND_NAMES = [name for name in ("sync", "thread", "process", "task") if hasattr(pl, name)]


@pytest.fixture(params=BACKEND_NAMES)
def backend(request: pytest.FixtureRequest):
    """Each backend module in turn (`pl.sync`, `pl.thread`, ...)."""
    return getattr(pl, request.param)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--start-method", default=None,
        help="start method of pl.process worker processes for the whole run (fork, spawn, "
        "forkserver); default: Python's",
    )


@pytest.fixture(autouse=True, scope="session")
def _process_start_method(request: pytest.FixtureRequest):
    """Apply --start-method to every `pl.process` stage of the run."""
    method = request.config.getoption("--start-method")
    if method is None or not hasattr(pl, "process"):
        yield None
        return
    pl.process.set_start_method(method)
    yield method
    pl.process.set_start_method(None)
