"""How a stage's functions reach its worker processes, and what is said when they cannot.

Under ``fork`` a worker inherits the stage's functions (nothing is pickled, so lambdas and
closures just work). Under ``spawn`` and ``forkserver`` they are pickled once per stage, with
`cloudpickle` when it is installed (lambdas, closures, functions of ``__main__``), else with
`pickle` (functions defined at module level); what cannot be pickled is reported up front.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import multiprocessing
import pickle
import sys
import types
from typing import Any, Callable, Optional, Tuple

from .._core.docs import see


def _pickler() -> Tuple[Callable[..., bytes], str]:
    """cloudpickle's dumps (functions of the main script by reference first) if it can be
    imported, else pickle's; and the module's name."""
    try:
        import cloudpickle  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return pickle.dumps, "pickle"
    return _dumps, "cloudpickle"


def by_value_if_needed(obj: Any, protocol: Optional[int] = None, **_: Any) -> bytes:
    """`pickle`, which sends classes and functions by name (a class of the main script
    stays the script's own), else cloudpickle if installed, which sends by value what has
    no name to be found by (a class defined inside a function)."""
    try:
        return pickle.dumps(obj, protocol=protocol)
    except Exception:
        if importlib.util.find_spec("cloudpickle") is None:
            raise
    cloudpickle: Any = importlib.import_module("cloudpickle")
    data: bytes = cloudpickle.dumps(obj, protocol=protocol)
    return data


def _dumps(obj: Any, protocol: Optional[int] = None) -> bytes:
    """cloudpickle, except for the functions of the main script (`_main_function_reduce`)."""
    cloudpickle: Any = importlib.import_module("cloudpickle")

    class MainFirst(cloudpickle.Pickler):  # type: ignore[misc]
        def reducer_override(self, obj: Any) -> Any:
            if isinstance(obj, types.FunctionType) and obj.__module__ == "__main__":
                return _main_function_reduce(obj)
            return super().reducer_override(obj)

    buffer = io.BytesIO()
    MainFirst(buffer, protocol=protocol).dump(obj)
    return buffer.getvalue()


def _main_function_reduce(f: types.FunctionType) -> Any:
    """A function of the main script travels by name, as `pickle` sends it, so that a
    worker runs the one its own import of the script defines (its traceback shows the
    script's file and lines, and the classes it raises are the script's own); and by value
    too, for when the worker's import does not define it (a lambda, a function defined
    under ``if __name__ == "__main__":``). Its code keeps its file name either way, which
    cloudpickle alone replaces with ``<dynamic-code>``."""
    cloudpickle: Any = importlib.import_module("cloudpickle")

    code = f.__code__
    return (
        _main_function,
        (f.__qualname__, code.co_filename, code.co_firstlineno, cloudpickle.dumps(f)),
    )


def _main_function(qualname: str, filename: str, line: int, by_value: bytes) -> Any:
    """In a worker process: the main script's function `qualname` (see
    `_main_function_reduce`)."""
    found: Any = sys.modules.get("__main__")
    for part in qualname.split("."):
        found = getattr(found, part, None)
    code = getattr(found, "__code__", None)
    if code is not None and code.co_filename == filename and code.co_firstlineno == line:
        return found
    f = pickle.loads(by_value)
    if isinstance(f, types.FunctionType):
        f.__code__ = _with_filename(f.__code__, filename)
    return f


def _with_filename(code: types.CodeType, filename: str) -> types.CodeType:
    consts = tuple(
        _with_filename(c, filename) if isinstance(c, types.CodeType) else c for c in code.co_consts
    )
    return code.replace(co_filename=filename, co_consts=consts)


def _describe(value: Any) -> str:
    name = getattr(value, "__qualname__", None)
    module = getattr(value, "__module__", None)
    if name is None:
        return repr(value)
    return f"{module}.{name}" if module else name


def quietly_pickled(payload: Any) -> Optional[bytes]:
    """`payload` pickled as `pack` would for spawn and forkserver, or None if it cannot be."""
    dumps = _pickler()[0]
    try:
        return dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return None


def pack(where: str, method: str, payload: Any, parts: Tuple[Tuple[str, Any], ...]) -> Any:
    """What to hand a worker process: `payload` itself under fork, else its pickle.

    `parts` names the pieces of `payload` (``("f", f)``, ...) so that an error says which
    one cannot be pickled and what to do about it.
    """
    if method == "fork":
        return payload
    dumps, using = _pickler()
    try:
        return dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:
        raise unpicklable(where, method, using, e, parts) from e


def unpicklable(
    where: str, method: str, using: str, error: Exception, parts: Tuple[Tuple[str, Any], ...]
) -> TypeError:
    """The error for a stage whose functions (or source) `using` cannot pickle: which one,
    why, and what to do about it."""
    dumps = _pickler()[0]
    culprit, role = "the stage", ""
    for role, value in parts:
        try:
            dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            culprit = f"{role}={_describe(value)}"
            break
    link = see("concepts/processes", "lambdas-and-closures")
    if role == "iterable":
        remedy = (
            "pass a picklable iterable (a list, a range) or read it in the parent (use_thread=True)"
        )
        link = see("concepts/processes")
    elif using == "cloudpickle":
        remedy = (
            "make it picklable (define it at module level; no locks, sockets or "
            "open files in its closure)"
        )
    else:
        remedy = (
            "install cloudpickle (pip install 'pypeln[cloudpickle]'), which pickles lambdas "
            "and closures, or define it at the top level of a module"
        )
    if "fork" in multiprocessing.get_all_start_methods():
        remedy += ", or use the fork start method (start_method='fork')"
    return TypeError(
        f"{where}: cannot send {culprit} to the stage's worker processes: they start with "
        f"{method!r}, which pickles what they run, and {using} failed with "
        f"{type(error).__name__}: {error}. To fix it, {remedy}. {link}"
    )


def unloadable(where: str, error: Exception) -> TypeError:
    """In a worker process: the error for a stage's functions that could not be unpickled
    (e.g. defined inside the main script's ``if __name__ == "__main__":`` block)."""
    if "__mp_main__" in str(error) or "__main__" in str(error):
        why = (
            "A worker started with 'spawn' or 'forkserver' imports the main script again, "
            'without running its `if __name__ == "__main__":` block, and finds the '
            "functions of the script there by name. To fix it, define the stage's functions "
            "at the top level of the script, outside that block, or install cloudpickle "
            "(pip install 'pypeln[cloudpickle]'), which sends them by value"
        )
    else:
        why = (
            "A worker started with 'spawn' or 'forkserver' imports the modules of the "
            "functions it runs. To fix it, make sure they can be imported there, or install "
            "cloudpickle (pip install 'pypeln[cloudpickle]'), which sends them by value"
        )
    return TypeError(
        f"{where}: a worker process could not load the stage's functions "
        f"({type(error).__name__}: {error}). {why}. "
        f"{see('concepts/processes', 'lambdas-and-closures')}"
    )


#: What a worker process that is still importing the main script says before it exits.
_REIMPORTED = (
    "pypeln: {where} did not start in process {name!r} (pid {pid}): this process was "
    "started with {method!r}, and is still importing the main script, which starts a "
    'pipeline outside `if __name__ == "__main__":`. Put the code that runs the pipeline '
    "under that guard. {link}\n"
)


def refuse_while_importing_main(where: str, method: str) -> None:
    """Stop a process that starts a process stage while it is still importing the main
    script: a worker process started with spawn or forkserver imports the script again,
    and a script without the main guard would start its pipeline again, in every worker.

    It says so in one line and exits (code 1); its parent reports the missing guard
    (`main_guard_error`). `multiprocessing` itself would raise a long RuntimeError.
    """
    process = multiprocessing.current_process()
    if method == "fork" or not getattr(process, "_inheriting", False):
        return
    message = _REIMPORTED.format(
        where=where,
        name=process.name,
        pid=process.pid,
        method=method,
        link=see("concepts/processes", "the-main-guard"),
    )
    try:
        sys.stdout.flush()
        sys.stderr.write(message)
        sys.stderr.flush()
    except Exception:  # no usable stderr: the parent reports it all the same
        pass
    raise SystemExit(1)


def forkserver_failed(where: str, index: int, error: BaseException) -> str:
    """The message for a worker process that the forkserver could not start: it ended,
    most likely while importing the main script (Python 3.14 imports it there first)."""
    return (
        f"{where}: could not start worker process {index}: the forkserver process, which "
        f"starts worker processes under 'forkserver', ended ({type(error).__name__}: {error}). "
        "It may import the main script before it starts any worker (recent Pythons do, "
        "3.14 among them); a script that runs "
        'its pipeline outside `if __name__ == "__main__":` stops it, as does an error '
        "raised while it imports the script or the modules given to set_forkserver_preload "
        "(see its output above). To fix it, put the code that runs the pipeline under "
        f'`if __name__ == "__main__":`. {see("concepts/processes", "the-main-guard")}'
    )


def main_guard_error(where: str, index: int, pid: Any, method: str) -> str:
    """The message for a worker process that exited with code 1 before it started: under
    spawn and forkserver, almost always a main script without the main guard (or one that
    fails when imported again)."""
    return (
        f"{where}: worker process {index} (pid {pid}) exited with code 1 before it started. "
        f"Worker processes started with {method!r} import the main script again; a script "
        'that runs its pipeline outside `if __name__ == "__main__":` runs it again in '
        "every worker, which stops them (an error raised while the script is imported again "
        "stops them the same way: see the worker's output above). To fix it, put the code "
        'that runs the pipeline under `if __name__ == "__main__":`. '
        f"{see('concepts/processes', 'the-main-guard')}"
    )


def refuse_in_daemon(where: str) -> None:
    """A daemonic process (a worker process of a stage is one) cannot start processes:
    say so, instead of `multiprocessing`'s bare AssertionError."""
    process = multiprocessing.current_process()
    if process.daemon:
        raise RuntimeError(
            f"{where}: cannot start worker processes from process {process.name!r}: it is "
            "daemonic (a worker process of a pl.process stage is), and a daemonic process "
            "cannot have children. A stage's workers cannot run a pipeline with a pl.process "
            "stage (nor consume the pipeline they work for): run such stages from the main "
            f"process, or use pl.thread inside the worker. {see('concepts/stages')}"
        )
