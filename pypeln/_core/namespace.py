"""`Namespace`: a mutable bag of attributes that callbacks share; ``with ns:`` locks it."""

from __future__ import annotations

import threading
from typing import Any

from typing_extensions import Protocol


class Lock(Protocol):
    def acquire(self) -> Any: ...

    def release(self) -> None: ...


class Namespace:
    """Attributes shared by the workers of a pipeline (threads, tasks or generators).

    >>> import pypeln as pl
    >>> ns = pl.thread.Namespace(count=0)
    >>> def count(x):
    ...     with ns:
    ...         ns.count += 1
    >>> pl.thread.each(count, range(10), workers=4, run=True)
    >>> ns.count
    10
    """

    _lock: Lock

    def __init__(self, **attrs: Any) -> None:
        object.__setattr__(self, "_lock", self._new_lock())  # bypasses user attribute handling
        for key, value in attrs.items():
            setattr(self, key, value)

    def _new_lock(self) -> Lock:
        """The lock ``with ns:`` holds: re-entrant, for the thread that holds it."""
        return threading.RLock()

    def __enter__(self) -> Namespace:
        self._lock.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._lock.release()

    def __repr__(self) -> str:
        attrs = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "_lock")
        return f"Namespace({attrs})"
