"""`pl.sync.concat` takes one item from each input in turn, as 0.4.9 did, lazily."""

from __future__ import annotations

import itertools
from typing import Any, Iterator, List

import pytest
from conftest import within
from hypothesis import given
from hypothesis import strategies as st

import pypeln as pl

pytestmark = pytest.mark.timeout(60)


def round_robin(inputs: List[List[Any]]) -> List[Any]:
    """The reference: one item of each input still going, in turn."""
    out: List[Any] = []
    for row in itertools.zip_longest(*inputs, fillvalue=_GAP):
        out.extend(x for x in row if x is not _GAP)
    return out


_GAP = object()


@pytest.mark.parametrize(
    "inputs, expected",
    [
        ([[1, 2, 3], [4, 5, 6, 7]], [1, 4, 2, 5, 3, 6, 7]),  # 0.4.9's documented example
        ([[1, 2], [10, 20, 30, 40], [100]], [1, 10, 100, 2, 20, 30, 40]),
        ([[], [1, 2], [], [3]], [1, 3, 2]),
        ([], []),
        ([[1]], [1]),
    ],
)
def test_concat_alternates_between_its_inputs(inputs, expected):
    assert within(10, list, pl.sync.concat(inputs)) == expected


def test_concat_alternates_between_stages_of_any_backend():
    inputs = [
        pl.sync.map(abs, [1, 2, 3]),
        [4, 5],
        pl.sync.filter(lambda x: x % 2, range(10)),
    ]
    assert within(10, list, pl.sync.concat(inputs)) == [1, 4, 1, 2, 5, 3, 3, 5, 7, 9]
    nested = pl.sync.concat([pl.sync.concat([[1, 2], [3, 4]]), [10, 20, 30]])
    assert within(10, list, nested) == [1, 10, 3, 20, 2, 30, 4]
    foreign = pl.sync.concat([pl.thread.ordered(pl.thread.map(abs, [1, 2, 3])), [4, 5, 6]])
    assert within(10, list, foreign) == [1, 4, 2, 5, 3, 6]


def test_ordered_after_concat_sorts_by_index_keeping_the_turns():
    stage = pl.sync.concat([[1, 2, 3], [4, 5, 6, 7]]) | pl.sync.ordered
    assert within(10, list, stage) == [1, 4, 2, 5, 3, 6, 7]


def test_concat_is_lazy_and_works_on_endless_inputs():
    pulled: List[str] = []

    def source(tag: str) -> Iterator[str]:
        for i in itertools.count():
            pulled.append(f"{tag}{i}")
            yield f"{tag}{i}"

    it = iter(pl.sync.concat([source("a"), source("b")]))
    assert next(it) == "a0"
    assert pulled == ["a0"]  # the second input is not read before its turn
    assert [next(it) for _ in range(3)] == ["b0", "a1", "b1"]
    assert pulled == ["a0", "b0", "a1", "b1"]
    it.close()


@given(st.lists(st.lists(st.integers(), max_size=8), max_size=5))
def test_concat_matches_a_round_robin_reference(inputs):
    assert within(10, list, pl.sync.concat(inputs)) == round_robin(inputs)
