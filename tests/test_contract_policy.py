"""Error policies and rates (``on_error``, ``retries``, ``backoff``, ``retry_on``, ``rate``):
the same rules in every backend (`pypeln._core.policy`).

- a failing item is retried where it runs, up to ``retries`` more times, after a backoff;
  only the exception types in ``retry_on`` are retried;
- an item that still fails is raised (the default), skipped, or handed to a callable
  ``on_error(exception, value)`` whose return value stands for what ``f`` would have
  returned (map: the value; filter: keep it if truthy; flat_map: the outputs, None for
  none; each: ignored); a handler that raises stops the pipeline with its exception;
- an item that overruns the stage's ``timeout`` is retried too, then dropped (as 0.4.9
  did), counted as skipped with ``"skip"``, or handed to a callable as a `TimeoutError`;
- ``rate`` spaces the starts of the stage's attempts at least ``1 / rate`` apart, over all
  its workers: no one-second window holds more than ``rate`` starts.

Functions given to stages are module-level (`pl.process` pickles them), and whatever they
record crosses processes through files: one file per attempt, made with ``O_CREAT |
O_EXCL`` so that concurrent attempts never share a number.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import os
import re
import time
from collections import Counter
from typing import Any, List

import pytest
from conftest import name_of

pytestmark = pytest.mark.timeout(60)

PER_ITEM = ["map", "filter", "flat_map", "each"]
#: The stage's `timeout` in the timeout tests, and how long an overrunning attempt would
#: take if it were not stopped.
TIMEOUT = 0.3
SLOW_SECONDS = 10.0  # far longer than a timeout, and than starting workers on a loaded machine


class Boom(Exception):
    """What the stages' functions raise."""


class HandlerError(Exception):
    """What a failing `on_error` handler raises."""


# -- recording across processes ----------------------------------------------------------


