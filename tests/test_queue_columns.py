"""A queue holds batches put as rows of items and batches put as columns (indices and
values, the indices possibly positions: a `range`, or a list of ints) side by side, and
hands them out in any form, in order, a fair share at a time: compared, by hypothesis,
with a plain list of the items put."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pypeln as pl
from pypeln._core.queue import AS_PUT, COLUMNS, ROWS

pytestmark = pytest.mark.timeout(120)

#: One put: (how, n items); "one": `put` of one item, "rows": `put_batch`; "range", "ints"
#: and "list": `put_columns` with a range of positions, a list of them, or a list of index
#: tuples.
puts = st.lists(
    st.tuples(st.sampled_from(["one", "rows", "range", "ints", "list"]), st.integers(1, 40)),
    max_size=12,
)
#: One take: (form, limit).
takes = st.lists(
    st.tuples(st.sampled_from(["batch", "values", ROWS, COLUMNS, AS_PUT]), st.integers(1, 50)),
    min_size=1,
    max_size=30,
)


def fill(q, plan):
    """Put items ``((k,), -k)`` as `plan` says; returns them in order."""
    expected, k = [], 0
    for how, n in plan:
        items = [((i,), -i) for i in range(k, k + n)]
        if how == "one":
            items = items[:1]
            q.put(items[0])
        elif how == "rows":
            q.put_batch(list(items))
        elif how == "range":
            q.put_columns(range(k, k + n), [-i for i in range(k, k + n)])
        elif how == "ints":
            q.put_columns(list(range(k, k + n)), [-i for i in range(k, k + n)])
        else:
            q.put_columns([(i,) for i in range(k, k + n)], [-i for i in range(k, k + n)])
        expected += items
        k += len(items)
    return expected


def take_rows(q, form, limit):
    """One take in `form`, as a list of items (None at the end)."""
    if form == "batch":
        return q.get_batch(limit)
    if form == "values":
        values = q.get_values(limit)
        return None if values is None else [(None, x) for x in values]
    got = q.get_tracked(limit, True, form)
    if got is None:
        return None
    batch = got[0]
    if type(batch) is tuple:
        indices, values = batch
        assert len(indices) == len(values)
        if type(indices) is range or (len(indices) and type(indices[0]) is int):
            indices = [(i,) for i in indices]  # positions
        return list(zip(indices, values))
    assert form != COLUMNS, "asked for columns, got rows"
    return batch


@settings(max_examples=150, deadline=None)
@given(puts, takes, st.integers(1, 4))
def test_what_is_taken_is_what_was_put_in_order(plan, forms, consumers):
    q = pl.thread.IterableQueue(consumers=consumers)
    q.add_producers(1)
    expected = fill(q, plan)
    q.done()
    got = []
    for form, limit in forms * (len(expected) + 1):
        before = len(q)
        batch = take_rows(q, form, limit)
        if batch is None:
            break
        share = -(-before // consumers)
        assert 1 <= len(batch) <= min(limit, share), (len(batch), limit, share)
        assert len(q) == before - len(batch)
        got += batch
    assert len(q) == 0
    assert [x for _, x in got] == [x for _, x in expected]
    assert [i for i, _ in got if i is not None] == [
        i for (i, _), (j, _) in zip(expected, got) if j is not None
    ]


@pytest.mark.parametrize(
    "plan, form",
    [(["range", "ints", "list"], tuple), (["rows", "one"], list), (["range", "rows"], list)],
    ids=["all-columns", "all-rows", "mixed"],
)
def test_a_take_as_put_is_columns_only_when_all_of_it_was_put_as_columns(plan, form):
    q = pl.thread.IterableQueue()
    q.add_producers(1)
    expected = fill(q, [(how, 3) for how in plan])
    q.done()
    got = q.get_tracked(100, True, AS_PUT)
    assert got is not None and type(got[0]) is form
    values = got[0][1] if form is tuple else [x for _, x in got[0]]
    assert list(values) == [x for _, x in expected]


def test_columns_put_into_a_bounded_queue_wait_for_room_and_arrive_whole():
    q = pl.thread.IterableQueue(maxsize=3)
    q.add_producers(1)
    returned = threading.Event()

    def put():
        q.put_columns(range(10), list(range(10)))
        returned.set()
        q.done()

    thread = threading.Thread(target=put, daemon=True)
    thread.start()
    out = []
    while True:
        assert len(q) <= 3 and q.peak <= 3
        values = q.get_values(2)
        if values is None:
            break
        out += values
    thread.join(5)
    assert returned.is_set() and out == list(range(10))


def test_a_stage_after_a_column_stage_sees_the_items_indices():
    # map and filter move columns; flat_map and element_index need the real indices.
    stage = pl.thread.map(lambda x: x * 10, range(6), workers=2)
    stage = pl.thread.filter(lambda x: x % 20 == 0, stage, workers=2)
    stage = pl.thread.flat_map(lambda x, element_index: [(x, element_index)] * 2, stage)
    got = sorted(pl.thread.to_iterable(stage, return_index=True))
    assert [e.index for e in got] == [(i, j) for i in (0, 2, 4) for j in (0, 1)]
    assert [e.value for e in got] == [(10 * i, (i,)) for i in (0, 2, 4) for _ in (0, 1)]


def test_single_items_put_while_taken_do_not_pile_up_behind_the_takes():
    # An endless source put item by item into an unbounded queue, its consumer one item
    # behind: what was taken must be let go (chunks of single items are bounded).
    q = pl.thread.IterableQueue()
    q.add_producers(1)
    q.put(((0,), 0))
    for k in range(1, 5000):
        q.put(((k,), k))
        assert q.get_batch(1) == [((k - 1,), k - 1)]
    held = sum(len(chunk[1]) for chunk in q._chunks)
    assert held <= 2 * 1024, f"the queue holds {held} items' worth for 1 item ready"
