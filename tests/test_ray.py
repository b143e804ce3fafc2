"""`pl.ray`: what only the Ray backend does, through the public API.

Covered here: an actor killed from outside in the middle of a run (no policy, retries,
``on_error="skip"``); no `Worker` actor (and no pypeln thread) left alive however a run
ends; `on_start`, `f` and `on_done` running inside the actors; `pl.ray.Namespace`;
resource requests, their checks at construction and requests no node can satisfy; a
two-node cluster (in a subprocess: a process holds one Ray session only); mixing with the
other backends and asyncio; how errors and timeouts come back. The contract every backend
keeps is tested elsewhere (``test_contract_*``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Set, Tuple

import pytest

ray = pytest.importorskip("ray")

from conftest import wait_until, within  # noqa: E402

import pypeln as pl  # noqa: E402

pytestmark = [pytest.mark.ray]

# Ray workers cannot import this test module (it is not on their path): its functions and
# classes travel by value, as those of a script's ``__main__`` do.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

#: Ray's name for the actor class of a stage's workers.
WORKER_CLASS = "Worker"


@pytest.fixture(scope="module", autouse=True)
def ray_session() -> Iterator[None]:
    """A local Ray for this module, unless one runs already (a session-wide one owns it:
    not shut down here)."""
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024**2)
    yield


# -- functions the actors run --------------------------------------------------------------


def double(x: int) -> int:
    return 2 * x


def slow(x: int) -> int:
    time.sleep(0.05)
    return x


def fail_on_3(x: int) -> int:
    if x == 3:
        raise ValueError("bad item", x)
    return x


def spin_on_5(x: int) -> int:
    """A pure-Python loop that never ends, for item 5 only."""
    if x == 5:
        while True:
            pass
    return x


def jittery(x: int) -> int:
    """Items finish out of order: some sleep longer than later ones."""
    time.sleep((x * 7 % 5) * 0.004)
    return x


async def plus_one(x: int) -> int:
    await asyncio.sleep(0)
    return x + 1


# -- watching actors -----------------------------------------------------------------------


def worker_actors() -> Dict[str, Dict[str, Any]]:
    """Ray's records of every `Worker` actor of this session (any state), by actor id."""
    from ray._private import state

    return {
        actor_id: info
        for actor_id, info in state.actors().items()
        if WORKER_CLASS in str(info.get("ActorClassName", ""))
    }


def pypeln_threads() -> Set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("pypeln") and t.is_alive()}


class ActorWatch:
    """The `Worker` actors (and pypeln threads) started since the watch was made."""

    def __init__(self) -> None:
        self.before = set(worker_actors())
        self.threads = pypeln_threads()

    def created(self) -> Dict[str, Dict[str, Any]]:
        return {k: v for k, v in worker_actors().items() if k not in self.before}

    def live(self) -> Dict[str, Dict[str, Any]]:
        """Created since, and not dead (alive, starting or restarting)."""
        return {k: v for k, v in self.created().items() if v.get("State") != "DEAD"}

    def alive(self) -> Dict[str, Dict[str, Any]]:
        return {k: v for k, v in self.created().items() if v.get("State") == "ALIVE"}

    def leftovers(self) -> List[str]:
        actors = [f"actor {k} ({v.get('State')})" for k, v in self.live().items()]
        threads = [f"thread {t.name!r}" for t in pypeln_threads() - self.threads]
        return actors + threads

    def wait_gone(self, timeout: float) -> List[str]:
        """Wait (`ray.kill` is asynchronous) for everything started since to end; what
        is still alive."""
        wait_until(lambda: not self.leftovers(), timeout, interval=0.1)
        return self.leftovers()


@ray.remote(num_cpus=0)
class HandleBook:
    """Where each actor of a stage leaves its own handle from `on_start`: Ray gives no
    handle for an actor found by id, and `ray.kill` needs one."""

    def __init__(self) -> None:
        self.handles: Dict[str, Any] = {}

    def put(self, actor_id: str, handle: Any) -> None:
        self.handles[actor_id] = handle

    def ids(self) -> List[str]:
        return list(self.handles)

    def get(self, actor_id: str) -> Any:
        return self.handles[actor_id]


