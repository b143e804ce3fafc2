"""The stage functions of the contract, one by one, on every backend."""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import STAGE_FUNCTIONS

import pypeln as pl

pytestmark = pytest.mark.timeout(30)

N = 20


def bag(items):
    return Counter(items)


# -- map ---------------------------------------------------------------------------------


def test_map(backend):
    assert bag(backend.map(lambda x: x * 2, range(N))) == bag(x * 2 for x in range(N))


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_map_workers(backend, workers):
    out = list(backend.map(lambda x: x + 1, range(N), workers=workers))
    assert bag(out) == bag(range(1, N + 1))


@pytest.mark.parametrize("maxsize", [0, 1, 3])
def test_map_maxsize(backend, maxsize):
    out = list(backend.map(lambda x: -x, range(N), workers=2, maxsize=maxsize))
    assert bag(out) == bag(-x for x in range(N))


def test_map_keeps_none_and_falsy_values(backend):
    out = list(backend.map(lambda x: None if x % 2 else 0, range(6), workers=2))
    assert bag(out) == bag([0, None, 0, None, 0, None])


def test_map_of_arbitrary_objects(backend):
    items = ["a", (1, 2), {"k": 1}, 3.5, None, b"x"]
    out = list(backend.map(lambda x: [x], items))
    assert sorted(map(repr, out)) == sorted(repr([x]) for x in items)


def test_map_empty(backend):
    assert list(backend.map(lambda x: x, [])) == []


def test_map_in_sync_keeps_source_order():
    assert list(pl.sync.map(lambda x: x * 3, range(N), workers=4)) == [x * 3 for x in range(N)]


# -- filter ------------------------------------------------------------------------------


def test_filter(backend):
    out = list(backend.filter(lambda x: x % 3 == 0, range(N), workers=2))
    assert bag(out) == bag(x for x in range(N) if x % 3 == 0)


def test_filter_uses_truthiness(backend):
    items = [0, 1, "", "a", [], [0], None, 2]
    out = list(backend.filter(lambda x: x, items))
    assert sorted(map(repr, out)) == sorted(repr(x) for x in items if x)


def test_filter_drops_everything(backend):
    assert list(backend.filter(lambda x: False, range(N), workers=3)) == []


def test_filter_empty(backend):
    assert list(backend.filter(lambda x: True, [])) == []


# -- flat_map ----------------------------------------------------------------------------


def test_flat_map(backend):
    out = list(backend.flat_map(lambda x: [x] * x, range(6), workers=2))
    assert bag(out) == bag([1, 2, 2, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 5])


def test_flat_map_with_a_generator(backend):
    def expand(x):
        for i in range(x % 3):
            yield (x, i)

    out = list(backend.flat_map(expand, range(9), workers=3))
    assert bag(out) == bag((x, i) for x in range(9) for i in range(x % 3))


def test_flat_map_to_nothing(backend):
    assert list(backend.flat_map(lambda x: [], range(N), workers=2)) == []


def test_flat_map_empty(backend):
    assert list(backend.flat_map(lambda x: [x, x], [])) == []


# -- each --------------------------------------------------------------------------------


def test_each_emits_nothing_and_runs_f_on_every_item(backend):
    ns = backend.Namespace(total=0, calls=0)

    def add(x):
        with ns:
            ns.total += x
            ns.calls += 1

    assert list(backend.each(add, range(N), workers=3)) == []
    assert (ns.calls, ns.total) == (N, sum(range(N)))


def test_each_run_true_runs_at_once_and_returns_none(backend):
    ns = backend.Namespace(calls=0)

    def count(x):
        with ns:
            ns.calls += 1

    assert backend.each(count, range(N), workers=2, run=True) is None
    assert ns.calls == N


def test_each_ignores_what_f_returns(backend):
    assert list(backend.each(lambda x: x * 100, range(5))) == []


def test_each_empty(backend):
    assert list(backend.each(lambda x: x, [])) == []
    assert backend.each(lambda x: x, [], run=True) is None


# -- ordered -----------------------------------------------------------------------------


def test_ordered(backend):
    def slow_first(x):
        import time

        time.sleep(0.002 * (6 - x % 6))
        return x

    stage = backend.map(slow_first, range(N), workers=3)
    assert list(backend.ordered(stage)) == list(range(N))


def test_ordered_with_maxsize(backend):
    stage = backend.map(lambda x: x, range(N), workers=2)
    assert list(backend.ordered(stage, maxsize=1)) == list(range(N))


def test_ordered_of_a_plain_iterable(backend):
    assert list(backend.ordered([5, 3, 1])) == [5, 3, 1]


def test_ordered_empty(backend):
    assert list(backend.ordered([])) == []


# -- concat ------------------------------------------------------------------------------


def test_concat_stages_and_iterables(backend):
    stages = [backend.map(lambda x: x * 10, range(1, 4), workers=2), range(3), [100]]
    assert bag(backend.concat(stages)) == bag([10, 20, 30, 0, 1, 2, 100])


def test_concat_maxsize(backend):
    stages = [backend.map(lambda x: -x, range(N)), range(N)]
    assert bag(backend.concat(stages, maxsize=1)) == bag(list(range(N)) + [-x for x in range(N)])


def test_concat_of_empty_sources(backend):
    assert list(backend.concat([[], backend.map(lambda x: x, [])])) == []


def test_concat_of_no_stages(backend):
    assert list(backend.concat([])) == []


