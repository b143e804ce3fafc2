"""An endless plain source with the default (unbounded) `maxsize`: the consumer gets its
items steadily, run after run, and the source is not read far ahead of what it takes.

The failure these guard against was intermittent (a run took 0.1 s, the next one never
delivered while memory grew by gigabytes), so each pipeline runs many times in a row.
"""

from __future__ import annotations

import itertools

import pytest
from conftest import BACKEND_NAMES, CountingSource, within

import pypeln as pl

pytestmark = pytest.mark.timeout(240)

#: Items the consumer takes before it breaks.
TAKEN = 5000
#: Runs in a row per backend (fewer for process: each run starts worker processes).
RUNS = {"sync": 30, "thread": 30, "task": 30, "process": 5}
#: Seconds one run may take on a loaded machine (each takes well under 1 s when items
#: flow; a starved consumer waited for minutes).
RUN_BOUND = 20.0
#: How many items the source may be read beyond what the consumer needed, for the
#: backends that bound it with an unbounded `maxsize`: sync reads on demand, and task lets
#: its feeder thread read at most a couple of chunks (about 2,000 items) ahead of the first
#: stage. A starved task consumer left the source hundreds of thousands of items ahead.
#: The thread and process backends read the source in a thread of their own, paced only by
#: how the interpreter shares its lock (thread: 2,000 to 60,000 items ahead on a loaded
#: machine), so they are held to the time bound only.
AHEAD_BOUND = 10_000
BOUNDED_AHEAD = ("sync", "task")

NAMES = [name for name in BACKEND_NAMES if name != "ray"]


async def double_async(x: int) -> int:
    return x * 2


async def keep_async(x: int) -> bool:
    return x % 3 != 0


async def ident_async(x: int) -> int:
    return x


def double(x: int) -> int:
    return x * 2


def keep(x: int) -> bool:
    return x % 3 != 0


def ident(x: int) -> int:
    return x


def take(stage: object, n: int) -> int:
    """Iterate `stage`, breaking after `n` items; how many it got."""
    got = 0
    for _ in stage:  # type: ignore[attr-defined]
        got += 1
        if got >= n:
            break
    return got


@pytest.mark.parametrize("name", NAMES)
def test_map_then_filter_on_an_endless_source(name):
    backend = getattr(pl, name)
    is_task = name == "task"
    for run in range(RUNS[name]):
        source = CountingSource()
        stage = (
            iter(source)
            | backend.map(double_async if is_task else double, workers=2)
            | backend.filter(keep_async if is_task else keep)
        )
        assert within(RUN_BOUND, take, stage, TAKEN) == TAKEN, f"run {run}"
        # 2 of 3 items pass the filter
        needed = TAKEN * 3 // 2
        if name in BOUNDED_AHEAD:
            ahead = source.pulled - needed
            assert ahead <= AHEAD_BOUND, f"run {run}: the source was read {ahead} items ahead"


@pytest.mark.parametrize("name", NAMES)
def test_two_maps_on_itertools_count(name):
    backend = getattr(pl, name)
    f = ident_async if name == "task" else ident
    for run in range(RUNS[name]):
        stage = itertools.count() | backend.map(f) | backend.map(f)
        assert within(RUN_BOUND, take, stage, TAKEN) == TAKEN, f"run {run}"
