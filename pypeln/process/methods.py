"""Which start method a stage's worker processes use.

A choice someone made comes first: the stage's ``start_method=``, then `set_start_method`,
then `multiprocessing.set_start_method`. Without one, the platform's default, except that
pypeln does not ``fork`` a process that runs other threads when it can avoid it: a thread
that holds a lock at the fork (a logging handler's, a print's, an allocator's) leaves it
held forever in the child. There the workers start with ``forkserver`` instead, when
everything they need reaches them that way (`choose`); else they fork as before. The
same holds where Ray runs in the process (its client's connections must not be shared).
"""

from __future__ import annotations

import ast
import multiprocessing
import os
import sys
import threading
import types
from multiprocessing.context import BaseContext
from typing import Any, Dict, Optional, Tuple

from .spawning import quietly_pickled

_global_method: Optional[str] = None

#: The module the forkserver imports ahead, so that a worker it forks starts at once.
WORKER_MODULE = "pypeln.process.worker"


def set_start_method(method: Optional[str]) -> None:
    """Choose how `pl.process` starts its worker processes: ``"fork"``, ``"spawn"`` or
    ``"forkserver"``; None goes back to the default.

    It applies to the runs that start afterwards; a stage may override it with its own
    ``start_method=`` argument. Unlike `multiprocessing.set_start_method` it may be called
    any number of times.

    >>> import pypeln as pl
    >>> pl.process.set_start_method("spawn")
    >>> pl.process.get_start_method()
    'spawn'
    >>> pl.process.set_start_method(None)
    """
    global _global_method
    check_start_method("pl.process.set_start_method", method)
    _global_method = method


def get_start_method(stage_method: Optional[str] = None) -> str:
    """The start method a stage uses: its own, else `set_start_method`'s, else Python's
    (``forkserver`` instead of Python's ``fork`` once Ray runs in this process: a forked
    child would break the connections of Ray's client, which it shares).

    Where nobody chose one and Python's is ``fork``, a stage that starts while the process
    runs other threads uses ``forkserver`` instead when its functions can be sent that way
    (see the guide on processes); this function tells the default.

    >>> import pypeln as pl
    >>> pl.process.get_start_method("spawn")  # a stage's own ``start_method=`` comes first
    'spawn'
    >>> pl.process.get_start_method() in ("fork", "spawn", "forkserver")
    True
    """
    chosen = _chosen(stage_method)
    if chosen:
        return chosen
    default: str = multiprocessing.get_all_start_methods()[0]
    if default == "fork" and _forkserver_available() and _ray_running():
        return "forkserver"
    return default


def _chosen(stage_method: Optional[str]) -> Optional[str]:
    """The start method someone chose: the stage's, `set_start_method`'s, or one other
    than the platform's default that `multiprocessing.set_start_method` chose (its own
    default counts as none: `multiprocessing` fixes it on first use, chosen or not)."""
    chosen = stage_method or _global_method
    if chosen:
        return chosen
    global_default = multiprocessing.get_start_method(allow_none=True)
    if global_default != multiprocessing.get_all_start_methods()[0]:
        return global_default
    return None


def _forkserver_available() -> bool:
    return "forkserver" in multiprocessing.get_all_start_methods()


def _ray_running() -> bool:
    ray = sys.modules.get("ray")
    try:
        return ray is not None and bool(ray.is_initialized())
    except Exception:  # a module named ray that is not Ray
        return False


def check_start_method(where: str, method: Any) -> None:
    if method is None:
        return
    methods = multiprocessing.get_all_start_methods()
    if method not in methods:
        raise ValueError(f"{where}: start_method must be one of {methods} or None, got {method!r}")


def context(method: str) -> BaseContext:
    """The multiprocessing context of `method` (without fixing Python's global default)."""
    if method == "forkserver":
        preload_worker_module()
    return multiprocessing.get_context(method)