def leave_handle_in(book: Any) -> Callable[[], None]:
    """An `on_start` that leaves the actor's handle in `book`."""

    def on_start() -> None:
        context = ray.get_runtime_context()
        ray.get(book.put.remote(context.get_actor_id(), context.current_actor))

    return on_start


def kill_one(watch: ActorWatch, book: Any, how: str) -> Dict[str, Any]:
    """Kill one running actor of the watched stage from outside: with `ray.kill`, or with
    SIGKILL to its process (as the kernel's out-of-memory killer would); its record."""

    def running() -> List[Dict[str, Any]]:
        started = set(ray.get(book.ids.remote()))
        return [info for key, info in watch.alive().items() if key in started]

    assert wait_until(lambda: bool(running()), 20, interval=0.05), (
        "no actor of the stage was ALIVE and past on_start within 20s"
    )
    victim = running()[0]
    if how == "ray.kill":
        ray.kill(ray.get(book.get.remote(victim["ActorID"])))
    else:
        os.kill(int(victim["Pid"]), signal.SIGKILL)
    return victim


def take(it: Iterator[Any], n: int, seconds: float = 20) -> List[Any]:
    """The next `n` values of a run; fails if they do not come within `seconds`."""
    return within(seconds, lambda: [next(it) for _ in range(n)])


def once_started(ns: Any, workers: int, items: Iterable[Any]) -> Iterator[Any]:
    """A source that yields `items` only once every worker has run `on_start` (each sets
    ``started_<index>`` in `ns`): then no worker still starting is left out when the input
    ends (see test_every_worker_runs_its_callbacks_even_if_slow_to_start)."""

    def all_started() -> bool:
        return all(hasattr(ns, f"started_{i}") for i in range(workers))

    if not wait_until(all_started, 30, interval=0.05):
        raise AssertionError(f"not all of the {workers} workers ran on_start within 30s")
    yield from items


# -- 1. an actor killed from outside -------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["ray.kill", "SIGKILL"])
def test_killed_actor_fails_the_run_with_worker_died_error(how: str) -> None:
    watch = ActorWatch()
    book = HandleBook.remote()
    it = iter(pl.ray.map(slow, range(400), workers=2, on_start=leave_handle_in(book)))
    got = take(it, 4)
    victim = kill_one(watch, book, how)
    start = time.monotonic()
    with pytest.raises(pl.WorkerDiedError, match="died") as info:
        got += within(20, list, it)
    elapsed = time.monotonic() - start
    assert elapsed < 10, f"the death of actor {victim['ActorID']} took {elapsed:.1f}s to fail"
    assert "pl.ray.map" in str(info.value)
    assert len(got) < 400
    assert not watch.wait_gone(15), watch.leftovers()
    ray.kill(book)


#: Items of the runs whose actor is killed under a policy: enough for the run to go on
#: well after the kill.
ITEMS = 100


@pytest.mark.timeout(60)
def test_killed_actor_is_replaced_under_retries() -> None:
    watch = ActorWatch()
    book = HandleBook.remote()
    stage = pl.ray.map(slow, range(ITEMS), workers=2, on_start=leave_handle_in(book), retries=2)
    it = pl.ray.to_iterable(stage)
    got = take(iter(it), 4)
    victim = kill_one(watch, book, "ray.kill")
    started = set(ray.get(book.ids.remote()))
    got += within(40, list, it)
    assert sorted(got) == list(range(ITEMS)), "every item exactly once"
    replacements = set(ray.get(book.ids.remote())) - started
    assert replacements, f"no new actor took over from {victim['ActorID']}"
    assert it.stats[0].retried >= 1
    assert not watch.wait_gone(15), watch.leftovers()
    ray.kill(book)


@pytest.mark.timeout(60)
def test_killed_actor_items_skipped_under_on_error_skip(tmp_path: Path) -> None:
    log = str(tmp_path / "started.log")

    def logged(x: int) -> int:
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()} {x}\n")
        time.sleep(0.05)
        return x

    watch = ActorWatch()
    book = HandleBook.remote()
    stage = pl.ray.map(
        logged, range(ITEMS), workers=2, on_start=leave_handle_in(book), on_error="skip"
    )
    it = pl.ray.to_iterable(stage)
    got = take(iter(it), 4)
    victim = kill_one(watch, book, "ray.kill")
    got += within(40, list, it)

    assert len(got) == len(set(got)), f"an item came out twice: {sorted(got)}"
    assert set(got) <= set(range(ITEMS))
    missing = set(range(ITEMS)) - set(got)
    assert 1 <= len(missing) <= 10, f"missing: {sorted(missing)}"
    starts = [line.split() for line in Path(log).read_text().splitlines()]
    by_others = {int(x) for pid, x in starts if int(pid) != int(victim["Pid"])}
    assert not missing & by_others, (
        f"items missing though another actor than the killed one worked on them: "
        f"{sorted(missing & by_others)}"
    )
    assert it.stats[0].skipped == len(missing)
    assert not watch.wait_gone(15), watch.leftovers()
    ray.kill(book)


