"""Shared fixtures and helpers: the backends under test, hypothesis profiles, and small
tools for watching what a pipeline leaves behind (threads, child processes, CPU time)."""

from __future__ import annotations

import gc
import importlib.util
import multiprocessing
import os
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, Iterator, List, Set

import _mutation_stats
import pytest
from hypothesis import HealthCheck, settings

import pypeln as pl

if _mutation_stats.recording():  # `./dev mutate` records which tests reach what
    _mutation_stats.install()
    from _mutation_stats import pytest_runtest_teardown  # noqa: F401


def _ray_installed() -> bool:
    """Whether the `pl.ray` tests run: Ray is installed, and PYPELN_TEST_RAY is not 0."""
    if os.environ.get("PYPELN_TEST_RAY", "1") == "0":
        return False
    return importlib.util.find_spec("ray") is not None


#: The backends under test: `pl.ray` only where Ray is installed (an optional extra).
BACKEND_NAMES = [
    name
    for name in ("sync", "thread", "process", "task", "ray")
    if hasattr(pl, name) and (name != "ray" or _ray_installed())
]
#: The stage functions every module has (API.md).
STAGE_FUNCTIONS = [
    "map",
    "filter",
    "flat_map",
    "each",
    "ordered",
    "batch",
    "unbatch",
    "concat",
    "from_iterable",
    "to_iterable",
    "run",
]
#: What every module exports (its ``__all__``, API.md): the stage functions and these types.
MODULE_API = [
    *STAGE_FUNCTIONS,
    "Namespace",
    "Stage",
    "Partial",
    "Element",
    "WorkerInfo",
    "StageStatus",
]
#: What every module with workers (all but `sync`) exports besides: its three parts.
WORKER_PARTS = ["Worker", "Supervisor", "IterableQueue"]
#: The documented extras of some modules, on top of the above.
MODULE_EXTRAS = {
    "process": ["set_start_method", "get_start_method"],
    "ray": [],
    "task": ["to_async_iterable", "collect"],
}
#: Backends whose workers run concurrently with the consumer.
CONCURRENT_BACKEND_NAMES = [name for name in BACKEND_NAMES if name != "sync"]
#: A stage's options that change how its `f` is called: plain, timed, under an error
#: policy, both (``@pytest.mark.parametrize("options", **CALL_OPTIONS)``).
CALL_OPTIONS: Dict[str, Any] = dict(
    argvalues=[{}, {"timeout": 30}, {"retries": 1}, {"timeout": 30, "retries": 1}],
    ids=["plain", "timed", "policy", "both"],
)

