"""`Worker`: one long-lived task that runs a stage's `f` over the items of its input queue.

A worker takes one item at a time: a ready item costs no suspension, and an `f` that
does not suspend costs no trip through the event loop, so per-item overhead stays at a
few function calls. Slow items spread over the stage's workers since each holds one.

Its `Counters` count items as they are taken and emitted; only a real suspension (an
empty input, a full output) reads the clock, so a busy worker reads none.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from types import CoroutineType as Coroutine
from typing import TYPE_CHECKING, Any, Callable, List, Optional

from .._core.element import Item
from .._core.examples import WORKER, example
from .._core.execution import task_works_for
from .._core.guard import within_timeout
from .._core.ops import MAP, FlatMap
from .._core.policy import SKIPPED
from .._core.stats import Counters

if TYPE_CHECKING:
    from .supervisor import Supervisor


@example(WORKER, "pl.task")
class Worker:
    """One of a stage's worker tasks; the stage may run up to ``workers`` of them."""

    __slots__ = ("supervisor", "index", "counters")

    def __init__(self, supervisor: Supervisor, index: int, counters: Counters) -> None:
        self.supervisor = supervisor
        self.index = index
        self.counters = counters

    async def run(self) -> None:
        """Take items until the input ends, putting each item's outputs downstream."""
        sup = self.supervisor
        queue = sup.input
        items = queue._items
        getters = queue._getters
        output = sup.output
        full, put = output.full, output.put_nowait
        apply = sup.stage.op.apply_async
        f, indexed = sup.f, sup.indexed
        timeout = sup.timeout
        tracked = sup.tracked
        c = self.counters
        clock = time.perf_counter
        take = 0
        out: List[Item] = []
        item: Optional[Item] = None  # the one being worked on
        op = sup.stage.op
        # (under a policy `f` returns its outputs made, as a list: streaming them is free)
        streaming = op.apply_streaming if isinstance(op, FlatMap) and not timeout else None
        plain_map = op is MAP and not timeout and not indexed

        async def put_out(pause: bool = False) -> None:
            """Put `out` downstream, waiting for room; with `pause`, then let the loop run
            the others (outputs handed on midway through an item)."""
            for result in out:
                if full():
                    t = clock()
                    await output.wait_room()
                    c.blocked += clock() - t
                put(result)
                c.items_out += 1
            out.clear()
            if pause:
                await asyncio.sleep(0)

        hand_on = functools.partial(put_out, True)

        task_works_for(sup.inside)
        sup.starting -= 1
        sup.alive += 1
        c.start()
        try:
            while True:
                if items:
                    item = items.popleft()
                    if queue._putters:
                        queue._wake_putters(1)
                    if items and getters and not queue._woken:
                        queue.wake_getter()
                else:  # the input is empty: this waits
                    t = clock()
                    got = await queue.get()
                    c.waiting += clock() - t
                    if got is None:
                        break
                    item = got
                c.items_in += 1
                if tracked:  # items are numbered in the order they are taken
                    take = queue.popped
                    queue.popped = take + 1
                if items and not getters and not sup.starting and sup.size < sup.cap:
                    sup.grow()
                if plain_map:  # `Map.apply_async` and `put_out` inlined: the common case
                    result = f(item[1])
                    if type(result) is Coroutine or inspect.isawaitable(result):
                        result = await result
                    if result is not SKIPPED:
                        if full():
                            t = clock()
                            await output.wait_room()
                            c.blocked += clock() - t
                        put((item[0], result))
                        c.items_out += 1
                elif timeout:
                    if not await self._run_timed(apply, f, item, indexed, out, timeout):
                        c.timed_out += 1
                elif streaming is not None:
                    await streaming(f, item, indexed, out, hand_on)
                else:
                    await apply(f, item, indexed, out)
                if out:
                    await put_out()
                if tracked:
                    output.finished(take)  # type: ignore[attr-defined]
                item = None
        except asyncio.CancelledError as e:
            if sup.run.cancelled:  # the run's own cancellation: nothing to report
                raise
            sup.run.fail(cancelled_from_inside(sup.stage.where, item, e))
            return
        except BaseException as e:
            # Fail the run before this task ends, so that nothing downstream sees an end.
            sup.run.fail(e)
            return
        finally:
            sup.alive -= 1
            c.end()
        sup.worker_finished()

    @staticmethod
    async def _run_timed(
        apply: Callable[..., Any],
        f: Any,
        item: Item,
        indexed: bool,
        out: List[Item],
        timeout: float,
    ) -> bool:
        """Apply `f` to `item` within `timeout` seconds; an overrunning item is dropped
        (False), even if `f` caught its cancellation and returned."""
        in_time, _ = await within_timeout(apply(f, item, indexed, out), timeout)
        if not in_time:
            out.clear()
        return in_time


def cancelled_from_inside(
    where: str, item: Optional[Item], cancelled: Optional[BaseException] = None
) -> RuntimeError:
    """The error for a cancellation the run did not ask for: ``f`` raised
    `asyncio.CancelledError` (or awaited something cancelled), or other code cancelled a
    task of the pipeline. It ends the run as an ordinary exception, not as a
    `CancelledError`, which a consumer would take for a cancellation of its own."""
    what = "a task of the pipeline" if item is None else f"the item {item[1]!r}"
    error = RuntimeError(
        f"{where}: {what} was cancelled from inside the pipeline (f raised "
        "asyncio.CancelledError, or awaited something cancelled, or other code cancelled "
        "its task), not by the pipeline; the run ends with this error"
    )
    error.__cause__ = cancelled
    return error