# -- 2. nothing left alive -----------------------------------------------------------------


def consume_until_interrupted(stage: Any) -> None:
    """Iterate `stage` until a SIGINT (Ctrl-C) lands in the consumer, after 3 items."""
    main = threading.main_thread()
    if threading.current_thread() is not main:
        pytest.skip("a SIGINT reaches the main thread only")
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT does not raise KeyboardInterrupt here")
    three = threading.Event()

    def interrupt() -> None:
        if three.wait(30):
            signal.pthread_kill(main.ident, signal.SIGINT)  # type: ignore[arg-type]

    threading.Thread(target=interrupt, name="test-interrupt", daemon=True).start()
    n = 0
    with pytest.raises(KeyboardInterrupt):
        for _ in stage:
            n += 1
            if n == 3:
                three.set()
    assert three.is_set(), "the run did not give 3 items"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("ending", ["finished", "break", "error", "interrupt"])
def test_no_actor_left_alive(ending: str) -> None:
    watch = ActorWatch()
    if ending == "finished":
        assert within(30, sorted, pl.ray.map(double, range(20), workers=2)) == list(range(0, 40, 2))
    elif ending == "break":

        def take_three() -> List[int]:
            seen = []
            for x in pl.ray.map(slow, range(1000), workers=2):
                seen.append(x)
                if len(seen) == 3:
                    break
            return seen

        assert len(within(30, take_three)) == 3
    elif ending == "error":
        with pytest.raises(ValueError):
            within(30, list, pl.ray.map(fail_on_3, range(100), workers=2))
    else:
        consume_until_interrupted(pl.ray.map(slow, range(2000), workers=2))
    assert watch.created(), "the watch saw no Worker actor created: it would prove nothing"
    assert not watch.wait_gone(15), f"still alive after the run ({ending}): {watch.leftovers()}"


# -- 3. callbacks inside the actors --------------------------------------------------------


@pytest.mark.timeout(60)
def test_callbacks_run_inside_the_actors() -> None:
    ns = pl.ray.Namespace(finished=[])

    def on_start(worker_info: Any) -> Dict[str, Any]:
        setattr(ns, f"started_{worker_info.index}", True)
        return {"offset": 100, "index": worker_info.index, "start_pid": os.getpid()}

    def f(x: int, offset: int, index: int, start_pid: int) -> Tuple[int, int, int, int]:
        time.sleep(0.01)
        return x + offset, index, start_pid, os.getpid()

    def on_done(stage_status: Any, index: int, start_pid: int) -> None:
        record = (index, start_pid, os.getpid(), stage_status.done, stage_status.active_workers)
        with ns:
            ns.finished = ns.finished + [record]

    source = once_started(ns, 2, range(30))
    stage = pl.ray.map(f, source, workers=2, on_start=on_start, on_done=on_done)
    out = within(40, list, stage)

    driver = os.getpid()
    assert sorted(v for v, _, _, _ in out) == list(range(100, 130))
    for _, index, start_pid, pid in out:
        assert index in (0, 1)
        assert pid == start_pid, "f and on_start of one worker ran in different processes"
        assert pid != driver, "f ran in the driver"

    finished = ns.finished
    assert sorted(r[0] for r in finished) == [0, 1], f"on_done records: {finished}"
    pids = {r[0]: r[1] for r in finished}
    assert pids[0] != pids[1] and driver not in pids.values()
    for _, start_pid, pid, _, _ in finished:
        assert pid == start_pid, "on_done ran elsewhere than on_start"
    for _, index, start_pid, _ in out:
        assert start_pid == pids[index], "a worker index moved to another actor"
    # The first to finish sees one worker still active; the last sees the stage done.
    by_active = sorted(finished, key=lambda r: r[4])
    assert [r[4] for r in by_active] == [0, 1], f"on_done records: {finished}"
    assert by_active[0][3] is True and by_active[1][3] is False


