"""`pl.process`: the contract, failures, teardown and start methods, through the public API."""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from multiprocessing import forkserver, resource_tracker
from typing import Any, Iterator, List, Set

import pytest
from _mutation_stats import script_env
from conftest import SIGINT_AS_IN_A_TERMINAL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pypeln as pl
from pypeln.process import spawning

#: (a stage told to fork forks even while a thread of the test before is on its way out)
START_METHODS = [
    pytest.param(m, marks=pytest.mark.forks_with_threads) if m == "fork" else m
    for m in ("fork", "spawn")
    if m in multiprocessing.get_all_start_methods()
]


# -- module-level functions: picklable without cloudpickle ------------------------------------


def double(x: int) -> int:
    return x * 2


def is_even(x: int) -> bool:
    return x % 2 == 0


def repeat(x: int) -> List[int]:
    return [x] * x


def fail_on_3(x: int) -> int:
    if x == 3:
        raise ValueError("bad item", x)
    return x


def slow_on_3(x: int) -> int:
    if x == 3:
        time.sleep(30)
    return x


def kill_self_on_5(x: int) -> int:
    if x == 5:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def sleepy(x: int) -> int:
    time.sleep(0.05)
    return x


def slow_pid(x: int) -> int:
    time.sleep(0.05)
    return os.getpid()


def pid_of(x: int) -> int:
    return os.getpid()


def with_index(x: int, element_index: Any) -> Any:
    return (x, element_index)


def start_with_resource(worker_info: Any) -> dict:
    return {"offset": 100, "who": worker_info.index}


def add_offset(x: int, offset: int) -> int:
    return x + offset


def failing_on_start() -> None:
    raise KeyError("no resource")


def failing_on_done() -> None:
    raise RuntimeError("cleanup failed", 7)


def failing_source() -> Iterator[int]:
    yield 1
    yield 2
    raise OSError(5, "source broke")


