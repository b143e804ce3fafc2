"""Stopping a thread from outside: raise an exception in it at its next Python instruction.

Used to stop a worker whose item overran its timeout, and, at teardown, workers that do
not end by themselves. A thread blocked inside C code (``time.sleep``, a socket read)
only sees the exception once that call returns.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Callable, Type

_raise: Callable[[int, Type[BaseException]], None]

try:  # stopit's own import needs pkg_resources, which recent setuptools dropped.
    from stopit import async_raise as _raise  # type: ignore[no-redef,import-untyped,unused-ignore]
except Exception:  # pragma: no cover - depends on the environment

    def _raise(tid: int, exc: Type[BaseException]) -> None:
        n = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), ctypes.py_object(exc))
        if n > 1:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), None)


def raise_in_thread(thread: threading.Thread, exc: Type[BaseException]) -> None:
    """Raise `exc` in `thread` if it is still alive."""
    tid = thread.ident
    if tid is None or not thread.is_alive():
        return
    try:
        _raise(tid, exc)
    except (ValueError, SystemError):  # the thread ended meanwhile
        pass