def load_slowly_unless_first(path: str) -> str:
    """Runs as an actor unpickles its stage: the first actor to get here goes on, the
    others take 7 s to start (as with a large object to load, or a loaded machine)."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        time.sleep(7)
    return path


class SlowToLoad:
    """Carried by a stage's callbacks: slows the creation of all its actors but one."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> Tuple[Any, ...]:
        return (load_slowly_unless_first, (self.path,))


@pytest.mark.timeout(60)
def test_every_worker_runs_its_callbacks_even_if_slow_to_start(tmp_path: Path) -> None:
    token = SlowToLoad(str(tmp_path / "first"))
    ns = pl.ray.Namespace(done=[])

    def on_start(worker_info: Any) -> Dict[str, Any]:
        return {"index": worker_info.index, "token": token}

    def on_done(index: int) -> None:
        with ns:
            ns.done = ns.done + [index]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stage = pl.ray.map(double, range(10), workers=2, on_start=on_start, on_done=on_done)
        out = within(40, sorted, stage)
    assert out == [2 * x for x in range(10)]
    assert sorted(ns.done) == [0, 1], (
        f"on_done ran for workers {ns.done} only; warnings: {[str(w.message) for w in caught]}"
    )


# -- 4. Namespace --------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_namespace_attributes_travel_both_ways() -> None:
    ns = pl.ray.Namespace(base=10)
    ns.extra = 5  # set in the driver after creation

    def on_start(worker_info: Any) -> None:
        setattr(ns, f"started_{worker_info.index}", os.getpid())

    def f(x: int) -> int:
        return x + ns.base + ns.extra

    source = once_started(ns, 2, range(6))
    out = within(40, sorted, pl.ray.map(f, source, workers=2, on_start=on_start))
    assert out == [x + 15 for x in range(6)]
    pids = {ns.started_0, ns.started_1}
    assert len(pids) == 2 and os.getpid() not in pids


@pytest.mark.timeout(60)
def test_namespace_lock_makes_read_modify_write_exact() -> None:
    ns = pl.ray.Namespace(count=0)

    def bump(_: Any = None) -> None:
        with ns:
            value = ns.count
            time.sleep(0.002)  # widens the window another writer would slip into
            ns.count = value + 1

    def driver_bumps() -> None:
        for _ in range(20):
            bump()

    helper = threading.Thread(target=driver_bumps, name="test-driver-bumps", daemon=True)
    helper.start()
    within(60, lambda: pl.ray.each(bump, range(60), workers=2, run=True))
    helper.join(30)
    assert not helper.is_alive(), "the driver's updates did not finish within 30s"
    assert ns.count == 80


@pytest.mark.timeout(60)
def test_namespace_nested_lock_does_not_deadlock() -> None:
    ns = pl.ray.Namespace(n=0)

    def nested(x: Any = None) -> Any:
        with ns:
            with ns:
                ns.n = ns.n + 1
        return x

    within(10, nested)
    out = within(40, sorted, pl.ray.map(nested, range(10)))
    assert out == list(range(10))
    within(10, nested)  # released every level: the driver takes it again
    assert ns.n == 12


@pytest.mark.timeout(60)
def test_namespace_missing_attribute_raises_attribute_error() -> None:
    ns = pl.ray.Namespace(a=1)
    with pytest.raises(AttributeError, match="nope"):
        ns.nope  # noqa: B018
    assert not hasattr(ns, "nope")
    assert getattr(ns, "nope", 7) == 7
    with pytest.raises(AttributeError):
        del ns.nope
    del ns.a
    with pytest.raises(AttributeError):
        ns.a  # noqa: B018

    def read_missing(x: int) -> Any:
        return ns.nope

    with pytest.raises(AttributeError, match="nope"):
        within(30, list, pl.ray.map(read_missing, [1]))