def choose(
    stage_method: Optional[str], payload: Any = None, later_forks: bool = False
) -> Tuple[str, Optional[bytes]]:
    """The start method of a stage's workers, and `payload` pickled for them if it had to
    be pickled to decide (else None: `spawning.pack` makes what they get).

    The default ``fork`` gives way to ``forkserver`` when the process runs other threads
    now, or will when it forks again (`later_forks`: a stage with a timeout replaces a
    worker from one of its threads), provided that the workers can get what they run:
    the payload pickles, and the objects of the main module can be found there (the
    forkserver imports a script again, which must then not start its pipeline again).
    """
    method = get_start_method(stage_method)
    if method != "fork" or _chosen(stage_method) or not _forkserver_available():
        return method, None
    if not later_forks and threads_running() <= 1:
        return method, None
    if not main_reachable():
        return method, None
    data = quietly_pickled(payload)
    if data is None:
        return method, None
    return "forkserver", data


def threads_running() -> int:
    """How many threads this process runs, as the operating system counts them (those of
    C libraries too), else as `threading` does."""
    try:
        with open(f"/proc/{os.getpid()}/stat", "rb") as f:
            stat = f.read()
        # the fields after the command name, which ends with the last ")"
        return int(stat[stat.rindex(b")") + 2 :].split()[17])
    except (OSError, ValueError, IndexError):
        return threading.active_count()


def main_reachable() -> bool:
    """Whether a worker that does not fork finds what the main module defines, and whether
    making it so is harmless: a script (or ``python -m`` module) is imported again there,
    which is harmless when the main thread runs it from inside ``if __name__ ==
    "__main__":``; an interactive session or a package's ``__main__`` is not imported
    again, which is harmless when it defines no classes or functions of its own."""
    main = sys.modules.get("__main__")
    if main is None:
        return True
    name = getattr(getattr(main, "__spec__", None), "name", None)
    path = getattr(main, "__file__", None)
    if name is not None and name != "__main__" and not name.endswith(".__main__"):
        path = getattr(main.__spec__, "origin", None) or path
    elif name is not None or path is None:
        return not _defines_anything(main)
    return isinstance(path, str) and _runs_under_main_guard(main, path)


def _defines_anything(module: types.ModuleType) -> bool:
    for value in vars(module).values():
        if isinstance(value, (type, types.FunctionType)):
            if getattr(value, "__module__", None) == module.__name__:
                return True
    return False


def _runs_under_main_guard(main: types.ModuleType, path: str) -> bool:
    """Whether the main thread runs `main`'s code from inside its main guard."""
    frame = sys._current_frames().get(threading.main_thread().ident or -1)
    line = None
    while frame is not None:
        if frame.f_globals is vars(main) and frame.f_code.co_name == "<module>":
            line = frame.f_lineno
        frame = frame.f_back
    if line is None:
        return False
    return any(start <= line <= end for start, end in _main_guards(path))


_guards: Dict[Tuple[str, float], Tuple[Tuple[int, int], ...]] = {}


def _main_guards(path: str) -> Tuple[Tuple[int, int], ...]:
    """The line spans of the top-level ``if __name__ == "__main__":`` blocks of `path`."""
    try:
        key = (path, os.stat(path).st_mtime)
        if key not in _guards:
            with open(path, "rb") as f:
                tree = ast.parse(f.read())
            _guards[key] = tuple(
                (node.body[0].lineno, node.end_lineno or node.lineno)
                for node in tree.body
                if isinstance(node, ast.If) and _is_main_test(node.test)
            )
        return _guards[key]
    except (OSError, SyntaxError, ValueError):
        return ()


def _is_main_test(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return False
    if not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    mains = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(mains) == 1


def preload_worker_module() -> None:
    """Have the forkserver import the workers' module ahead (before it starts; keeping
    what else it preloads), so that each worker it forks starts without importing it."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    modules = getattr(server, "_preload_modules", None)
    if not isinstance(modules, list) or WORKER_MODULE in modules:
        return
    if getattr(server, "_forkserver_pid", None) is not None:  # started: too late
        return
    forkserver.set_forkserver_preload([*modules, WORKER_MODULE])
