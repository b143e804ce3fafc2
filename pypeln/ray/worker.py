"""`Worker`: one worker of a `pl.ray` stage, a Ray actor, seen from inside the actor.

The actor runs `on_start` (`start`), then the stage's operator over each batch its
supervisor submits (`run`), then `on_done` (`finish`): its resources live where it lives.
It gets the values of a batch only, and answers with its outputs in the compact forms of
`pypeln._core.wire`, the seconds the batch took and what its error policy and timeout
counted. An exception of the stage's functions comes back as a `Failure` (its type, args
and traceback), not as Ray's wrapper.
"""

from __future__ import annotations

import importlib
import time
from typing import Any, List, Optional, Tuple

from .._core.errors import Failure, stage_label
from .._core.examples import WORKER, example
from .._core.inline import InlineWorker
from .._core.rate import RateLimiter
from .._core.stage import Stage
from .._core.stats import Counters
from .._core.wire import REAL, encode_results, local_items, take_counts

#: What a call answers: ``(True, value)``, or ``(False, Failure)``.
Answer = Tuple[bool, Any]


def _cloudpickle_dumps(obj: Any, protocol: Optional[int] = None, **_: Any) -> bytes:
    dumps: Any = importlib.import_module("ray.cloudpickle").dumps
    result: bytes = dumps(obj, protocol=protocol)
    return result


class RayFailure(Failure):
    """A `Failure` checked as Ray sends it (cloudpickle): an exception class defined in the
    driver's script keeps its type."""

    __slots__ = ()
    dumps = staticmethod(_cloudpickle_dumps)


class Remaining:
    """How many of the stage's workers had not finished when `finish` was sent (a
    `pypeln._core.inject.Counter` for ``stage_status``)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def value(self) -> int:
        return self.n


@example(WORKER, "pl.ray", run=False)
class Worker:
    """The actor class of a `pl.ray` stage's workers (made a Ray actor on first use)."""

    def __init__(self, stage: Stage[Any], index: int) -> None:
        #: the stage, without its upstream
        self.stage = stage
        self.index = index
        self.counters = Counters()
        self.inline: Optional[InlineWorker] = None

    def start(self) -> Answer:
        """Run `on_start`: whether `f` takes ``element_index`` (then batches carry
        indices)."""
        try:
            stage = self.stage
            policy = stage.policy
            # The stage's rate is shared out evenly: actors have no lock in common.
            limiter = (
                RateLimiter(policy.rate / stage.workers)
                if policy is not None and policy.rate
                else None
            )
            self.inline = InlineWorker(stage, self.counters, self.index, limiter)
            return True, self.inline.start()
        except BaseException as e:
            return False, RayFailure(e, stage_label(self.stage.where, self.stage.f))

    def run(self, batch: List[Any]) -> Answer:
        """Apply the stage's operator to a batch (values, or items when indexed):
        ``(seconds, result kind, encoded outputs, counts or None)``."""
        inline = self.inline
        assert inline is not None
        try:
            start = time.perf_counter()
            if inline.indexed:
                result: Tuple[int, Any] = (REAL, list(inline.apply(batch)))
            else:
                result = encode_results(list(inline.apply(local_items(batch))), len(batch))
            seconds = time.perf_counter() - start
            return True, (seconds, *result, take_counts(self.counters))
        except BaseException as e:
            return False, RayFailure(e, stage_label(self.stage.where, self.stage.f))

    def finish(self, remaining: int) -> Answer:
        """Run `on_done`; `remaining`: the stage's workers not finished yet."""
        inline = self.inline
        try:
            if inline is not None:
                inline.done(Remaining(remaining))
            return True, None
        except BaseException as e:
            return False, RayFailure(e, stage_label(self.stage.where, self.stage.f))
        finally:
            if inline is not None:
                inline.close()


_actor_class: Any = None


def actor_class(ray: Any) -> Any:
    """`Worker` as a Ray actor class (made once per process)."""
    global _actor_class
    if _actor_class is None:
        _actor_class = ray.remote(Worker)
    return _actor_class