@pytest.mark.timeout(60)
def test_a_function_the_actors_cannot_import_is_a_start_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The actors cannot unpickle their stage (its function's module exists only on the
    driver's path): the run fails saying the actor could not start, and why."""
    (tmp_path / "driver_only.py").write_text("def triple(x):\n    return 3 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import driver_only  # type: ignore[import-not-found]

    try:
        stage = pl.ray.map(driver_only.triple, [1, 2], workers=1)
        message = r"(?s)worker actor 0 could not start: .*No module named 'driver_only'"
        with pytest.raises(pl.WorkerDiedError, match=message) as info:
            within(40, list, stage)
        assert "\x1b[" not in str(info.value), "terminal colour codes in the message"
    finally:
        sys.modules.pop("driver_only", None)


@pytest.mark.timeout(60)
def test_namespace_lock_is_released_when_its_holder_dies() -> None:
    ns = pl.ray.Namespace(n=0)

    def die_holding_the_lock(x: int) -> int:
        with ns:
            os._exit(1)
        return x

    with pytest.raises(pl.WorkerDiedError):
        within(30, list, pl.ray.map(die_holding_the_lock, [0]))
    acquired = threading.Event()

    def take_the_lock() -> None:
        try:
            with ns:
                acquired.set()
        except ray.exceptions.RayActorError:  # the Namespace's actor was ended below
            pass

    taker = threading.Thread(target=take_the_lock, name="test-take-lock", daemon=True)
    taker.start()
    try:
        assert acquired.wait(8), "the driver could not take the lock within 8s"
    finally:
        # Ends the Namespace's actor, so that a thread still waiting for it fails and ends.
        ray.kill(object.__getattribute__(ns, "_store"))
        taker.join(10)


# -- 5. resource requests ------------------------------------------------------------------


@pytest.mark.timeout(90)
def test_resource_requests_reach_the_actors() -> None:
    def assigned(x: int) -> Tuple[int, Dict[str, float], Any]:
        resources = ray.get_runtime_context().get_assigned_resources()
        return x, resources, os.environ.get("PYPELN_RAY_TEST")

    memory = 20 * 1024**2
    stage = pl.ray.map(
        assigned,
        range(4),
        workers=2,
        num_cpus=1,
        memory=memory,
        resources={},
        ray_options={"max_restarts": 0, "runtime_env": {"env_vars": {"PYPELN_RAY_TEST": "on"}}},
    )
    out = within(80, list, stage)
    assert sorted(x for x, _, _ in out) == list(range(4))
    for _, resources, env in out:
        assert resources.get("CPU") == 1, resources
        assert resources.get("memory") == memory, resources
        assert env == "on", "ray_options' runtime_env did not reach the actor"


BAD_OPTIONS = [
    ({"num_cpus": -1}, ValueError, "num_cpus"),
    ({"num_cpus": "x"}, TypeError, "num_cpus"),
    ({"num_gpus": float("nan")}, ValueError, "num_gpus"),
    ({"memory": True}, TypeError, "memory"),
    ({"resources": 5}, TypeError, "resources"),
    ({"resources": {"disk": -2}}, ValueError, "resources"),
    ({"resources": {1: 1}}, TypeError, "resources"),
    ({"ray_options": ["num_cpus"]}, TypeError, "ray_options"),
    ({"foo": 1}, TypeError, "foo"),
]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("name", ["map", "filter", "flat_map", "each"])
@pytest.mark.parametrize(("options", "error", "names"), BAD_OPTIONS)
def test_bad_resource_requests_fail_at_construction(
    name: str, options: Dict[str, Any], error: type, names: str
) -> None:
    fn = getattr(pl.ray, name)
    with pytest.raises(error, match=names) as info:
        fn(double, range(3), **options)
    assert f"pl.ray.{name}" in str(info.value)
    with pytest.raises(error, match=names):
        fn(double, **options)  # a partial stage is checked too


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("options", "names"),
    [
        ({"num_gpus": 1}, "GPU"),
        ({"resources": {"pypeln_test_nobody_has_this": 1}}, "pypeln_test_nobody_has_this"),
        ({"num_cpus": 64}, "CPU"),
    ],
)
def test_unsatisfiable_request_raises_when_the_run_starts(
    options: Dict[str, Any], names: str
) -> None:
    watch = ActorWatch()
    upstream = range(10) | pl.thread.map(double, workers=2)
    stage = pl.ray.map(double, upstream, **options)  # not piped: see the test below
    with pytest.raises(ValueError, match=r"pl\.ray\.map") as info:
        within(30, list, stage)
    assert names in str(info.value)
    assert not watch.created(), "an actor was created for a request no node can satisfy"
    assert not watch.wait_gone(10), watch.leftovers()


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "options",
    [{"num_cpus": 1}, {"resources": {}}, {"ray_options": {"max_restarts": 0}}],
    ids=["num_cpus", "resources", "ray_options"],
)
def test_piped_stage_with_resource_requests(options: Dict[str, Any]) -> None:
    stage = range(6) | pl.ray.map(double, workers=2, **options)
    assert within(40, sorted, stage) == [2 * x for x in range(6)]


