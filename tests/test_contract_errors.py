"""A failure anywhere in a pipeline reaches the consumer once, as raised, with its traceback."""

from __future__ import annotations

import traceback

import pytest
from conftest import within
from hypothesis import given
from hypothesis import strategies as st

import pypeln as pl

pytestmark = pytest.mark.timeout(60)


class CustomError(Exception):
    """An exception with several arguments (defined at module level so it pickles)."""


def formatted(exc: BaseException) -> str:
    """The exception as Python prints it, causes and contexts included."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def stage_for(backend, op, f, source, **kwargs):
    """`op` of `backend` over `source`, with `f` returning what `op` expects."""
    if op == "flat_map":
        return backend.flat_map(lambda x: [f(x)], source, **kwargs)
    if op == "filter":
        return backend.filter(lambda x: f(x) is not None, source, **kwargs)
    return getattr(backend, op)(f, source, **kwargs)


@st.composite
def failures(draw):
    n = draw(st.integers(1, 30))
    return {
        "n": n,
        "position": draw(st.integers(0, n - 1)),
        "workers": draw(st.integers(1, 4)),
        "op": draw(st.sampled_from(["map", "filter", "flat_map", "each"])),
        "maxsize": draw(st.sampled_from([0, 1, 3])),
    }


@given(case=failures())
def test_error_in_f_reaches_the_consumer(backend, case):
    position = case["position"]

    def raise_at_position(x):
        if x == position:
            raise ValueError("x")
        return x

    stage = stage_for(
        backend,
        case["op"],
        raise_at_position,
        range(case["n"]),
        workers=case["workers"],
        maxsize=case["maxsize"],
    )
    with pytest.raises(ValueError) as info:
        within(20, list, stage)
    assert type(info.value) is ValueError
    assert info.value.args == ("x",)
    assert "raise_at_position" in formatted(info.value)


@pytest.mark.parametrize("op", ["map", "filter", "flat_map", "each"])
def test_error_in_each_operator(backend, op):
    def failing_worker_function(x):
        raise ValueError("x")

    with pytest.raises(ValueError) as info:
        list(stage_for(backend, op, failing_worker_function, range(3), workers=2))
    assert info.value.args == ("x",)
    assert "failing_worker_function" in formatted(info.value)


def test_custom_exception_with_several_args(backend):
    def raise_custom(x):
        raise CustomError("a", 2, None)

    with pytest.raises(CustomError) as info:
        list(backend.map(raise_custom, range(3), workers=2))
    assert type(info.value) is CustomError
    assert info.value.args == ("a", 2, None)
    assert "raise_custom" in formatted(info.value)


def test_error_in_on_start(backend):
    def broken_on_start():
        raise ValueError("x")

    with pytest.raises(ValueError) as info:
        list(backend.map(lambda x: x, range(5), workers=2, on_start=broken_on_start))
    assert info.value.args == ("x",)
    assert "broken_on_start" in formatted(info.value)


def test_error_in_on_done(backend):
    def broken_on_done():
        raise ValueError("x")

    with pytest.raises(ValueError) as info:
        list(backend.map(lambda x: x, range(5), workers=2, on_done=broken_on_done))
    assert info.value.args == ("x",)
    assert "broken_on_done" in formatted(info.value)


def test_error_in_the_source_iterable(backend):
    def broken_source():
        yield 1
        yield 2
        raise ValueError("x")

    with pytest.raises(ValueError) as info:
        list(backend.map(lambda x: x, broken_source(), workers=2))
    assert info.value.args == ("x",)
    assert "broken_source" in formatted(info.value)


def test_error_in_the_source_of_from_iterable(backend):
    def broken_source():
        yield 1
        raise CustomError("source", 1)

    with pytest.raises(CustomError) as info:
        list(backend.from_iterable(broken_source()) | backend.map(lambda x: x))
    assert info.value.args == ("source", 1)
    assert "broken_source" in formatted(info.value)


def test_error_in_the_source_of_to_iterable(backend):
    def broken_source():
        raise ValueError("x")
        yield  # pragma: no cover

    with pytest.raises(ValueError) as info:
        list(backend.to_iterable(broken_source()))
    assert info.value.args == ("x",)


def test_error_in_a_middle_stage(backend):
    def broken_middle(x):
        if x == 7:
            raise ValueError("x")
        return x

    stage = (
        range(20)
        | backend.map(lambda x: x, workers=2)
        | backend.map(broken_middle, workers=2, maxsize=1)
        | backend.filter(lambda x: True, workers=2)
        | backend.ordered
    )
    with pytest.raises(ValueError) as info:
        list(stage)
    assert info.value.args == ("x",)
    assert "broken_middle" in formatted(info.value)


def test_error_from_each_with_run_true(backend):
    def broken_each(x):
        raise ValueError("x")

    with pytest.raises(ValueError) as info:
        backend.each(broken_each, range(3), run=True)
    assert info.value.args == ("x",)


def test_error_from_run(backend):
    def broken_each(x):
        raise ValueError("x")

    ok = backend.each(lambda x: None, range(3))
    with pytest.raises(ValueError):
        backend.run(ok, backend.each(broken_each, range(3)))


def test_error_is_raised_once(backend, capfd):
    def always_fails(x):
        raise CustomError("once", x >= 0)

    it = iter(backend.map(always_fails, range(50), workers=4))
    with pytest.raises(CustomError) as info:
        for _ in it:
            pass
    assert info.value.args == ("once", True)
    # the iterator is over: no second error
    assert list(it) == []
    # and no worker printed its own copy of the error
    err = capfd.readouterr().err
    assert "Traceback" not in err, err


def test_items_before_the_error_are_delivered(backend):
    def fails_late(x):
        if x == 5:
            raise ValueError("x")
        return x

    seen = []
    with pytest.raises(ValueError):
        for x in backend.map(fails_late, range(6)) | backend.ordered:
            seen.append(x)
    # `ordered` streams: what arrives before the error is a prefix of the source order
    assert seen == [0, 1, 2, 3, 4][: len(seen)]
    seen = []
    with pytest.raises(ValueError):
        for x in pl.sync.map(fails_late, range(6)):
            seen.append(x)
    assert seen == [0, 1, 2, 3, 4]


def test_a_failed_stage_can_run_again(backend):
    ns = backend.Namespace(fail=True)

    def maybe_fail(x):
        if ns.fail:
            raise ValueError("x")
        return x

    stage = backend.map(maybe_fail, range(4), workers=2)
    with pytest.raises(ValueError):
        list(stage)
    ns.fail = False
    assert sorted(stage) == [0, 1, 2, 3]
