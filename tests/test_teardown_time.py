"""How fast a run ends: `break` and Ctrl-C while every worker is busy, in a fresh process.

Workers are either blocked in a call into C (``time.sleep``; ``asyncio.sleep`` on `task`)
or running pure-Python CPU work, or the source iterable blocks in C. The bounds: under
0.3 s for `thread` and `task`, 1 s for `process`. A thread blocked in C cannot be
interrupted before the call returns: the run does not wait for it (it calls `f` no more);
a CPU-bound thread is stopped at its next Python instruction. Each case runs in its own
interpreter, so that workers left sleeping cannot slow down or confuse other tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest
from conftest import SIGINT_AS_IN_A_TERMINAL, process_group_alive, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Seconds a `break` or Ctrl-C may take to end the run, per backend.
BOUNDS = {"thread": 0.3, "task": 0.3, "process": 1.0}

SCRIPT = SIGINT_AS_IN_A_TERMINAL + textwrap.dedent(
    """
    import asyncio, os, sys, time
    import pypeln as pl

    backend, work, how, flag = sys.argv[1:5]
    mod = getattr(pl, backend)

    def entered():
        open(flag, "a").close()

    def blocked(x):
        entered()
        time.sleep(30)
        return x

    def cpu(x):
        entered()
        end = time.monotonic() + 30
        while time.monotonic() < end:
            pass
        return x

    async def blocked_async(x):
        entered()
        await asyncio.sleep(30)
        return x

    def blocked_source():
        yield 0
        entered()
        time.sleep(30)
        yield 1

    f = blocked_async if backend == "task" else {"blocked": blocked, "cpu": cpu}.get(work)

    if __name__ == "__main__":
        if work == "source":  # the source blocks after its first item
            stage = mod.map(lambda x: x, blocked_source(), workers=4, maxsize=8)
        else:
            busy = mod.map(f, range(1, 10**6), workers=4, maxsize=8)
            stage = mod.concat([[0], busy])  # 0 comes out at once; the rest never does
        if how == "break":
            for x in stage:
                while not os.path.exists(flag):
                    time.sleep(0.005)
                time.sleep(0.1)  # the other workers take their items
                start = time.monotonic()
                break
            print("ended %.3f" % (time.monotonic() - start), flush=True)
        else:
            print("consuming", flush=True)
            try:
                for x in stage:
                    pass
            except KeyboardInterrupt:
                print("interrupted", flush=True)
                raise
    """
)

CASES = [
    ("thread", "blocked"),
    ("thread", "cpu"),
    ("task", "blocked"),
    ("process", "blocked"),
    ("process", "cpu"),
    ("thread", "source"),
    ("task", "source"),
    ("process", "source"),
]


def start(tmp_path: Any, name: str, work: str, how: str) -> tuple[subprocess.Popen[str], str]:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    flag = str(tmp_path / "entered")
    proc = subprocess.Popen(
        [sys.executable, str(script), name, work, how, flag],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: nothing of it may outlive it
    )
    return proc, flag


def finish(proc: subprocess.Popen[str]) -> str:
    """Its stderr, once it exited (within 10 s); its whole group is gone too."""
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        pytest.fail(f"the script did not exit within 10 s; stderr:\n{err}")

    gone = wait_until(lambda: not process_group_alive(proc.pid), 5)
    assert gone, "a process of the run outlived it"
    return err


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name, work", CASES)
def test_break_ends_the_run_quickly(tmp_path: Any, name: str, work: str) -> None:
    proc, _ = start(tmp_path, name, work, "break")
    assert proc.stdout is not None
    line = proc.stdout.readline()
    err = finish(proc)
    assert line.startswith("ended "), f"stdout: {line!r}; stderr:\n{err}"
    assert proc.returncode == 0, err
    seconds = float(line.split()[1])
    assert seconds < BOUNDS[name], f"a break took {seconds:.3f} s on pl.{name} ({work} workers)"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name, work", CASES)
def test_ctrl_c_ends_the_run_quickly(tmp_path: Any, name: str, work: str) -> None:
    proc, flag = start(tmp_path, name, work, "ctrl-c")
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "consuming"
    assert wait_until(lambda: os.path.exists(flag), 20), "no worker started an item"
    time.sleep(0.1)  # the other workers take their items
    os.killpg(proc.pid, signal.SIGINT)  # like Ctrl-C in a terminal: the whole group
    sent = time.monotonic()
    line = proc.stdout.readline()
    seconds = time.monotonic() - sent
    err = finish(proc)
    assert line.strip() == "interrupted", f"stdout: {line!r}; stderr:\n{err}"
    assert "KeyboardInterrupt" in err, err
    assert seconds < BOUNDS[name], f"Ctrl-C took {seconds:.3f} s on pl.{name} ({work} workers)"
