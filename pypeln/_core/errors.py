"""How a failure in a worker reaches the consumer: same type, same args, traceback attached."""

from __future__ import annotations

import pickle
import traceback
from typing import Any, Optional

from .docs import see


class Cancelled(BaseException):
    """Internal: raised inside a run that is being torn down (error, early exit, Ctrl-C)."""


class PypelnError(Exception):
    """The base of every error pypeln itself raises (a worker's own exception reaches the
    consumer as its own type, not as one of these); each also keeps the built-in base it
    had, so ``except TimeoutError`` still catches an `ItemTimeoutError`:

    ```python
    import pypeln as pl

    assert issubclass(pl.WorkerDiedError, pl.PypelnError)
    assert issubclass(pl.ItemTimeoutError, TimeoutError)
    assert issubclass(pl.UnpicklableError, TypeError)
    ```
    """


class RemoteTraceback(PypelnError):
    """The traceback of an exception raised in a worker process, chained as its ``__cause__``.

    The exception itself is raised where the output is consumed, with its type and
    ``args``; ``str()`` of its cause shows where it happened in the worker:

    ```python
    import pypeln as pl

    def fails(x):
        raise ValueError(x)

    if __name__ == "__main__":
        try:
            pl.process.map(fails, [1]) | list
        except ValueError as e:
            assert isinstance(e.__cause__, pl.RemoteTraceback)
            print(e.__cause__)  # the traceback, as the worker process saw it
    ```
    """

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return "\n\n" + self.tb


class WorkerDiedError(RuntimeError, PypelnError):
    """A worker process ended without reporting (killed from outside, out of memory, crashed).

    The run stops with this error, raised where the output is consumed:

    ```python
    import os, signal
    import pypeln as pl

    def crash(x):
        os.kill(os.getpid(), signal.SIGKILL)

    if __name__ == "__main__":
        try:
            pl.process.map(crash, [1]) | list
        except pl.WorkerDiedError as e:
            print("a worker died:", e)
    ```
    """


class UnpicklableError(TypeError, PypelnError):
    """A value that had to cross between processes could not be pickled: an item sent to a
    worker process, a result sent back, or an exception a worker raised. It names the
    stage, the value's type and the reason, and is raised where the output is consumed
    (a TypeError, like pickle's own failures):

    ```python
    import threading
    import pypeln as pl

    def lock(x):
        return threading.Lock()  # a lock cannot be pickled

    if __name__ == "__main__":
        try:
            pl.process.map(lock, [1]) | list
        except pl.UnpicklableError as e:
            print(e)  # pl.process.map(lock): a result of type _thread.lock ...
            assert e.type_name == "_thread.lock"
    ```

    A worker's exception that cannot be pickled is first rebuilt the way pickle rebuilds
    any exception (its class called with its ``args``), without the attributes that
    cannot be pickled; only when that fails too (or its class cannot be pickled) does
    this error take its place, with the worker's traceback as its cause.
    """

    def __init__(self, where: str, what: str, type_name: str, reason: str) -> None:
        if what == "an exception":
            fix = (
                "give it attributes that can be pickled, and an __init__ that takes back "
                "its own args"
            )
        else:
            fix = (
                "use values that can be pickled (no locks, open files or connections), "
                "or a thread stage"
            )
        super().__init__(
            f"{where}: {what} of type {type_name} cannot be pickled to cross between "
            f"processes ({reason}). To fix it, {fix}. "
            f"{see('concepts/errors', 'what-cannot-be-pickled')}"
        )
        #: the stage, as in ``pl.process.map(f)``
        self.where = where
        #: what it was: ``"a result"``, ``"an item"``, ``"an exception"``
        self.what = what
        #: the value's type, ``module.QualifiedName`` (``builtins.`` left out)
        self.type_name = type_name
        #: why pickle refused it, ``TypeName: message``
        self.reason = reason

    def __reduce__(self) -> Any:
        return (type(self), (self.where, self.what, self.type_name, self.reason))


def stage_label(where: str, f: Any) -> str:
    """How an error names a stage: ``pl.process.map(f)``."""
    name = getattr(f, "__name__", None)
    return f"{where}({name})" if isinstance(name, str) else where


