"""Nothing a pipeline starts outlives it, and a waiting pipeline costs no CPU.

A run ends when the consumer finishes, breaks out, closes or drops its iterator, or when
anything fails; within a second every worker has stopped and every thread and process the
run started is gone.
"""

from __future__ import annotations

import gc
import threading
import time

import pytest
from conftest import CountingSource, CpuMeter, Leftovers, name_of, slow_source

pytestmark = pytest.mark.timeout(30)

#: How long teardown may take once the consumer is done.
TEARDOWN_SECONDS = 1.0


def busy_pipeline(backend, ns, source):
    """An endless three-stage pipeline whose workers count their calls in `ns.calls`."""

    def work(x):
        with ns:
            ns.calls += 1
        time.sleep(0.002)
        return x

    return (
        source
        | backend.map(work, workers=3, maxsize=4)
        | backend.filter(lambda x: True, workers=2, maxsize=4)
        | backend.map(work, workers=2)
    )


def assert_stopped(backend, ns, leftovers, started):
    """Everything the run started is gone within a second of `started`; no call since."""
    alive = leftovers.wait_gone(max(0.0, started + TEARDOWN_SECONDS - time.monotonic()))
    assert alive == [], f"still alive {time.monotonic() - started:.2f}s after the end: {alive}"
    calls = ns.calls
    time.sleep(0.2)
    assert ns.calls == calls, "workers kept calling f after the run ended"


def test_a_finished_run_leaves_nothing_behind(backend):
    leftovers = Leftovers()
    out = list(range(50) | backend.map(lambda x: x, workers=3) | backend.filter(bool, workers=2))
    assert len(out) == 49
    started = time.monotonic()
    alive = leftovers.wait_gone(TEARDOWN_SECONDS)
    assert alive == [], f"still alive {time.monotonic() - started:.2f}s after the end: {alive}"


def test_break_stops_every_worker(backend):
    ns = backend.Namespace(calls=0)
    leftovers = Leftovers()
    for i, _ in enumerate(busy_pipeline(backend, ns, CountingSource())):
        if i == 5:
            started = time.monotonic()
            break
    assert_stopped(backend, ns, leftovers, started)


def test_closing_the_iterator_stops_every_worker(backend):
    ns = backend.Namespace(calls=0)
    leftovers = Leftovers()
    it = iter(busy_pipeline(backend, ns, CountingSource()))
    for _ in range(5):
        next(it)
    started = time.monotonic()
    it.close()
    assert_stopped(backend, ns, leftovers, started)


def test_closing_a_to_iterable_stops_every_worker(backend):
    ns = backend.Namespace(calls=0)
    leftovers = Leftovers()
    it = iter(backend.to_iterable(busy_pipeline(backend, ns, CountingSource()), maxsize=2))
    next(it)
    started = time.monotonic()
    it.close()
    assert_stopped(backend, ns, leftovers, started)


def test_dropping_the_iterator_stops_every_worker(backend):
    ns = backend.Namespace(calls=0)
    leftovers = Leftovers()
    it = iter(busy_pipeline(backend, ns, CountingSource()))
    for _ in range(5):
        next(it)
    started = time.monotonic()
    del it
    gc.collect()
    assert_stopped(backend, ns, leftovers, started)


def test_an_error_stops_every_worker(backend):
    ns = backend.Namespace(calls=0)
    leftovers = Leftovers()

    def fail_at_ten(x):
        if x == 10:
            raise ValueError("x")
        return x

    stage = busy_pipeline(backend, ns, CountingSource()) | backend.map(fail_at_ten, workers=2)
    with pytest.raises(ValueError):
        for _ in stage:
            pass
    started = time.monotonic()
    assert_stopped(backend, ns, leftovers, started)


def test_an_error_stops_workers_blocked_on_a_full_stage(backend):
    ns = backend.Namespace(calls=0)
    leftovers = Leftovers()

    def fail_when_full(x):
        time.sleep(0.2)  # let the upstream stages fill up and block
        raise ValueError("x")

    stage = busy_pipeline(backend, ns, CountingSource()) | backend.map(fail_when_full, maxsize=1)
    with pytest.raises(ValueError):
        list(stage)
    started = time.monotonic()
    assert_stopped(backend, ns, leftovers, started)


def test_an_error_in_the_source_stops_every_worker(backend):
    ns = backend.Namespace(calls=0)
    leftovers = Leftovers()

    def source():
        yield from range(20)
        raise ValueError("x")

    with pytest.raises(ValueError):
        list(busy_pipeline(backend, ns, source()))
    started = time.monotonic()
    assert_stopped(backend, ns, leftovers, started)


def test_break_while_workers_wait_on_a_slow_source(backend):
    ns = backend.Namespace(calls=0)
    leftovers = Leftovers()
    source = slow_source(list(range(100)), first_delay=0, delay=0.05)
    for _ in busy_pipeline(backend, ns, source):
        started = time.monotonic()
        break
    assert_stopped(backend, ns, leftovers, started)


