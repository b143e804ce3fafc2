"""`Channel`: one end of the pipe between a supervisor and one of its worker processes.

Every worker process has a pipe of its own, so stopping one (timeout, killed from outside)
never corrupts what the others receive, and its death shows at once as the end of its pipe.
A message is a ``(kind, payload)`` pair pickled once, with the highest protocol: a whole
batch of items costs one pickle, one write and one read.

A worker under an error policy counts what its guard did (`COUNTED`) and reports the counts
of a batch with its result, only when they are not all zero: a batch without failures, and
every batch of a stage without a policy, costs no more than before.
"""

from __future__ import annotations

import pickle
import weakref
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, Generic, List, Optional, Sequence, Tuple, TypeVar

if TYPE_CHECKING:
    from .._core.stats import Counters

T = TypeVar("T")

# Message kinds. Supervisor -> worker:
BATCH = 0  #: payload: the values of a batch, or its items when f takes ``element_index``
END = 1  #: no more items: run on_done and finish
RESUME = 8  #: payload: the attempt number the next batch (an overrun item sent again) is at
# Worker -> supervisor:
READY = 2  #: payload: whether f takes ``element_index`` (then batches carry real indices)
RESULT = 3  #: payload: (seconds the batch took, result kind, encoded outputs[, counts])
DONE = 4  #: on_done has run; the worker exits
FAILED = 5  #: payload: a `Failure`; the worker exits
COUNTS = 6  #: payload: counts (`COUNTED`) not reported with a result; sent before FAILED
ATTEMPT = 7  #: payload: the attempt number starting now, or -1: it ended (a stage with a
#: timeout and an error policy: the parent times each attempt, not rate waits or backoffs)

_dumps = pickle.dumps
_loads = pickle.loads
_PROTOCOL = pickle.HIGHEST_PROTOCOL


# How a batch's output indices relate to its input's (see `encode_results`):
SAME = 0  #: payload: values; one output per input, same indices in the same order (map)
PICK = 1  #: payload: (positions, values); each output has the index of one input (filter)
LOCAL = 2  #: payload: items indexed from local positions, extended (flat_map)
REAL = 3  #: payload: items with their real indices (``element_index`` was used)

#: Local indices ``(0,), (1,), ...`` a worker gives the values of a batch.
_LOCAL_INDICES: List[Tuple[int]] = [(k,) for k in range(1 << 12)]


def _local_indices(n: int) -> List[Tuple[int]]:
    return _LOCAL_INDICES[:n] if n <= len(_LOCAL_INDICES) else [(k,) for k in range(n)]


def local_items(values: Sequence[Any]) -> List[Tuple[Tuple[int], Any]]:
    """A batch's values indexed by position (indices stay in the parent: they cost more to
    pickle than most values)."""
    return list(zip(_local_indices(len(values)), values))


def encode_results(out: List[Any], n: int) -> Tuple[int, Any]:
    """The outputs of a batch of `n` local items, in the most compact form that fits.

    Every operator gives an output the index of the input it came from, possibly extended
    (`flat_map`); the parent maps local positions back to real indices (`decode_results`).
    """
    indices = [i for i, _ in out]
    values = [y for _, y in out]
    if len(indices) == n and indices == _local_indices(n):
        return SAME, values
    if max(map(len, indices), default=1) == 1:
        return PICK, ([i[0] for i in indices], values)
    return LOCAL, out


def decode_results(indices: Sequence[Any], kind: int, payload: Any) -> List[Any]:
    """Items with real indices, from what `encode_results` made of a batch with `indices`."""
    if kind == SAME:
        return list(zip(indices, payload))
    if kind == PICK:
        positions, values = payload
        return list(zip(map(indices.__getitem__, positions), values))
    if kind == LOCAL:
        return [(indices[i[0]] + i[1:], y) for i, y in payload]
    return payload  # type: ignore[no-any-return]


#: What a worker's guard counts and a RESULT's optional last element carries, in order:
#: how many of those events the batch saw.
COUNTED = ("failed", "retried", "skipped")


def take_counts(c: Counters) -> Optional[Tuple[int, ...]]:
    """In a worker: what its guard counted since the last call (None: nothing), reset."""
    if not (c.failed or c.retried or c.skipped):
        return None
    counts = (c.failed, c.retried, c.skipped)
    c.failed = c.retried = c.skipped = 0
    return counts


def add_counts(c: Counters, counts: Sequence[int]) -> None:
    """In the parent: add what a worker reported (`take_counts`) to its counters."""
    failed, retried, skipped = counts
    c.failed += failed
    c.retried += retried
    c.skipped += skipped


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
