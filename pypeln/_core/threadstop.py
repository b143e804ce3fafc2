"""Stopping a thread from outside: raise an exception in it at its next Python instruction.

Used to stop a worker whose item overran its timeout, and, at teardown, workers that do
not end by themselves. A thread blocked inside C code (``time.sleep``, a socket read)
only sees the exception once that call returns.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Callable, Optional, Type

_raise: Optional[Callable[[int, Type[BaseException]], None]] = None


def _ctypes_raise(tid: int, exc: Type[BaseException]) -> None:
    n = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), ctypes.py_object(exc))
    if n > 1:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), None)


def _raiser() -> Callable[[int, Type[BaseException]], None]:
    """stopit's async_raise, imported on first use: its import pulls in pkg_resources, which
    is slow (a tenth of a second, paid by every spawned worker process) or, with recent
    setuptools, missing."""
    global _raise
    if _raise is None:
        try:
            from stopit import async_raise  # type: ignore[import-untyped]

            _raise = async_raise
        except Exception:  # pragma: no cover - depends on the environment
            _raise = _ctypes_raise
    return _raise


def raise_in_thread(thread: threading.Thread, exc: Type[BaseException]) -> None:
    """Raise `exc` in `thread` if it is still alive."""
    tid = thread.ident
    if tid is None or not thread.is_alive():
        return
    try:
        _raiser()(tid, exc)
    except (ValueError, SystemError):  # the thread ended meanwhile
        pass
