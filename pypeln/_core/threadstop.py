"""Stopping a thread from outside: raise an exception in it at its next Python instruction.

Used to stop a worker whose item overran its timeout, and, at teardown, workers that do
not end by themselves. A thread blocked inside C code (``time.sleep``, a socket read)
only sees the exception once that call returns.
"""

from __future__ import annotations

import ctypes
import threading
import time
from typing import Optional, Type

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc


def _async_raise(tid: int, exc: Type[BaseException]) -> None:
    """Make `exc` pending in the thread `tid` (CPython's ``PyThreadState_SetAsyncExc``):
    a call that costs microseconds, which teardown relies on (Ctrl-C with CPU-bound
    workers holding the GIL must not wait for an import)."""
    n = _set_async_exc(ctypes.c_ulong(tid), ctypes.py_object(exc))
    if n == 0:
        raise ValueError(f"no thread with id {tid}")
    if n > 1:  # cannot happen for one id; undo as the C API asks
        _set_async_exc(ctypes.c_ulong(tid), None)
        raise SystemError("PyThreadState_SetAsyncExc changed more than one thread")


def raise_in_thread(thread: threading.Thread, exc: Type[BaseException]) -> None:
    """Raise `exc` in `thread` if it is still alive."""
    tid = thread.ident
    if tid is None or not thread.is_alive():
        return
    try:
        _async_raise(tid, exc)
    except (ValueError, SystemError):  # the thread ended meanwhile
        pass


class ItemTimeout(BaseException):
    """Raised in a thread whose current item ran past its `Deadline`."""


class Deadline:
    """Interrupts the thread running an item when the item runs past `timeout` seconds.

    One watchdog thread serves every item: ``begin()`` before an item, ``end()`` after it;
    an overrun raises `ItemTimeout` in the item's thread, inside that span (or, if it has
    not arrived there, or the item's code caught it, from ``end``). ``close()`` ends the
    watchdog.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._target = threading.current_thread()
        # The item's thread takes the plain lock with ``with``, which an exception raised
        # in it cannot leave held; a Condition's own ``__enter__`` is Python code, where
        # the overrun could arrive just after the lock was taken and keep it for good.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._started: Optional[float] = None
        self._fired = False
        self._closed = False
        self._thread = threading.Thread(target=self._watch, name="pypeln-deadline", daemon=True)
        self._thread.start()

    def begin(self) -> None:
        with self._lock:
            self._target = threading.current_thread()
            self._fired = False
            self._started = time.monotonic()
            self._cond.notify()

    def end(self) -> None:
        """End the item's span; raises `ItemTimeout` if the item overran, even if its code
        caught the exception raised in it, or returned before that exception arrived."""
        with self._lock:
            self._started = None
            fired, self._fired = self._fired, False
        if fired:
            # The watchdog raised it while holding the lock: if it is still pending, it is
            # withdrawn, and raised here instead, in the span.
            _set_async_exc(ctypes.c_ulong(threading.get_ident()), None)
            raise ItemTimeout()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._cond.notify()

    def _watch(self) -> None:
        with self._cond:
            while not self._closed:
                if self._started is None:
                    self._cond.wait()
                    continue
                left = self._started + self.timeout - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                self._started = None
                self._fired = True
                raise_in_thread(self._target, ItemTimeout)