# -- 7. mixing -----------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_ray_stage_fed_by_a_generator_in_the_driver() -> None:
    pulled: List[int] = []

    def source() -> Iterator[int]:
        for i in range(25):
            pulled.append(i)
            yield i

    out = within(40, sorted, pl.ray.map(double, source(), workers=2))
    assert out == [2 * i for i in range(25)]
    assert pulled == list(range(25))


@pytest.mark.timeout(90)
def test_ray_stage_consumed_from_asyncio() -> None:
    async def main() -> Tuple[List[int], List[int], List[int]]:
        # One actor per stage: what is tested is the consumption, not the spread.
        awaited = await pl.ray.map(double, range(10))
        streamed = [x async for x in pl.task.to_async_iterable(pl.ray.map(double, range(10)))]
        through_task = await (pl.ray.map(double, range(10)) | pl.task.map(plus_one, workers=2))
        return awaited, streamed, through_task

    awaited, streamed, through_task = within(80, asyncio.run, main())
    assert sorted(awaited) == [2 * x for x in range(10)]
    assert sorted(streamed) == [2 * x for x in range(10)]
    assert sorted(through_task) == [2 * x + 1 for x in range(10)]


def lose_report(supervisor: Any, kind: int, h: Any, generation: int, ref: Any) -> None:
    """What `Supervisor._watch` does, but the completion report of `ref` never comes."""
    with supervisor.cond:
        supervisor.watched[ref] = (kind, h, generation, ref)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("lost", ["start", "result", "finish"])
def test_a_completion_callback_that_never_comes_does_not_hang_the_run(
    monkeypatch: pytest.MonkeyPatch, lost: str
) -> None:
    """Ray reports each call's completion through its ObjectRef's future; under a heavy
    load one such report was seen never to arrive. The run must still end: the stage asks
    Ray directly once it has waited a while."""
    from pypeln.ray import supervisor

    kinds = {"start": supervisor._STARTED, "result": supervisor._RESULT}
    kinds["finish"] = supervisor._FINISHED
    dropped: List[int] = []
    watch = supervisor.Supervisor._watch

    def forgetful_watch(self: Any, kind: int, h: Any, generation: int, ref: Any) -> None:
        if kind == kinds[lost] and not dropped:
            dropped.append(kind)
            lose_report(self, kind, h, generation, ref)
            return
        watch(self, kind, h, generation, ref)

    monkeypatch.setattr(supervisor.Supervisor, "_watch", forgetful_watch)
    out = within(60, list, pl.ray.map(double, range(20), workers=1))
    assert dropped, "no report was dropped: the test did not test anything"
    assert sorted(out) == [2 * x for x in range(20)]


