"""For `./dev mutate` only: count the calls that worker processes make.

mutmut first runs the tests once and records which functions each test reaches, then runs
each mutant against only the tests that reached its function. It sees the calls made in
the test's own process only, so the core code that `pl.process` workers run in processes
of their own (sending errors back, encoding results, operators, error policies) would look
reached by no test, or only by tests that do not check it there.

While mutmut records (``MUTANT_UNDER_TEST=stats``), `install` makes every other process of
the test session append the functions it reaches to a file, and the session counts them
for the test that is running when it reads the file, at the test's teardown.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Set

import pytest

SESSION = "PYPELN_MUTATION_SESSION"  # the pid of the process that runs the tests
HITS = "PYPELN_MUTATION_HITS"  # where the other processes write what they reach


def recording() -> bool:
    """Whether mutmut is recording which tests reach which functions."""
    return os.environ.get("MUTANT_UNDER_TEST") == "stats"


def script_env() -> Dict[str, str]:
    """The environment for a test's own Python script that runs the pypeln under test.

    While mutmut records, its recorder in that interpreter would look for its
    configuration in the script's directory and fail: the script runs unrecorded instead
    (what it reaches is reached by the test's own process too).
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    if recording():
        del env["MUTANT_UNDER_TEST"]
    return env


def install() -> None:
    """Count what processes started by the tests reach (see the module's doc)."""
    import mutmut.mutation.trampoline as trampoline

    session = int(os.environ.setdefault(SESSION, str(os.getpid())))
    path = os.environ.setdefault(
        HITS, str(Path(tempfile.gettempdir()) / f"pypeln-mutation-hits-{session}")
    )
    if session == os.getpid() and os.path.exists(path):
        os.unlink(path)  # left by an earlier session whose pid this one got again
    record_here = trampoline.record_trampoline_hit
    written: Set[str] = set()
    os.register_at_fork(after_in_child=written.clear)

    def record(name: str, caller: Optional[str] = None) -> None:
        if os.getpid() == session:
            record_here(name, caller=caller)
        elif name not in written:
            written.add(name)
            with open(path, "a") as f:
                f.write(name + "\n")

    trampoline.record_trampoline_hit = record


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: Any, nextitem: Any) -> None:
    """Before mutmut reads what the test reached: add what its processes reached."""
    from mutmut.state import state

    path = Path(os.environ[HITS])
    try:
        names = path.read_text().split()
    except FileNotFoundError:
        return
    path.unlink()
    state()._stats.update(names)
