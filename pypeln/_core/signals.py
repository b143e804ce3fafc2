"""Waits that let the main thread see Ctrl-C.

A signal sent to the process (SIGINT from Ctrl-C, SIGTERM) reaches one of its threads, any
of them; Python runs the handler in the main thread, at its next Python instruction. A main
thread blocked on a lock is only woken if the signal reached it, so with the run's threads
around, Ctrl-C could go unnoticed until the next item arrives, or forever if none does.
Untimed waits in the main thread therefore wake up every `SIGNAL_CHECK_SECONDS`; for the
waiter that is a spurious wake-up (it checks again what it waits for).
"""

from __future__ import annotations

import threading
from typing import Optional

#: The longest the main thread stays blocked before it looks for a pending signal.
SIGNAL_CHECK_SECONDS = 0.05

_main = threading.main_thread()


def wait(cond: threading.Condition, timeout: Optional[float] = None) -> bool:
    """``cond.wait(timeout)``, with the lock held; an untimed wait in the main thread may
    return early (True, like a notification), for the caller to check again."""
    if timeout is None and threading.current_thread() is _main:
        cond.wait(SIGNAL_CHECK_SECONDS)
        return True
    return cond.wait(timeout)
