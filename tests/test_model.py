"""Model-based property test: random mixed pipelines against `pl.sync` as the reference.

Hypothesis draws pipelines of 1-5 stages, each a random backend and operator, with
random `workers` and `maxsize` (1 included), over random inputs (empty included). The
operators: map, filter, flat_map, each, concat, `ordered` (sometimes with a small
`window`), `batch(k)` and `unbatch`, a map with a timeout it never overruns, and a map
that overruns its timeout on one chosen value (that item is dropped).

Between `batch` and `unbatch` items are lists, and the functions act on each value of a
list, so the values that come out do not depend on how the items were grouped. The
outputs must be the values `pl.sync` gives, as a multiset (lists flattened); in index
order after a final `ordered`; and, when every batch was formed from a stream in source
order, with exactly the reference's indices (and values too, when no `concat` made two
items share an index). A second property injects a failure at a random item of a random
stage: the consumer gets exactly that exception, once, and every worker is gone afterwards.
A third draws chains of map/filter/flat_map stages whose functions fail on random values,
under ``on_error="skip"`` or a handler and random `retries`, on each backend and mixed:
the outputs are Python's own under the same rules, and each stage's statistics add up.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import Counter
from typing import Any, FrozenSet, List, NamedTuple, Optional, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pypeln as pl
from tests.conftest import BACKEND_NAMES as ALL_BACKENDS
from tests.conftest import Leftovers, within

pytestmark = pytest.mark.timeout(600)

#: The `timeout` of the timed maps; their function never gets near it, but for one value.
#: The backends random pipelines are drawn from: `pl.ray` runs the contract tests, but not
#: these hundreds of random pipelines (each of its stages starts actors, a second or more).
MODEL_BACKENDS = [name for name in ALL_BACKENDS if name != "ray"]
TIMEOUT = 0.5
#: How long the overrunning function would take if it were not stopped.
SLOW_SECONDS = 5.0
#: The most one pipeline may take; a hang fails the example at once.
PIPELINE_SECONDS = 60


class Boom(Exception):
    """The injected failure."""


# Module-level functions (with functools.partial) so process workers can unpickle them
# with plain pickle too. Each takes an int, or a list of ints (between batch and unbatch)
# and then acts on each of them.
def check(x: int, fail_at: Optional[int]) -> None:
    if x == fail_at:
        raise Boom("boom", x)


def add(k: int, x: Any, fail_at: Optional[int] = None) -> Any:
    if isinstance(x, list):
        return [add(k, v, fail_at) for v in x]
    check(x, fail_at)
    return x + k


def is_even(x: Any, fail_at: Optional[int] = None) -> bool:
    if isinstance(x, list):  # keep the batches that still hold something
        for v in x:
            check(v, fail_at)
        return len(x) > 0
    check(x, fail_at)
    return x % 2 == 0


def spread(x: Any, fail_at: Optional[int] = None) -> List[Any]:
    if isinstance(x, list):  # one batch: spread over each value (it may end up empty)
        return [[y for v in x for y in spread(v, fail_at)]]
    check(x, fail_at)
    return [x, x * 10 + 1][: x % 3]


def ignore(x: Any, fail_at: Optional[int] = None) -> None:
    for v in x if isinstance(x, list) else [x]:
        check(v, fail_at)


def differs(slow: int, x: int) -> bool:
    return x != slow


def _overrun() -> None:
    # short sleeps: a thread can only be stopped between them
    for _ in range(int(SLOW_SECONDS / 0.05)):
        time.sleep(0.05)


def slow_add(k: int, x: int, slow: Optional[int] = None, fail_at: Optional[int] = None) -> int:
    check(x, fail_at)
    if x == slow:
        _overrun()
    return x + k


async def slow_add_async(
    k: int, x: int, slow: Optional[int] = None, fail_at: Optional[int] = None
) -> int:
    check(x, fail_at)
    if x == slow:
        await asyncio.sleep(SLOW_SECONDS)
    return x + k


# -- pipelines -----------------------------------------------------------------------------


class StageSpec(NamedTuple):
    backend: str
    op: str
    workers: int
    maxsize: int
    #: `ordered`: its window (None: the default); `batch`: its size
    arg: Optional[int] = None


#: what may follow a stream of ints, and a stream of lists (after `batch`)
OPS_ON_VALUES = ["map", "filter", "flat_map", "each", "ordered", "concat", "timed", "batch", "slow"]
OPS_ON_LISTS = ["map", "filter", "flat_map", "each", "ordered", "concat", "timed", "unbatch"]
WINDOWS = [None, 1, 2, 7]


@st.composite
def stages(draw: Any, op: str) -> StageSpec:
    """One stage of operator `op`, on a random backend."""
    arg = None
    if op == "ordered":
        arg = draw(st.sampled_from(WINDOWS))
    elif op == "batch":
        arg = draw(st.integers(1, 4))
    backend = draw(st.sampled_from(MODEL_BACKENDS))
    workers = draw(st.integers(1, 4))
    maxsize = draw(st.sampled_from([0, 0, 1, 2, 7]))
    return StageSpec(backend, op, workers, maxsize, arg)


@st.composite
def pipelines(draw: Any, max_stages: int = 5, slow: bool = True) -> List[StageSpec]:
    """1..max_stages stages, `unbatch` only after `batch`, at most one overrunning map.

    Half of the `batch`es come right after an `ordered`, and half of the pipelines end
    with one, so that exact comparisons are frequent.
    """
    spec: List[StageSpec] = []
    batched, slow_left = False, slow
    for _ in range(draw(st.integers(1, max_stages))):
        ops = OPS_ON_LISTS if batched else OPS_ON_VALUES
        op = draw(st.sampled_from([o for o in ops if slow_left or o != "slow"]))
        if op == "batch" and draw(st.booleans()):
            spec.append(draw(stages("ordered")))
        spec.append(draw(stages(op)))
        batched = (batched or op == "batch") and op != "unbatch"
        slow_left = slow_left and op != "slow"
    if spec[-1].op != "ordered" and draw(st.booleans()):
        spec.append(draw(stages("ordered")))
    return spec


def build(
    spec: List[StageSpec],
    source: List[int],
    backend_of: Any,
    fail: Optional[Tuple[int, int]] = None,
    slow: Optional[int] = None,
    reference: bool = False,
) -> Any:
    """The pipeline `spec` over `source`; `backend_of(name)` picks each stage's module.

    `fail = (stage position, value)` makes that stage's function raise `Boom` at that value.
    The "slow" stage's function overruns its timeout at the value `slow`; in the
    `reference`, that stage is a filter dropping `slow` followed by a plain map instead.
    """
    stage: Any = source
    for pos, (name, op, workers, maxsize, arg) in enumerate(spec):
        mod = backend_of(name)
        fail_at = fail[1] if fail is not None and fail[0] == pos else None
        kw = dict(workers=workers, maxsize=maxsize)
        if op == "map":
            stage = mod.map(functools.partial(add, pos + 1, fail_at=fail_at), stage, **kw)
        elif op == "timed":
            f = functools.partial(add, pos + 1, fail_at=fail_at)
            stage = mod.map(f, stage, timeout=TIMEOUT, **kw)
        elif op == "slow" and reference:
            stage = mod.filter(functools.partial(differs, slow), stage, **kw)
            stage = mod.map(functools.partial(add, pos + 1, fail_at=fail_at), stage, **kw)
        elif op == "slow":
            fn = slow_add_async if name == "task" else slow_add
            f = functools.partial(fn, pos + 1, slow=slow, fail_at=fail_at)
            stage = mod.map(f, stage, timeout=TIMEOUT, **kw)
        elif op == "filter":
            stage = mod.filter(functools.partial(is_even, fail_at=fail_at), stage, **kw)
        elif op == "flat_map":
            stage = mod.flat_map(functools.partial(spread, fail_at=fail_at), stage, **kw)
        elif op == "each":
            stage = mod.each(functools.partial(ignore, fail_at=fail_at), stage, **kw)
        elif op == "ordered":
            window = {} if arg is None else dict(window=arg)
            stage = mod.ordered(stage, maxsize=maxsize, **window)
        elif op == "batch":
            stage = mod.batch(arg, stage, maxsize=maxsize)
        elif op == "unbatch":
            stage = mod.unbatch(stage, maxsize=maxsize)
        else:  # concat of two branches: the stage so far, and that stage mapped
            branch = mod.map(functools.partial(add, 1000, fail_at=fail_at), stage, **kw)
            stage = mod.concat([stage, branch], maxsize=maxsize)
    return stage


def elements(stage: Any, consumer: Any) -> List[pl.Element]:
    """The run's `Element`s, read through `consumer.to_iterable`, within PIPELINE_SECONDS."""
    return within(PIPELINE_SECONDS, list, consumer.to_iterable(stage, return_index=True))