# -- hypothesis --------------------------------------------------------------------------
# "ci" (the default) keeps the suite fast on two cores; "dev" digs deeper:
#     HYPOTHESIS_PROFILE=dev ./dev test
# The `backend` fixture is a plain value, so reusing it across examples is safe.
_SUPPRESSED = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
settings.register_profile(
    "ci", max_examples=25, deadline=None, suppress_health_check=_SUPPRESSED, print_blob=True
)
settings.register_profile(
    "dev", max_examples=200, deadline=None, suppress_health_check=_SUPPRESSED, print_blob=True
)
# "quick": CI's runs on the other Pythons, which check the same properties more briefly
settings.register_profile(
    "quick", max_examples=8, deadline=None, suppress_health_check=_SUPPRESSED, print_blob=True
)
_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(_PROFILE)
#: On `pl.ray` every example starts actors (about a second each): fewer examples there.
RAY_EXAMPLES = max(3, settings.default.max_examples // 8)


# -- backends ----------------------------------------------------------------------------


@pytest.fixture(params=BACKEND_NAMES)
def backend(request: pytest.FixtureRequest):
    """Each backend module in turn (`pl.sync`, `pl.thread`, ...)."""
    return getattr(pl, request.param)


@pytest.fixture(params=CONCURRENT_BACKEND_NAMES)
def concurrent_backend(request: pytest.FixtureRequest):
    """Each backend with real workers (every backend but `pl.sync`)."""
    return getattr(pl, request.param)


def name_of(backend: Any) -> str:
    """`"thread"` for `pl.thread`, and so on."""
    return backend.__name__.rsplit(".", 1)[-1]


def min_workers(backend: Any) -> int:
    """The smallest valid `workers`: 0 ("no limit") in `task`, 1 elsewhere."""
    return 0 if name_of(backend) == "task" else 1


# -- waiting and watching ----------------------------------------------------------------


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds have passed; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return bool(predicate())
        time.sleep(interval)


class Leftovers:
    """What a pipeline started that is still alive: threads and child processes.

    Take a snapshot before the pipeline runs; `wait_gone(t)` then waits up to `t` seconds
    for everything started since to end, and returns what is still alive.
    """

    def __init__(self) -> None:
        self.threads: Set[threading.Thread] = set(threading.enumerate())
        self.children: Set[int] = {p.pid for p in multiprocessing.active_children() if p.pid}

    def alive(self) -> List[str]:
        gc.collect()
        threads = [
            f"thread {t.name!r}"
            for t in threading.enumerate()
            if t not in self.threads and t.is_alive()
        ]
        children = [
            f"process {p.name!r} (pid {p.pid})"
            for p in multiprocessing.active_children()
            if p.pid not in self.children
        ]
        return threads + children

    def wait_gone(self, timeout: float) -> List[str]:
        wait_until(lambda: not self.alive(), timeout)
        return self.alive()


def _child_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a child process, from /proc (Linux); 0 elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return (int(fields[11]) + int(fields[12])) / ticks


class CpuMeter:
    """CPU seconds used by this process and its live child processes over a span of time."""

    def __enter__(self) -> CpuMeter:
        children = multiprocessing.active_children()
        self._children = {p.pid: _child_cpu_seconds(p.pid) for p in children if p.pid}
        self._own = time.process_time()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall = time.perf_counter() - self._wall
        self.own = time.process_time() - self._own
        self.children = sum(
            max(0.0, _child_cpu_seconds(pid) - before) for pid, before in self._children.items()
        )
        self.cpu = self.own + self.children


class PipelineHang(BaseException):
    """A pipeline did not finish in time.

    A BaseException, not an Exception: hypothesis then stops at the first hang instead of
    shrinking over examples that each hang (pytest-timeout's own error would be caught by
    hypothesis as an ordinary failure, and the shrinking examples would hang unguarded).
    """


def within(seconds: float, fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)`, run in a helper thread; raises `PipelineHang` if it takes over `seconds`.

    What `fn` returns is returned, what it raises is re-raised here.
    """
    outcome: List[Any] = []

    def target() -> None:
        try:
            outcome.append((True, fn(*args)))
        except BaseException as e:  # handed to the caller
            outcome.append((False, e))

    thread = threading.Thread(target=target, name="test-consumer", daemon=True)
    thread.start()
    thread.join(seconds)
    if not outcome:
        raise PipelineHang(f"{fn!r}{args!r} did not finish within {seconds}s")
    ok, value = outcome[0]
    if ok:
        return value
    raise value


#: The first lines of a script a test interrupts with SIGINT: Ctrl-C as in a terminal,
#: whatever this process does with SIGINT (a child inherits a blocked or ignored SIGINT,
#: and would never see the test's Ctrl-C); it says so on stderr if it was not so.
SIGINT_AS_IN_A_TERMINAL = """\
import signal as _signal, sys as _sys
if _signal.SIGINT in _signal.pthread_sigmask(_signal.SIG_UNBLOCK, [_signal.SIGINT]):
    _sys.stderr.write("note: SIGINT was blocked at start\\n")
if _signal.getsignal(_signal.SIGINT) is not _signal.default_int_handler:
    _sys.stderr.write("note: SIGINT was not Python's default at start\\n")
    _signal.signal(_signal.SIGINT, _signal.default_int_handler)
"""


def process_group_alive(pgid: int) -> bool:
    """Whether any process of the process group `pgid` still exists."""
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


# -- sources -----------------------------------------------------------------------------


class CountingSource:
    """An endless iterable of ints that counts how many items were pulled from it."""

    def __init__(self) -> None:
        self.pulled = 0

    def __iter__(self) -> Iterator[int]:
        while True:
            value = self.pulled
            self.pulled += 1
            yield value


def slow_source(items: List[Any], first_delay: float, delay: float) -> Iterator[Any]:
    """Yields `items`, sleeping `first_delay` before the first and `delay` before each other."""
    for i, x in enumerate(items):
        time.sleep(first_delay if i == 0 else delay)
        yield x


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--start-method",
        default=None,
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


# -- forks -------------------------------------------------------------------------------


def threads_running() -> int:
    """How many threads this process runs, as the operating system counts them (those of
    C libraries too, as Python 3.12+ does to warn about a fork), else as `threading`
    does."""
    try:
        return len(os.listdir(f"/proc/{os.getpid()}/task"))
    except OSError:
        return threading.active_count()


#: The forks of this process made while it ran other threads (with where they came from).
_forks_with_threads: List[str] = []


def _before_fork() -> None:
    """Record a fork by `multiprocessing` (not a fork and exec: a subprocess) while other
    threads run."""
    caller = sys._getframe(1).f_code.co_filename
    if os.path.basename(caller) != "popen_fork.py":
        return
    n = threads_running()
    if n > 1:
        where = "".join(traceback.format_stack(limit=14)[:-1])
        _forks_with_threads.append(f"a fork while {n} threads ran, from:\n{where}")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork)


if "forkserver" in multiprocessing.get_all_start_methods():
    # A worker the forkserver starts imports the module of the stage's function, a test
    # module: the server imports what they all import once, ahead (as it would a script).
    multiprocessing.set_forkserver_preload(
        ["__main__", "pypeln.process.worker", "conftest", "pytest", "hypothesis"]
    )


@pytest.fixture(autouse=True)
def _no_fork_with_threads(request: pytest.FixtureRequest) -> Iterator[None]:
    """pypeln does not fork a process that runs other threads (a lock another thread
    holds stays held forever in the child); a test that makes it do so on purpose is
    marked ``forks_with_threads``."""
    del _forks_with_threads[:]
    yield
    forks, _forks_with_threads[:] = list(_forks_with_threads), []
    if forks and request.node.get_closest_marker("forks_with_threads") is None:
        pytest.fail(
            f"{len(forks)} fork(s) of a process that ran other threads; the first is {forks[0]}",
            pytrace=False,
        )


# -- ray ---------------------------------------------------------------------------------

#: The local Ray every `pl.ray` test of the session shares: two CPUs, no dashboard, a small
#: object store.
RAY_INIT = dict(num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024**2)


if _ray_installed():
    # Ray's workers import what the tests define (functions pickled by reference) the way
    # this process does: from the tests folder and the project. Set before any Ray starts
    # (a test that draws its backend inside hypothesis may start one through pypeln).
    _here = os.path.dirname(os.path.abspath(__file__))
    _paths = [_here, os.path.dirname(_here), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in _paths if p)
    # Ray starts its workers at a lower priority (nice 15): on a machine busy with anything
    # else, an actor then takes minutes to come up, and a test times out waiting for it.
    os.environ.setdefault("RAY_worker_niceness", "0")


def _uses_ray(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "ray" in callspec.id.replace("[", "-").split("-"):
        return True
    return item.get_closest_marker("ray") is not None


#: Python 3.12+'s warning about a fork of a process that runs other threads, which a test
#: marked ``forks_with_threads`` makes on purpose.
FORK_WARNING_EXPECTED = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded, use of fork:DeprecationWarning"
)


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    """Let the tests marked ``forks_with_threads`` fork without Python's warning about it.
    Mark every test that runs `pl.ray` (a parameter named "ray") with ``ray``; skip them
    where Ray is not installed or PYPELN_TEST_RAY=0; run them last, so that every other
    test runs before the session's Ray starts (once Ray runs, `pl.process` starts its
    workers with forkserver rather than fork)."""
    skip = None if _ray_installed() else pytest.mark.skip(reason="Ray is off (PYPELN_TEST_RAY=0)")
    ray_items = []
    for item in items:
        if item.get_closest_marker("forks_with_threads") is not None:
            item.add_marker(FORK_WARNING_EXPECTED)
        if _uses_ray(item):
            item.add_marker(pytest.mark.ray)
            if skip is not None:
                item.add_marker(skip)
            ray_items.append(item)
    if ray_items:
        others = [item for item in items if item.get_closest_marker("ray") is None]
        items[:] = others + ray_items


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """A local Ray, started once for the session by the first test that needs it."""
    import ray

    if not ray.is_initialized():
        ray.init(**RAY_INIT)
    yield ray
    ray.shutdown()


@pytest.fixture(autouse=True)
def _ray_for_ray_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.get_closest_marker("ray") is None:
        yield
        return
    request.getfixturevalue("ray_session")
    # Hypothesis takes a test's settings from the decorated function when it is called (a
    # profile loaded now would come too late: `@given` kept the default of its import),
    # and the test's other backends share that function: set them for this call only.
    test = request.function
    own = getattr(test, "_hypothesis_internal_use_settings", None)
    if own is None:
        yield
        return
    test._hypothesis_internal_use_settings = settings(
        own, max_examples=min(own.max_examples, RAY_EXAMPLES)
    )
    try:
        yield
    finally:
        test._hypothesis_internal_use_settings = own
