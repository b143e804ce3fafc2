"""`batch(size, stage, timeout=0, maxsize=0)` and `unbatch(stage, maxsize=0)`, on every backend.

`batch` emits lists of 1..size items (never an empty one; only the last may be partial,
unless `timeout` flushes a stalled one); its index is the smallest index of its items.
`unbatch` emits the items of each iterable one by one, each indexed by its batch's index
extended by its position. Outputs are compared as multisets; exactly on `sync` and after
`ordered`. Functions given to `pl.process` are module-level, so plain pickle will do.
"""

from __future__ import annotations

import itertools
import random
import re
import threading
import time
from collections import Counter
from typing import Any, Iterable, Iterator, List

import pytest
from conftest import BACKEND_NAMES, name_of, wait_until, within
from hypothesis import given
from hypothesis import strategies as st

import pypeln as pl

pytestmark = pytest.mark.timeout(60)

#: The most one pipeline may take; a hang fails the test at once.
RUN_SECONDS = 20


def collect(stage: Any) -> List[Any]:
    return within(RUN_SECONDS, list, stage)


def collect_elements(backend: Any, stage: Any) -> List[pl.Element]:
    return within(RUN_SECONDS, list, backend.to_iterable(stage, return_index=True))


def chunks(xs: Iterable[Any], size: int) -> List[List[Any]]:
    """`xs` cut into consecutive lists of `size` items (the last one may be shorter)."""
    it = iter(xs)
    out = []
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return out
        out.append(chunk)


def check_batches(batches: List[Any], xs: Iterable[Any], size: int) -> None:
    """Lists of 1..size items whose items are, all together, those of `xs`."""
    for b in batches:
        assert isinstance(b, list), f"a batch must be a list, got {b!r}"
        assert 1 <= len(b) <= size, f"a batch of {len(b)} items (size={size}): {b!r}"
    assert Counter(x for b in batches for x in b) == Counter(xs)


# Module-level functions: `pl.process` workers unpickle them with plain pickle.
def identity(x: Any) -> Any:
    return x


def jitter(x: int) -> int:
    """`x`, after a short pseudo-random sleep: concurrent workers finish out of order."""
    time.sleep(random.Random(x).random() * 0.003)
    return x


def as_index_pairs(x: int) -> List[Any]:
    """Two items whose values are the indices `flat_map` gives them when `x` is at `(x,)`."""
    return [(x, 0), (x, 1)]


def total(xs: List[int]) -> int:
    return sum(xs)


class BatchError(Exception):
    """Raised inside a batched pipeline (module-level, so it pickles)."""


def fail_on_seven(batch: List[int]) -> List[int]:
    if 7 in batch:
        raise BatchError("seven", sorted(batch))
    return batch


def fail_at_seven(x: int) -> int:
    if x == 7:
        raise BatchError("seven", x)
    return x


def failing_source() -> Iterator[int]:
    yield from range(5)
    raise BatchError("source", 5)


