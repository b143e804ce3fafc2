"""Values that cannot be pickled (a worker's exception, a result, an item) are reported as
`pl.UnpicklableError`, naming the stage, the type and the reason; a worker's exception keeps
its own type whenever it can be pickled or rebuilt; tracebacks from spawned workers show the
user's file and lines."""

from __future__ import annotations

import multiprocessing
import pickle
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, Optional

import pytest
from _mutation_stats import script_env

import pypeln as pl
from pypeln._core.errors import Failure

pytestmark = pytest.mark.timeout(60)

#: None: the default start method
START_METHODS = [None] + [m for m in ("spawn",) if m in multiprocessing.get_all_start_methods()]
REIMPORTING = [m for m in ("spawn", "forkserver") if m in multiprocessing.get_all_start_methods()]


class Rebuildable(Exception):
    """Its args rebuild it; one attribute (a lock) cannot be pickled."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()
        self.code = 7


class BadError(Exception):
    """Its ``__init__`` does not take back its own args, and it holds a lock."""

    def __init__(self, code: int) -> None:
        super().__init__(f"code={code}")
        self.lock = threading.Lock()


def raise_rebuildable(x: int) -> int:
    raise Rebuildable(f"failed on {x}")


class WithAFunction(Exception):
    """Its args rebuild it; it holds a lock, which cannot be pickled, and a lambda, which
    only cloudpickle can (the transport of `pl.process` when it is installed)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()
        self.scale = lambda x: 10 * x


def raise_with_a_function(x: int) -> int:
    raise WithAFunction(f"failed on {x}")


class Renumbered(Exception):
    """Its ``__init__`` changes the args it is given, behind a ``str()`` that never
    changes: a copy rebuilt from its args reads the same but is not the same."""

    def __init__(self, n: int) -> None:
        super().__init__(n + 1)
        self.lock = threading.Lock()

    def __str__(self) -> str:
        return "renumbered"


def raise_renumbered(x: int) -> int:
    raise Renumbered(x)


def raise_bad(x: int) -> int:
    raise BadError(42)


def return_lock(x: int) -> Any:
    return threading.Lock()


def identity(x: Any) -> Any:
    return x


# -- the types ----------------------------------------------------------------------------


def test_every_library_error_is_a_pypeln_error() -> None:
    assert issubclass(pl.WorkerDiedError, pl.PypelnError)
    assert issubclass(pl.WorkerDiedError, RuntimeError)
    assert issubclass(pl.ItemTimeoutError, pl.PypelnError)
    assert issubclass(pl.ItemTimeoutError, TimeoutError)
    assert issubclass(pl.RemoteTraceback, pl.PypelnError)
    assert issubclass(pl.UnpicklableError, pl.PypelnError)
    assert issubclass(pl.UnpicklableError, TypeError)
    assert "PypelnError" in pl.__all__ and "UnpicklableError" in pl.__all__


def test_unpicklable_error_pickles() -> None:
    e = pl.UnpicklableError("pl.process.map(f)", "a result", "_thread.lock", "TypeError: no")
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is pl.UnpicklableError
    assert str(back) == str(e)
    assert (back.where, back.what, back.type_name, back.reason) == (
        "pl.process.map(f)",
        "a result",
        "_thread.lock",
        "TypeError: no",
    )


def test_the_message_says_how_to_fix_it() -> None:
    value = pl.UnpicklableError("pl.process.map(f)", "a result", "_thread.lock", "TypeError: no")
    assert (
        "To fix it, use values that can be pickled (no locks, open files or connections), "
        "or a thread stage. "
    ) in str(value)
    exc = pl.UnpicklableError("pl.process.map(f)", "an exception", "Bad", "TypeError: no")
    assert (
        "To fix it, give it attributes that can be pickled, and an __init__ that takes back "
        "its own args. "
    ) in str(exc)
    assert "thread stage" not in str(exc)


def test_an_exception_whose_class_cannot_be_pickled() -> None:
    class Local(Exception):
        pass

    failure = Failure(Local("x"), "pl.process.map(f)")
    back = pickle.loads(pickle.dumps(failure)).exception()
    assert type(back) is pl.UnpicklableError
    assert "pl.process.map(f)" in str(back) and "Local" in str(back)
    assert isinstance(back.__cause__, pl.RemoteTraceback)
    assert "Local: x" in str(back.__cause__)


