"""Model-based property test: random mixed pipelines against `pl.sync` as the reference.

Hypothesis draws pipelines of 1-5 stages, each a random backend and operator, with
random `workers` and `maxsize` (1 included), over random inputs (empty included). The
multiset of outputs must equal what `pl.sync` gives, and exactly the source order right
after `ordered`. A second property injects a failure at a random item of a random stage:
the consumer gets exactly that exception, once, and every worker is gone afterwards.
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any, List, Optional, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pypeln as pl
from tests.conftest import BACKEND_NAMES, Leftovers

pytestmark = pytest.mark.timeout(600)


class Boom(Exception):
    """The injected failure."""


# Module-level functions (with functools.partial) so process workers can unpickle them
# with plain pickle too.
def add(k: int, x: int, fail_at: Optional[int] = None) -> int:
    if x == fail_at:
        raise Boom("boom", x)
    return x + k


def is_even(x: int, fail_at: Optional[int] = None) -> bool:
    if x == fail_at:
        raise Boom("boom", x)
    return x % 2 == 0


def spread(x: int, fail_at: Optional[int] = None) -> List[int]:
    if x == fail_at:
        raise Boom("boom", x)
    return [x, x * 10 + 1][: x % 3]


def ignore(x: int, fail_at: Optional[int] = None) -> None:
    if x == fail_at:
        raise Boom("boom", x)


OPS = ["map", "filter", "flat_map", "each", "ordered", "concat"]

StageSpec = Tuple[str, str, int, int]  # backend, operator, workers, maxsize

stage_specs = st.tuples(
    st.sampled_from(BACKEND_NAMES),
    st.sampled_from(OPS),
    st.integers(1, 4),
    st.sampled_from([0, 0, 1, 2, 7]),
)


def build(
    spec: List[StageSpec], source: List[int], backend_of: Any, fail: Optional[Tuple[int, int]]
) -> Any:
    """The pipeline `spec` over `source`; `backend_of(name)` picks each stage's module.

    `fail = (stage position, value)` makes that stage's function raise `Boom` at that value.
    """
    stage: Any = source
    for pos, (name, op, workers, maxsize) in enumerate(spec):
        mod = backend_of(name)
        fail_at = fail[1] if fail is not None and fail[0] == pos else None
        kw = dict(workers=workers, maxsize=maxsize)
        if op == "map":
            stage = mod.map(functools.partial(add, pos + 1, fail_at=fail_at), stage, **kw)
        elif op == "filter":
            stage = mod.filter(functools.partial(is_even, fail_at=fail_at), stage, **kw)
        elif op == "flat_map":
            stage = mod.flat_map(functools.partial(spread, fail_at=fail_at), stage, **kw)
        elif op == "each":
            stage = mod.each(functools.partial(ignore, fail_at=fail_at), stage, **kw)
        elif op == "ordered":
            stage = mod.ordered(stage, maxsize=maxsize)
        else:  # concat of two branches: the stage so far, and that stage mapped
            branch = mod.map(functools.partial(add, 1000, fail_at=fail_at), stage, **kw)
            stage = mod.concat([stage, branch], maxsize=maxsize)
    return stage


def reference(spec: List[StageSpec], source: List[int]) -> List[Any]:
    return list(build(spec, source, lambda _: pl.sync, None))


@given(spec=st.lists(stage_specs, min_size=1, max_size=5), source=st.lists(st.integers(0, 50)))
def test_random_pipelines_match_sync(spec: List[StageSpec], source: List[int]) -> None:
    expected = reference(spec, source)
    got = list(build(spec, source, lambda name: getattr(pl, name), None))
    assert Counter(got) == Counter(expected)
    if spec[-1][1] == "ordered" and not any(op == "concat" for _, op, _, _ in spec):
        assert got == expected


@given(
    spec=st.lists(stage_specs, min_size=1, max_size=4),
    source=st.lists(st.integers(0, 30), min_size=1, max_size=40),
    data=st.data(),
)
def test_random_failures_reach_the_consumer_once(
    spec: List[StageSpec], source: List[int], data: st.DataObject
) -> None:
    # fail in a stage that has a function, at a value that reaches it (per the reference)
    candidates = [i for i, (_, op, _, _) in enumerate(spec) if op not in ("ordered",)]
    if not candidates:
        return
    pos = data.draw(st.sampled_from(candidates), label="failing stage")
    reaching = reference(spec[:pos], source) if pos else list(source)
    if spec[pos][1] == "concat":
        pass  # the branch function sees the same items as the stage input
    if not reaching:
        return
    value = data.draw(st.sampled_from(reaching), label="failing value")
    before = Leftovers()
    with pytest.raises(Boom) as info:
        for _ in build(spec, source, lambda name: getattr(pl, name), (pos, value)):
            pass
    assert info.value.args == ("boom", value)
    assert before.wait_gone(5) == []
