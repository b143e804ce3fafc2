"""What a stage does when `f` fails for one item: retry it, skip it, or hand it to a
callback; and how fast it may start items (`rate`). Written once for every backend.

A stage with a policy calls a *guarded* `f` (`guard`, or `guard_async` in `task`): each
attempt first takes a slot from the stage's `RateLimiter`, then calls `f`; an exception
matching ``retry_on`` is retried up to ``retries`` times after an exponential backoff with
jitter; an item that still fails goes to ``on_error``:

- ``"raise"`` (the default): the exception stops the pipeline, as without a policy;
- ``"skip"``: the item is dropped (and counted);
- a callable ``handler(exception, value)``: its return value stands for what `f` would
  have returned (`map`: the output value; `filter`: keep it if truthy; `flat_map`: an
  iterable of outputs, None for none; `each`: ignored). If it raises, the pipeline stops
  with that exception, as if `f` had raised it.

A stage without a policy calls `f` directly: no cost at all. The guards are in
`pypeln._core.guard`, the rate limiter in `pypeln._core.rate`.
"""

from __future__ import annotations

import math
import random
from typing import Any, Callable, Optional, Tuple, Type, Union

from typing_extensions import Literal

from . import checks
from .errors import PypelnError
from .stats import Counters

#: ``on_error=``: "raise", "skip", or a handler ``(exception, value) -> replacement``
OnError = Union[Literal["raise", "skip"], Callable[[Any, Any], Any]]

#: The longest wait between two attempts, whatever ``backoff`` and the attempt number.
MAX_BACKOFF = 30.0
#: Default base of the backoff, in seconds: attempts wait 0.1, 0.2, 0.4, ... (+ jitter).
DEFAULT_BACKOFF = 0.1
#: Each backoff is lengthened by a random share up to this (jitter spreads retries out).
JITTER = 0.25


class Skipped:
    """What a guarded `f` returns for a skipped item: false and empty, so `filter`,
    `flat_map` and `each` drop it unchanged; `map` drops it explicitly."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def __iter__(self) -> Any:
        return iter(())

    def __repr__(self) -> str:
        return "SKIPPED"


SKIPPED = Skipped()


class Policy:
    """A stage's error policy and rate; immutable, picklable (it travels to processes)."""

    __slots__ = ("on_error", "retries", "backoff", "retry_on", "rate")

    def __init__(
        self,
        on_error: OnError = "raise",
        retries: int = 0,
        backoff: float = DEFAULT_BACKOFF,
        retry_on: Tuple[Type[BaseException], ...] = (Exception,),
        rate: Optional[float] = None,
    ) -> None:
        self.on_error = on_error
        self.retries = retries
        self.backoff = backoff
        self.retry_on = retry_on
        self.rate = rate

    def __getstate__(self) -> Any:
        return (self.on_error, self.retries, self.backoff, self.retry_on, self.rate)

    def __setstate__(self, state: Any) -> None:
        self.on_error, self.retries, self.backoff, self.retry_on, self.rate = state

    @property
    def handles_errors(self) -> bool:
        """Whether a failing item is anything but an error that stops the pipeline."""
        return self.retries > 0 or self.on_error != "raise"

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1, 2, ...): exponential, capped,
        lengthened by up to `JITTER` at random (never shortened)."""
        base: float = min(MAX_BACKOFF, self.backoff * (2.0 ** (attempt - 1)))
        return base * (1 + JITTER * random.random())

    def retryable(self, exc: BaseException, attempt: int) -> bool:
        return attempt < self.retries and isinstance(exc, self.retry_on)

    def __repr__(self) -> str:
        return (
            f"Policy(on_error={self.on_error!r}, retries={self.retries}, "
            f"backoff={self.backoff}, retry_on={self.retry_on}, rate={self.rate})"
        )


def make_policy(
    where: str,
    on_error: Any = "raise",
    retries: Any = 0,
    backoff: Any = DEFAULT_BACKOFF,
    retry_on: Any = (Exception,),
    rate: Any = None,
) -> Optional[Policy]:
    """Check the policy parameters; the stage's `Policy`, or None when they are the defaults."""
    if not (on_error in ("raise", "skip") if isinstance(on_error, str) else callable(on_error)):
        raise (ValueError if isinstance(on_error, str) else TypeError)(
            f"{where}: on_error must be 'raise', 'skip' or a callable (exception, value), "
            f"got {on_error!r}"
        )
    checks.integer(where, "retries", retries, 0)
    checks.number(where, "backoff", backoff, 0)
    if math.isinf(backoff):
        raise ValueError(f"{where}: backoff must be finite, got {backoff!r}")
    if isinstance(retry_on, type):
        retry_on = (retry_on,)
    if not (
        isinstance(retry_on, tuple)
        and all(isinstance(t, type) and issubclass(t, BaseException) for t in retry_on)
    ):
        raise TypeError(
            f"{where}: retry_on must be an exception type or a tuple of them, got {retry_on!r}"
        )
    if rate is not None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)):
            raise TypeError(
                f"{where}: rate must be a number of items per second, got {rate!r} "
                f"({type(rate).__name__})"
            )
        if not (rate > 0 and not math.isinf(rate)):
            raise ValueError(
                f"{where}: rate must be > 0 items per second (and finite), got {rate!r}"
            )
    if on_error == "raise" and not retries and rate is None:
        return None
    return Policy(on_error, retries, backoff, retry_on, None if rate is None else float(rate))


def fallback(op_name: str, value: Any) -> Any:
    """What an `on_error` handler's return value stands for, by operator."""
    if value is None and op_name in ("flat_map", "each"):
        return SKIPPED
    return value


def retry_timed_out(policy: Optional[Policy], attempt: int) -> bool:
    """Whether an item whose attempt number `attempt` (0 first) overran is tried again."""
    return policy is not None and policy.retryable(ItemTimeoutError("timed out"), attempt)


def timed_out(
    policy: Optional[Policy], counters: Counters, op_name: str, value: Any, seconds: float
) -> Any:
    """An item overran its stage's timeout, for good: `SKIPPED` to drop it (0.4.9 did, and
    still does unless ``on_error`` is a callable), or the handler's fallback."""
    if policy is None or not callable(policy.on_error):
        if policy is not None and policy.on_error == "skip":
            counters.failed += 1
            counters.skipped += 1
        return SKIPPED
    counters.failed += 1
    error = ItemTimeoutError(f"the item took longer than the stage's timeout of {seconds}s")
    return fallback(op_name, policy.on_error(error, value))


class ItemTimeoutError(TimeoutError, PypelnError):
    """What `retry_on` and an `on_error` handler see for an item that overran `timeout`.

    >>> import time, pypeln as pl
    >>> def slow(x):
    ...     time.sleep(x)
    ...     return x
    >>> def handler(error, x):
    ...     return type(error).__name__
    >>> sorted(pl.thread.map(slow, [0, 1], timeout=0.2, on_error=handler), key=str)
    [0, 'ItemTimeoutError']
    """
