"""`Namespace` for `pl.ray` stages: attributes shared by the driver and every actor.

Its attributes live in a small Ray actor of its own, created with the namespace (in the
driver's session, started if needed) and gone once no copy of the namespace is left.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any, Dict, Optional, Tuple

from .session import actor_state_by_id, ensure_session

#: How often a waiter for the lock checks that its holder is still alive.
HOLDER_CHECK_SECONDS = 1.0


class Store:
    """The actor behind a `Namespace`: its values, and a lock that the same thread of the
    same process may take again (``with ns:`` nests)."""

    def __init__(self, values: Dict[str, Any]) -> None:
        self.values = dict(values)
        self.owner: Optional[str] = None
        self.depth = 0
        self.released: Optional[asyncio.Condition] = None

    async def get(self, name: str) -> Tuple[bool, Any]:
        """(found, value)"""
        return (True, self.values[name]) if name in self.values else (False, None)

    async def set(self, name: str, value: Any) -> None:
        self.values[name] = value

    async def delete(self, name: str) -> bool:
        return self.values.pop(name, self) is not self

    async def items(self) -> Dict[str, Any]:
        return dict(self.values)

    async def acquire(self, owner: str) -> None:
        if self.released is None:
            self.released = asyncio.Condition()
        async with self.released:
            while self.owner is not None and self.owner != owner:
                try:
                    await asyncio.wait_for(self.released.wait(), HOLDER_CHECK_SECONDS)
                except asyncio.TimeoutError:
                    owner_now = self.owner  # (released meanwhile: None)
                    if owner_now is not None and _holder_died(owner_now):  # never releases
                        self.owner, self.depth = None, 0
            self.owner = owner
            self.depth += 1

    async def release(self, owner: str) -> None:
        if self.owner != owner:
            raise RuntimeError("this Namespace's lock is not held by the caller")
        assert self.released is not None
        async with self.released:
            self.depth -= 1
            if self.depth == 0:
                self.owner = None
                self.released.notify()


_store_class: Any = None


def _store(ray: Any) -> Any:
    global _store_class
    if _store_class is None:
        _store_class = ray.remote(num_cpus=0)(Store)
    return _store_class


def _caller() -> str:
    """Who holds the lock: this thread of this process (and its actor, in an actor)."""
    import ray

    actor = ray.get_runtime_context().get_actor_id() or ""
    return f"{actor}:{os.uname().nodename}:{os.getpid()}:{threading.get_ident()}"


def _holder_died(owner: str) -> bool:
    """Whether the actor that holds the lock is dead (the driver never is, for its actors)."""
    actor = owner.split(":", 1)[0]
    return bool(actor) and actor_state_by_id(actor) == "DEAD"


def _rebuild(handle: Any) -> Namespace:
    ns = Namespace.__new__(Namespace)
    object.__setattr__(ns, "_store", handle)
    return ns


class Namespace:
    """A mutable bag of attributes visible to the driver and every actor of a `pl.ray`
    pipeline.

    Each attribute read or write is a round trip to an actor, and a value is a copy:
    mutate it in place and the change stays local; assign it back instead. ``with ns:``
    holds a lock shared by every actor and the driver (the same thread may nest it), to
    make read-modify-write steps atomic.

    >>> import pypeln as pl
    >>> ns = pl.ray.Namespace(count=0)  # doctest: +SKIP
    >>> def count(x):
    ...     with ns:
    ...         ns.count += 1
    >>> pl.ray.each(count, range(10), workers=2, run=True)  # doctest: +SKIP
    >>> ns.count  # doctest: +SKIP
    10
    """

    _store: Any

    def __init__(self, **attrs: Any) -> None:
        ray = ensure_session()
        object.__setattr__(self, "_store", _store(ray).remote(attrs))

    def _call(self, method: str, *args: Any) -> Any:
        import ray

        return ray.get(getattr(self._store, method).remote(*args))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        found, value = self._call("get", name)
        if not found:
            raise AttributeError(f"Namespace has no attribute {name!r}")
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        self._call("set", name, value)

    def __delattr__(self, name: str) -> None:
        if not self._call("delete", name):
            raise AttributeError(name)

    def __enter__(self) -> Namespace:
        self._call("acquire", _caller())
        return self

    def __exit__(self, *exc: Any) -> None:
        self._call("release", _caller())

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_rebuild, (self._store,))

    def __repr__(self) -> str:
        attrs = ", ".join(f"{k}={v!r}" for k, v in self._call("items").items())
        return f"Namespace({attrs})"
