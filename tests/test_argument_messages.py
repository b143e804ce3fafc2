"""Every bad argument of every stage function, on every backend, is reported the same way:
``pl.<backend>.<function>: ...``, naming the parameter and showing the value."""

from __future__ import annotations

import re

import pytest
from conftest import name_of

pytestmark = pytest.mark.timeout(30)


def one(x):
    return [x]


#: each stage function, called with good arguments plus `kwargs`
CALLS = {
    "map": lambda m, **kw: m.map(abs, [1], **kw),
    "filter": lambda m, **kw: m.filter(abs, [1], **kw),
    "flat_map": lambda m, **kw: m.flat_map(one, [1], **kw),
    "each": lambda m, **kw: m.each(abs, [1], **kw),
    "ordered": lambda m, **kw: m.ordered(kw.pop("stage", [1]), **kw),
    "batch": lambda m, **kw: m.batch(kw.pop("size", 2), kw.pop("stage", [1]), **kw),
    "unbatch": lambda m, **kw: m.unbatch(kw.pop("stage", [[1]]), **kw),
    "concat": lambda m, **kw: m.concat(kw.pop("stages", [[1]]), **kw),
    "from_iterable": lambda m, **kw: m.from_iterable(kw.pop("iterable", [1]), **kw),
    "to_iterable": lambda m, **kw: m.to_iterable(kw.pop("stage", [1]), **kw),
    "run": lambda m, **kw: m.run(kw.pop("stage", [1]), **kw),
}

PER_ITEM_BAD = {"workers": "x", "maxsize": -1, "timeout": "x", "on_start": 5, "on_done": 5}
#: for the other functions, a bad value of each of their parameters
OTHERS_BAD = {
    "ordered": {"maxsize": -1, "window": "x", "stage": 5},
    "batch": {"size": 0, "maxsize": -1, "timeout": "x", "stage": 5},
    "unbatch": {"maxsize": -1, "stage": 5},
    "concat": {"maxsize": -1, "stages": 5},
    "from_iterable": {"maxsize": -1, "iterable": 5, "use_thread": "x"},
    "to_iterable": {"maxsize": -1, "stage": 5},
    "run": {"maxsize": -1, "stage": 5},
}
BAD_VALUES = [
    (fn, param, value)
    for fn in CALLS
    for param, value in (
        PER_ITEM_BAD if fn in ("map", "filter", "flat_map", "each") else {}
    ).items()
] + [(fn, param, value) for fn, bad in OTHERS_BAD.items() for param, value in bad.items()]


def shaped(backend, fn, *words):
    """pytest.raises(TypeError or ValueError) of a message ``pl.<b>.<fn>: ...`` with `words`."""
    pattern = rf"(?s)^pl\.{name_of(backend)}\.{fn}: " + "".join(
        rf"(?=.*{re.escape(w)})" for w in words
    )
    return pytest.raises((TypeError, ValueError), match=pattern)


@pytest.mark.parametrize("fn", sorted(CALLS))
def test_an_unknown_keyword_is_named_the_same_way_everywhere(backend, fn):
    with shaped(backend, fn, "unexpected keyword argument(s): worker"):
        CALLS[fn](backend, worker=2)
    with shaped(backend, fn, "unexpected keyword argument(s): a, bb"):
        CALLS[fn](backend, a=1, bb=2)


def test_a_task_map_names_an_unknown_keyword_like_the_others():
    import pypeln as pl

    for fn in (pl.task.map, pl.task.flat_map):
        with pytest.raises(
            TypeError, match=r"^pl\.task\.\w+: unexpected keyword argument\(s\): worker$"
        ):
            fn(abs, [1], worker=2)


@pytest.mark.parametrize("fn,param,value", BAD_VALUES)
def test_a_bad_value_is_named_the_same_way_everywhere(backend, fn, param, value):
    # the message names the parameter first: "pl.<backend>.<fn>: <param> must ..."
    # (`run` takes its stages as *stages: the first one is stages[0])
    named = re.escape("stages[0]" if (fn, param) == ("run", "stage") else param)
    pattern = rf"(?s)^pl\.{name_of(backend)}\.{fn}: {named} .*{re.escape(repr(value))}"
    with pytest.raises((TypeError, ValueError), match=pattern):
        CALLS[fn](backend, **{param: value})


@pytest.mark.parametrize("fn", ["map", "filter", "flat_map", "each"])
def test_a_bad_f_or_stage_is_named_the_same_way_everywhere(backend, fn):
    with shaped(backend, fn, "f", "5"):
        getattr(backend, fn)(5, [1])
    with shaped(backend, fn, "stage", "5"):
        getattr(backend, fn)(abs, 5)


def test_a_missing_or_extra_argument_is_named_the_same_way_everywhere(backend):
    with shaped(backend, "map", "missing", "'f'"):
        backend.map()
    with shaped(backend, "batch", "missing", "'size'"):
        backend.batch()
    with shaped(backend, "map", "f"):
        backend.map(abs, [1], f=abs)
    with shaped(backend, "ordered", "positional", "'extra'"):
        backend.ordered([1], 0, 1, "extra")


def test_an_error_raised_inside_a_stage_function_is_passed_on_as_it_is(backend):
    # a TypeError of the function's own (not of the call) keeps its message
    with shaped(backend, "map", "on_start", "5"):
        backend.map(abs, [1], on_start=5)


def test_extra_positional_arguments_are_counted_and_shown(backend):
    where = f"pl.{name_of(backend)}"
    message = f"{where}.map: takes at most 7 positional arguments, got 9 (the extra ones: 'x', 'y')"
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        backend.map(abs, [1], 1, 0, 0, None, None, "x", "y")
    message = f"{where}.batch: takes at most 4 positional arguments, got 5 (the extra ones: 'e')"
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        backend.batch(2, [1], 0, 0, "e")


def test_a_bad_flag_names_the_function(backend):
    message = f"pl.{name_of(backend)}.run: stats must be a bool, got 1 (int)"
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        backend.run([1], stats=1)


def test_a_bad_source_is_explained_in_full(backend):
    name = name_of(backend)
    kinds = (
        "a Stage, an iterable or an async iterable" if name == "task" else "a Stage or an iterable"
    )
    message = (
        f"pl.{name}.map: stage must be {kinds} (the items the stage works on, e.g. a list, a "
        "range, a generator or another stage), got 5 (int). See "
    )
    with pytest.raises(TypeError, match=f"^{re.escape(message)}.*concepts/stages/$"):
        backend.map(abs, 5)


def test_an_async_source_names_the_backend_that_cannot_read_it(backend):
    if name_of(backend) == "task":
        pytest.skip("pl.task reads async iterables")

    class Agen:
        def __aiter__(self):
            return self

        def __repr__(self):
            return "Agen()"

    name = name_of(backend)
    message = (
        f"pl.{name}.filter: stage is an async iterable (Agen(), Agen), and pl.{name} reads "
        "only plain iterables. Read it with a pl.task stage first, whose output any backend "
        f"can take (e.g. `source | pl.task.map(f) | pl.{name}.map(g)`), or consume it in "
        "async code with `async for` or `await` on a pl.task stage. See "
    )
    with pytest.raises(TypeError, match=f"^{re.escape(message)}.*concepts/asyncio/$"):
        backend.filter(abs, Agen())