# -- pl.process ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", START_METHODS)
def test_exception_rebuilt_without_its_unpicklable_attribute(method: Optional[str]) -> None:
    with pytest.raises(Rebuildable, match="failed on 1") as info:
        pl.process.map(raise_rebuildable, [1], start_method=method) | list
    assert info.value.code == 7
    # (the lock was left out: the one it has is the one its ``__init__`` made again)
    cause = info.value.__cause__
    assert isinstance(cause, pl.RemoteTraceback)
    assert "lock" in str(cause)  # the traceback says what was left out


def test_an_attribute_only_cloudpickle_can_send_is_kept() -> None:
    pytest.importorskip("cloudpickle")
    with pytest.raises(WithAFunction, match="failed on 1") as info:
        pl.process.map(raise_with_a_function, [1]) | list
    assert info.value.scale(2) == 20  # sent by value, as the transport sends it
    note = str(info.value.__cause__).strip().splitlines()[-1]
    assert note.startswith("(pypeln: sent without its attribute(s) lock: "), note


def test_an_exception_whose_rebuilt_copy_has_other_args_is_not_sent_as_it() -> None:
    with pytest.raises(pl.UnpicklableError) as info:
        pl.process.map(raise_renumbered, [1]) | list
    assert "Renumbered" in str(info.value)


@pytest.mark.parametrize("method", START_METHODS)
def test_exception_that_cannot_be_rebuilt(method: Optional[str]) -> None:
    with pytest.raises(pl.UnpicklableError) as info:
        pl.process.map(raise_bad, [1], start_method=method) | list
    e = info.value
    message = str(e)
    assert "pl.process.map(raise_bad)" in message
    assert "an exception" in message and "BadError" in message
    assert "cannot pickle" in message  # the reason
    assert e.type_name.endswith("BadError")
    assert isinstance(e.__cause__, pl.RemoteTraceback)
    assert "BadError: code=42" in str(e.__cause__)


@pytest.mark.parametrize("method", START_METHODS)
def test_result_that_cannot_be_pickled(method: Optional[str]) -> None:
    with pytest.raises(pl.UnpicklableError) as info:
        pl.process.map(return_lock, [1, 2], start_method=method) | list
    message = str(info.value)
    assert "pl.process.map(return_lock)" in message
    assert "a result of type _thread.lock" in message
    assert "cannot pickle" in message
    assert info.value.type_name == "_thread.lock"
    assert message.endswith("concepts/errors/#what-cannot-be-pickled")


class Box:
    def __init__(self, n: int) -> None:
        self.n = n


def lock_and_keep_unless_zero(box: Box) -> bool:
    box.lock = threading.Lock()  # the item kept can no longer be pickled
    return box.n != 0


def test_an_item_a_filter_keeps_that_cannot_be_pickled_any_more() -> None:
    """A filter's results are some of its items (the others dropped): the error names the
    kept one that cannot be sent back."""
    with pytest.raises(pl.UnpicklableError) as info:
        pl.process.filter(lock_and_keep_unless_zero, [Box(0), Box(1)]) | list
    assert info.value.type_name.endswith("Box")
    assert "pl.process.filter(lock_and_keep_unless_zero): a result of type " in str(info.value)


@pytest.mark.parametrize("method", START_METHODS)
def test_item_that_cannot_be_pickled(method: Optional[str]) -> None:
    items = [1, threading.Lock(), 3]
    with pytest.raises(pl.UnpicklableError) as info:
        pl.process.map(identity, items, start_method=method) | list
    message = str(info.value)
    assert "pl.process.map(identity)" in message
    assert "an item of type _thread.lock" in message
    assert isinstance(info.value, TypeError)


class Outer:
    class Inner:
        """Nested: its type is named with its qualified name."""

        def __init__(self) -> None:
            self.lock = threading.Lock()


#: a class whose ``__module__`` is None (as some made at run time have): named alone
NoModule = type("NoModule", (), {"__module__": None})


def unpicklable_type_name(item: Any) -> str:
    with pytest.raises(pl.UnpicklableError) as info:
        pl.process.map(identity, [item]) | list
    assert f"an item of type {info.value.type_name} " in str(info.value)
    return info.value.type_name


def test_the_type_is_named_as_python_would() -> None:
    assert unpicklable_type_name(x for x in ()) == "generator"  # builtins left out
    assert unpicklable_type_name(Outer.Inner()) == f"{__name__}.Outer.Inner"
    no_module = NoModule()
    no_module.lock = threading.Lock()
    assert unpicklable_type_name(no_module) == "NoModule"


#: how often this process has pickled a `PicklesSecondTime`
_pickled = [0]


class PicklesSecondTime:
    """Fails to pickle only the first time a process pickles one: a batch that fails to
    pickle although each of its values, tried alone, does."""

    def __reduce__(self) -> Any:
        _pickled[0] += 1
        if _pickled[0] == 1:
            raise ValueError("not this time")
        return (PicklesSecondTime, ())


