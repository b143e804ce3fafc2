"""Indexes and order: every item carries its source position; `ordered` restores it."""

from __future__ import annotations

import random
import time

import pytest

import pypeln as pl

pytestmark = pytest.mark.timeout(30)


def jitter(x):
    """Returns x after a short pseudo-random sleep, so workers finish out of order."""
    time.sleep(random.Random(x).random() * 0.01)
    return x


def test_sync_keeps_source_order_through_every_operator():
    stage = (
        range(20)
        | pl.sync.map(lambda x: x * 2, workers=3)
        | pl.sync.filter(lambda x: x % 3 != 0, workers=2)
        | pl.sync.flat_map(lambda x: [x, x + 1], workers=2)
    )
    expected = [y for x in range(20) if (x * 2) % 3 != 0 for y in (x * 2, x * 2 + 1)]
    assert list(stage) == expected


def test_ordered_after_map_with_random_sleeps(backend):
    stage = backend.map(jitter, range(30), workers=4) | backend.ordered
    assert list(stage) == list(range(30))


def record(x):
    """A value `ordered` cannot compare (a dict): it orders by position alone."""
    return {"n": jitter(x) % 7, "x": x}


def test_ordered_does_not_compare_the_values(backend):
    stage = backend.map(record, range(40), workers=4) | backend.ordered
    assert [r["x"] for r in stage] == list(range(40))


@pytest.mark.parametrize("rows", [False, True], ids=["columns", "rows"])
def test_ordered_after_stages_without_watermarks(monkeypatch, rows):
    """A backend whose stages report no watermarks (`pl.ray`'s, or a third party's: see
    `pypeln._core.contracts`) leaves `ordered` nothing to stream by: it sorts everything at
    the end, columns and rows alike (a `flat_map` upstream sends rows)."""
    from pypeln.thread import ThreadBackend

    monkeypatch.setattr(ThreadBackend, "reports_progress", False)
    stage = pl.thread.map(jitter, range(300), workers=4, maxsize=4)
    if rows:
        stage = pl.thread.flat_map(lambda x: [x], stage, workers=2)
    assert list(stage | pl.thread.ordered) == list(range(300))


def test_ordered_after_filter(backend):
    stage = (
        range(30)
        | backend.map(jitter, workers=3)
        | backend.filter(lambda x: x % 4)
        | backend.ordered
    )
    assert list(stage) == [x for x in range(30) if x % 4]


def test_ordered_after_flat_map(backend):
    def expand(x):
        jitter(x)
        return [(x, i) for i in range(x % 4)]

    stage = backend.flat_map(expand, range(16), workers=4) | backend.ordered
    assert list(stage) == [(x, i) for x in range(16) for i in range(x % 4)]


def test_ordered_after_nested_flat_map(backend):
    stage = (
        range(5)
        | backend.flat_map(lambda x: range(x), workers=2)
        | backend.flat_map(lambda y: [y, -y], workers=3)
        | backend.ordered
    )
    assert list(stage) == [z for x in range(5) for y in range(x) for z in (y, -y)]


def test_ordered_after_concat_orders_by_index(backend):
    # Each concatenated source counts its own positions; `ordered` sorts by index, and
    # two items at the same position keep no particular order between them.
    out = list(backend.concat([range(3), range(10, 13)]) | backend.ordered)
    assert [sorted(out[i : i + 2]) for i in (0, 2, 4)] == [[0, 10], [1, 11], [2, 12]]


def test_return_index_gives_source_positions(backend):
    stage = backend.map(lambda x: x.upper(), ["a", "b", "c", "d"], workers=2)
    elements = sorted(backend.to_iterable(stage, return_index=True))
    assert elements == [pl.Element((i,), c) for i, c in enumerate("ABCD")]
    e = elements[0]
    assert (e.index, e.value) == ((0,), "A") and e == ((0,), "A")


def test_filter_keeps_the_original_index(backend):
    stage = backend.filter(lambda x: x % 3 == 0, range(10), workers=2)
    elements = sorted(backend.to_iterable(stage, return_index=True))
    assert elements == [pl.Element((i,), i) for i in (0, 3, 6, 9)]


def test_flat_map_extends_the_index(backend):
    letters = backend.flat_map(lambda s: list(s), ["ab", "", "c"], workers=2)
    elements = sorted(backend.to_iterable(letters, return_index=True))
    assert elements == [
        pl.Element((0, 0), "a"),
        pl.Element((0, 1), "b"),
        pl.Element((2, 0), "c"),
    ]
    one_each = backend.flat_map(lambda x: [x], [1, 2])
    assert sorted(backend.to_iterable(one_each, return_index=True)) == [
        pl.Element((0, 0), 1),
        pl.Element((1, 0), 2),
    ]


def test_element_index_is_injected(backend):
    def with_index(x, element_index):
        return (x, element_index)

    out = sorted(backend.map(with_index, ["a", "b", "c"], workers=2))
    assert out == [("a", (0,)), ("b", (1,)), ("c", (2,))]


def test_element_index_after_flat_map(backend):
    def with_index(x, element_index):
        return element_index

    stage = range(3) | backend.flat_map(lambda x: range(x)) | backend.map(with_index, workers=2)
    assert sorted(stage) == [(1, 0), (2, 0), (2, 1)]


def test_ordered_in_a_sync_stage_after_concurrent_stages(backend):
    stage = backend.map(jitter, range(20), workers=4) | pl.sync.ordered
    assert list(stage) == list(range(20))
