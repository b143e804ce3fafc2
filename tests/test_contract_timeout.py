"""`timeout`: an item that takes longer is dropped, its worker replaced, and the run goes on.

The contract holds in every backend (pypeln 0.4.9's `sync` enforced it too). In `task` the
slow function is a coroutine, as it would be there; elsewhere it sleeps in short steps so
that the worker can be interrupted between them.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time

import pytest
from conftest import Leftovers, name_of

pytestmark = pytest.mark.timeout(60)

#: How long an overrunning item would take if it were not stopped (long: a dropped item
#: costs nothing, and a loaded machine may take seconds to replace a Ray actor).
SLOW_SECONDS = 12.0
TIMEOUT = 0.3
#: A run with overrunning items must end well before they would have.
MAX_RUN_SECONDS = 8.0


def slow_on(backend, slow_values, result=lambda x: x * 10):
    """A function that overruns on `slow_values` and returns `result(x)` at once otherwise."""
    slow_values = frozenset(slow_values)

    if name_of(backend) == "task":

        async def f(x):
            if x in slow_values:
                await asyncio.sleep(SLOW_SECONDS)
            return result(x)

        return f

    def f(x):
        if x in slow_values:
            for _ in range(int(SLOW_SECONDS / 0.05)):
                time.sleep(0.05)
        return result(x)

    return f


@pytest.mark.parametrize("workers", [1, 2])
def test_an_overrunning_item_is_dropped(backend, workers):
    f = slow_on(backend, {2})
    started = time.monotonic()
    out = sorted(backend.map(f, range(6), workers=workers, timeout=TIMEOUT))
    elapsed = time.monotonic() - started
    assert out == [0, 10, 30, 40, 50]
    assert elapsed < MAX_RUN_SECONDS, f"the run took {elapsed:.2f}s"


def test_several_overrunning_items_are_dropped(backend):
    f = slow_on(backend, {1, 4, 7})
    started = time.monotonic()
    out = sorted(backend.map(f, range(10), workers=3, timeout=TIMEOUT))
    elapsed = time.monotonic() - started
    assert out == [x * 10 for x in range(10) if x not in (1, 4, 7)]
    assert elapsed < MAX_RUN_SECONDS, f"the run took {elapsed:.2f}s"


@pytest.mark.parametrize("op", ["filter", "flat_map"])
def test_timeout_in_other_operators(backend, op):
    if op == "filter":
        f = slow_on(backend, {3}, result=lambda x: x % 2 == 1)
        expected = [1, 5]
    else:
        f = slow_on(backend, {3}, result=lambda x: [x, x])
        expected = [0, 0, 1, 1, 2, 2, 4, 4, 5, 5]
    started = time.monotonic()
    out = sorted(getattr(backend, op)(f, range(6), workers=2, timeout=TIMEOUT))
    assert out == expected
    assert time.monotonic() - started < MAX_RUN_SECONDS


def test_timeout_in_each(backend):
    ns = backend.Namespace(done=())
    inner = slow_on(backend, {0}, result=lambda x: x)

    if name_of(backend) == "task":

        async def record(x):
            await inner(x)
            with ns:
                ns.done = ns.done + (x,)

    else:

        def record(x):
            inner(x)
            with ns:
                ns.done = ns.done + (x,)

    started = time.monotonic()
    assert backend.each(record, range(4), workers=2, timeout=TIMEOUT, run=True) is None
    assert time.monotonic() - started < MAX_RUN_SECONDS
    assert sorted(ns.done) == [1, 2, 3]


def test_items_within_the_timeout_are_kept(backend):
    def quick(x):
        time.sleep(0.01)
        return x

    out = sorted(backend.map(quick, range(12), workers=3, timeout=1))
    assert out == list(range(12))


def test_timeout_then_ordered(backend):
    f = slow_on(backend, {0, 5})
    stage = backend.map(f, range(8), workers=2, timeout=TIMEOUT) | backend.ordered
    assert list(stage) == [x * 10 for x in range(8) if x not in (0, 5)]


def test_a_stage_with_a_timeout_leaves_nothing_behind(backend):
    leftovers = Leftovers()
    f = slow_on(backend, {1})
    assert sorted(backend.map(f, range(4), workers=2, timeout=TIMEOUT)) == [0, 20, 30]
    alive = leftovers.wait_gone(1.0)
    assert alive == [], f"still alive after the run: {alive}"


def test_on_done_runs_after_a_timeout(backend):
    ns = backend.Namespace(done=0)

    def on_done():
        with ns:
            ns.done += 1

    f = slow_on(backend, {0})
    out = sorted(backend.map(f, range(4), workers=1, timeout=TIMEOUT, on_done=on_done))
    assert out == [10, 20, 30]
    assert ns.done >= 1


def test_an_item_that_overruns_after_a_long_wait_for_input_is_dropped(backend):
    """The timeout keeps working after the worker waited for input longer than it."""
    f = slow_on(backend, {2})

    def source():
        yield 1
        time.sleep(3 * TIMEOUT)  # a gap in the input: the worker waits, no item running
        yield 2
        yield 3

    started = time.monotonic()
    out = sorted(backend.map(f, source(), workers=1, timeout=TIMEOUT))
    elapsed = time.monotonic() - started
    assert out == [10, 30]
    assert elapsed < MAX_RUN_SECONDS, f"the run took {elapsed:.2f}s"


def test_an_overrunning_item_is_dropped_even_if_f_catches_the_interruption(backend):
    """An `f` that catches everything (a bare ``except:``) cannot keep an item that ran
    past its timeout: the item is dropped all the same."""
    if name_of(backend) == "task":

        async def f(x):
            try:
                if x == 2:
                    await asyncio.sleep(SLOW_SECONDS)
            except BaseException:
                return "caught"
            return x * 10

    else:

        def f(x):
            try:
                if x == 2:
                    for _ in range(int(SLOW_SECONDS / 0.05)):
                        time.sleep(0.05)
            except BaseException:
                return "caught"
            return x * 10

    started = time.monotonic()
    out = sorted(backend.map(f, range(4), workers=1, timeout=TIMEOUT), key=str)
    assert out == [0, 10, 30]
    assert time.monotonic() - started < MAX_RUN_SECONDS


def is_inside(thread: threading.Thread, function: str) -> bool:
    frame = sys._current_frames().get(thread.ident)
    while frame is not None and frame.f_code.co_name != function:
        frame = frame.f_back
    return frame is not None


@pytest.mark.timeout(30)
def test_an_overrun_that_lands_as_the_item_ends_does_not_keep_the_watchdog_lock():
    """`sync` (and each `pl.ray` actor) stops an overrunning item from a watchdog thread,
    which raises the overrun in the item's thread while holding the lock they share. An
    item that ends at that moment waits for the lock in `end`, and the overrun lands as
    soon as it has it: the lock must still be let go, or every later overrun goes
    unnoticed (the watchdog waits for the lock for good). Played here step by step: the
    test holds the lock as the watchdog does, raises into the thread waiting in `end`,
    then lets go."""
    from pypeln._core.threadstop import Deadline, raise_in_thread

    class Overrun(BaseException):
        pass

    deadline = Deadline(3600)
    begun, go, outcome = threading.Event(), threading.Event(), []

    def item() -> None:
        deadline.begin()
        begun.set()
        go.wait(10)
        try:
            deadline.end()
        except Overrun:
            outcome.append("overrun")

    t = threading.Thread(target=item, daemon=True)
    t.start()
    assert begun.wait(10)
    with deadline._cond:
        go.set()
        stop = time.monotonic() + 10
        while not is_inside(t, "end") and time.monotonic() < stop:
            time.sleep(0.001)
        time.sleep(0.05)  # from the call to the lock: a few instructions
        raise_in_thread(t, Overrun)
    t.join(10)
    assert not t.is_alive() and outcome == ["overrun"]
    free = deadline._cond.acquire(timeout=5)
    assert free, "the item's thread kept the deadline's lock after its overrun landed"
    deadline._cond.release()
    deadline.close()
