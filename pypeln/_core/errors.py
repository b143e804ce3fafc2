"""How a failure in a worker reaches the consumer: same type, same args, traceback attached."""

from __future__ import annotations

import pickle
import traceback
from typing import Optional


class Cancelled(BaseException):
    """Internal: raised inside a run that is being torn down (error, early exit, Ctrl-C)."""


class RemoteTraceback(Exception):
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


class WorkerDiedError(RuntimeError):
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


class UnpicklableError(Exception):
    """Stands in for a worker exception that could not be sent back to the parent process."""


def format_exception(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


class Failure:
    """A picklable capture of an exception raised in a worker.

    `reraise()` on the other side gives back an exception of the same type with the same
    ``args``, with the worker's formatted traceback chained as its cause.
    """

    __slots__ = ("exc", "tb")

    #: how the exception will travel (a backend whose transport pickles more, such as
    #: cloudpickle, checks with that instead)
    dumps = staticmethod(pickle.dumps)
    loads = staticmethod(pickle.loads)

    def __init__(self, exc: BaseException) -> None:
        self.tb = format_exception(exc)
        self.exc: Optional[BaseException] = exc

    def __getstate__(self) -> tuple[Optional[BaseException], str]:
        exc = self.exc
        try:
            # Only the type and args travel: tracebacks and causes do not pickle.
            self.loads(self.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL))
        except Exception:
            exc = UnpicklableError(f"{type(exc).__qualname__}: {exc}")
        return (exc, self.tb)

    def __setstate__(self, state: tuple[Optional[BaseException], str]) -> None:
        self.exc, self.tb = state

    def exception(self) -> BaseException:
        exc = self.exc
        assert exc is not None
        if exc.__traceback__ is None and exc.__cause__ is None:
            exc.__cause__ = RemoteTraceback(self.tb)
        return exc