def type_name(value: Any) -> str:
    cls = type(value)
    module = getattr(cls, "__module__", "") or ""
    name = getattr(cls, "__qualname__", cls.__name__)
    if module == "__mp_main__":  # the main script, as a spawned worker imports it
        module = "__main__"
    return name if module in ("builtins", "") else f"{module}.{name}"


def why_unpicklable(value: Any, dumps: Any = None, loads: Any = None) -> Optional[str]:
    """Why `value` does not survive a pickle round trip (``TypeName: message``), or None."""
    try:
        (loads or pickle.loads)((dumps or pickle.dumps)(value, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return None


def cannot_send(where: str, what: str, values: Any, error: BaseException) -> UnpicklableError:
    """The error for a batch of `values` that did not pickle: the first one that does not,
    its type and why (else the batch's own `error`)."""
    for value in values:
        reason = why_unpicklable(value)
        if reason is not None:
            return UnpicklableError(where, what, type_name(value), reason)
    return UnpicklableError(where, what, "unknown", f"{type(error).__name__}: {error}")


def format_exception(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


class Failure:
    """A picklable capture of an exception raised in a worker.

    `reraise()` on the other side gives back an exception of the same type with the same
    ``args``, with the worker's formatted traceback chained as its cause.
    """

    __slots__ = ("exc", "tb", "where")

    #: how the exception will travel (a backend whose transport pickles more, such as
    #: cloudpickle, checks with that instead)
    dumps = staticmethod(pickle.dumps)
    loads = staticmethod(pickle.loads)

    def __init__(self, exc: BaseException, where: str = "pypeln") -> None:
        self.tb = format_exception(exc)
        self.exc: Optional[BaseException] = exc
        #: the stage the exception was raised in, for `UnpicklableError`
        self.where = where

    def __getstate__(self) -> tuple[bytes, str]:
        exc, tb = self.sendable()
        # pickled here, with `dumps`: the transport's own pickle may pickle less
        return (self.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL), tb)

    def sendable(self) -> tuple[BaseException, str]:
        """The exception to send and its traceback: the exception itself if it survives a
        pickle round trip (only its type, args and attributes travel: tracebacks and
        causes do not pickle), else it `rebuilt`, else an `UnpicklableError`."""
        exc = self.exc
        assert exc is not None
        reason = why_unpicklable(exc, self.dumps, self.loads)
        if reason is None:
            return (exc, self.tb)
        rebuilt, dropped = self.rebuilt(exc)
        if rebuilt is not None:
            note = f"\n(pypeln: sent without its attribute(s) {', '.join(dropped)}: {reason})\n"
            return (rebuilt, self.tb + note)
        return (UnpicklableError(self.where, "an exception", type_name(exc), reason), self.tb)

    def rebuilt(self, exc: BaseException) -> tuple[Optional[BaseException], list[str]]:
        """`exc` as pickle would rebuild it (its class called with its ``args``, then its
        attributes set), without the attributes that cannot be pickled; None if that does
        not survive a round trip or does not read as the original (same type, ``args`` and
        ``str()``: a class whose ``__init__`` does not take back its own ``args`` fails it)."""
        kept: dict[str, Any] = {}
        dropped: list[str] = []
        for name, value in getattr(exc, "__dict__", {}).items():
            if why_unpicklable(value, self.dumps, self.loads) is None:
                kept[name] = value
            else:
                dropped.append(name)
        if not dropped:  # the class itself or its args do not pickle
            return None, dropped
        try:
            copy = BaseException.__new__(type(exc), *exc.args)
            copy.args = exc.args
            copy.__dict__.update(kept)
            back = self.loads(self.dumps(copy, protocol=pickle.HIGHEST_PROTOCOL))
            same = type(back) is type(exc) and back.args == exc.args and str(back) == str(exc)
        except Exception:
            return None, dropped
        return (copy if same else None), dropped

    def __setstate__(self, state: tuple[bytes, str]) -> None:
        data, self.tb = state
        self.exc = self.loads(data)
        self.where = ""

    def exception(self) -> BaseException:
        exc = self.exc
        assert exc is not None
        if exc.__traceback__ is None and exc.__cause__ is None:
            exc.__cause__ = RemoteTraceback(self.tb)
        return exc