def test_concat_of_one_stage(backend):
    assert sorted(backend.concat([backend.filter(lambda x: x % 2, range(7))])) == [1, 3, 5]


# -- from_iterable -----------------------------------------------------------------------


def test_from_iterable(backend):
    assert list(backend.from_iterable(range(N)) | backend.ordered) == list(range(N))
    assert bag(backend.from_iterable(range(N))) == bag(range(N))


@pytest.mark.parametrize("use_thread", [True, False])
def test_from_iterable_use_thread(backend, use_thread):
    stage = backend.from_iterable(range(N), use_thread=use_thread)
    assert bag(backend.map(lambda x: x + 1, stage, workers=2)) == bag(range(1, N + 1))


def test_from_iterable_of_a_generator(backend):
    def gen():
        yield from "abc"

    assert sorted(backend.from_iterable(gen())) == ["a", "b", "c"]


def test_from_iterable_maxsize(backend):
    assert bag(backend.from_iterable(range(N), maxsize=1)) == bag(range(N))


def test_from_iterable_empty(backend):
    assert list(backend.from_iterable([])) == []


# -- to_iterable -------------------------------------------------------------------------


def test_to_iterable(backend):
    stage = backend.map(lambda x: x * 2, range(N), workers=2)
    assert bag(backend.to_iterable(stage)) == bag(x * 2 for x in range(N))


def test_to_iterable_of_a_plain_iterable(backend):
    assert bag(backend.to_iterable(range(N))) == bag(range(N))


def test_to_iterable_maxsize(backend):
    stage = backend.map(lambda x: x, range(N), workers=2)
    assert bag(backend.to_iterable(stage, maxsize=1)) == bag(range(N))


def test_to_iterable_return_index(backend):
    stage = backend.map(lambda x: x * 10, range(5), workers=2)
    elements = list(backend.to_iterable(stage, return_index=True))
    assert all(isinstance(e, pl.Element) for e in elements)
    assert sorted(elements) == [pl.Element((i,), i * 10) for i in range(5)]
    assert sorted((e.index, e.value) for e in elements) == [((i,), i * 10) for i in range(5)]


def test_to_iterable_return_index_of_a_plain_iterable(backend):
    elements = list(backend.to_iterable(["a", "b"], return_index=True))
    assert sorted(elements) == [pl.Element((0,), "a"), pl.Element((1,), "b")]


def test_to_iterable_empty(backend):
    assert list(backend.to_iterable([])) == []
    assert list(backend.to_iterable(backend.map(lambda x: x, []), return_index=True)) == []


def test_stage_to_iterable_method(backend):
    stage = backend.map(lambda x: x + 1, range(3))
    assert sorted(stage.to_iterable()) == [1, 2, 3]
    assert sorted(stage.to_iterable(return_index=True)) == [
        pl.Element((i,), i + 1) for i in range(3)
    ]


# -- run ---------------------------------------------------------------------------------


def _counting_stages(backend, ns):
    def count_a(x):
        with ns:
            ns.a += x

    def count_b(x):
        with ns:
            ns.b += x

    return (
        backend.each(count_a, range(5), workers=2),
        backend.each(count_b, range(10, 13)),
    )


def test_run_several_stages(backend):
    ns = backend.Namespace(a=0, b=0)
    assert backend.run(*_counting_stages(backend, ns)) is None
    assert (ns.a, ns.b) == (10, 33)


def test_run_a_list_of_stages(backend):
    ns = backend.Namespace(a=0, b=0)
    assert backend.run(list(_counting_stages(backend, ns))) is None
    assert (ns.a, ns.b) == (10, 33)


def test_run_one_stage_with_output(backend):
    ns = backend.Namespace(calls=0)

    def count(x):
        with ns:
            ns.calls += 1
        return x

    assert backend.run(backend.map(count, range(N), workers=2), maxsize=1) is None
    assert ns.calls == N


# -- a longer pipeline -------------------------------------------------------------------


def test_pipeline_of_every_per_item_operator(backend):
    ns = backend.Namespace(seen=0)

    def see(x):
        with ns:
            ns.seen += 1

    stage = (
        range(N)
        | backend.map(lambda x: x * 2, workers=2, maxsize=2)
        | backend.filter(lambda x: x % 3 != 0, workers=2)
        | backend.flat_map(lambda x: [x, -x], workers=3, maxsize=1)
        | backend.ordered
    )
    expected = [y for x in range(N) if (x * 2) % 3 != 0 for y in (x * 2, -(x * 2))]
    assert list(stage) == expected
    backend.each(see, stage, run=True)
    assert ns.seen == len(expected)


# -- what every module exposes -----------------------------------------------------------

FUNCTIONS = [*STAGE_FUNCTIONS, "Namespace"]


def test_every_module_exposes_the_contract(backend):
    for name in FUNCTIONS:
        assert callable(getattr(backend, name)), name
    if not backend.__name__.endswith("sync"):
        for name in ("Worker", "Supervisor", "IterableQueue"):
            assert hasattr(backend, name), name
    if backend.__name__.endswith("task"):
        assert callable(backend.to_async_iterable)


def test_stages_are_stages(backend):
    stage = backend.map(lambda x: x, [1])
    assert isinstance(stage, pl.Stage)
    for s in (
        backend.filter(bool, [1]),
        backend.flat_map(lambda x: [x], [1]),
        backend.each(print, [1]),
        backend.ordered(stage),
        backend.concat([stage]),
        backend.from_iterable([1]),
    ):
        assert isinstance(s, pl.Stage), s
