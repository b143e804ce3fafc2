"""pypeln does not fork a process that runs other threads unless told to.

A thread holding a lock at a fork leaves it held forever in the child (Python 3.12+ warns
about it). Where `fork` is the default and no start method was chosen, a process stage
forks only a process that runs no other thread, and otherwise starts its workers with
`forkserver` when they can get what they run that way. A worker tells which by its
parent: a forked worker's parent is the process that runs the stage, the forkserver's
workers are children of the forkserver.

Every test of the suite fails if it forks a process that runs other threads, unless it
is marked ``forks_with_threads`` (conftest).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, List

import pytest
from conftest import within

import pypeln as pl

pytestmark = [
    pytest.mark.skipif(
        not hasattr(pl, "process")
        or multiprocessing.get_all_start_methods()[:1] != ["fork"]
        or "forkserver" not in multiprocessing.get_all_start_methods(),
        reason="fork is not this platform's default start method",
    ),
    pytest.mark.timeout(120),
]


@pytest.fixture(autouse=True)
def _default_start_method(request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--start-method"):
        pytest.skip("the run chose a start method for every stage")


def parent_of_worker(x: int) -> int:
    return os.getppid()


def in_a_thread(fn: Any, *args: Any) -> Any:
    """`fn(*args)` in a thread of its own (so the process runs two threads meanwhile)."""
    out: List[Any] = []
    thread = threading.Thread(target=lambda: out.append(within(60, fn, *args)))
    thread.start()
    thread.join(90)
    assert not thread.is_alive(), "the pipeline consumed in a thread did not end"
    assert out, "the pipeline consumed in a thread raised (see the output above)"
    return out[0]


def run_script(tmp_path: Path, source: str) -> List[str]:
    """Run `source` as a script (a fresh interpreter, warnings about forks as errors);
    the lines it prints."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    done = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


# -- in this process (pytest's main module is guarded) ------------------------------------


def test_a_pipeline_consumed_in_a_thread_does_not_fork() -> None:
    parents = in_a_thread(list, pl.process.map(parent_of_worker, range(20), workers=2))
    assert len(parents) == 20
    assert os.getpid() not in parents


def test_a_stage_with_a_timeout_does_not_fork() -> None:
    """Its workers are replaced from one of the run's threads."""
    parents = list(pl.process.map(parent_of_worker, range(20), workers=2, timeout=30))
    assert len(parents) == 20
    assert os.getpid() not in parents


def test_a_process_stage_started_while_another_pipeline_runs_does_not_fork() -> None:
    seen: List[int] = []
    for _ in pl.thread.map(lambda x: x, range(100), workers=2, maxsize=2):
        seen += pl.process.map(parent_of_worker, range(5), workers=2)
        if len(seen) == 15:
            break  # (the outer run's threads are alive until here)
    assert len(seen) == 15
    assert os.getpid() not in seen


def test_a_process_stage_read_by_a_task_stage_on_the_callers_loop() -> None:
    """A `pl.task` run on the caller's loop runs a process stage upstream of it before
    it starts the thread that reads it."""

    async def main() -> List[int]:
        stage = pl.process.map(parent_of_worker, range(10), workers=2) | pl.task.map(lambda x: x)
        return [x async for x in stage]

    parents = within(60, asyncio.run, main())
    assert len(parents) == 10


@pytest.mark.forks_with_threads
def test_functions_that_cannot_be_pickled_still_run_in_a_thread() -> None:
    """Where the forkserver cannot get the stage's functions, the workers fork as before
    (a lock in the closure cannot be pickled; Python 3.12+ warns about that fork)."""
    lock = threading.Lock()

    def locked_double(x: int) -> int:
        with lock:
            return 2 * x

    out = in_a_thread(list, pl.process.map(locked_double, range(10), workers=2))
    assert sorted(out) == [2 * x for x in range(10)]


@pytest.mark.forks_with_threads
def test_a_chosen_start_method_is_kept() -> None:
    parents = in_a_thread(
        list, pl.process.map(parent_of_worker, range(10), workers=2, start_method="fork")
    )
    assert set(parents) == {os.getpid()}


# -- scripts ------------------------------------------------------------------------------


def test_a_script_that_runs_one_pipeline_forks(tmp_path: Path) -> None:
    out = run_script(
        tmp_path,
        """
        import os
        import pypeln as pl

        def parent(x):
            return os.getppid()

        if __name__ == "__main__":
            parents = set(pl.process.map(parent, range(20), workers=2))
            print("forked" if parents == {os.getpid()} else "not-forked")
        """,
    )
    assert out == ["forked"]


def test_a_guarded_script_with_a_thread_uses_the_forkserver(tmp_path: Path) -> None:
    out = run_script(
        tmp_path,
        """
        import os
        import threading
        import pypeln as pl

        class Box:  # items of a class of the script reach the workers
            def __init__(self, v):
                self.v = v

        def work(box):
            return (os.getppid(), box.v * 2)

        def consume(out):
            out.extend(pl.process.map(work, [Box(i) for i in range(20)], workers=2))

        if __name__ == "__main__":
            out = []
            thread = threading.Thread(target=consume, args=(out,))
            thread.start()
            thread.join()
            parents = {p for p, _ in out}
            print("forked" if os.getpid() in parents else "not-forked")
            print(sum(v for _, v in out))
        """,
    )
    assert out == ["not-forked", str(2 * sum(range(20)))]


def test_an_unguarded_script_with_a_thread_still_works(tmp_path: Path) -> None:
    """The forkserver would import the script again, and run its pipeline again: the
    workers fork (Python warns about it on 3.12 and later, so it is not an error here)."""
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import os
            import threading
            import pypeln as pl

            def parent(x):
                return os.getppid()

            out = []
            thread = threading.Thread(
                target=lambda: out.extend(pl.process.map(parent, range(20), workers=2))
            )
            thread.start()
            thread.join()
            print(len(out))
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["20"]