def touch(directory: str, name: str, content: str = "") -> None:
    """Create the file `name` in `directory`; it must not exist yet."""
    fd = os.open(os.path.join(directory, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    try:
        os.write(fd, content.encode())
    finally:
        os.close(fd)


def next_attempt(directory: str, key: Any) -> int:
    """Record one more attempt at `key`; its number (0 for the first)."""
    n = 0
    while True:
        try:
            touch(directory, f"attempt-{key}-{n}")
            return n
        except FileExistsError:
            n += 1


def attempts(directory: str, key: Any) -> int:
    """How many attempts at `key` were recorded."""
    prefix = f"attempt-{key}-"
    return sum(1 for name in os.listdir(directory) if name.startswith(prefix))


def recorded(directory: str, prefix: str) -> List[str]:
    """The contents of the files whose names start with `prefix`, sorted."""
    out = []
    for name in sorted(os.listdir(directory)):
        if name.startswith(prefix):
            with open(os.path.join(directory, name)) as fh:
                out.append(fh.read())
    return sorted(out)


# -- the stages' functions ---------------------------------------------------------------


def flaky(directory: str, failures: int, x: int) -> int:
    """Fails the first `failures` attempts at each value, then returns ``x * 10``."""
    n = next_attempt(directory, x)
    if n < failures:
        raise Boom("flaky", x, n)
    return x * 10


def always_fails(directory: str, error: type, x: int) -> int:
    next_attempt(directory, x)
    raise error("always", x)


def per_op(op: str, bad: frozenset, directory: str, x: int) -> Any:
    """`op`'s function: raises `Boom("bad", x)` for the values in `bad`."""
    if x in bad:
        raise Boom("bad", x)
    if op == "map":
        return x * 10
    if op == "filter":
        return x % 2 == 0
    if op == "flat_map":
        return [x, x + 100]
    assert directory, "each records what it did in a directory"
    touch(directory, f"done-{x}", repr(x))  # each
    return None


def python_outputs(op: str, values: List[int], bad: frozenset) -> List[Any]:
    """What `per_op`'s stage emits with ``on_error="skip"``, by Python's own filtering."""
    ok = [x for x in values if x not in bad]
    if op == "map":
        return [x * 10 for x in ok]
    if op == "filter":
        return [x for x in ok if x % 2 == 0]
    if op == "flat_map":
        return [y for x in ok for y in (x, x + 100)]
    return []


def handler(op: str, directory: str, e: BaseException, x: int) -> Any:
    """An `on_error` handler: records what it was given, returns `op`'s fallback."""
    touch(directory, f"handled-{x}", repr((type(e).__name__, e.args, x)))
    if op == "map":
        return ("handled", type(e).__name__, e.args, x)
    if op == "filter":
        return x % 3 == 0
    if op == "flat_map":
        return [("handled", x)] if x % 3 == 0 else None
    return "ignored"  # each


def python_outputs_handled(op: str, values: List[int], bad: frozenset) -> List[Any]:
    """What `per_op`'s stage emits with `handler` as ``on_error``."""
    out = python_outputs(op, values, bad)
    failing = [x for x in values if x in bad]
    if op == "map":
        out += [("handled", "Boom", ("bad", x), x) for x in failing]
    elif op == "filter":
        out += [x for x in failing if x % 3 == 0]
    elif op == "flat_map":
        out += [("handled", x) for x in failing if x % 3 == 0]
    return out


def returns_none(e: BaseException, x: int) -> None:
    return None


def raising_handler(e: BaseException, x: int) -> Any:
    raise HandlerError("from the handler", type(e).__name__, x)


def nap(seconds: float) -> None:
    """Sleep in short steps: a thread can only be stopped between them."""
    for _ in range(max(1, round(seconds / 0.05))):
        time.sleep(0.05)


def slow_first_attempt(directory: str, slow: int, x: int) -> int:
    """Overruns any short timeout on the first attempt at `slow`; ``x * 10`` otherwise."""
    n = next_attempt(directory, x)
    if x == slow and n == 0:
        nap(SLOW_SECONDS)
    return x * 10


async def slow_first_attempt_async(directory: str, slow: int, x: int) -> int:
    n = next_attempt(directory, x)
    if x == slow and n == 0:
        await asyncio.sleep(SLOW_SECONDS)
    return x * 10


def slowly_failing(directory: str, seconds: float, x: int) -> int:
    """Fails every attempt, each after `seconds`."""
    next_attempt(directory, x)
    nap(seconds)
    raise Boom("slowly", x)


async def slowly_failing_async(directory: str, seconds: float, x: int) -> int:
    next_attempt(directory, x)
    await asyncio.sleep(seconds)
    raise Boom("slowly", x)


def timeout_handler(e: BaseException, x: int) -> Any:
    return ("timed out", isinstance(e, TimeoutError), type(e).__name__, x)


def timeout_message(e: BaseException, x: int) -> Any:
    return str(e)


def stamp(x: int) -> float:
    """When the attempt started."""
    return time.time()


def slow_first(backend: Any, directory: str, slow: int) -> Any:
    fn = slow_first_attempt_async if name_of(backend) == "task" else slow_first_attempt
    return functools.partial(fn, directory, slow)


def slow_first_listed(directory: str, slow: int, x: int) -> List[int]:
    return [slow_first_attempt(directory, slow, x)]


async def slow_first_listed_async(directory: str, slow: int, x: int) -> List[int]:
    return [await slow_first_attempt_async(directory, slow, x)]


def times_out_by_itself(x: int) -> int:
    """Raises the builtin `TimeoutError` at once, as a socket read that timed out does."""
    raise TimeoutError("its own timeout", x)


def stage_of(backend: Any, op: str, f: Any, source: Any, **kwargs: Any) -> Any:
    return getattr(backend, op)(f, source, **kwargs)


def run_to_list(backend: Any, stage: Any) -> Any:
    """The run's output and its statistics."""
    it = backend.to_iterable(stage)
    return list(it), it.stats


@pytest.fixture
def directory(tmp_path: Any) -> str:
    return str(tmp_path)


@pytest.fixture(params=PER_ITEM)
def op(request: pytest.FixtureRequest) -> str:
    return request.param


# -- retries -----------------------------------------------------------------------------


def test_a_flaky_item_is_retried_and_its_value_comes_out(backend, directory):
    f = functools.partial(flaky, directory, 2)
    started = time.monotonic()
    out, stats = run_to_list(backend, backend.map(f, [7], retries=3, backoff=0.05))
    elapsed = time.monotonic() - started
    assert out == [70]
    assert attempts(directory, 7) == 3
    # two backoffs: 0.05 then 0.1 (each lengthened at random, never shortened)
    assert elapsed >= 0.05 + 0.1, f"the retries took {elapsed:.3f}s"
    row = stats[0]
    assert (row.retried, row.failed, row.skipped) == (2, 0, 0)
    assert (row.items_in, row.items_out) == (1, 1)


def test_retries_over_many_items_and_workers(backend, directory):
    f = functools.partial(flaky, directory, 1)
    out, stats = run_to_list(backend, backend.map(f, range(12), workers=3, retries=1, backoff=0))
    assert sorted(out) == [x * 10 for x in range(12)]
    assert [attempts(directory, x) for x in range(12)] == [2] * 12
    row = stats[0]
    assert (row.retried, row.failed, row.items_in, row.items_out) == (12, 0, 12, 12)


def test_the_last_failure_is_raised_as_is(backend, directory):
    f = functools.partial(always_fails, directory, Boom)
    with pytest.raises(Boom) as info:
        list(backend.map(f, [5], retries=1, backoff=0.01))
    assert type(info.value) is Boom
    assert info.value.args == ("always", 5)
    assert attempts(directory, 5) == 2


def test_on_error_raise_is_the_default(backend, directory):
    f = functools.partial(always_fails, directory, Boom)
    with pytest.raises(Boom) as info:
        list(backend.map(f, [5], retries=1, backoff=0.01, on_error="raise"))
    assert info.value.args == ("always", 5)
    assert attempts(directory, 5) == 2


@pytest.mark.parametrize("retry_on", [(KeyError,), KeyError], ids=["tuple", "type"])
def test_retry_on_does_not_retry_other_exceptions(backend, directory, retry_on):
    f = functools.partial(always_fails, directory, ValueError)
    with pytest.raises(ValueError) as info:
        list(backend.map(f, [5], retries=3, backoff=0.01, retry_on=retry_on))
    assert info.value.args == ("always", 5)
    assert attempts(directory, 5) == 1


@pytest.mark.parametrize("retry_on", [(KeyError,), KeyError, (ValueError, KeyError)])
def test_retry_on_retries_its_exceptions(backend, directory, retry_on):
    f = functools.partial(always_fails, directory, KeyError)
    with pytest.raises(KeyError) as info:
        list(backend.map(f, [5], retries=2, backoff=0.01, retry_on=retry_on))
    assert info.value.args == ("always", 5)
    assert attempts(directory, 5) == 3


def test_retried_items_can_then_be_skipped(backend, directory):
    f = functools.partial(always_fails, directory, Boom)
    out, stats = run_to_list(
        backend, backend.map(f, range(4), workers=2, retries=2, backoff=0, on_error="skip")
    )
    assert out == []
    assert [attempts(directory, x) for x in range(4)] == [3] * 4
    row = stats[0]
    assert (row.retried, row.failed, row.skipped) == (8, 4, 4)


# -- on_error="skip" ---------------------------------------------------------------------

BAD = frozenset({0, 3, 4, 11, 17})
VALUES = list(range(20))


def test_skip_drops_exactly_the_failing_items(backend, op, directory):
    f = functools.partial(per_op, op, BAD, directory)
    out, stats = run_to_list(backend, stage_of(backend, op, f, VALUES, workers=3, on_error="skip"))
    expected = python_outputs(op, VALUES, BAD)
    assert Counter(out) == Counter(expected)
    if op == "each":
        assert recorded(directory, "done-") == sorted(repr(x) for x in VALUES if x not in BAD)
    row = stats[0]
    assert row.failed == row.skipped == len(BAD)
    assert row.items_in == len(VALUES)
    assert row.items_out == len(expected)
    assert row.retried == 0


def test_skip_with_a_partial(backend, op, directory):
    f = functools.partial(per_op, op, BAD, directory)
    out = list(VALUES | getattr(backend, op)(f, workers=2, on_error="skip"))
    assert Counter(out) == Counter(python_outputs(op, VALUES, BAD))


def test_skip_in_a_chain(backend):
    bad = frozenset({2, 20, 50})
    stage = backend.map(functools.partial(per_op, "map", bad, ""), range(10), on_error="skip")
    stage = backend.map(functools.partial(per_op, "map", bad, ""), stage, on_error="skip")
    out, stats = run_to_list(backend, stage)
    assert sorted(out) == [x * 100 for x in range(10) if x not in (2, 5)]
    assert [(r.items_in, r.items_out, r.skipped) for r in stats] == [(10, 9, 1), (9, 8, 1)]


def test_items_that_do_not_fail_are_untouched_by_a_policy(backend, op, directory):
    f = functools.partial(per_op, op, frozenset(), directory)
    plain = list(stage_of(backend, op, f, VALUES, workers=2))
    for name in os.listdir(directory):
        os.remove(os.path.join(directory, name))
    policed = list(
        stage_of(backend, op, f, VALUES, workers=2, on_error="skip", retries=2, rate=10_000)
    )
    assert Counter(policed) == Counter(plain)


@pytest.mark.parametrize("window", [None, 2])
def test_ordered_after_skipped_and_retried_items(backend, directory, window):
    kw = {} if window is None else dict(window=window)
    bad = frozenset({0, 5, 6, 13})
    stage = backend.map(
        functools.partial(per_op, "map", bad, directory), range(20), workers=3, on_error="skip"
    )
    assert list(backend.ordered(stage, **kw)) == [x * 10 for x in range(20) if x not in bad]

    flaky_stage = backend.map(
        functools.partial(flaky, directory, 1), range(20), workers=3, retries=1, backoff=0
    )
    assert list(backend.ordered(flaky_stage, **kw)) == [x * 10 for x in range(20)]

    timed = backend.map(
        slow_first(backend, directory, 104),
        range(100, 110),
        workers=2,
        timeout=TIMEOUT,
        retries=1,
        backoff=0,
    )
    assert list(backend.ordered(timed, **kw)) == [x * 10 for x in range(100, 110)]
    assert attempts(directory, 104) == 2


# -- on_error=callable -------------------------------------------------------------------


def test_the_handler_gets_the_exception_and_the_value(backend, op, directory):
    f = functools.partial(per_op, op, BAD, directory)
    on_error = functools.partial(handler, op, directory)
    stage = stage_of(backend, op, f, VALUES, workers=3, on_error=on_error)
    out, stats = run_to_list(backend, stage)
    assert Counter(out) == Counter(python_outputs_handled(op, VALUES, BAD))
    assert recorded(directory, "handled-") == sorted(
        repr(("Boom", ("bad", x), x)) for x in VALUES if x in BAD
    )
    row = stats[0]
    assert row.failed == len(BAD)
    assert row.skipped == 0
    assert row.items_in == len(VALUES)


def test_the_handler_is_called_after_the_retries(backend, directory):
    f = functools.partial(always_fails, directory, Boom)
    on_error = functools.partial(handler, "map", directory)
    stage = backend.map(f, [1, 2], retries=2, backoff=0, on_error=on_error)
    out, stats = run_to_list(backend, stage)
    assert Counter(out) == Counter(
        [("handled", "Boom", ("always", 1), 1), ("handled", "Boom", ("always", 2), 2)]
    )
    assert [attempts(directory, x) for x in (1, 2)] == [3, 3]
    row = stats[0]
    assert (row.retried, row.failed, row.items_out) == (4, 2, 2)


def test_a_map_handler_returning_none_emits_none(backend):
    f = functools.partial(per_op, "map", frozenset({1}), "")
    assert Counter(backend.map(f, range(3), on_error=returns_none)) == Counter([0, None, 20])


def test_a_flat_map_handler_returning_none_emits_nothing(backend):
    f = functools.partial(per_op, "flat_map", frozenset({1}), "")
    out = list(backend.flat_map(f, range(3), on_error=returns_none))
    assert Counter(out) == Counter([0, 100, 2, 102])


def test_a_filter_handler_returning_none_drops_the_item(backend):
    f = functools.partial(per_op, "filter", frozenset({2}), "")
    assert sorted(backend.filter(f, range(5), on_error=returns_none)) == [0, 4]


def test_a_handler_that_raises_stops_the_pipeline(backend, op, directory):
    f = functools.partial(per_op, op, frozenset({3}), directory)
    stage = stage_of(backend, op, f, range(6), workers=2, on_error=raising_handler)
    with pytest.raises(HandlerError) as info:
        list(stage)
    assert type(info.value) is HandlerError
    assert info.value.args == ("from the handler", "Boom", 3)


def test_a_handler_that_raises_stops_a_chain(backend):
    f = functools.partial(per_op, "map", frozenset({30}), "")
    stage = backend.map(f, range(10), workers=2, on_error=raising_handler)
    stage = backend.map(f, stage, workers=2, on_error=raising_handler)
    with pytest.raises(HandlerError) as info:
        list(backend.filter(bool, stage))
    assert info.value.args == ("from the handler", "Boom", 30)


# -- timeouts ----------------------------------------------------------------------------


def test_a_timed_out_item_is_retried(backend, directory):
    f = slow_first(backend, directory, 2)
    started = time.monotonic()
    stage = backend.map(f, range(5), workers=2, timeout=TIMEOUT, retries=1, backoff=0.05)
    out, stats = run_to_list(backend, stage)
    assert sorted(out) == [0, 10, 20, 30, 40]
    assert attempts(directory, 2) == 2
    assert time.monotonic() - started < SLOW_SECONDS
    row = stats[0]
    assert row.timed_out >= 1
    assert row.retried >= 1
    assert row.failed == 0


def test_a_timed_out_item_is_retried_only_for_timeout_errors(backend, directory):
    f = slow_first(backend, directory, 2)
    stage = backend.map(f, range(4), timeout=TIMEOUT, retries=1, backoff=0, retry_on=KeyError)
    out, stats = run_to_list(backend, stage)
    assert sorted(out) == [0, 10, 30]
    assert attempts(directory, 2) == 1
    assert (stats[0].timed_out, stats[0].retried) == (1, 0)

    for name in os.listdir(directory):
        os.remove(os.path.join(directory, name))
    stage = backend.map(f, range(4), timeout=TIMEOUT, retries=1, backoff=0, retry_on=TimeoutError)
    assert sorted(stage) == [0, 10, 20, 30]
    assert attempts(directory, 2) == 2


def test_without_a_policy_a_timed_out_item_is_dropped(backend, directory):
    f = slow_first(backend, directory, 2)
    out, stats = run_to_list(backend, backend.map(f, range(5), workers=2, timeout=TIMEOUT))
    assert sorted(out) == [0, 10, 30, 40]
    row = stats[0]
    assert row.timed_out == 1
    assert (row.failed, row.skipped, row.retried) == (0, 0, 0)


def test_a_timed_out_item_is_dropped_after_its_retries(backend, directory):
    fn = slowly_failing_async if name_of(backend) == "task" else slowly_failing
    f = functools.partial(fn, directory, SLOW_SECONDS)
    started = time.monotonic()
    out, stats = run_to_list(backend, backend.map(f, [1], timeout=TIMEOUT, retries=1, backoff=0))
    assert out == []
    assert attempts(directory, 1) == 2
    assert time.monotonic() - started < SLOW_SECONDS
    assert (stats[0].timed_out, stats[0].retried) == (2, 1)


def test_skip_counts_a_timed_out_item_as_skipped(backend, directory):
    f = slow_first(backend, directory, 2)
    stage = backend.map(f, range(5), workers=2, timeout=TIMEOUT, on_error="skip")
    out, stats = run_to_list(backend, stage)
    assert sorted(out) == [0, 10, 30, 40]
    row = stats[0]
    assert (row.timed_out, row.failed, row.skipped) == (1, 1, 1)


def test_the_handler_gets_a_timeout_error(backend, directory):
    f = slow_first(backend, directory, 2)
    stage = backend.map(f, range(5), workers=2, timeout=TIMEOUT, on_error=timeout_handler)
    out, stats = run_to_list(backend, stage)
    assert Counter(out) == Counter([0, 10, 30, 40, ("timed out", True, "ItemTimeoutError", 2)])
    row = stats[0]
    assert (row.timed_out, row.failed) == (1, 1)


def test_the_handler_is_told_the_timeout_it_overran(backend, directory):
    f = slow_first(backend, directory, 1)
    stage = backend.map(f, range(3), timeout=TIMEOUT, on_error=timeout_message)
    messages = [x for x in stage if isinstance(x, str)]
    assert messages == [f"the item took longer than the stage's timeout of {TIMEOUT}s"]


@pytest.mark.parametrize("op", ["flat_map", "each"])
def test_a_handler_returning_none_for_a_timed_out_item_emits_nothing(backend, directory, op):
    """As for a failed item: ``None`` from the handler means "nothing" where the operator
    emits any number of values (flat_map) or none (each)."""
    if op == "flat_map":
        task = name_of(backend) == "task"
        f = functools.partial(slow_first_listed_async if task else slow_first_listed, directory, 1)
    else:
        f = slow_first(backend, directory, 1)
    stage = getattr(backend, op)(f, range(3), timeout=TIMEOUT, on_error=returns_none)
    out, stats = run_to_list(backend, stage)
    assert sorted(out) == ([0, 20] if op == "flat_map" else [])
    assert (stats[0].timed_out, stats[0].failed) == (1, 1)


@pytest.mark.parametrize("policy", [{}, {"retries": 1, "backoff": 0}])
def test_a_timeout_error_f_raises_itself_is_a_failure_not_an_overrun(backend, policy):
    """Under a stage `timeout`, an `f` that raises `TimeoutError` itself, long before the
    timeout (a socket read that timed out), fails like any other error: it is not taken
    for an overrun, whose item would be dropped silently."""
    stage = backend.map(times_out_by_itself, [1], timeout=30, **policy)
    with pytest.raises(TimeoutError) as info:
        list(stage)
    assert info.value.args == ("its own timeout", 1)


def test_a_handler_that_raises_for_a_timed_out_item_stops_the_pipeline(backend, directory):
    f = slow_first(backend, directory, 2)
    stage = backend.map(f, range(5), workers=2, timeout=TIMEOUT, on_error=raising_handler)
    started = time.monotonic()
    with pytest.raises(HandlerError) as info:
        list(stage)
    assert info.value.args == ("from the handler", "ItemTimeoutError", 2)
    assert time.monotonic() - started < SLOW_SECONDS


def test_each_attempt_gets_the_whole_timeout(backend, directory, request):
    """Three attempts that fail after 0.2 s each, under a timeout of 0.5 s: none of them
    overruns, so the item fails after its retries and the error reaches the consumer."""
    fn = slowly_failing_async if name_of(backend) == "task" else slowly_failing
    f = functools.partial(fn, directory, 0.2)
    with pytest.raises(Boom) as info:
        list(backend.map(f, [1], timeout=0.5, retries=2, backoff=0.01))
    assert type(info.value) is Boom
    assert info.value.args == ("slowly", 1)
    assert attempts(directory, 1) == 3


# -- rate --------------------------------------------------------------------------------


def most_in_one_second(times: List[float]) -> int:
    """The most of `times` that fall in any one-second window ``[t, t + 1)``."""
    times = sorted(times)
    return max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))