@pytest.mark.timeout(90)
def test_a_lost_completion_is_found_while_the_stage_waits_with_nothing_in_flight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The collector waits for reports; once every call has been answered it has none to
    wait for. A batch sent after that whose report is lost must still be seen: the
    collector may not wait for a report without end, even with no call watched."""
    from pypeln.ray import supervisor

    idle = threading.Event()  # the collector has answered every call and waits on
    dropped: List[Any] = []
    idle_wait = supervisor.Supervisor._idle_wait
    watch = supervisor.Supervisor._watch

    def noting_idle_wait(self: Any) -> Any:
        wait = idle_wait(self)
        if not self.watched and any(h.ready for h in self.handles):
            idle.set()
        return wait

    def forgetful_watch(self: Any, kind: int, h: Any, generation: int, ref: Any) -> None:
        if kind == supervisor._RESULT and idle.is_set() and not dropped:
            dropped.append(ref)
            lose_report(self, kind, h, generation, ref)
            return
        watch(self, kind, h, generation, ref)

    def source() -> Iterator[int]:
        yield 0
        assert idle.wait(30), "the stage never waited with nothing in flight"
        yield from range(1, 10)

    monkeypatch.setattr(supervisor.Supervisor, "_idle_wait", noting_idle_wait)
    monkeypatch.setattr(supervisor.Supervisor, "_watch", forgetful_watch)
    out = within(60, list, pl.ray.map(double, source(), workers=1))
    assert dropped, "no report was dropped: the test did not test anything"
    assert sorted(out) == [2 * x for x in range(10)]


@pytest.mark.timeout(120)
def test_an_actor_that_never_comes_up_is_replaced(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An actor that needs no resource and whose process Ray has not brought up after a
    while is replaced, and the batches sent to it go to its successor: the run ends with
    every item, instead of waiting for it forever."""
    from pypeln.ray import supervisor

    marker = str(tmp_path / "first-start")

    def first_start_hangs() -> None:
        if not os.path.exists(marker):
            open(marker, "w").close()
            time.sleep(600)  # never comes up (it is killed and replaced)

    first: List[str] = []

    def state(actor: Any) -> str:
        first.append(first[0] if first else actor._actor_id.hex())
        return "PENDING_CREATION" if actor._actor_id.hex() == first[0] else "ALIVE"

    monkeypatch.setattr(supervisor, "STUCK_START_SECONDS", 1.0)
    monkeypatch.setattr(supervisor, "actor_state", state)
    stage = pl.ray.map(double, range(50), workers=1, on_start=first_start_hangs)
    with pytest.warns(RuntimeWarning, match="had not started"):
        out = within(90, list, stage)
    assert sorted(out) == [2 * x for x in range(50)]


@pytest.mark.timeout(60)
def test_ordered_restores_the_source_order() -> None:
    pairs = pl.ray.flat_map(lambda x: [jittery(x)] * 2, range(40), workers=2) | pl.ray.ordered
    assert within(40, list, pairs) == [x for x in range(40) for _ in range(2)]


# -- 8. errors and timeouts ----------------------------------------------------------------


@pytest.mark.timeout(60)
def test_error_in_f_keeps_its_type_args_and_traceback() -> None:
    stage = pl.ray.map(fail_on_3, range(10), workers=2)
    with pytest.raises(ValueError) as info:
        within(30, list, stage)
    assert info.value.args == ("bad item", 3)
    cause = info.value.__cause__
    assert isinstance(cause, pl.RemoteTraceback), repr(cause)
    assert "fail_on_3" in str(cause)
    assert "ValueError" in cause.tb


@pytest.mark.timeout(60)
def test_error_of_a_class_defined_in_the_driver_keeps_its_type() -> None:
    class Rejected(Exception):
        pass

    def reject_2(x: int) -> int:
        if x == 2:
            raise Rejected("rejected", x)
        return x

    with pytest.raises(Rejected) as info:
        within(30, list, pl.ray.map(reject_2, range(6)))
    assert info.value.args == ("rejected", 2)
    assert isinstance(info.value.__cause__, pl.RemoteTraceback)


@pytest.mark.timeout(60)
def test_timeout_drops_an_item_whose_python_loop_overruns() -> None:
    it = pl.ray.to_iterable(pl.ray.map(spin_on_5, range(10), workers=2, timeout=0.5))
    start = time.monotonic()
    out = within(40, sorted, it)
    elapsed = time.monotonic() - start
    assert out == [x for x in range(10) if x != 5]
    assert elapsed < 20, f"the run took {elapsed:.1f}s: the overrun was not cut at 0.5s"
    assert it.stats[0].timed_out == 1


# -- 6. a two-node cluster, in a subprocess ------------------------------------------------