def test_break_out_of_ordered(backend):
    ns = backend.Namespace(calls=0)
    leftovers = Leftovers()
    for _ in busy_pipeline(backend, ns, range(60)) | backend.ordered:
        started = time.monotonic()
        break
    assert_stopped(backend, ns, leftovers, started)


def test_many_runs_in_a_row_leave_nothing_behind(backend):
    leftovers = Leftovers()
    stage = range(10) | backend.map(lambda x: x, workers=2, maxsize=1)
    for _ in range(5):
        for _ in stage:
            break
        assert sorted(stage) == list(range(10))
    started = time.monotonic()
    alive = leftovers.wait_gone(TEARDOWN_SECONDS)
    assert alive == [], f"still alive {time.monotonic() - started:.2f}s after the end: {alive}"


# -- a waiting pipeline costs no CPU -----------------------------------------------------

#: The share of wall time a waiting pipeline may spend on the CPU.
IDLE_CPU_SHARE = 0.10


def test_waiting_on_a_slow_source_uses_no_cpu(backend):
    go = threading.Event()

    def source():
        yield 0
        assert go.wait(30), "the test never let the source go on"
        time.sleep(1.0)
        yield 1

    # (Ray actors take about a second each to start.)
    starting = 3.0 if name_of(backend) == "ray" else 0.2
    stage = (
        source()
        | backend.map(lambda x: x, workers=2, maxsize=2)
        | backend.filter(lambda x: True, workers=2)
        | backend.map(lambda x: x)
    )
    it = iter(stage)
    assert next(it) == 0
    time.sleep(starting)  # let every worker finish starting
    with CpuMeter() as meter:
        go.set()
        assert next(it) == 1
    assert meter.wall > 0.5
    assert meter.cpu < IDLE_CPU_SHARE * meter.wall, (
        f"{meter.cpu:.3f}s CPU ({meter.own:.3f}s here, {meter.children:.3f}s in children) "
        f"over {meter.wall:.3f}s of waiting"
    )
    assert list(it) == []


def test_waiting_on_a_slow_consumer_uses_no_cpu(backend):
    stage = (
        CountingSource()
        | backend.map(lambda x: x, workers=2, maxsize=1)
        | backend.filter(lambda x: True, workers=2, maxsize=1)
    )
    it = iter(stage)
    next(it)
    time.sleep(0.2)  # let the stages fill up
    with CpuMeter() as meter:
        time.sleep(0.8)
    it.close()
    assert meter.cpu < IDLE_CPU_SHARE * meter.wall, (
        f"{meter.cpu:.3f}s CPU ({meter.own:.3f}s here, {meter.children:.3f}s in children) "
        f"over {meter.wall:.3f}s of waiting"
    )


def test_waiting_on_slow_workers_uses_no_cpu(backend):
    def slow(x):
        time.sleep(0.9 if x == 1 else 0)
        return x

    it = iter(range(2) | backend.map(slow, workers=1) | backend.map(lambda x: x, workers=2))
    next(it)
    time.sleep(0.1)
    with CpuMeter() as meter:
        time.sleep(0.6)
    assert list(it) == [1]
    assert meter.cpu < IDLE_CPU_SHARE * meter.wall, (
        f"{meter.cpu:.3f}s CPU ({meter.own:.3f}s here, {meter.children:.3f}s in children) "
        f"over {meter.wall:.3f}s of waiting"
    )


def threads_besides(before):
    """The threads of this process, besides its main one and `before` (by ident):
    ``(name, daemon)`` pairs."""
    main = threading.main_thread()
    return sorted(
        (t.name, t.daemon) for t in threading.enumerate() if t is not main and t.ident not in before
    )


def test_every_thread_of_a_run_is_a_named_daemon(backend):
    """What a worker sees around it: each thread the run started says it is pypeln's (in a
    listing, a profiler or a leak check), and none keeps the interpreter from exiting. A
    timeout and a progress bar are on, for the threads that keep them."""
    if name_of(backend) == "ray":
        pytest.skip("actors run in Ray's worker processes, among Ray's own threads")
    before = frozenset(t.ident for t in threading.enumerate())

    def f(x):
        return threads_besides(before)

    stage = backend.map(f, range(3), workers=2, timeout=30)
    seen = [pair for pairs in backend.to_iterable(stage, progress=True) for pair in pairs]
    # (a `process` worker runs f in its process's main thread, alone)
    assert seen or name_of(backend) == "process", "f saw no thread of the run"
    assert all(name.startswith("pypeln") and daemon for name, daemon in seen), seen


def test_a_source_blocked_when_the_run_ends_is_not_read_any_further(backend):
    """The consumer leaves while the source is blocked in a call into C (a sleep, a socket
    read): the run does not wait for it, and once the call returns the source is stopped
    there, not read on (nothing after the call runs)."""
    left, resumed, finished = threading.Event(), threading.Event(), threading.Event()

    def source():
        try:
            yield 1
            left.wait(30)  # blocked (in a lock's acquire) until the consumer has left
            resumed.set()
            yield 2
        finally:
            finished.set()

    for _ in backend.map(abs, source(), workers=1):
        break
    left.set()
    assert finished.wait(10), "the source was not stopped"
    assert not resumed.is_set(), "the source was read on after the run had ended"