class NeedsTwoArgs(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(a)  # args alone cannot rebuild it
        self.b = b


def raise_needs_two_args(x: int) -> int:
    raise NeedsTwoArgs(x, 2)


def raise_with_a_lock(x: int) -> int:
    raise ValueError(threading.Lock())


class FailingIterable:
    """A picklable source (any start method) that fails after two items."""

    def __iter__(self) -> Iterator[int]:
        return failing_source()


class Unpicklable:
    def __reduce__(self) -> Any:
        raise TypeError("this value cannot be pickled")


def make_unpicklable(x: int) -> Any:
    return Unpicklable()


# -- helpers ----------------------------------------------------------------------------------


def children() -> Set[int]:
    return {p.pid for p in multiprocessing.active_children() if p.pid is not None}


def open_fds() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/fd"))


@pytest.fixture
def no_leak() -> Iterator[None]:
    """The test leaves no child process, thread or file descriptor behind."""
    # helper processes multiprocessing starts once per process (it keeps a pipe to each);
    # a stage that would fork a process running other threads uses the forkserver instead
    resource_tracker.ensure_running()
    if "forkserver" in multiprocessing.get_all_start_methods():
        forkserver.ensure_running()
    before_children, before_threads = children(), threading.active_count()
    before_fds = open_fds()
    yield
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and (
        children() - before_children or threading.active_count() > before_threads
    ):
        time.sleep(0.01)
    assert children() - before_children == set()
    assert threading.active_count() <= before_threads
    gc.collect()  # connections of a test's Namespace proxies close when they are collected
    assert open_fds() <= before_fds


@pytest.fixture(params=START_METHODS)
def start_method(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each start method, set globally for the test."""
    previous = pl.process.get_start_method()
    pl.process.set_start_method(request.param)
    try:
        yield request.param
    finally:
        pl.process.set_start_method(previous)


# -- the contract -----------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_operators(no_leak: None) -> None:
    xs = list(range(50))
    assert sorted(pl.process.map(double, xs, workers=3)) == [x * 2 for x in xs]
    assert sorted(xs | pl.process.filter(is_even, workers=2)) == [x for x in xs if x % 2 == 0]
    flat = sorted(range(5) | pl.process.flat_map(repeat, workers=2))
    assert flat == [1, 2, 2, 3, 3, 3, 4, 4, 4, 4]
    assert list(pl.process.each(double, xs, workers=2)) == []
    assert pl.process.each(double, xs, workers=2, run=True) is None
    assert list(pl.process.map(lambda x: x + 1, range(3)) | pl.process.ordered) == [1, 2, 3]


@pytest.mark.timeout(60)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    xs=st.lists(st.integers(-1000, 1000), max_size=300),
    workers=st.integers(1, 3),
    maxsize=st.integers(0, 5),
)
def test_same_as_python(xs: List[int], workers: int, maxsize: int) -> None:
    if pl.process.get_start_method() != "fork":
        pytest.skip("checks the operators; a run starts too slowly under spawn for 25 of them")
    stage = (
        xs
        | pl.process.map(double, workers=workers, maxsize=maxsize)
        | pl.process.filter(is_even, workers=workers)
        | pl.process.flat_map(lambda x: [x, x + 1], workers=workers)
        | pl.process.ordered
    )
    assert list(stage) == [y for x in map(double, xs) if is_even(x) for y in (x, x + 1)]


@pytest.mark.timeout(30)
def test_indices_survive_the_trip() -> None:
    out = list(
        range(6)
        | pl.process.flat_map(repeat, workers=2)
        | pl.process.filter(is_even, workers=2)
        | pl.process.to_iterable(return_index=True)
    )
    assert sorted(out) == sorted(
        pl.Element((x, j), x) for x in range(6) for j in range(x) if x % 2 == 0
    )
    ordered = list(range(20) | pl.process.map(sleepy, workers=4) | pl.process.ordered)
    assert ordered == list(range(20))


@pytest.mark.timeout(30)
def test_sources_and_concat() -> None:
    gen = (x for x in range(30))
    assert sorted(pl.process.from_iterable(gen)) == list(range(30))
    assert sorted(pl.process.from_iterable(iter(range(30)), use_thread=False)) == list(range(30))
    bounded = pl.process.from_iterable(range(30), use_thread=False, maxsize=2)
    assert sorted(bounded) == list(range(30))
    merged = pl.process.concat([range(3), pl.process.map(double, range(3), workers=2), [7]])
    assert sorted(merged) == [0, 0, 1, 2, 2, 4, 7]
    assert pl.process.run(pl.process.map(double, range(5))) is None


@pytest.mark.timeout(30)
def test_maxsize_bounds_the_stage() -> None:
    out = (
        range(200)
        | pl.process.map(double, workers=2, maxsize=3)
        | pl.process.map(double, workers=2, maxsize=1)
    )
    assert sorted(out) == [x * 4 for x in range(200)]


@pytest.mark.timeout(30)
def test_backpressure_bounds_what_is_read_ahead(no_leak: None) -> None:
    pulled = []

    def source() -> Iterator[int]:
        for i in range(100_000):
            pulled.append(i)
            yield i

    stage = pl.process.map(double, source(), workers=2, maxsize=4)
    it = iter(pl.process.to_iterable(stage, maxsize=4))
    for _ in range(5):
        next(it)
    time.sleep(0.5)
    # the stage's queue, two batches (of at most maxsize items) per worker, the output
    assert len(pulled) < 40
    it.close()  # type: ignore[attr-defined]


@pytest.mark.timeout(30)
def test_injection() -> None:
    out = sorted(pl.process.map(add_offset, range(4), workers=2, on_start=start_with_resource))
    assert out == [100, 101, 102, 103]
    assert sorted(pl.process.map(with_index, [5, 6])) == [(5, (0,)), (6, (1,))]
    who = list(
        pl.process.map(lambda x, who: who, range(20), workers=2, on_start=start_with_resource)
    )
    assert len(who) == 20 and set(who) <= {0, 1}


@pytest.mark.timeout(30)
def test_on_done_sees_stage_status() -> None:
    ns = pl.process.Namespace(done=[])

    def on_done(stage_status: Any, worker_info: Any) -> None:
        with ns:
            ns.done = ns.done + [
                (worker_info.index, stage_status.active_workers, stage_status.done)
            ]

    pl.process.each(sleepy, range(6), workers=2, on_done=on_done, run=True)
    assert sorted(i for i, _, _ in ns.done) == [0, 1]
    assert min(active for _, active, _ in ns.done) == 0
    assert any(done for _, _, done in ns.done)


@pytest.mark.timeout(30)
def test_workers_are_processes() -> None:
    pids = set(pl.process.map(pid_of, range(40), workers=2))
    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 2


@pytest.mark.timeout(30)
def test_namespace_is_shared_across_processes() -> None:
    ns = pl.process.Namespace(count=0)

    def count(x: int) -> None:
        with ns:
            ns.count += 1

    pl.process.each(count, range(20), workers=2, run=True)
    assert ns.count == 20
    ns.count = 5
    assert pickle.loads(pickle.dumps(ns)).count == 5
    assert "count=5" in repr(ns)


@pytest.mark.timeout(30)
def test_mixed_with_thread_and_sync_stages() -> None:
    out = (
        range(100)
        | pl.thread.map(double, workers=2)
        | pl.process.filter(lambda x: x % 3 == 0, workers=2)
        | pl.sync.map(lambda x: x + 1)
        | pl.process.flat_map(lambda x: [x, -x], workers=2, maxsize=5)
        | pl.thread.ordered
        | list
    )
    expected = [y for x in range(100) if (x * 2) % 3 == 0 for y in (x * 2 + 1, -(x * 2 + 1))]
    assert out == expected
    back = pl.sync.map(double, pl.process.map(double, range(5))) | list
    assert sorted(back) == [0, 4, 8, 12, 16]


@pytest.mark.timeout(30)
def test_slow_items_spread_over_all_workers() -> None:
    ns = pl.process.Namespace(ready=0)

    def all_started() -> None:  # so that a worker slow to start still finds items
        with ns:
            ns.ready += 1
        while ns.ready < 4:
            time.sleep(0.01)

    pids = list(pl.process.map(slow_pid, range(24), workers=4, on_start=all_started))
    assert len(pids) == 24
    assert len(set(pids)) == 4


@pytest.mark.timeout(30)
def test_first_item_arrives_quickly() -> None:
    it = iter(pl.process.map(double, range(100_000), workers=2))
    start = time.perf_counter()
    next(it)
    elapsed = time.perf_counter() - start
    it.close()  # type: ignore[attr-defined]
    # ~10 ms under fork, ~0.2 s under spawn (a new interpreter); generous for a loaded machine
    assert elapsed < (0.5 if pl.process.get_start_method() == "fork" else 5)


# -- failures ---------------------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("maxsize", [0, 1])
def test_error_in_f_reaches_the_consumer(maxsize: int, no_leak: None) -> None:
    with pytest.raises(ValueError) as info:
        list(range(100) | pl.process.map(fail_on_3, workers=2, maxsize=maxsize))
    assert info.value.args == ("bad item", 3)
    assert isinstance(info.value.__cause__, pl.RemoteTraceback)
    assert "fail_on_3" in str(info.value.__cause__)
    # every worker process is gone by the time the consumer sees the error
    assert [p for p in multiprocessing.active_children() if p.name.startswith("pypeln")] == []


@pytest.mark.timeout(30)
def test_error_in_callbacks_and_sources(no_leak: None) -> None:
    with pytest.raises(KeyError) as info:
        list(pl.process.map(double, range(10), workers=2, on_start=failing_on_start))
    assert info.value.args == ("no resource",)
    assert "failing_on_start" in str(info.value.__cause__)
    with pytest.raises(RuntimeError) as info2:
        list(pl.process.map(double, range(10), on_done=failing_on_done))
    assert info2.value.args == ("cleanup failed", 7)
    with pytest.raises(OSError) as info3:
        list(pl.process.map(double, failing_source(), workers=2))
    assert info3.value.args == (5, "source broke")
    with pytest.raises(OSError) as info4:
        list(pl.process.from_iterable(FailingIterable(), use_thread=False))
    assert info4.value.args == (5, "source broke")
    assert "failing_source" in str(info4.value.__cause__)


@pytest.mark.timeout(30)
def test_unpicklable_result_is_an_error_not_a_hang(no_leak: None) -> None:
    with pytest.raises(Exception, match="cannot be pickled"):
        list(pl.process.map(make_unpicklable, range(3)))
    with pytest.raises(Exception, match="cannot be pickled"):
        list(pl.process.map(double, [Unpicklable()]))


@pytest.mark.timeout(30)
def test_exception_that_cannot_travel_back_as_is(no_leak: None) -> None:
    for f, name in ((raise_needs_two_args, "NeedsTwoArgs"), (raise_with_a_lock, "ValueError")):
        with pytest.raises(Exception) as info:
            list(pl.process.map(f, range(3)))
        assert name in str(info.value)
        assert f.__name__ in str(info.value.__cause__)


@pytest.mark.timeout(30)
def test_worker_killed_from_outside(no_leak: None) -> None:
    start = time.monotonic()
    with pytest.raises(pl.WorkerDiedError, match="signal 9"):
        list(pl.process.map(kill_self_on_5, range(100), workers=2))
    assert time.monotonic() - start < 5


@pytest.mark.timeout(30)
def test_timeout_drops_the_item_and_goes_on(no_leak: None) -> None:
    starts = pl.process.Namespace(n=0)

    def on_start() -> None:
        with starts:
            starts.n += 1

    start = time.monotonic()
    out = sorted(pl.process.map(slow_on_3, range(8), workers=2, timeout=0.5, on_start=on_start))
    assert out == [0, 1, 2, 4, 5, 6, 7]
    assert time.monotonic() - start < 10
    assert starts.n == 3  # two workers, and the one that replaced the stopped one


@pytest.mark.timeout(30)
def test_timeout_on_the_last_item(no_leak: None) -> None:
    ns = pl.process.Namespace(done=0)

    def on_done() -> None:
        with ns:
            ns.done += 1

    out = list(pl.process.map(slow_on_3, range(4), workers=1, timeout=0.3, on_done=on_done))
    assert out == [0, 1, 2]
    assert ns.done == 1  # by the worker that replaced the stopped one


@pytest.mark.timeout(30)
def test_breaking_out_stops_every_worker(no_leak: None) -> None:
    for _ in pl.process.map(sleepy, range(1000), workers=2):
        break
    it = iter(range(1000) | pl.process.map(double, workers=2) | pl.process.map(sleepy, workers=2))
    next(it)
    start = time.monotonic()
    it.close()  # type: ignore[attr-defined]
    assert time.monotonic() - start < 1


@pytest.mark.timeout(60)
def test_many_pipelines_leak_nothing(no_leak: None) -> None:
    runs = 200 if pl.process.get_start_method() == "fork" else 20  # spawn starts slowly
    for i in range(runs):
        assert sorted(pl.process.map(double, range(10), workers=2)) == [x * 2 for x in range(10)]
        if i % 10 == 0:
            it = iter(pl.process.map(double, range(10_000), workers=2))
            next(it)
            it.close()  # type: ignore[attr-defined]


SCRIPT = (
    SIGINT_AS_IN_A_TERMINAL
    + """
import faulthandler, multiprocessing, signal, time
import pypeln as pl

faulthandler.register(signal.SIGUSR1, all_threads=True)  # (the tests' stack dump on a hang)

def slow(x):
    time.sleep(0.05)
    return x

if __name__ == "__main__":
    stage = range(1000) | pl.process.map(slow, workers=2) | pl.process.map(slow, workers=2)
    for i, x in enumerate(stage):
        if i == 0:
            print(" ".join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
"""
)


def start_script(tmp_path: Any, **popen: Any) -> tuple[subprocess.Popen[str], List[int]]:
    """Run `SCRIPT` in a Python of its own; return it and its worker pids once it iterates."""
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    # (only the package on its path: what earlier tests put on this process's sys.path,
    # e.g. the benchmarks' modules, is not the script's business)
    root = os.path.dirname(os.path.dirname(os.path.abspath(pl.__file__)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = root
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env, **popen
    )
    assert proc.stdout is not None
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert len(pids) == 4
    return proc, pids


def gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody reaps (its parent was killed)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.timeout(30)
def test_ctrl_c_in_the_parent(tmp_path: Any) -> None:
    proc, pids = start_script(tmp_path, stderr=subprocess.PIPE, start_new_session=True)
    os.killpg(proc.pid, signal.SIGINT)  # like Ctrl-C in a terminal: the whole group
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        children = [pid for pid in pids if not gone(pid)]
        os.kill(proc.pid, signal.SIGUSR1)  # its threads' stacks, to stderr
        time.sleep(1)
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        pytest.fail(f"no exit 10 s after SIGINT; workers left: {children}; stderr:\n{err}")
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err
    assert err.count("Traceback") == 1, err  # the parent's; workers stay quiet
    assert all(gone(pid) for pid in pids)


@pytest.mark.timeout(30)
def test_workers_exit_when_the_parent_is_killed(tmp_path: Any) -> None:
    proc, pids = start_script(tmp_path)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not all(gone(pid) for pid in pids):
        time.sleep(0.05)
    assert all(gone(pid) for pid in pids)


@pytest.mark.timeout(30)
def test_import_starts_no_process() -> None:
    code = (
        "import multiprocessing, threading, pypeln; "
        "assert not multiprocessing.active_children(); "
        "assert threading.active_count() == 1; print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=script_env(),  # the pypeln under test
    )
    assert out.stdout.strip() == "ok", out.stderr


# -- start methods ----------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_under_each_start_method(start_method: str, no_leak: None) -> None:
    offset = 10
    ns = pl.process.Namespace(finished=[])

    def on_done(stage_status: Any) -> None:
        with ns:
            ns.finished = ns.finished + [stage_status.active_workers]

    out = sorted(
        range(20)
        | pl.process.map(lambda x: x + offset, workers=2, on_done=on_done)
        | pl.process.filter(is_even, workers=2)
    )
    assert out == [x + offset for x in range(20) if (x + offset) % 2 == 0]
    assert sorted(ns.finished)[0] == 0 and len(ns.finished) == 2
    with pytest.raises(ValueError) as info:
        list(pl.process.map(fail_on_3, range(10), workers=2))
    assert info.value.args == ("bad item", 3)
    assert "fail_on_3" in str(info.value.__cause__)


@pytest.mark.timeout(60)
def test_namespace_under_spawn() -> None:
    ns = pl.process.Namespace(total=0)

    def add(x: int) -> None:
        with ns:
            ns.total += x

    pl.process.each(add, range(10), workers=2, start_method="spawn", run=True)
    assert ns.total == 45


@pytest.mark.timeout(60)
def test_pickle_fallback_without_cloudpickle(monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle as plain

    monkeypatch.setattr(spawning, "_pickler", lambda: (plain.dumps, "pickle"))
    stage = pl.process.map(double, range(5), workers=1, start_method="spawn")
    assert sorted(stage) == [0, 2, 4, 6, 8]
    with pytest.raises(TypeError, match=r"<lambda>.*cloudpickle"):
        list(pl.process.map(lambda x: x, range(5), start_method="spawn"))
    with pytest.raises(TypeError, match=r"iterable"):
        list(
            pl.process.from_iterable((x for x in range(3)), use_thread=False, start_method="spawn")
        )


@pytest.mark.timeout(30)
@pytest.mark.forks_with_threads  # told to fork
def test_start_method_arguments() -> None:
    with pytest.raises(ValueError, match="start_method"):
        pl.process.map(double, range(3), start_method="teleport")
    with pytest.raises(ValueError, match="start_method"):
        pl.process.set_start_method("teleport")
    pl.process.set_start_method("spawn")
    try:
        assert pl.process.get_start_method() == "spawn"
    finally:
        pl.process.set_start_method(None)
    partial = pl.process.map(double, workers=2, start_method="fork")
    assert sorted(range(4) | partial) == [0, 2, 4, 6]
    each = pl.process.each(double, start_method="fork", run=True)
    assert (range(3) | each) is None
