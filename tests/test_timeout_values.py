"""Every value of ``timeout`` is either rejected where it is given, with a message naming it,
or honoured: NaN and negative numbers are errors; ``inf`` and durations longer than any
single wait mean "no limit". No value makes a backend drop items it was not told to drop.
"""

from __future__ import annotations

import asyncio
import math
import re
import time

import pytest
from conftest import name_of, within

pytestmark = pytest.mark.timeout(30)

#: A run whose items must all come back: bounded, so that a hang fails with a message.
RUN_BOUND = 20

BAD = [float("nan"), -1, -0.5, -math.inf]
#: no limit: infinity, longer than `threading.TIMEOUT_MAX`, and longer than a selector's
#: millisecond count (a C int, ~24.8 days)
UNBOUNDED = [math.inf, 1e300, 1e9, 3e6]


def per_item(backend, op, timeout):
    return getattr(backend, op)(lambda x: x, timeout=timeout)


@pytest.mark.parametrize("value", BAD, ids=repr)
@pytest.mark.parametrize("op", ["map", "filter", "flat_map", "each"])
def test_a_bad_timeout_is_rejected_where_it_is_given(backend, op, value):
    message = rf"\.{op}: timeout must be >= 0, got {re.escape(repr(value))}"
    with pytest.raises(ValueError, match=message):
        getattr(backend, op)(lambda x: x, range(3), timeout=value)
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        per_item(backend, op, value)  # the partial form checks it too


@pytest.mark.parametrize("value", BAD, ids=repr)
def test_a_bad_batch_timeout_is_rejected(backend, value):
    message = rf"\.batch: timeout must be >= 0, got {re.escape(repr(value))}"
    with pytest.raises(ValueError, match=message):
        backend.batch(2, range(3), timeout=value)


def test_a_timeout_must_be_a_number(backend):
    with pytest.raises(TypeError, match="timeout must be a number, got '1'"):
        backend.map(lambda x: x, range(3), timeout="1")
    with pytest.raises(TypeError, match="timeout must be a number, got True"):
        backend.batch(2, range(3), timeout=True)


def slow_first(backend):
    """Identity, with the first item taking a moment (so a zero-length limit would drop it)."""
    if name_of(backend) == "task":

        async def f(x):
            if x == 0:
                await asyncio.sleep(0.05)
            return x

        return f

    def g(x):
        if x == 0:
            time.sleep(0.05)
        return x

    return g


@pytest.mark.parametrize("value", UNBOUNDED, ids=repr)
def test_an_endless_timeout_keeps_every_item(backend, value):
    source = (x for x in range(8))
    stage = backend.map(slow_first(backend), source, workers=2, timeout=value)
    out = within(RUN_BOUND, sorted, stage)
    assert out == list(range(8)), f"timeout={value!r} dropped items: got {out}"


@pytest.mark.parametrize("value", UNBOUNDED, ids=repr)
def test_an_endless_timeout_in_other_operators(backend, value):
    f = slow_first(backend)
    kept = within(RUN_BOUND, sorted, backend.filter(lambda x: True, range(5), timeout=value))
    assert kept == list(range(5))
    if name_of(backend) == "task":

        async def twice(x):
            return [await f(x)] * 2

    else:

        def twice(x):
            return [f(x)] * 2

    doubled = within(RUN_BOUND, sorted, backend.flat_map(twice, range(3), timeout=value))
    assert doubled == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("value", UNBOUNDED, ids=repr)
def test_an_endless_batch_timeout_never_flushes_early(backend, value):
    stage = backend.batch(2, backend.ordered(range(5)), timeout=value)
    out = within(RUN_BOUND, lambda: sorted(stage))
    assert out == [[0, 1], [2, 3], [4]]


def test_a_zero_timeout_is_no_limit(backend):
    out = within(RUN_BOUND, sorted, backend.map(slow_first(backend), range(4), timeout=0))
    assert out == [0, 1, 2, 3]
