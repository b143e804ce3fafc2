"""`pl.process` under error policies, rates and timeouts, and its statistics.

The stage functions are defined at module level (picklable under spawn and forkserver).
A worker process cannot count calls in a global of the test, so the functions count their
attempts in files of a directory they are given (`functools.partial`).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from functools import partial
from typing import Any, List, Tuple

import pytest

import pypeln as pl

#: A stage told to fork does so even while other threads run (a worker that overran its
#: timeout is replaced from one of the run's threads; a thread of the test before may not
#: have ended yet): allowed here.
FORK = pytest.param("fork", marks=pytest.mark.forks_with_threads)
START_METHODS = [
    pytest.param(m, marks=pytest.mark.forks_with_threads) if m == "fork" else m
    for m in ("fork", "spawn", "forkserver")
    if m in multiprocessing.get_all_start_methods()
]


# -- module-level functions ---------------------------------------------------------------


def attempt(directory: str, name: Any) -> int:
    """This call's attempt number for `name` (1 first), counted in a file of `directory`."""
    path = os.path.join(directory, str(name))
    with open(path, "a") as fh:
        fh.write("x")
    return os.path.getsize(path)


def flaky_on_3(directory: str, x: int) -> int:
    """Fails the first two attempts at 3, then succeeds."""
    if x == 3 and attempt(directory, x) <= 2:
        raise ConnectionError("flaky", x)
    return x * 10


def fail_odd(x: int) -> int:
    if x % 2:
        raise ValueError("odd", x)
    return x


def handler(e: BaseException, x: Any) -> Tuple[str, str, Any]:
    return ("handled", type(e).__name__, x)


def raising_handler(e: BaseException, x: Any) -> Any:
    raise KeyError("from the handler", x)


def slow_first_time_on_3(directory: str, x: int) -> int:
    """Sleeps 2 s on its first attempt at 3 only."""
    if x == 3 and attempt(directory, x) == 1:
        time.sleep(2)
    return x


def always_slow_on_3(x: int) -> Any:
    if x == 3:
        time.sleep(2)
    return [x] if x % 2 == 0 else x


def odd_none_but_3(x: int) -> Any:
    return always_slow_on_3(x) if x % 2 == 0 or x == 3 else []


def always_slow_on_3_indexed(x: int, element_index: Any) -> int:
    if x == 3:
        time.sleep(2)
    return x


def late(e: BaseException, x: Any) -> Tuple[str, Any]:
    assert isinstance(e, TimeoutError), e
    return ("late", x)


def started_at(x: int) -> float:
    return time.time()


def nap(x: int) -> int:
    time.sleep(0.05)
    return x


def with_resource(directory: str, x: int, offset: int, worker_info: Any) -> Tuple[int, int]:
    if attempt(directory, x) == 1:
        raise ConnectionError("first attempt", x)
    return x + offset, worker_info.index


def offset_resource(worker_info: Any) -> dict:
    return {"offset": 100}


# -- retries, skip, handlers --------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", START_METHODS)
def test_flaky_item_is_retried_until_it_succeeds(tmp_path: Any, method: str) -> None:
    stage = pl.process.map(
        partial(flaky_on_3, str(tmp_path)),
        range(6),
        workers=2,
        retries=3,
        backoff=0.01,
        start_method=method,
    )
    it = pl.process.to_iterable(stage)
    assert sorted(it) == [0, 10, 20, 30, 40, 50]
    row = it.stats[0]
    assert row.retried == 2
    assert row.failed == 0
    assert (row.items_in, row.items_out) == (6, 6)


@pytest.mark.timeout(60)
def test_retries_exhausted_raise(tmp_path: Any) -> None:
    stage = pl.process.map(
        partial(flaky_on_3, str(tmp_path)),
        range(6),
        workers=2,
        retries=1,
        backoff=0.01,
    )
    with pytest.raises(ConnectionError):
        list(stage)


@pytest.mark.timeout(60)
def test_retry_on_limits_what_is_retried(tmp_path: Any) -> None:
    stage = pl.process.map(
        partial(flaky_on_3, str(tmp_path)),
        range(6),
        retries=3,
        backoff=0.01,
        retry_on=ValueError,
    )
    with pytest.raises(ConnectionError):
        list(stage)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", START_METHODS)
def test_skip_drops_exactly_the_failing_items(method: str) -> None:
    it = pl.process.to_iterable(
        pl.process.map(fail_odd, range(20), workers=2, on_error="skip", start_method=method)
    )
    assert sorted(it) == list(range(0, 20, 2))
    row = it.stats[0]
    assert (row.skipped, row.failed, row.items_in, row.items_out) == (10, 10, 20, 10)


