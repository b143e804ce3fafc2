"""`Namespace` for process stages: attributes shared by the parent and every worker process.

Its attributes live in a manager process, started when the first `Namespace` is created
(never by importing pypeln or running a pipeline) and shared by all of them. It ends with
the process that started it: at its exit, or, if that process is killed without a chance
to stop it (SIGKILL), within `WATCH_SECONDS`.
"""

from __future__ import annotations

import os
import threading
import time
from multiprocessing.managers import SyncManager
from typing import Any, Optional, Tuple

from . import methods

#: How often the manager process looks whether the process that started it still runs.
WATCH_SECONDS = 0.5

_lock = threading.Lock()
_manager: Optional[SyncManager] = None


def _shared_manager() -> SyncManager:
    global _manager
    with _lock:
        if _manager is None:
            manager = SyncManager(ctx=methods.context(methods.choose(None)[0]))
            if os.name == "posix":
                manager.start(_watch_creator, (os.getpid(),))
            else:
                manager.start()
            _manager = manager
        return _manager


def _watch_creator(pid: int) -> None:
    """Run first in the manager's process: end it once process `pid` (the one that started
    it) has ended, so that a killed program leaves no manager behind."""

    def watch() -> None:
        while _running(pid):
            time.sleep(WATCH_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="pypeln-namespace-watch", daemon=True).start()


def _running(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, ended but not yet waited for, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc here: the signal said it exists


def _rebuild(values: Any, lock: Any) -> Namespace:
    ns = Namespace.__new__(Namespace)
    object.__setattr__(ns, "_values", values)
    object.__setattr__(ns, "_lock", lock)
    return ns


class Namespace:
    """A mutable bag of attributes visible to the parent and every worker process.

    Each attribute read or write is a round trip to the manager process, and a value is a
    copy: mutate it in place and the change stays local; assign it back instead. ``with
    ns:`` holds a lock shared by every process, to make read-modify-write steps atomic.

    >>> import pypeln as pl
    >>> ns = pl.process.Namespace(count=0)
    >>> def count(x):
    ...     with ns:
    ...         ns.count += 1
    >>> pl.process.each(count, range(10), workers=2, run=True)
    >>> ns.count
    10
    """

    def __init__(self, **attrs: Any) -> None:
        manager = _shared_manager()
        object.__setattr__(self, "_values", manager.Namespace(**attrs))
        object.__setattr__(self, "_lock", manager.RLock())

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(object.__getattribute__(self, "_values"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._values, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._values, name)

    def __enter__(self) -> Namespace:
        self._lock.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._lock.release()

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_rebuild, (self._values, self._lock))

    def __repr__(self) -> str:
        attrs = ", ".join(f"{k}={v!r}" for k, v in vars(self._values._getvalue()).items())
        return f"Namespace({attrs})"