@pytest.mark.timeout(90)
def test_rate_spaces_the_starts_over_all_workers(backend):
    it = backend.to_iterable(backend.map(stamp, range(100), workers=4, rate=20))
    starts = list(it)
    assert len(starts) == 100
    # 99 gaps of at least 1/20 s: about 5 s from the first start to the last (measured
    # between starts: starting the workers, seconds for Ray actors under load, is not it)
    elapsed = max(starts) - min(starts)
    assert 4.0 <= elapsed <= 15, f"100 items at 20/s took {elapsed:.2f}s"
    assert most_in_one_second(starts) <= 20, "a one-second window held more than 20 starts"
    assert it.stats[0].items_out == 100


@pytest.mark.timeout(90)
@pytest.mark.parametrize("rate", [2000, 5000])
def test_a_rate_above_a_thousand_a_second_is_kept_too(backend, rate):
    """Above 1,000/s a worker takes several start slots at once (2 at 2,000/s, 5 at
    5,000/s): 0.6 s worth of starts still take at least 0.6 s from the first to the last."""
    n = int(rate * 0.6) + 1
    starts = list(backend.map(stamp, range(n), workers=2, rate=rate))
    assert len(starts) == n
    elapsed = max(starts) - min(starts)
    assert elapsed >= 0.55, f"{n:,} items at {rate:,}/s took {elapsed:.3f}s"