@pytest.mark.timeout(60)
def test_skip_under_filter_flat_map_and_each() -> None:
    assert sorted(pl.process.filter(fail_odd, range(1, 9), on_error="skip")) == [2, 4, 6, 8]
    assert sorted(pl.process.flat_map(lambda x: [fail_odd(x)] * 2, range(4), on_error="skip")) == [
        0,
        0,
        2,
        2,
    ]
    it = pl.process.to_iterable(pl.process.each(fail_odd, range(6), on_error="skip"))
    assert list(it) == []
    assert it.stats[0].skipped == 3


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", START_METHODS)
def test_handler_gets_the_exception_and_the_value(method: str) -> None:
    it = pl.process.to_iterable(
        pl.process.map(fail_odd, range(6), workers=2, on_error=handler, start_method=method)
    )
    out = sorted(it, key=str)
    assert out == sorted(
        [
            0,
            2,
            4,
            ("handled", "ValueError", 1),
            ("handled", "ValueError", 3),
            ("handled", "ValueError", 5),
        ],
        key=str,
    )
    assert it.stats[0].failed == 3
    assert it.stats[0].skipped == 0


@pytest.mark.timeout(60)
def test_handler_output_keeps_the_items_index() -> None:
    stage = pl.process.map(fail_odd, range(6), workers=2, on_error=handler)
    out = sorted(pl.process.to_iterable(stage, return_index=True))
    assert [e.value for e in out] == [
        0,
        ("handled", "ValueError", 1),
        2,
        ("handled", "ValueError", 3),
        4,
        ("handled", "ValueError", 5),
    ]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", [FORK, "spawn"])
def test_handler_that_raises_stops_the_pipeline(method: str) -> None:
    stage = pl.process.map(fail_odd, range(6), on_error=raising_handler, start_method=method)
    with pytest.raises(KeyError):
        list(stage)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", [FORK, "spawn"])
def test_retries_keep_worker_info_and_resources(tmp_path: Any, method: str) -> None:
    stage = pl.process.map(
        partial(with_resource, str(tmp_path)),
        range(4),
        workers=2,
        retries=1,
        backoff=0.01,
        on_start=offset_resource,
        start_method=method,
    )
    out = sorted(stage)
    assert [y for y, _ in out] == [100, 101, 102, 103]
    assert {i for _, i in out} <= {0, 1}


# -- timeouts -----------------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", START_METHODS)
def test_timed_out_item_is_retried(tmp_path: Any, method: str) -> None:
    stage = pl.process.map(
        partial(slow_first_time_on_3, str(tmp_path)),
        range(6),
        workers=2,
        timeout=0.3,
        retries=1,
        backoff=0.01,
        start_method=method,
    )
    t0 = time.monotonic()
    it = pl.process.to_iterable(stage)
    assert sorted(it) == [0, 1, 2, 3, 4, 5]
    assert time.monotonic() - t0 < 10
    row = it.stats[0]
    assert (row.timed_out, row.retried, row.failed) == (1, 1, 0)
    assert (row.items_in, row.items_out) == (6, 6)
    assert row.workers_alive == 0


@pytest.mark.timeout(60)
def test_timed_out_item_without_retries_is_dropped(tmp_path: Any) -> None:
    stage = pl.process.map(
        partial(slow_first_time_on_3, str(tmp_path)),
        range(6),
        workers=2,
        timeout=0.3,
    )
    it = pl.process.to_iterable(stage)
    assert sorted(it) == [0, 1, 2, 4, 5]
    assert it.stats[0].timed_out == 1


@pytest.mark.timeout(60)
def test_timed_out_item_is_skipped_and_counted(tmp_path: Any) -> None:
    stage = pl.process.map(
        partial(slow_first_time_on_3, str(tmp_path)),
        range(6),
        timeout=0.3,
        on_error="skip",
    )
    it = pl.process.to_iterable(stage)
    assert sorted(it) == [0, 1, 2, 4, 5]
    row = it.stats[0]
    assert (row.timed_out, row.skipped, row.failed) == (1, 1, 1)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", START_METHODS)
def test_timed_out_item_goes_to_the_handler(method: str) -> None:
    stage = pl.process.map(
        always_slow_on_3,
        range(6),
        workers=2,
        timeout=0.3,
        on_error=lambda e, x: ("late", x),
        start_method=method,
    )
    it = pl.process.to_iterable(stage, return_index=True)
    out = sorted(it)
    assert [e.value for e in out] == [[0], 1, [2], ("late", 3), [4], 5]
    assert [e.index for e in out] == [(k,) for k in range(6)]
    row = it.stats[0]
    assert (row.timed_out, row.failed, row.items_in, row.items_out) == (1, 1, 6, 6)


