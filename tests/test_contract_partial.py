"""`Partial` and ``|``, and stages as lazy, re-runnable descriptions of work."""

from __future__ import annotations

from collections import Counter

import pytest

import pypeln as pl

pytestmark = pytest.mark.timeout(30)


# -- Partial and | -----------------------------------------------------------------------


def test_functions_without_a_stage_return_a_partial(backend):
    f = lambda x: x  # noqa: E731
    partials = [
        backend.map(f),
        backend.filter(f),
        backend.flat_map(f),
        backend.each(f),
        backend.each(f, run=True),
        backend.ordered(),
        backend.from_iterable(),
        backend.to_iterable(),
        backend.map(f, workers=2, maxsize=3),
    ]
    for partial in partials:
        assert isinstance(partial, pl.Partial), partial


def test_iterable_pipe_partial_is_partial_of_iterable(backend):
    piped = range(10) | backend.map(lambda x: x * 2, workers=2)
    called = backend.map(lambda x: x * 2, workers=2)(range(10))
    assert isinstance(piped, pl.Stage) and isinstance(called, pl.Stage)
    assert sorted(piped) == sorted(called) == [x * 2 for x in range(10)]


def test_pipe_chain_into_list(backend):
    out = (
        range(10) | backend.map(lambda x: x + 1, workers=2) | backend.filter(lambda x: x % 2) | list
    )
    assert sorted(out) == [1, 3, 5, 7, 9]


def test_stage_pipe_function_is_function_of_stage(backend):
    stage = backend.map(lambda x: x * 3, range(4))
    assert sorted(stage | list) == [0, 3, 6, 9]
    assert (stage | sorted) == [0, 3, 6, 9]
    assert (stage | sum) == 18
    assert (stage | (lambda s: "called with a stage" if s is stage else "other")) == (
        "called with a stage"
    )


def test_stage_pipe_module_functions(backend):
    stage = backend.map(lambda x: x, range(5), workers=2)
    assert list(stage | backend.ordered) == [0, 1, 2, 3, 4]
    assert sorted(stage | backend.to_iterable) == [0, 1, 2, 3, 4]


def test_pipe_every_partial(backend):
    ns = backend.Namespace(calls=0)

    def count(x):
        with ns:
            ns.calls += 1

    assert sorted(range(4) | backend.flat_map(lambda x: [x] * x)) == [1, 2, 2, 3, 3, 3]
    assert list(range(4) | backend.each(count)) == []
    assert ns.calls == 4
    assert (range(4) | backend.each(count, run=True)) is None
    assert ns.calls == 8
    assert list(range(4) | backend.from_iterable(maxsize=1) | backend.ordered()) == [0, 1, 2, 3]
    assert sorted(range(3) | backend.to_iterable(return_index=True)) == [
        pl.Element((i,), i) for i in range(3)
    ]
    assert sorted(range(3) | backend.to_iterable(maxsize=1)) == [0, 1, 2]


def test_a_partial_is_reusable(backend):
    double = backend.map(lambda x: x * 2)
    assert sorted(range(3) | double) == [0, 2, 4]
    assert sorted([10] | double) == [20]


# -- laziness and re-running -------------------------------------------------------------


def test_nothing_runs_before_iteration(backend):
    ns = backend.Namespace(calls=0)
    pulled = []

    def source():
        pulled.append(True)
        yield from range(5)

    def count(x):
        with ns:
            ns.calls += 1
        return x

    stage = source() | backend.map(count, workers=2) | backend.filter(lambda x: True)
    stage = backend.each(count, stage)
    import time

    time.sleep(0.05)
    assert pulled == [] and ns.calls == 0
    assert list(stage) == []
    assert pulled == [True] and ns.calls == 10


def test_iterating_twice_runs_twice(backend):
    ns = backend.Namespace(calls=0)

    def count(x):
        with ns:
            ns.calls += 1
        return x * 2

    stage = backend.map(count, range(6), workers=2)
    first, second = list(stage), list(stage)
    assert Counter(first) == Counter(second) == Counter(x * 2 for x in range(6))
    assert ns.calls == 12


def test_iterating_twice_reruns_every_upstream_stage(backend):
    stage = (
        range(8)
        | backend.map(lambda x: x + 1, workers=2)
        | backend.flat_map(lambda x: [x, x])
        | backend.ordered
    )
    expected = [y for x in range(1, 9) for y in (x, x)]
    assert list(stage) == expected
    assert list(stage) == expected
    assert list(backend.to_iterable(stage)) == expected


def test_two_iterations_of_one_stage_at_once(backend):
    stage = backend.map(lambda x: x * 2, range(10), workers=2)
    a, b = iter(stage), iter(stage)
    out_a = [next(a)]
    out_b = list(b)
    out_a += list(a)
    assert sorted(out_a) == sorted(out_b) == [x * 2 for x in range(10)]


def test_a_stage_built_on_a_stage_leaves_it_usable(backend):
    base = backend.map(lambda x: x + 1, range(5))
    derived = backend.map(lambda x: x * 10, base)
    assert sorted(derived) == [10, 20, 30, 40, 50]
    assert sorted(base) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("name", ["thread", "process", "task"])
def test_from_iterable_keeps_its_maxsize_in_both_forms(name):
    """A `from_iterable` with a `maxsize` is a stage of its own, whose queue holds no more
    than that; without one it only names the source of the next stage."""
    backend = getattr(pl, name)
    label = f"pl.{name}.from_iterable"
    for stage in (
        backend.from_iterable(range(300), maxsize=2),
        range(300) | backend.from_iterable(maxsize=2),
    ):
        stats = backend.run(backend.map(abs, stage), stats=True)
        rows = [row.as_dict() for row in stats if row.name == label]
        assert len(rows) == 1, [row.name for row in stats]
        assert rows[0]["items_out"] == 300
        assert rows[0]["queue_peak"] <= 2
    for stage in (backend.from_iterable(range(300)), range(300) | backend.from_iterable()):
        stats = backend.run(backend.map(abs, stage), stats=True)
        assert [row.name for row in stats] == [f"pl.{name}.map(abs)"]