@pytest.mark.timeout(90)
def test_a_rate_far_above_what_the_stage_does_costs_little(backend):
    """At 1,000,000/s a worker takes 1,000 start slots at a time: 20,000 items are not
    held back to one start a millisecond (which would take 20 s)."""
    if name_of(backend) == "ray":
        pytest.skip(
            "its actors take their slots as pl.process's workers do; starting them "
            "takes seconds under load, too close to the bound"
        )
    started = time.monotonic()
    assert sum(1 for _ in backend.map(abs, range(20_000), workers=2, rate=1_000_000)) == 20_000
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"20,000 items at 1,000,000/s took {elapsed:.1f}s"


@pytest.mark.timeout(60)
def test_waiting_for_a_rate_slot_is_not_overrunning_the_timeout(backend, request):
    """Items that take no time, started 2 per second under a timeout of 0.3 s: each waits
    up to seconds for its start, but none overruns, so none is dropped."""
    it = backend.to_iterable(backend.map(abs, range(8), workers=4, rate=2, timeout=TIMEOUT))
    assert sorted(it) == list(range(8))
    assert it.stats[0].timed_out == 0


@pytest.mark.timeout(60)
def test_rate_counts_retries_as_starts(backend, directory):
    f = functools.partial(flaky, directory, 1)
    started = time.monotonic()
    out = list(backend.map(f, range(10), workers=4, retries=1, backoff=0, rate=10))
    elapsed = time.monotonic() - started
    assert sorted(out) == [x * 10 for x in range(10)]
    # 20 attempts at 10/s: 19 gaps of at least 0.1 s
    assert elapsed >= 1.8, f"20 attempts at 10/s took {elapsed:.2f}s"


