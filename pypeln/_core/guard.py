"""Guarded calls: `f` under a stage's `Policy` (retries with backoff, rate, `on_error`),
in a thread (`guard`) or on an event loop (`guard_async`); see `pypeln._core.policy`."""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable, Optional, Tuple, Type

from typing_extensions import Protocol

from .policy import (
    SKIPPED,
    ItemTimeoutError,
    Policy,
    fallback,
    retry_timed_out,
    timed_out,
)
from .rate import RateLimiter, Slots
from .stats import Counters


class AttemptWatch(Protocol):
    """Who times a guarded item's attempts (its stage's `timeout`): each attempt gets the
    whole timeout; waiting for a rate slot or a backoff is not part of it."""

    #: the number of the next call's first attempt (> 0: an overrun item tried again)
    first: int

    def begin(self, attempt: int) -> None:
        """Attempt number `attempt` (0 first) starts now."""

    def end(self) -> None:
        """The attempt has ended (returned or raised)."""


def guard(
    f: Callable[..., Any],
    indexed: bool,
    policy: Policy,
    counters: Counters,
    op_name: str,
    limiter: Optional[RateLimiter] = None,
    watch: Optional[AttemptWatch] = None,
    interrupt: Optional[Type[BaseException]] = None,
    timeout: float = 0,
) -> Callable[..., Any]:
    """`f` under `policy`, called as `f` is (``g(x)``, or ``g(x, index)`` when `indexed`).

    `watch` times each attempt. If it interrupts an overrunning attempt by raising
    `interrupt` in it (`sync`), the guard treats that as a timeout: the item is tried
    again or given up (`timed_out`). A watch that abandons the thread instead (`thread`)
    gives the item to a new worker, whose `watch.first` says where the attempts stand.
    """
    on_error = policy.on_error
    sleep = time.sleep
    caught: Tuple[Type[BaseException], ...] = (interrupt,) if interrupt is not None else ()
    take = Slots(limiter).take if limiter is not None else None

    def failed(e: Exception, x: Any) -> Any:
        counters.failed += 1
        if on_error == "raise":
            raise e
        if on_error == "skip":
            counters.skipped += 1
            return SKIPPED
        return fallback(op_name, on_error(e, x))

    def call(x: Any, *index: Any) -> Any:
        attempt = watch.first if watch is not None else 0
        while True:
            if take is not None:
                take()
            try:
                if watch is None:
                    return f(x, *index)
                try:
                    watch.begin(attempt)
                    return f(x, *index)
                finally:
                    watch.end()
            except caught:
                counters.timed_out += 1
                if not retry_timed_out(policy, attempt):
                    return timed_out(policy, counters, op_name, x, timeout)
            except Exception as e:
                if not policy.retryable(e, attempt):
                    return failed(e, x)
            attempt += 1
            counters.retried += 1
            sleep(policy.delay(attempt))

    def retry(e: Exception, x: Any, index: Tuple[Any, ...]) -> Any:
        """After a first attempt failed with `e` (no watch): the retries, or the end."""
        attempt = 0
        while policy.retryable(e, attempt):
            attempt += 1
            counters.retried += 1
            sleep(policy.delay(attempt))
            if take is not None:
                take()
            try:
                return f(x, *index)
            except Exception as again:
                e = again
        return failed(e, x)

    if watch is not None or interrupt is not None:
        if indexed:
            return call

        def watched(x: Any) -> Any:
            return call(x)

        return watched
    # The common case, one frame around `f`: a first attempt that succeeds costs a call.
    if indexed:

        def first_attempt_indexed(x: Any, i: Any) -> Any:
            if take is not None:
                take()
            try:
                return f(x, i)
            except Exception as e:
                return retry(e, x, (i,))

        return first_attempt_indexed

    def first_attempt(x: Any) -> Any:
        if take is not None:
            take()
        try:
            return f(x)
        except Exception as e:
            return retry(e, x, ())

    return first_attempt


async def within_timeout(awaitable: Awaitable[Any], timeout: float) -> Tuple[bool, Any]:
    """Await `awaitable` for at most `timeout` seconds: ``(True, its result)``, or
    ``(False, None)`` if it overran, even if it caught its cancellation and returned. A
    `TimeoutError` it raised itself, in time, is raised like any other error."""
    import asyncio  # here: a worker that never runs coroutines does not pay for it

    started = time.monotonic()
    try:
        result = await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        if time.monotonic() - started < timeout:
            raise  # raised by the awaitable itself: a failure like any other
        return False, None
    if time.monotonic() - started >= timeout:  # it caught its cancellation
        return False, None
    return True, result


def guard_async(
    f: Callable[..., Any],
    indexed: bool,
    policy: Policy,
    counters: Counters,
    op_name: str,
    limiter: Optional[RateLimiter] = None,
    timeout: float = 0,
) -> Callable[..., Any]:
    """`guard` for an event loop: `f` may be sync or async, backoffs and rate waits
    suspend only this item, and each attempt gets its own `timeout` (0: none)."""
    import asyncio  # here: a worker that never runs coroutines does not pay for it

    on_error = policy.on_error
    slots = Slots(limiter) if limiter is not None else None
    clock = time.monotonic

    async def attempt_once(x: Any, index: Tuple[Any, ...]) -> Any:
        result = f(x, *index)
        if asyncio.iscoroutine(result) or hasattr(result, "__await__"):
            result = await result
        return result

    async def call(x: Any, *index: Any) -> Any:
        attempt = 0
        while True:
            if slots is not None:
                if slots.left and clock() < slots.until:
                    slots.left -= 1  # (`Slots.take_async`, without a coroutine per item)
                else:
                    await slots.take_async()
            try:
                if timeout:
                    in_time, result = await within_timeout(attempt_once(x, index), timeout)
                    if not in_time:
                        raise ItemTimeoutError(f"overran {timeout}s")
                    return result
                result = f(x, *index)
                if asyncio.iscoroutine(result) or hasattr(result, "__await__"):
                    result = await result
                return result
            except ItemTimeoutError:
                counters.timed_out += 1
                if not retry_timed_out(policy, attempt):
                    return timed_out(policy, counters, op_name, x, timeout)
            except Exception as e:
                if not policy.retryable(e, attempt):
                    counters.failed += 1
                    if on_error == "raise":
                        raise
                    if on_error == "skip":
                        counters.skipped += 1
                        return SKIPPED
                    return fallback(op_name, on_error(e, x))
            attempt += 1
            counters.retried += 1
            await asyncio.sleep(policy.delay(attempt))

    if indexed:
        return call
    return lambda x: call(x)
