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


def outlive_none(tmp_path, source, n, what):
    """Run `source` as a program that prints the pids of `n` processes it starts, SIGKILL it
    once it has, and wait up to 10 s for those processes to end (`what` names them)."""
    script = tmp_path / "program.py"
    script.write_text(source)
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        pids = set()
        while len(pids) < n:
            line = within(60, proc.stdout.readline)
            assert line, f"the program ended before printing {n} pids: {sorted(pids)}"
            if line.strip():
                pids.add(int(line))
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 10
        while any(running(pid) for pid in pids):
            assert time.monotonic() < deadline, (
                f"{what} (pids {sorted(filter(running, pids))}) outlived their killed "
                "program by 10 s"
            )
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.skipif(os.name != "posix", reason="kills with SIGKILL")
def test_the_process_namespace_manager_ends_when_its_program_is_killed(tmp_path):
    outlive_none(tmp_path, CREATOR, 1, "the namespace manager")


WORKING = """
import os, time
import pypeln as pl

def f(x):
    os.write(1, f"{os.getpid()}\\n".encode())  # one write: whole lines, even from two processes
    time.sleep(0.2)
    return x

if __name__ == "__main__":
    for _ in pl.process.map(f, range(10_000), workers=2):
        pass
"""


@pytest.mark.skipif(os.name != "posix", reason="kills with SIGKILL")
def test_process_workers_end_when_their_program_is_killed(tmp_path):
    outlive_none(tmp_path, WORKING, 2, "the worker processes")
