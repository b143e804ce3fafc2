"""Leaks and soak: many pipelines in a row, a long run, and Ctrl-C, for every backend."""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from multiprocessing import forkserver
from typing import Any

import pytest

import pypeln as pl
from tests.conftest import (
    BACKEND_NAMES,
    SIGINT_AS_IN_A_TERMINAL,
    Leftovers,
    process_group_alive,
    wait_until,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def double(x: int) -> int:
    return x * 2


def keep_even(x: int) -> bool:
    return x % 2 == 0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def resident_bytes() -> int:
    """Resident memory of this process and its live children (Linux /proc)."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for pid in [os.getpid()] + [p.pid for p in multiprocessing.active_children() if p.pid]:
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * page
        except OSError:
            pass
    return total


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_200_pipelines_leave_nothing_behind(name: str) -> None:
    mod = getattr(pl, name)
    for _ in range(3):  # warm up lazily created resources
        list(mod.map(double, range(10), workers=2))
    if name == "process" and "forkserver" in multiprocessing.get_all_start_methods():
        # a run that starts while the threads of the one before are still on their way
        # out uses the forkserver (started once, and kept, with a pipe to it)
        forkserver.ensure_running()
    gc.collect()
    before, fds, memory = Leftovers(), open_fds(), resident_bytes()
    # (a `ray` run starts its actors, about a second each: fewer runs there)
    for i in range(15 if name == "ray" else 200):
        stage = mod.filter(keep_even, mod.map(double, range(20), workers=2, maxsize=4))
        if i % 3 == 0:
            for _ in stage:  # leave early every third time
                break
        else:
            assert len(list(stage)) == 20
    assert before.wait_gone(5) == []
    gc.collect()
    assert wait_until(lambda: open_fds() <= fds, 5), (open_fds(), fds)
    # 200 runs may leave caches warm, but not a run's worth of memory each
    assert resident_bytes() - memory < 16 * 1024 * 1024, (resident_bytes(), memory)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_long_mixed_run_keeps_memory_flat() -> None:
    names = [n for n in ("thread", "process", "task", "sync") if n in BACKEND_NAMES]
    n_items = 1_000_000
    stage: Any = range(n_items)
    for i in range(4):
        mod = getattr(pl, names[i % len(names)])
        stage = mod.map(double, stage, workers=2, maxsize=10)
    seen = 0
    samples = []
    for _ in stage:
        seen += 1
        if seen % 100_000 == 0:
            samples.append(resident_bytes())
    assert seen == n_items
    # After warm-up, memory in use must not grow with the number of items moved
    # (a leak of even 32 bytes an item would add ~25 MB over the steady part).
    # (Memory may drop near the end, when upstream stages finish and their processes exit.)
    steady = samples[2:]
    assert max(steady) - steady[0] < 16 * 1024 * 1024, samples


CTRL_C_SCRIPT = SIGINT_AS_IN_A_TERMINAL + textwrap.dedent(
    """
    import sys, time
    import pypeln as pl

    def slow(x):
        time.sleep(0.01)
        return x

    mod = getattr(pl, sys.argv[1])
    if sys.argv[1] == "ray":  # its own local Ray, started before the run (seconds)
        import ray
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024**2)
    print("started", flush=True)
    for _ in mod.map(slow, range(10**9), workers=4, maxsize=8):
        pass
    """
)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", [n for n in BACKEND_NAMES if n != "sync"] + ["sync"])
def test_ctrl_c_exits_promptly_with_no_child_left(name: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_SCRIPT, name],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, to look for leftovers
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    # (Ray: its actors start, then the driver stops its local Ray at exit)
    on_ray = name == "ray"
    time.sleep(3.0 if on_ray else 0.5)
    proc.send_signal(signal.SIGINT)
    start = time.monotonic()
    _, err = proc.communicate(timeout=20)
    elapsed = time.monotonic() - start
    assert "KeyboardInterrupt" in err, err
    assert proc.returncode != 0
    assert elapsed < (6.0 if on_ray else 1.5), elapsed

    def group_alive() -> bool:
        return process_group_alive(proc.pid)

    # nothing of its process group is left
    time.sleep(0.2)
    if on_ray:
        wait_until(lambda: not group_alive(), 10)
    assert not group_alive(), "a child process of the pipeline outlived it"


def test_threads_of_a_finished_pipeline_are_gone() -> None:
    before = set(threading.enumerate())
    list(pl.thread.map(double, range(100), workers=8))
    assert wait_until(lambda: set(threading.enumerate()) <= before, 1)
