"""Pipelines mix backends freely: any backend's stage feeds any other's."""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter

import pytest
from conftest import BACKEND_NAMES

import pypeln as pl

pytestmark = pytest.mark.timeout(60)

PAIRS = list(itertools.product(BACKEND_NAMES, repeat=2))
N = 30


def jitter(x):
    time.sleep(random.Random(x).random() * 0.004)
    return x


@pytest.mark.parametrize("maxsize", [0, 1])
@pytest.mark.parametrize("first,second", PAIRS)
def test_map_then_filter_across_backends(first, second, maxsize):
    a, b = getattr(pl, first), getattr(pl, second)
    stage = (
        range(N)
        | a.map(lambda x: x * 3, workers=2, maxsize=maxsize)
        | b.filter(lambda x: x % 2 == 0, workers=2, maxsize=maxsize)
    )
    assert Counter(stage) == Counter(x * 3 for x in range(N) if (x * 3) % 2 == 0)


@pytest.mark.parametrize("first,second", PAIRS)
def test_ordered_after_mixed_stages(first, second):
    a, b = getattr(pl, first), getattr(pl, second)
    stage = (
        range(N)
        | a.map(jitter, workers=3)
        | b.flat_map(lambda x: [x, -x], workers=2, maxsize=1)
        | a.ordered
    )
    assert list(stage) == [y for x in range(N) for y in (x, -x)]


#: Tests whose pipeline holds every backend: with Ray, they are ray tests whatever their
#: parameter (run last, on the session's Ray).
EVERY_BACKEND = [
    pytest.param(name, marks=[pytest.mark.ray] if "ray" in BACKEND_NAMES else [])
    for name in BACKEND_NAMES
]


@pytest.mark.parametrize("consumer", EVERY_BACKEND)
def test_every_backend_in_one_pipeline(consumer):
    stage = range(N)
    for i, name in enumerate(BACKEND_NAMES):
        backend = getattr(pl, name)
        stage = stage | backend.map(lambda x, i=i: x + 10**i, workers=2, maxsize=2)
    stage = getattr(pl, consumer).ordered(stage)
    total = sum(10**i for i in range(len(BACKEND_NAMES)))
    assert list(stage) == [x + total for x in range(N)]


@pytest.mark.parametrize("first,second", PAIRS)
def test_to_iterable_of_another_backends_stage(first, second):
    a, b = getattr(pl, first), getattr(pl, second)
    stage = a.map(lambda x: x + 1, range(5), workers=2)
    assert sorted(b.to_iterable(stage)) == [1, 2, 3, 4, 5]
    assert sorted(b.to_iterable(stage, return_index=True)) == [
        pl.Element((i,), i + 1) for i in range(5)
    ]


@pytest.mark.parametrize("combiner", EVERY_BACKEND)
def test_concat_of_every_backend(combiner):
    stages = [getattr(pl, name).map(lambda x: (x, 1), range(4)) for name in BACKEND_NAMES]
    out = getattr(pl, combiner).concat(stages)
    assert Counter(out) == Counter({(x, 1): len(BACKEND_NAMES) for x in range(4)})


@pytest.mark.parametrize("first,second", PAIRS)
def test_error_crosses_backends(first, second):
    a, b = getattr(pl, first), getattr(pl, second)

    def fails_on_seven(x):
        if x == 7:
            raise ValueError("x")
        return x

    stage = range(N) | a.map(fails_on_seven, workers=2) | b.map(lambda x: x, workers=2)
    with pytest.raises(ValueError) as info:
        list(stage)
    assert info.value.args == ("x",)


@pytest.mark.parametrize("first,second", PAIRS)
def test_injection_in_a_mixed_pipeline(first, second):
    a, b = getattr(pl, first), getattr(pl, second)

    def add(x, offset):
        return x + offset

    stage = (
        range(5)
        | a.map(add, on_start=lambda: {"offset": 100}, workers=2)
        | b.map(add, on_start=lambda: {"offset": 1000})
    )
    assert sorted(stage) == [x + 1100 for x in range(5)]


def test_the_readme_pipeline():
    names = [n for n in ("process", "thread") if hasattr(pl, n)]
    first, second = (getattr(pl, n) for n in (names + names)[:2])
    out = range(10) | first.map(lambda x: x * 2, workers=4) | second.filter(lambda x: x > 5) | list
    assert sorted(out) == [6, 8, 10, 12, 14, 16, 18]
