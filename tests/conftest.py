"""Shared fixtures: the backends under test."""

from __future__ import annotations

import pytest

import pypeln as pl

BACKEND_NAMES = [name for name in ("sync", "thread", "process", "task") if hasattr(pl, name)]


@pytest.fixture(params=BACKEND_NAMES)
def backend(request: pytest.FixtureRequest):
    """Each backend module in turn (`pl.sync`, `pl.thread`, ...)."""
    return getattr(pl, request.param)
