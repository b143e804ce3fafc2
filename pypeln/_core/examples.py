"""Docstring examples shared by the backends' own classes, written once.

The backends' `Worker`, `Supervisor` and `IterableQueue` are different classes that play
the same part; ``@example(WORKER, "pl.thread")`` appends the shared example to a class's
docstring, with ``{pl}`` replaced by the backend's module (as the stage functions'
docstrings are, in `pypeln._core.api`).
"""

from __future__ import annotations

from typing import Callable, TypeVar

C = TypeVar("C", bound=type)

WORKER = """
    A stage with ``workers=n`` runs n of them; each knows its ``worker_info.index``:

    >>> import pypeln as pl
    >>> def who(x, worker_info):
    ...     return worker_info.index
    >>> set({pl}.map(who, range(20), workers=2)) <= {{0, 1}}{skip}
    True
"""

SUPERVISOR = """
    A run makes one per stage. When an item overruns the stage's ``timeout``, it drops the
    item and replaces the worker, and the run goes on:

    >>> import time, pypeln as pl
    >>> def slow(x):
    ...     time.sleep(x)
    ...     return x
    >>> sorted({pl}.map(slow, [0, 1, 0], timeout=0.3)){skip}
    [0, 0]
"""

#: `task`'s version: a coroutine (a blocking call would hold the event loop)
SUPERVISOR_ASYNC = (
    SUPERVISOR.replace("import time,", "import asyncio,")
    .replace("def slow(x):", "async def slow(x):")
    .replace("time.sleep(x)", "await asyncio.sleep(x)")
)

QUEUE = """
    A run builds one before each stage; its producers call `done` when they finish, and
    iterating it ends once all of them have:

    >>> import pypeln as pl
    >>> q = {pl}.IterableQueue(maxsize=2)
    >>> q.add_producers(1)
    >>> q.put_batch([((0,), "a"), ((1,), "b")])
    >>> q.done()
    >>> list(q)
    [((0,), 'a'), ((1,), 'b')]
"""


def example(template: str, pl: str, run: bool = True) -> Callable[[C], C]:
    """Append `template` to the decorated class's docstring, for backend `pl` (``"pl.ray"``);
    with ``run=False`` its doctest lines are marked to be skipped (the backend needs Ray)."""
    skip = "" if run else "  # doctest: +SKIP"

    def decorate(cls: C) -> C:
        text = template.format(pl=pl, skip=skip)
        cls.__doc__ = (cls.__doc__ or "").rstrip() + "\n" + text
        return cls

    return decorate
