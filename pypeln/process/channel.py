"""`Channel`: one end of the pipe between a supervisor and one of its worker processes.

Every worker process has a pipe of its own, so stopping one (timeout, killed from outside)
never corrupts what the others receive, and its death shows at once as the end of its pipe.
A message is a ``(kind, payload)`` pair pickled once, with the highest protocol: a whole
batch of items costs one pickle, one write and one read.

Results travel in the compact forms of `pypeln._core.wire`, with what a worker's error
policy counted along only when it is not all zero: a batch without failures, and every
batch of a stage without a policy, costs no more than before.
"""

from __future__ import annotations

import pickle
import weakref
from multiprocessing.connection import Connection
from typing import Any, Generic, Tuple, TypeVar

T = TypeVar("T")

# Message kinds. Supervisor -> worker:
BATCH = 0  #: payload: the values of a batch, or its items when f takes ``element_index``
END = 1  #: no more items: run on_done and finish
RESUME = 8  #: payload: the attempt number the next batch (an overrun item sent again) is at
# Worker -> supervisor:
READY = 2  #: payload: whether f takes ``element_index`` (then batches carry real indices)
RESULT = 3  #: payload: (seconds the batch took, result kind, encoded outputs[, counts])
PART = 9  #: payload: (result kind, encoded outputs): some outputs of the batch in work, sent
#: before its RESULT (a streaming operator, `flat_map`, hands its outputs on as they come)
DONE = 4  #: on_done has run; the worker exits
FAILED = 5  #: payload: a `Failure`; the worker exits
COUNTS = 6  #: payload: counts (`COUNTED`) not reported with a result; sent before FAILED
ATTEMPT = 7  #: payload: the attempt number starting now, or -1: it ended (a stage with a
#: timeout and an error policy: the parent times each attempt, not rate waits or backoffs)

_dumps = pickle.dumps
_loads = pickle.loads
_PROTOCOL = pickle.HIGHEST_PROTOCOL


#: The parent's ends of every worker's pipe. A forked worker inherits them all; it closes
#: them (`close_inherited_ends`), or a worker would never see the end of its own pipe when
#: the parent dies, since it would hold the other end itself.
_parent_ends: weakref.WeakSet[Connection] = weakref.WeakSet()


def parent_end(conn: Connection) -> Connection:
    """Register `conn` as a parent's end (before starting the worker at its other end)."""
    _parent_ends.add(conn)
    return conn


def close_inherited_ends() -> None:
    """In a forked worker: close the parent's ends it inherited (empty under spawn)."""
    for conn in list(_parent_ends):
        try:
            conn.close()
        except OSError:
            pass
    _parent_ends.clear()


class ChannelClosed(Exception):
    """The other end of the channel is gone (its process ended, or the run was torn down)."""


class Channel(Generic[T]):
    """A duplex, message-oriented pipe end carrying batches of `T` and control messages."""

    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def send(self, kind: int, payload: Any = None) -> int:
        """Send one message and return its size in bytes; raises `ChannelClosed` if the
        other end is gone.

        Pickling errors (an unpicklable item) propagate as they are.
        """
        data = _dumps((kind, payload), _PROTOCOL)
        try:
            self.conn.send_bytes(data)
        except (OSError, ValueError) as e:  # ValueError: this end was closed meanwhile
            raise ChannelClosed() from e
        return len(data)

    def recv(self) -> Tuple[int, Any]:
        """The next message, blocking; raises `ChannelClosed` at the end of the pipe."""
        try:
            data = self.conn.recv_bytes()
        except (EOFError, OSError, ValueError) as e:
            raise ChannelClosed() from e
        return _loads(data)  # type: ignore[no-any-return]

    def poll(self) -> bool:
        """Whether a message (or the end of the pipe) is ready to read."""
        try:
            return self.conn.poll()
        except (OSError, ValueError):
            return True

    def fileno(self) -> int:
        return self.conn.fileno()

    def close(self) -> None:
        self.conn.close()