@pytest.mark.timeout(60)
def test_timed_out_item_goes_to_the_handler_with_element_index() -> None:
    stage = pl.process.map(
        always_slow_on_3_indexed,
        range(6),
        workers=2,
        timeout=0.3,
        on_error=late,
    )
    out = sorted(pl.process.to_iterable(stage, return_index=True))
    assert [e.value for e in out] == [0, 1, 2, ("late", 3), 4, 5]
    assert [e.index for e in out] == [(k,) for k in range(6)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "op, on_error, expected",
    [
        ("filter", lambda e, x: True, [0, 1, 2, 3, 4, 5]),
        ("filter", lambda e, x: False, [0, 1, 2, 4, 5]),
        ("flat_map", lambda e, x: ["a", "b"], [0, 2, "a", "b", 4]),
        ("flat_map", lambda e, x: None, [0, 2, 4]),
        ("each", lambda e, x: "ignored", []),
    ],
)
def test_timed_out_fallback_by_operator(op: str, on_error: Any, expected: List[Any]) -> None:
    f = odd_none_but_3 if op == "flat_map" else always_slow_on_3
    stage = getattr(pl.process, op)(f, range(6), workers=2, timeout=0.3, on_error=on_error)
    out = [e.value for e in sorted(pl.process.to_iterable(stage, return_index=True))]
    assert out == expected


@pytest.mark.timeout(60)
def test_timed_out_handler_that_raises_stops_the_pipeline() -> None:
    stage = pl.process.map(always_slow_on_3, range(6), timeout=0.3, on_error=raising_handler)
    with pytest.raises(KeyError):
        list(stage)


# -- rate ---------------------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", START_METHODS)
def test_rate_is_shared_by_the_workers(method: str) -> None:
    stage = pl.process.map(started_at, range(20), workers=2, rate=10, start_method=method)
    starts = sorted(stage)
    assert len(starts) == 20
    assert starts[-1] - starts[0] >= 1.8
    for k, t in enumerate(starts):
        in_window = sum(1 for s in starts[k:] if s < t + 1.0)
        assert in_window <= 10, (k, starts)


# -- statistics ---------------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", [FORK, "spawn"])
def test_stats_count_items_and_busy_time(method: str) -> None:
    it = pl.process.to_iterable(pl.process.map(nap, range(20), workers=2, start_method=method))
    assert sorted(it) == list(range(20))
    row = it.stats[0]
    assert (row.items_in, row.items_out) == (20, 20)
    assert row.busy >= 0.5
    assert (row.failed, row.retried, row.skipped, row.timed_out) == (0, 0, 0, 0)
    assert row.workers_alive == 0
    assert row.name == "pl.process.map(nap)"


@pytest.mark.timeout(60)
def test_stats_are_live_while_the_run_goes_on() -> None:
    source = (x for x in range(40))  # (a range would be sliced on demand, never queued)
    it = pl.process.to_iterable(pl.process.map(nap, source, workers=2, maxsize=4))
    first = next(it)
    assert first in range(40)
    assert it.stats[0].workers_alive == 2
    rest = list(it)
    assert len(rest) == 39
    assert it.stats[0].workers_alive == 0
    assert it.stats[0].queue_peak > 0


@pytest.mark.timeout(60)
def test_stats_of_a_filter_and_a_chain() -> None:
    stage = pl.process.filter(lambda x: x % 3 == 0, range(30), workers=2)
    stage = pl.process.flat_map(lambda x: [x, x], stage, workers=2)
    it = pl.process.to_iterable(stage)
    assert len(list(it)) == 20
    rows = {row.op: row for row in it.stats}
    assert (rows["filter"].items_in, rows["filter"].items_out) == (30, 10)
    assert (rows["flat_map"].items_in, rows["flat_map"].items_out) == (10, 20)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", [FORK, "spawn"])
def test_counts_of_a_final_failure_reach_the_stats(tmp_path: Any, method: str) -> None:
    it = pl.process.to_iterable(
        pl.process.map(
            partial(flaky_on_3, str(tmp_path)),
            range(6),
            retries=1,
            backoff=0.01,
            start_method=method,
        )
    )
    with pytest.raises(ConnectionError):
        list(it)
    assert (it.stats[0].retried, it.stats[0].failed) == (1, 1)


def identity(x: int) -> int:
    return x


@pytest.mark.timeout(60)
def test_worker_killed_while_waiting_for_its_rate_slot_does_not_stall_the_stage() -> None:
    # A worker waits for its slot holding the stage's rate lock; with two workers at 4 items
    # a second some items overrun 0.35 s waiting for their slot. Killing one that holds the
    # lock must not leave the others waiting for it forever (every later item would time out).
    stage = pl.process.map(
        identity,
        range(10),
        workers=2,
        rate=4,
        timeout=0.35,
        retries=2,
        backoff=0.01,
    )
    assert sorted(stage) == list(range(10))


@pytest.mark.timeout(60)
def test_timed_out_retry_with_a_bounded_output_and_ordered(tmp_path: Any) -> None:
    stage = pl.process.map(
        partial(slow_first_time_on_3, str(tmp_path)),
        range(8),
        workers=2,
        timeout=0.3,
        retries=1,
        backoff=0.01,
        maxsize=2,
    )
    assert list(pl.process.ordered(stage)) == list(range(8))
    assert list(
        pl.process.ordered(
            pl.process.map(always_slow_on_3, range(6), workers=2, timeout=0.3, on_error=late)
        )
    ) == [[0], 1, [2], ("late", 3), [4], 5]