# -- validation --------------------------------------------------------------------------

BAD_POLICIES = [
    ("retries", -1, ValueError),
    ("retries", 1.5, TypeError),
    ("retries", True, TypeError),
    ("rate", 0, ValueError),
    ("rate", -1, ValueError),
    ("rate", float("nan"), ValueError),
    ("rate", float("inf"), ValueError),
    ("rate", "fast", TypeError),
    ("on_error", "ignore", ValueError),
    ("on_error", 42, TypeError),
    ("backoff", -1, ValueError),
    ("backoff", float("nan"), ValueError),
    ("backoff", float("inf"), ValueError),
    ("retry_on", 42, TypeError),
    ("retry_on", (int,), TypeError),
    ("retry_on", [ValueError], TypeError),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("partial", [False, True], ids=["stage", "partial"])
@pytest.mark.parametrize(
    "parameter,value,kind",
    BAD_POLICIES,
    ids=[f"{p}={v!r}".replace("<class '", "").replace("'>", "") for p, v, _ in BAD_POLICIES],
)
def test_bad_policies_are_refused_at_once(backend, op, partial, parameter, value, kind):
    fn = getattr(backend, op)
    pattern = rf"(?s)(?=.*\b{re.escape(parameter)}\b)(?=.*{re.escape(repr(value))})"
    pattern += rf"(?=.*pl\.{name_of(backend)}\.{op}\b)"
    with pytest.raises(kind, match=pattern):
        if partial:
            fn(abs, **{parameter: value})
        else:
            fn(abs, [1, 2], **{parameter: value})


@pytest.mark.timeout(30)
def test_each_run_checks_its_policy_before_running(backend, directory):
    f = functools.partial(per_op, "each", frozenset(), directory)
    with pytest.raises(ValueError, match=r"\bon_error\b"):
        backend.each(f, [1, 2], run=True, on_error="ignore")
    assert os.listdir(directory) == []


@pytest.mark.timeout(30)
def test_good_policies_are_accepted(backend, op):
    fn = getattr(backend, op)
    for kwargs in [
        dict(retries=0),
        dict(retries=3, backoff=0),
        dict(backoff=2.5),
        dict(retry_on=KeyError),
        dict(retry_on=(KeyError, TimeoutError)),
        dict(retry_on=()),
        dict(rate=1),
        dict(rate=0.5),
        dict(on_error="raise"),
        dict(on_error="skip"),
        dict(on_error=returns_none),
    ]:
        assert fn(abs, [1], **kwargs) is not None
        assert fn(abs, **kwargs) is not None