def reference(spec: List[StageSpec], source: List[int], slow: Optional[int] = None) -> Any:
    return elements(build(spec, source, lambda _: pl.sync, slow=slow, reference=True), pl.sync)


def flat(values: List[Any]) -> List[int]:
    """The ints of `values`, lists (batches) opened."""
    out: List[int] = []
    for v in values:
        out.extend(v if isinstance(v, list) else [v])
    return out


def frozen(e: pl.Element) -> Tuple[Any, Any]:
    return e.index, tuple(e.value) if isinstance(e.value, list) else e.value


def order_facts(spec: List[StageSpec]) -> Tuple[bool, bool, bool]:
    """(every batch was formed from a stream in index order, any batch, any concat).

    A stream is in index order after `ordered`, and `pl.sync` stages keep it so; they also
    keep the order of the source itself. Any other stage, and `concat`, may not.
    """
    state = "source"  # or "ordered", or "mixed"
    batches_in_order, any_batch, any_concat = True, False, False
    largest_batch = 0
    for s in spec:
        if s.op == "batch":
            any_batch = True
            largest_batch = max(largest_batch, s.arg)
            sync_from_source = state == "source" and s.backend == "sync"
            batches_in_order &= state == "ordered" or sync_from_source
        if s.op == "ordered":
            # A window that fills up makes the batches upstream go out short (rather than
            # wait for items the window holds back): only the default one never fills here.
            if s.arg and largest_batch:
                batches_in_order = False
            state = "ordered"
        elif s.op == "concat":
            any_concat = True
            state = "mixed"
        elif s.backend != "sync":
            state = "mixed"
    return batches_in_order, any_batch, any_concat


