"""A program killed outright (SIGKILL: no `finally`, no `atexit`) leaves nothing of pypeln's
behind: worker processes see their channel close, and the process namespace's manager
watches the program that started it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from conftest import within

pytestmark = pytest.mark.timeout(60)


CREATOR = """
import sys, time
import pypeln as pl
from pypeln.process import namespace

if __name__ == "__main__":
    ns = pl.process.Namespace(n=0)
    print(namespace._manager._process.pid, flush=True)
    time.sleep(600)
"""


def running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True


@pytest.mark.skipif(os.name != "posix", reason="kills with SIGKILL")
def test_the_process_namespace_manager_ends_when_its_program_is_killed(tmp_path):
    script = tmp_path / "creator.py"
    script.write_text(CREATOR)
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        line = within(60, proc.stdout.readline)
        manager = int(line)
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 10
        while running(manager):
            assert time.monotonic() < deadline, (
                f"the namespace manager (pid {manager}) outlived its killed program by 10 s"
            )
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait(10)


WORKING = """
import os, time
import pypeln as pl

def f(x):
    print(os.getpid(), flush=True)
    time.sleep(0.2)
    return x

if __name__ == "__main__":
    for _ in pl.process.map(f, range(10_000), workers=2):
        pass
"""


@pytest.mark.skipif(os.name != "posix", reason="kills with SIGKILL")
def test_process_workers_end_when_their_program_is_killed(tmp_path):
    script = tmp_path / "working.py"
    script.write_text(WORKING)
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        workers = set()
        while len(workers) < 2:
            workers.add(int(within(60, proc.stdout.readline)))
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 10
        while any(running(pid) for pid in workers):
            assert time.monotonic() < deadline, (
                f"worker processes {sorted(filter(running, workers))} outlived their killed "
                "program by 10 s"
            )
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait(10)