class Countdown:
    """A picklable iterable that is not a sequence: n-1, ..., 0."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.n - 1, -1, -1))


# -- batch over finite inputs --------------------------------------------------------------

#: (number of items, size): empty, shorter than size, exact multiple, with a remainder
FINITE = [(0, 3), (2, 3), (9, 3), (10, 3), (1, 1), (5, 1), (7, 10), (1000, 7)]


@pytest.mark.parametrize("n,size", FINITE)
def test_batch_of_a_finite_input(backend, n, size):
    xs = list(range(n))
    batches = collect(backend.batch(size, xs))
    check_batches(batches, xs, size)
    if name_of(backend) == "sync":
        assert batches == chunks(xs, size)


@pytest.mark.parametrize("n,size", FINITE)
def test_batch_after_a_concurrent_map(backend, n, size):
    xs = list(range(n))
    stage = xs | backend.map(jitter, workers=3) | backend.batch(size)
    check_batches(collect(stage), xs, size)


@pytest.mark.parametrize("n,size", FINITE)
def test_batch_after_ordered_is_consecutive_chunks(backend, n, size):
    xs = list(range(n))
    stage = xs | backend.map(jitter, workers=3) | backend.ordered | backend.batch(size)
    assert collect(stage) == chunks(xs, size)


@pytest.mark.parametrize("maxsize", [0, 1, 2])
def test_batch_and_unbatch_maxsize(backend, maxsize):
    xs = list(range(50))
    batched = backend.batch(4, xs | backend.map(jitter, workers=2), maxsize=maxsize)
    check_batches(collect(batched), xs, 4)
    stage = backend.unbatch(batched, maxsize=maxsize)
    assert Counter(collect(stage)) == Counter(xs)


def test_batch_of_arbitrary_values(backend):
    xs = [None, 0, "", (1, 2), {"k": 1}, [3], b"x"]
    batches = collect(backend.ordered(xs) | backend.batch(3))
    assert batches == chunks(xs, 3)


def test_batched_values_can_be_mapped(backend):
    xs = list(range(40))
    stage = xs | backend.batch(6) | backend.map(total, workers=2)
    sums = collect(stage)
    assert sum(sums) == sum(xs)
    assert len(sums) >= len(chunks(xs, 6))


# -- batch | unbatch -----------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 3, 10, 200])
def test_batch_then_unbatch_keeps_every_item(backend, n):
    xs = list(range(n))
    stage = xs | backend.map(jitter, workers=3) | backend.batch(3) | backend.unbatch
    assert Counter(collect(stage)) == Counter(xs)


@pytest.mark.parametrize("n", [0, 1, 3, 10, 200])
def test_ordered_batch_unbatch_ordered_is_the_identity(backend, n):
    xs = list(range(n))
    stage = (
        xs
        | backend.map(jitter, workers=3)
        | backend.ordered
        | backend.batch(3)
        | backend.unbatch
        | backend.ordered
    )
    assert collect(stage) == xs


def test_batch_unbatch_on_sync_keeps_source_order():
    xs = list(range(23))
    assert list(xs | pl.sync.batch(4) | pl.sync.unbatch) == xs
    assert list(xs | pl.sync.batch(4) | pl.sync.unbatch | pl.sync.ordered) == xs


#: (map, first ordered, batch, unbatch, last ordered): each backend once in every role
MIXES = [
    ("process", "thread", "thread", "process", "task"),
    ("thread", "task", "process", "sync", "thread"),
    ("task", "sync", "task", "thread", "process"),
    ("sync", "process", "sync", "task", "sync"),
]


@pytest.mark.parametrize("mix", MIXES, ids=["-".join(m) for m in MIXES])
def test_batch_and_unbatch_across_backends(mix):
    m, o1, b, u, o2 = (getattr(pl, name) for name in mix)
    xs = list(range(60))
    unordered = xs | m.map(jitter, workers=3) | b.batch(5) | u.unbatch
    assert Counter(collect(unordered)) == Counter(xs)
    stage = xs | m.map(jitter, workers=3) | o1.ordered | b.batch(5) | u.unbatch | o2.ordered
    assert collect(stage) == xs


@pytest.mark.parametrize("first,second", list(itertools.product(BACKEND_NAMES, repeat=2)))
def test_batch_of_one_backend_unbatch_of_another(first, second):
    a, b = getattr(pl, first), getattr(pl, second)
    xs = list(range(30))
    batched = xs | a.map(jitter, workers=2) | a.batch(4)
    check_batches(collect(batched), xs, 4)
    assert Counter(collect(batched | b.unbatch)) == Counter(xs)
    assert collect(a.ordered(xs) | b.batch(4) | a.unbatch | b.ordered) == xs


# -- partial form --------------------------------------------------------------------------


def test_partial_form(backend):
    xs = list(range(17))
    assert Counter(xs | backend.batch(4) | backend.unbatch | list) == Counter(xs)
    assert isinstance(backend.batch(4), pl.Partial)
    assert isinstance(backend.batch(4, timeout=0.5, maxsize=2), pl.Partial)
    assert isinstance(backend.unbatch(), pl.Partial)
    assert isinstance(backend.unbatch(maxsize=2), pl.Partial)
    stage = xs | backend.batch(4, maxsize=1) | backend.unbatch(maxsize=1) | backend.ordered
    assert collect(stage) == xs


def test_batch_and_unbatch_are_stages(backend):
    assert isinstance(backend.batch(2, [1, 2, 3]), pl.Stage)
    assert isinstance(backend.unbatch([[1], [2]]), pl.Stage)


def test_a_batched_stage_runs_again(backend):
    stage = range(10) | backend.batch(3)
    first, second = collect(stage), collect(stage)
    check_batches(first, range(10), 3)
    check_batches(second, range(10), 3)


# -- indices -------------------------------------------------------------------------------


def test_batch_index_is_the_smallest_index_on_sync():
    elements = list(pl.sync.to_iterable(range(7) | pl.sync.batch(3), return_index=True))
    assert elements == [
        pl.Element((0,), [0, 1, 2]),
        pl.Element((3,), [3, 4, 5]),
        pl.Element((6,), [6]),
    ]


@pytest.mark.parametrize("n", [0, 1, 10, 41])
def test_batch_index_is_the_smallest_index_of_its_items(backend, n):
    # the value of each item is its source position, so its index is `(value,)`
    stage = range(n) | backend.map(jitter, workers=3) | backend.batch(4)
    elements = collect_elements(backend, stage)
    check_batches([e.value for e in elements], range(n), 4)
    for e in elements:
        assert e.index == (min(e.value),), e


def test_batch_index_after_flat_map(backend):
    # each value is the index flat_map gives it
    stage = range(12) | backend.flat_map(as_index_pairs, workers=2) | backend.batch(5)
    elements = collect_elements(backend, stage)
    check_batches([e.value for e in elements], [(x, j) for x in range(12) for j in (0, 1)], 5)
    for e in elements:
        assert e.index == min(e.value), e


def test_unbatch_index_extends_the_batch_index_on_sync():
    stage = range(5) | pl.sync.batch(2) | pl.sync.unbatch
    assert list(pl.sync.to_iterable(stage, return_index=True)) == [
        pl.Element((0, 0), 0),
        pl.Element((0, 1), 1),
        pl.Element((2, 0), 2),
        pl.Element((2, 1), 3),
        pl.Element((4, 0), 4),
    ]


@pytest.mark.parametrize("n", [0, 1, 10, 41])
def test_unbatch_index_extends_the_batch_index(backend, n):
    stage = range(n) | backend.map(jitter, workers=3) | backend.batch(3) | backend.unbatch
    elements = collect_elements(backend, stage)
    assert Counter(e.value for e in elements) == Counter(range(n))
    groups: dict = {}
    for e in elements:
        assert len(e.index) == 2, e
        groups.setdefault(e.index[:-1], []).append(e)
    for prefix, group in groups.items():
        # one batch: positions 0..len-1, and its index is the smallest of its items' indices
        assert sorted(e.index[-1] for e in group) == list(range(len(group))), group
        assert 1 <= len(group) <= 3, group
        assert prefix == (min(e.value for e in group),), group


def test_unbatch_index_of_a_plain_iterable_of_lists(backend):
    stage = backend.unbatch([["a", "b"], [], ["c"]])
    assert sorted(collect_elements(backend, stage)) == [
        pl.Element((0, 0), "a"),
        pl.Element((0, 1), "b"),
        pl.Element((2, 0), "c"),
    ]


def test_ordered_after_unbatch_sorts_by_batch_then_position(backend):
    stage = backend.unbatch([[5, 6], [], [7], [8, 9, 10]]) | backend.ordered
    assert collect(stage) == [5, 6, 7, 8, 9, 10]


# -- timeout -------------------------------------------------------------------------------

#: How long a test waits for something that should happen at once.
WAIT_SECONDS = 10


class StallingSource:
    """Yields 0, 1, 2, then blocks until `release` is set; then ends.

    `stalled` is set once the three items are out and the source is blocked.
    """

    def __init__(self) -> None:
        self.stalled = threading.Event()
        self.release = threading.Event()

    def __iter__(self) -> Iterator[int]:
        yield from range(3)
        self.stalled.set()
        self.release.wait(RUN_SECONDS)


class Consumer:
    """Iterates `stage` in a thread of its own, recording each value as it arrives."""

    def __init__(self, stage: Any) -> None:
        self.stage = stage
        self.values: List[Any] = []
        self.error: List[BaseException] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._main, name="test-consumer", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        try:
            for value in self.stage:
                with self.lock:
                    self.values.append(value)
        except BaseException as e:  # reported by `received`
            self.error.append(e)

    def received(self) -> List[Any]:
        if self.error:
            raise self.error[0]
        with self.lock:
            return list(self.values)

    def join(self) -> List[Any]:
        self.thread.join(RUN_SECONDS)
        assert not self.thread.is_alive(), "the pipeline did not end"
        return self.received()


def flattened(batches: List[List[Any]]) -> List[Any]:
    return [x for b in batches for x in b]


def test_batch_timeout_flushes_a_partial_batch_of_a_stalled_source(concurrent_backend):
    source = StallingSource()
    try:
        consumer = Consumer(concurrent_backend.batch(10, source, timeout=0.05))
        assert source.stalled.wait(WAIT_SECONDS), "the source was not read"
        # the three items arrive while the source is still blocked (perhaps in several batches)
        wait_until(lambda: len(flattened(consumer.received())) >= 3, WAIT_SECONDS)
        early = consumer.received()
        assert sorted(flattened(early)) == [0, 1, 2], f"before the source ended: {early!r}"
    finally:
        source.release.set()
    batches = consumer.join()
    check_batches(batches, range(3), 10)


def test_batch_timeout_flushes_soon_after_the_timeout(concurrent_backend):
    """A partial batch goes out about `timeout` after its items came, not at some coarser
    tick: with 0.05 s, well within 0.9 s of the source stalling (on a busy machine too)."""
    source = StallingSource()
    try:
        consumer = Consumer(concurrent_backend.batch(10, source, timeout=0.05))
        assert source.stalled.wait(WAIT_SECONDS), "the source was not read"
        stalled = time.monotonic()
        wait_until(lambda: len(flattened(consumer.received())) >= 3, WAIT_SECONDS)
        late = time.monotonic() - stalled
        assert late < 0.9, f"the partial batch came {late:.2f}s after the source stalled"
    finally:
        source.release.set()
    check_batches(consumer.join(), range(3), 10)


def test_batch_timeout_after_a_concurrent_stage(concurrent_backend):
    source = StallingSource()
    try:
        stage = (
            source
            | concurrent_backend.map(identity, workers=2)
            | concurrent_backend.batch(10, timeout=0.05)
        )
        consumer = Consumer(stage)
        assert source.stalled.wait(WAIT_SECONDS), "the source was not read"
        wait_until(lambda: len(flattened(consumer.received())) >= 3, WAIT_SECONDS)
        assert sorted(flattened(consumer.received())) == [0, 1, 2]
    finally:
        source.release.set()
    check_batches(consumer.join(), range(3), 10)


def test_without_timeout_a_partial_batch_waits_for_the_end(backend):
    source = StallingSource()
    try:
        consumer = Consumer(backend.batch(10, source))
        assert source.stalled.wait(WAIT_SECONDS), "the source was not read"
        # a negative check needs a pause: nothing may come out while the source is blocked
        time.sleep(0.3)
        assert consumer.received() == []
    finally:
        source.release.set()
    assert consumer.join() == [[0, 1, 2]]


@pytest.mark.parametrize("timeout", [0, 0.05, 5])
def test_batch_timeout_of_a_ready_source_loses_nothing(backend, timeout):
    xs = list(range(100))
    batches = collect(xs | backend.map(jitter, workers=2) | backend.batch(8, timeout=timeout))
    check_batches(batches, xs, 8)
    if name_of(backend) == "sync" and timeout != 0.05:
        assert batches == chunks(xs, 8)


def test_batch_timeout_of_a_trickling_source(backend):
    def trickle() -> Iterator[int]:
        for x in range(6):
            if x == 3:
                time.sleep(0.3)
            yield x

    batches = collect(backend.batch(10, trickle(), timeout=0.05))
    check_batches(batches, range(6), 10)


# -- unbatch of any iterable ---------------------------------------------------------------


def test_unbatch_of_tuples_ranges_and_other_iterables(backend):
    items = [(1, 2), range(3, 6), [6], Countdown(3), (), range(0)]
    expected = [1, 2, 3, 4, 5, 6, 2, 1, 0]
    assert Counter(collect(backend.unbatch(items))) == Counter(expected)
    assert collect(backend.unbatch(items) | backend.ordered) == expected


def test_unbatch_of_generators(backend):
    if name_of(backend) == "process":
        pytest.skip("generators do not pickle; a process stage may have to send them")

    def gen(n: int) -> Iterator[int]:
        yield from range(n)

    items = [gen(2), gen(0), gen(3)]
    assert collect(backend.unbatch(items) | backend.ordered) == [0, 1, 0, 1, 2]


def test_unbatch_of_generators_made_upstream_on_a_thread():
    items = range(4) | pl.thread.map(lambda n: (x for x in range(n)), workers=2)
    assert Counter(collect(items | pl.thread.unbatch)) == Counter([0, 0, 1, 0, 1, 2])


def test_unbatch_of_empty_lists(backend):
    assert collect(backend.unbatch([[], [], []])) == []
    assert collect(backend.unbatch([])) == []
    items = [[], [1], [], [], [2, 3], []]
    assert Counter(collect(backend.unbatch(items))) == Counter([1, 2, 3])
    assert collect(backend.unbatch(items) | backend.ordered) == [1, 2, 3]


def test_unbatch_keeps_nested_lists(backend):
    items = [[[1, 2], [3]], [[]]]
    out = collect(backend.unbatch(items) | backend.ordered)
    assert out == [[1, 2], [3], []]


# -- validation ----------------------------------------------------------------------------


def raises_naming(kind, parameter, value):
    """pytest.raises(kind) whose message names `parameter` (a whole word) and shows `value`."""
    pattern = rf"(?s)(?=.*\b{re.escape(parameter)}\b)(?=.*{re.escape(value)})"
    return pytest.raises(kind, match=pattern)


@pytest.fixture(params=[False, True], ids=["stage", "partial"])
def partial(request):
    return request.param


def make_batch(backend, partial, size, **kwargs):
    if partial:
        return backend.batch(size, **kwargs)
    return backend.batch(size, range(5), **kwargs)


@pytest.mark.parametrize(
    "bad,kind",
    [(0, ValueError), (-1, ValueError), (2.5, TypeError), ("3", TypeError), (True, TypeError)],
)
def test_batch_size_is_checked_at_the_call(backend, partial, bad, kind):
    with raises_naming(kind, "size", repr(bad)):
        make_batch(backend, partial, bad)


@pytest.mark.parametrize("bad,kind", [(-1, ValueError), ("x", TypeError)])
def test_batch_timeout_is_checked_at_the_call(backend, partial, bad, kind):
    with raises_naming(kind, "timeout", repr(bad)):
        make_batch(backend, partial, 3, timeout=bad)


def test_batch_maxsize_is_checked_at_the_call(backend, partial):
    with raises_naming(ValueError, "maxsize", "-1"):
        make_batch(backend, partial, 3, maxsize=-1)


def test_unbatch_maxsize_is_checked_at_the_call(backend, partial):
    with raises_naming(ValueError, "maxsize", "-1"):
        if partial:
            backend.unbatch(maxsize=-1)
        else:
            backend.unbatch([[1]], maxsize=-1)


@pytest.mark.parametrize("good", [1, 2, 10**6])
def test_batch_accepts_any_positive_int_size(backend, good):
    batches = collect(backend.batch(good, range(3)))
    check_batches(batches, range(3), good)
    if name_of(backend) == "sync":
        assert batches == chunks(range(3), good)


@pytest.mark.parametrize("good", [0, 0.01, 1, 2.5])
def test_batch_accepts_any_non_negative_timeout(backend, good):
    check_batches(collect(backend.batch(2, range(5), timeout=good)), range(5), 2)


# -- properties ----------------------------------------------------------------------------

items = st.lists(st.integers(-1000, 1000), max_size=40)
sizes = st.integers(1, 6)
maxsizes = st.integers(0, 3)


@pytest.mark.timeout(180)
@given(xs=items, size=sizes, maxsize=maxsizes)
def test_batch_is_chunking(backend, xs, size, maxsize):
    batches = collect(xs | backend.map(jitter, workers=2) | backend.batch(size, maxsize=maxsize))
    check_batches(batches, xs, size)
    if name_of(backend) == "sync":
        assert batches == chunks(xs, size)
    ordered = xs | backend.map(identity, workers=2) | backend.ordered | backend.batch(size)
    assert collect(ordered) == chunks(xs, size)


@pytest.mark.timeout(180)
@given(parts=st.lists(st.lists(st.integers(), max_size=6), max_size=8), maxsize=maxsizes)
def test_unbatch_is_chain(backend, parts, maxsize):
    expected = list(itertools.chain.from_iterable(parts))
    out = collect(backend.unbatch(parts, maxsize=maxsize))
    assert Counter(out) == Counter(expected)
    if name_of(backend) == "sync":
        assert out == expected
    assert collect(backend.unbatch(parts) | backend.ordered) == expected


@pytest.mark.timeout(180)
@given(xs=items, size=sizes)
def test_batch_then_unbatch_is_the_identity_up_to_order(backend, xs, size):
    out = collect(xs | backend.map(identity, workers=2) | backend.batch(size) | backend.unbatch)
    assert Counter(out) == Counter(xs)
    if name_of(backend) == "sync":
        assert out == xs
    stage = backend.ordered(xs) | backend.batch(size) | backend.unbatch | backend.ordered
    assert collect(stage) == xs


# -- errors --------------------------------------------------------------------------------


def test_an_error_after_batch_reaches_the_consumer(backend):
    stage = range(20) | backend.batch(3) | backend.map(fail_on_seven, workers=2)
    with pytest.raises(BatchError) as info:
        collect(stage)
    assert type(info.value) is BatchError
    assert info.value.args[0] == "seven"
    assert 7 in info.value.args[1]


def test_an_error_after_unbatch_reaches_the_consumer(backend):
    stage = range(20) | backend.batch(3) | backend.unbatch | backend.map(fail_at_seven, workers=2)
    with pytest.raises(BatchError) as info:
        collect(stage)
    assert type(info.value) is BatchError
    assert info.value.args == ("seven", 7)


def test_an_error_before_batch_reaches_the_consumer(backend):
    stage = range(20) | backend.map(fail_at_seven, workers=2) | backend.batch(4)
    with pytest.raises(BatchError) as info:
        collect(stage)
    assert info.value.args == ("seven", 7)


def test_an_error_in_the_source_of_a_batch_reaches_the_consumer(backend):
    with pytest.raises(BatchError) as info:
        collect(backend.batch(10, failing_source(), timeout=0.05))
    assert info.value.args == ("source", 5)


def test_unbatch_of_a_non_iterable_fails(backend):
    with pytest.raises(TypeError):
        collect(backend.unbatch([[1], 2, [3]]))