def slow_value(spec: List[StageSpec], source: List[int], data: st.DataObject) -> Optional[int]:
    """A value that reaches the overrunning stage (rare in its input, to keep runs short)."""
    pos = next((i for i, s in enumerate(spec) if s.op == "slow"), None)
    if pos is None:
        return None
    counts = Counter(e.value for e in reference(spec[:pos], source))
    candidates = sorted(v for v, n in counts.items() if n <= 2)
    if not candidates:
        return None
    return data.draw(st.sampled_from(candidates), label="overrunning value")


@given(spec=pipelines(), source=st.lists(st.integers(0, 50), max_size=30), data=st.data())
def test_random_pipelines_match_sync(
    spec: List[StageSpec], source: List[int], data: st.DataObject
) -> None:
    slow = slow_value(spec, source, data)
    expected = reference(spec, source, slow)
    stage = build(spec, source, lambda name: getattr(pl, name), slow=slow)
    got = elements(stage, getattr(pl, spec[-1].backend))
    assert Counter(flat([e.value for e in got])) == Counter(flat([e.value for e in expected]))

    batches_in_order, any_batch, any_concat = order_facts(spec)
    if not any_batch or (batches_in_order and not any_concat):
        assert Counter(map(frozen, got)) == Counter(map(frozen, expected))
    if spec[-1].op == "ordered":
        indices = [e.index for e in got]
        assert indices == sorted(indices), "ordered must yield in index order"
        if batches_in_order:
            assert indices == [e.index for e in expected]
            if not any_concat:  # no two items share an index: the order is exactly sync's
                assert [e.value for e in got] == [e.value for e in expected]


def drain(stage: Any) -> None:
    for _ in stage:
        pass


@given(
    spec=pipelines(max_stages=4, slow=False),
    source=st.lists(st.integers(0, 30), min_size=1, max_size=40),
    data=st.data(),
)
def test_random_failures_reach_the_consumer_once(
    spec: List[StageSpec], source: List[int], data: st.DataObject
) -> None:
    # fail in a stage that has a function, at a value that reaches it (per the reference)
    candidates = [i for i, s in enumerate(spec) if s.op not in ("ordered", "batch", "unbatch")]
    if not candidates:
        return
    pos = data.draw(st.sampled_from(candidates), label="failing stage")
    # a concat's branch function sees the same items as the stage's input
    reaching = flat([e.value for e in reference(spec[:pos], source)]) if pos else list(source)
    if not reaching:
        return
    value = data.draw(st.sampled_from(reaching), label="failing value")
    before = Leftovers()
    with pytest.raises(Boom) as info:
        within(PIPELINE_SECONDS, drain, build(spec, source, lambda n: getattr(pl, n), (pos, value)))
    assert info.value.args == ("boom", value)
    assert before.wait_gone(5) == []


# -- error policies ------------------------------------------------------------------------
# Random chains of map, filter and flat_map stages, each with a random set of values its
# function fails on, under ``on_error="skip"`` or a handler, with random `retries`: the
# outputs must be what Python gives with the same rules, and every stage's statistics must
# add up to what it took, emitted, rejected and skipped.

#: what the `map` handler emits for a failing value (plus the value)
MARK = 1000
POLICY_OPS = ["map", "filter", "flat_map"]


class PolicySpec(NamedTuple):
    backend: str
    op: str
    workers: int
    maxsize: int
    #: the values its function raises `Boom` on
    bad: FrozenSet[int]
    #: "skip" or "handler"
    on_error: str
    retries: int


