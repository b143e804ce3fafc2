"""Properties: each operator agrees with Python's own `map`, `filter` and `itertools.chain`.

Outputs are compared as multisets; exactly for `sync` and after `ordered`. Example counts
come from the hypothesis profile (see conftest.py).
"""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter

import pytest
from conftest import name_of, within
from hypothesis import given
from hypothesis import strategies as st

import pypeln as pl

pytestmark = pytest.mark.timeout(180)

items = st.lists(st.integers(-1000, 1000), max_size=40)
workers = st.integers(1, 4)
maxsize = st.integers(0, 3)


#: The most one example's pipeline may take; a hang fails the test at once.
EXAMPLE_SECONDS = 20


def collect(stage):
    return within(EXAMPLE_SECONDS, list, stage)


def check(backend, stage, expected):
    """Same multiset; same order too for `sync`."""
    out = collect(stage)
    assert Counter(out) == Counter(expected)
    if name_of(backend) == "sync":
        assert out == list(expected)


@given(xs=items, workers=workers, maxsize=maxsize)
def test_map_is_builtin_map(backend, xs, workers, maxsize):
    f = lambda x: x * 2 + 1  # noqa: E731
    check(backend, backend.map(f, xs, workers=workers, maxsize=maxsize), list(map(f, xs)))


@given(xs=items, workers=workers, maxsize=maxsize)
def test_filter_is_builtin_filter(backend, xs, workers, maxsize):
    f = lambda x: x % 3 == 0  # noqa: E731
    check(backend, backend.filter(f, xs, workers=workers, maxsize=maxsize), list(filter(f, xs)))


@given(xs=items, workers=workers, maxsize=maxsize)
def test_flat_map_is_chained_map(backend, xs, workers, maxsize):
    f = lambda x: [x] * (abs(x) % 4)  # noqa: E731
    expected = list(itertools.chain.from_iterable(map(f, xs)))
    check(backend, backend.flat_map(f, xs, workers=workers, maxsize=maxsize), expected)


@given(xs=items, workers=workers, maxsize=maxsize)
def test_map_then_ordered_keeps_source_order(backend, xs, workers, maxsize):
    f = lambda x: -x  # noqa: E731
    stage = backend.map(f, xs, workers=workers, maxsize=maxsize) | backend.ordered
    assert collect(stage) == list(map(f, xs))


@given(xs=st.lists(st.integers(0, 100), max_size=16), workers=workers, seed=st.integers(0, 2**16))
def test_ordered_restores_order_after_random_sleeps(backend, xs, workers, seed):
    def sleepy(x):
        time.sleep(random.Random(seed + x).random() * 0.003)
        return x

    assert collect(backend.map(sleepy, xs, workers=workers) | backend.ordered) == xs


@given(xs=items, workers=workers, maxsize=maxsize)
def test_ordered_restores_order_after_flat_map(backend, xs, workers, maxsize):
    f = lambda x: range(abs(x) % 5)  # noqa: E731
    stage = backend.flat_map(f, xs, workers=workers, maxsize=maxsize) | backend.ordered
    assert collect(stage) == list(itertools.chain.from_iterable(map(f, xs)))


@given(xs=items, workers=workers, maxsize=maxsize)
def test_composition_is_composition(backend, xs, workers, maxsize):
    f = lambda x: x + 7  # noqa: E731
    g = lambda x: x % 2 == 0  # noqa: E731
    h = lambda x: (x, x // 2)  # noqa: E731
    if name_of(backend) == "ray":
        # three stages, twice: up to 24 actors an example, each a process to start
        workers = min(workers, 2)
    stage = (
        xs
        | backend.map(f, workers=workers, maxsize=maxsize)
        | backend.filter(g, workers=workers, maxsize=maxsize)
        | backend.flat_map(h, workers=workers, maxsize=maxsize)
    )
    expected = list(itertools.chain.from_iterable(map(h, filter(g, map(f, xs)))))
    check(backend, stage, expected)
    assert collect(stage | backend.ordered) == expected


@given(xs=items)
def test_return_index_matches_enumerate(backend, xs):
    stage = backend.map(lambda x: x, xs, workers=2)
    elements = collect(backend.to_iterable(stage, return_index=True))
    assert sorted(elements) == [pl.Element((i,), x) for i, x in enumerate(xs)]


@given(parts=st.lists(st.lists(st.integers(), max_size=10), max_size=4))
def test_concat_is_chain(backend, parts):
    stage = backend.concat([backend.map(lambda x: x, part) for part in parts])
    assert Counter(collect(stage)) == Counter(itertools.chain.from_iterable(parts))