MULTI_NODE_SCRIPT = textwrap.dedent(
    """
    import asyncio
    import faulthandler
    import os
    import signal
    import threading
    import time

    import ray
    from ray._private import state
    from ray.cluster_utils import Cluster

    import pypeln as pl

    faulthandler.dump_traceback_later(STEP_SECONDS * 4, exit=True)
    MB = 1024**2


    def step(name):
        print("STEP", name, flush=True)


    def live_workers():
        return {
            key: info
            for key, info in state.actors().items()
            if "Worker" in str(info.get("ActorClassName", "")) and info.get("State") != "DEAD"
        }


    def wait_for(predicate, what):
        deadline = time.monotonic() + STEP_SECONDS
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {STEP_SECONDS}s: {what}")
            time.sleep(0.05)


    def within(function):
        out = []
        thread = threading.Thread(target=lambda: out.append(function()), daemon=True)
        thread.start()
        thread.join(STEP_SECONDS)
        assert out, f"{function.__name__} did not finish within {STEP_SECONDS}s"
        return out[0]


    step("cluster")
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "resources": {"head": 4},
            "object_store_memory": 80 * MB,
            "include_dashboard": False,
        },
    )
    second = cluster.add_node(num_cpus=1, resources={"second": 4}, object_store_memory=80 * MB)
    try:
        ray.init(address=cluster.address)
        cluster.wait_for_nodes()
        HEAD = cluster.head_node.node_id
        SECOND = second.node_id
        assert HEAD != SECOND

        step("placement")

        def node_of(x):
            return x, ray.get_runtime_context().get_node_id()

        out = within(lambda: list(pl.ray.map(node_of, range(20), workers=2,
                                             resources={"second": 1})))
        assert sorted(x for x, _ in out) == list(range(20)), out
        nodes = {n for _, n in out}
        assert nodes == {SECOND}, f"ran on {nodes}; second node {SECOND}, head {HEAD}"

        step("mixed")

        def on(node, f):
            def g(x):
                here = ray.get_runtime_context().get_node_id()
                if here != node:
                    raise AssertionError(f"item {x} ran on node {here}, not {node}")
                return f(x)

            return g

        async def times_ten(x):
            await asyncio.sleep(0)
            return 10 * x

        # Each ray stage is given its source: the piped form fails with resource requests
        # (see test_piped_stage_with_resource_requests).
        stage = range(30) | pl.thread.map(lambda x: x, workers=2)
        stage = pl.ray.map(on(HEAD, lambda x: 2 * x), stage, workers=2, resources={"head": 1})
        stage = pl.ray.map(on(SECOND, lambda x: x + 1), stage, workers=2,
                           resources={"second": 1})
        stage = stage | pl.task.map(times_ten, workers=2)
        got = within(lambda: sorted(stage))
        assert got == sorted(10 * (2 * x + 1) for x in range(30)), got

        step("kill")

        def slow(x):
            time.sleep(0.05)
            return x

        before = set(state.actors())
        it = iter(pl.ray.map(slow, range(400), workers=2, resources={"second": 1}))
        got = within(lambda: [next(it) for _ in range(3)])

        def victims():
            return [
                info
                for key, info in live_workers().items()
                if key not in before
                and info.get("State") == "ALIVE"
                and info.get("Address", {}).get("NodeID") == SECOND
            ]

        wait_for(victims, "a Worker actor ALIVE on the second node")
        os.kill(int(victims()[0]["Pid"]), signal.SIGKILL)
        start = time.monotonic()

        def rest():
            try:
                list(it)
            except pl.WorkerDiedError as e:
                return e
            return None

        died = within(rest)
        assert died is not None, "the run ended without WorkerDiedError"
        elapsed = time.monotonic() - start
        assert elapsed < 15, f"WorkerDiedError came {elapsed:.1f}s after the kill"

        step("leftovers")
        wait_for(lambda: not live_workers(), f"no Worker actor alive: {live_workers()}")
        print("ALL OK", flush=True)
    finally:
        ray.shutdown()
        cluster.shutdown()
    """
)


@pytest.mark.timeout(200)
def test_two_node_cluster() -> None:
    """Placement by custom resources, a pipeline across backends and nodes, an actor killed
    on the second node, and no actor left: one cluster, started once, in a subprocess."""
    root = Path(pl.__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONUNBUFFERED"] = "1"
    code = MULTI_NODE_SCRIPT.replace("STEP_SECONDS", "40")
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=root,
            env=env,
            timeout=180,
            capture_output=True,
            text=True,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else e.stdout or ""
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else e.stderr or ""
        pytest.fail(f"the two-node script did not end within 180s\n{out}\n{err[-3000:]}")
    steps = [line for line in done.stdout.splitlines() if line.startswith("STEP")]
    assert done.returncode == 0 and "ALL OK" in done.stdout, (
        f"the two-node script failed (exit {done.returncode}) after {steps}:\n"
        f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    )