def failing_f(op: str, k: int, bad: FrozenSet[int], x: int) -> Any:
    """Stage `k`'s function for `op`: raises `Boom("boom", x)` for the values in `bad`."""
    if x in bad:
        raise Boom("boom", x)
    if op == "map":
        return x + k
    if op == "filter":
        return x % 2 == 0
    return [x, x * 10 + 1][: x % 3]


def fallback(op: str, e: BaseException, x: int) -> Any:
    """The `on_error` handler: what stands for `f`'s result on a failing value."""
    if type(e) is not Boom or e.args != ("boom", x):
        raise AssertionError(f"the handler got {e!r} for {x!r}")
    if op == "map":
        return MARK + x
    if op == "filter":
        return x % 3 == 0
    return [MARK + x] if x % 2 == 0 else None


class Expected(NamedTuple):
    outputs: List[Any]
    items_in: int
    items_out: int
    failed: int
    skipped: int
    retried: int
    #: items its function (or handler) judged false: filter only
    rejected: int


def python_stage(k: int, s: PolicySpec, inputs: List[int]) -> Expected:
    """What stage `k` emits and counts, by Python's own map and filter, with the same rules."""
    out: List[Any] = []
    failed = skipped = rejected = 0
    for x in inputs:
        if x in s.bad:
            failed += 1
            if s.on_error == "skip":
                skipped += 1
                continue
            result = fallback(s.op, Boom("boom", x), x)
        else:
            result = failing_f(s.op, k, s.bad, x)
        if s.op == "map":
            out.append(result)
        elif s.op == "filter":
            if result:
                out.append(x)
            else:
                rejected += 1
        else:
            out.extend(result if result is not None else [])
    return Expected(out, len(inputs), len(out), failed, skipped, failed * s.retries, rejected)


def policy_stage(k: int, s: PolicySpec, source: Any) -> Any:
    mod = getattr(pl, s.backend)
    on_error: Any = "skip" if s.on_error == "skip" else functools.partial(fallback, s.op)
    f = functools.partial(failing_f, s.op, k, s.bad)
    return getattr(mod, s.op)(
        f,
        source,
        workers=s.workers,
        maxsize=s.maxsize,
        on_error=on_error,
        retries=s.retries,
        backoff=0,
    )


@pytest.mark.parametrize(
    "pool",
    [[name] for name in MODEL_BACKENDS] + [MODEL_BACKENDS],
    ids=MODEL_BACKENDS + ["mixed"],
)
@given(source=st.lists(st.integers(0, 30), max_size=30), data=st.data())
def test_policies_match_python(pool: List[str], source: List[int], data: st.DataObject) -> None:
    spec: List[PolicySpec] = []
    expected: List[Expected] = []
    values = list(source)
    for k in range(data.draw(st.integers(1, 4), label="stages")):
        reaching = sorted(set(values)) or [0]
        bad = data.draw(
            st.frozensets(st.sampled_from(reaching) | st.integers(0, 40), max_size=6),
            label=f"failing values of stage {k}",
        )
        s = PolicySpec(
            backend=data.draw(st.sampled_from(pool)),
            op=data.draw(st.sampled_from(POLICY_OPS)),
            workers=data.draw(st.integers(1, 3)),
            maxsize=data.draw(st.sampled_from([0, 1, 4])),
            bad=bad,
            on_error=data.draw(st.sampled_from(["skip", "handler"])),
            retries=data.draw(st.integers(0, 2)),
        )
        spec.append(s)
        expected.append(python_stage(k, s, values))
        values = expected[-1].outputs

    stage: Any = source
    for k, s in enumerate(spec):
        stage = policy_stage(k, s, stage)
    it = getattr(pl, spec[-1].backend).to_iterable(stage)
    got = within(PIPELINE_SECONDS, list, it)
    assert Counter(got) == Counter(values)

    rows = list(it.stats)
    assert [row.op for row in rows] == [s.op for s in spec]
    for k, (s, row, e) in enumerate(zip(spec, rows, expected)):
        counts = (row.items_in, row.items_out, row.failed, row.skipped, row.retried)
        assert counts == (e.items_in, e.items_out, e.failed, e.skipped, e.retried), (k, s)
        # what a stage takes is what the one before it emitted (the source for the first)
        assert row.items_in == (rows[k - 1].items_out if k else len(source)), (k, s)
        if s.op == "map":
            assert row.items_in == row.items_out + row.skipped, (k, s)
        elif s.op == "filter":
            assert row.items_in == row.items_out + e.rejected + row.skipped, (k, s)
        assert row.timed_out == 0
