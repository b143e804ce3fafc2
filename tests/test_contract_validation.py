"""Argument checks happen when a stage is built, and the message names the parameter."""

from __future__ import annotations

import re

import pytest
from conftest import min_workers, name_of

pytestmark = pytest.mark.timeout(30)

PER_ITEM = ["map", "filter", "flat_map", "each"]


def identity(x):
    return x


def build(backend, op, *, f=identity, stage=(1, 2), partial=False, **kwargs):
    """Build `op`; with `partial`, without a stage (the checks must not wait for one)."""
    fn = getattr(backend, op)
    if partial:
        return fn(f, **kwargs)
    return fn(f, stage, **kwargs)


def raises_naming(kind, parameter, value=None):
    """pytest.raises(kind) whose message names `parameter` (a whole word) and shows `value`."""
    pattern = rf"(?s)(?=.*\b{re.escape(parameter)}\b)"
    if value is not None:
        pattern += f"(?=.*{re.escape(value)})"
    return pytest.raises(kind, match=pattern)


@pytest.fixture(params=PER_ITEM)
def op(request):
    return request.param


@pytest.fixture(params=[False, True], ids=["stage", "partial"])
def partial(request):
    return request.param


def test_workers_below_the_minimum(backend, op, partial):
    bad = min_workers(backend) - 1
    with raises_naming(ValueError, "workers", str(bad)):
        build(backend, op, workers=bad, partial=partial)
    with raises_naming(ValueError, "workers", "-5"):
        build(backend, op, workers=-5, partial=partial)


def test_zero_workers_is_no_limit_in_task_only(backend):
    if name_of(backend) == "task":
        assert sorted(backend.map(identity, range(5), workers=0)) == [0, 1, 2, 3, 4]
    else:
        with raises_naming(ValueError, "workers", "0"):
            backend.map(identity, range(5), workers=0)


@pytest.mark.parametrize("bad", [2.5, "2", None, 1.0])
def test_workers_not_an_int(backend, op, partial, bad):
    with raises_naming(TypeError, "workers", repr(bad)):
        build(backend, op, workers=bad, partial=partial)


def test_maxsize_negative(backend, op, partial):
    with raises_naming(ValueError, "maxsize", "-1"):
        build(backend, op, maxsize=-1, partial=partial)


@pytest.mark.parametrize("bad", [1.5, "3"])
def test_maxsize_not_an_int(backend, op, bad):
    with raises_naming(TypeError, "maxsize", repr(bad)):
        build(backend, op, maxsize=bad)


def test_maxsize_negative_in_whole_stream_functions(backend):
    with raises_naming(ValueError, "maxsize", "-1"):
        backend.ordered([1], maxsize=-1)
    with raises_naming(ValueError, "maxsize", "-1"):
        backend.ordered(maxsize=-1)
    with raises_naming(ValueError, "maxsize", "-2"):
        backend.concat([[1]], maxsize=-2)
    with raises_naming(ValueError, "maxsize", "-3"):
        backend.from_iterable([1], maxsize=-3)
    with raises_naming(ValueError, "maxsize", "-4"):
        backend.to_iterable([1], maxsize=-4)
    with raises_naming(ValueError, "maxsize", "-5"):
        backend.run(backend.map(identity, [1]), maxsize=-5)


def test_timeout_negative(backend, op, partial):
    with raises_naming(ValueError, "timeout", "-1"):
        build(backend, op, timeout=-1, partial=partial)
    with raises_naming(ValueError, "timeout", "-0.5"):
        build(backend, op, timeout=-0.5, partial=partial)


def test_timeout_not_a_number(backend, op):
    with raises_naming(TypeError, "timeout", "'1'"):
        build(backend, op, timeout="1")


def test_timeout_accepts_ints_and_floats(backend, op):
    build(backend, op, timeout=1)
    build(backend, op, timeout=0.5)
    build(backend, op, timeout=0)


@pytest.mark.parametrize("bad", [5, "f", None])
def test_f_not_callable(backend, op, partial, bad):
    with raises_naming(TypeError, "f", repr(bad)):
        build(backend, op, f=bad, partial=partial)


@pytest.mark.parametrize("callback", ["on_start", "on_done"])
def test_callback_not_callable(backend, op, partial, callback):
    with raises_naming(TypeError, callback, "42"):
        build(backend, op, partial=partial, **{callback: 42})


@pytest.mark.parametrize("bad", [5, 3.5, object()])
def test_stage_not_iterable(backend, op, bad):
    with raises_naming(TypeError, "stage", repr(bad)):
        build(backend, op, stage=bad)


def test_stage_not_iterable_through_a_partial(backend, op):
    partial = build(backend, op, partial=True)
    with raises_naming(TypeError, "stage", "5"):
        partial(5)


def test_stage_not_iterable_in_whole_stream_functions(backend):
    with raises_naming(TypeError, "stage", "5"):
        backend.ordered(5)
    with raises_naming(TypeError, "stage", "5"):
        backend.to_iterable(5)
    with raises_naming(TypeError, "iterable", "5"):
        backend.from_iterable(5)
    with pytest.raises(TypeError, match="stages"):
        backend.concat([[1], 5])
    with pytest.raises(TypeError, match="stages"):
        backend.concat(5)


def test_each_run_not_a_bool(backend):
    with raises_naming(TypeError, "run", "'yes'") as info:
        backend.each(identity, [1], run="yes")
    assert f"pl.{name_of(backend)}.each" in str(info.value), "the error names the call"


def test_checks_do_not_run_anything(backend, op):
    ns = backend.Namespace(calls=0)

    def count(x):
        with ns:
            ns.calls += 1
        return x

    with pytest.raises(ValueError):
        build(backend, op, f=count, workers=1, maxsize=-1)
    assert ns.calls == 0


def test_valid_arguments_are_accepted(backend, op):
    stage = build(backend, op, workers=3, maxsize=1, timeout=2.5, on_start=dict, on_done=print)
    assert stage is not None