def return_pickles_second_time(x: int) -> Any:
    return PicklesSecondTime()


def test_a_batch_that_fails_to_pickle_though_each_value_pickles() -> None:
    with pytest.raises(pl.UnpicklableError) as info:
        pl.process.map(return_pickles_second_time, [1]) | list
    e = info.value
    assert (e.where, e.what, e.type_name) == (
        "pl.process.map(return_pickles_second_time)",
        "a result",
        "unknown",
    )
    assert e.reason == "ValueError: not this time"
    assert str(e).startswith("pl.process.map(return_pickles_second_time): a result of type ")


def raise_local(x: int) -> int:
    class LocalError(Exception):
        pass

    raise LocalError("from a local class", x)


@pytest.mark.forks_with_threads  # told to fork
@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork")
def test_exception_of_a_local_class_travels_by_value() -> None:
    pytest.importorskip("cloudpickle")
    with pytest.raises(Exception) as info:
        pl.process.map(raise_local, [1], start_method="fork") | list
    assert type(info.value).__name__ == "LocalError"
    assert info.value.args == ("from a local class", 1)
    assert isinstance(info.value.__cause__, pl.RemoteTraceback)


# -- backends that do not pickle ----------------------------------------------------------


@pytest.mark.parametrize("backend", ["sync", "thread", "task"])
def test_backends_without_pickling_keep_the_exception_itself(backend: str) -> None:
    module = getattr(pl, backend)
    with pytest.raises(BadError) as info:
        module.map(raise_bad, [1]) | list
    assert isinstance(info.value.lock, type(threading.Lock()))


@pytest.mark.parametrize("backend", ["sync", "thread", "task"])
def test_backends_without_pickling_pass_any_result(backend: str) -> None:
    module = getattr(pl, backend)
    assert len(module.map(return_lock, [1, 2]) | list) == 2


# -- tracebacks of spawned workers --------------------------------------------------------

SCRIPT = """
import sys
import threading
import pypeln as pl

def top_level(x):
    raise ValueError("top level failed")  # marker-top

class ScriptError(Exception):
    pass

def raises_own(x):
    raise ScriptError("own class")

class Holder:
    def __init__(self):
        self.lock = threading.Lock()

def returns_holder(x):
    return Holder()

if __name__ == "__main__":
    def in_guard(x):
        raise KeyError("in guard")  # marker-guard

    pl.process.set_start_method(sys.argv[1])
    for f in (top_level, lambda x: 1 / 0, in_guard, raises_own):
        try:
            pl.process.map(f, [1]) | list
        except Exception as e:
            print("TYPE", type(e).__module__, type(e).__name__, e is not None)
            print(e.__cause__)
    try:
        pl.process.map(returns_holder, [1]) | list
    except pl.UnpicklableError as e:
        print("UNPICKLABLE", e.type_name)
"""


@pytest.mark.parametrize("method", REIMPORTING)
def test_spawned_tracebacks_show_the_script(tmp_path: Path, method: str) -> None:
    pytest.importorskip("cloudpickle")
    script = tmp_path / "user_script.py"
    script.write_text(textwrap.dedent(SCRIPT))
    done = subprocess.run(
        [sys.executable, str(script), method],
        cwd=tmp_path,
        env=script_env(),  # the pypeln under test
        capture_output=True,
        text=True,
        timeout=50,
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert "<dynamic-code>" not in out
    assert out.count(str(script)) >= 4, out
    assert 'raise ValueError("top level failed")  # marker-top' in out
    assert "lambda x: 1 / 0" in out
    assert 'raise KeyError("in guard")  # marker-guard' in out
    # a class of the script reaches the parent as the script's own class
    assert "TYPE __main__ ScriptError True" in out
    # a class of the script is named as the user wrote it, not as the worker imported it
    assert "UNPICKLABLE __main__.Holder" in out
    assert "UnpicklableError" not in out


def locks() -> Any:
    yield 1
    yield threading.Lock()


@pytest.mark.forks_with_threads  # told to fork
@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork")
def test_source_item_that_cannot_be_pickled() -> None:
    # read in a process of its own (forked, or a generator could not be sent there)
    stage = pl.process.from_iterable(locks(), use_thread=False, start_method="fork")
    with pytest.raises(pl.UnpicklableError) as info:
        pl.process.map(identity, stage) | list
    assert "an item of the source of type _thread.lock" in str(info.value)
    assert "pl.process.from_iterable" in str(info.value)
