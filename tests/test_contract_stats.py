"""Per-stage statistics (`pypeln._core.stats`): what every stage counts, readable live from
any thread and complete once the run ended, the same in every backend; and the report,
which names the stage the others wait for.

``it = backend.to_iterable(stage)`` carries the run's `RunStats` as ``it.stats`` (one row
per stage, upstream first); ``backend.run(stage, stats=True)`` returns them.
"""

from __future__ import annotations

import asyncio
import functools
import re
import threading
import time
from collections import Counter
from html.parser import HTMLParser
from typing import Any, Iterator, List, Tuple

import pytest
from conftest import BACKEND_NAMES, name_of

import pypeln as pl
from pypeln._core.stats import RunStats

pytestmark = pytest.mark.timeout(60)

TIMEOUT = 0.3
SLOW_SECONDS = 3.0


class Boom(Exception):
    pass


# Module-level functions: `pl.process` pickles them.


def identity(x: int) -> int:
    return x


def double(x: int) -> int:
    return x * 2


def is_even(x: int) -> bool:
    return x % 2 == 0


def twice(x: int) -> List[int]:
    return [x, x]


def ignore(x: int) -> None:
    return None


def fails_on_multiples_of_3(x: int) -> int:
    if x % 3 == 0:
        raise Boom("bad", x)
    return x


def nap(seconds: float) -> None:
    """Sleep in short steps: a thread can only be stopped between them."""
    for _ in range(max(1, round(seconds / 0.05))):
        time.sleep(0.05)


def slow_on(slow: Tuple[int, ...], x: int) -> int:
    if x in slow:
        nap(SLOW_SECONDS)
    return x * 10


async def slow_on_async(slow: Tuple[int, ...], x: int) -> int:
    if x in slow:
        await asyncio.sleep(SLOW_SECONDS)
    return x * 10


def takes(seconds: float, x: int) -> int:
    time.sleep(seconds)
    return x


async def takes_async(seconds: float, x: int) -> int:
    await asyncio.sleep(seconds)
    return x


def timeout_handler(e: BaseException, x: int) -> Any:
    return ("timed out", x)


def sleeping(backend: Any, seconds: float) -> Any:
    """A function of `backend` that takes `seconds` per item (a coroutine in `task`)."""
    fn = takes_async if name_of(backend) == "task" else takes
    return functools.partial(fn, seconds)


def run_to_list(backend: Any, stage: Any) -> Any:
    it = backend.to_iterable(stage)
    return list(it), it.stats


def xfail_if(request: pytest.FixtureRequest, condition: bool, reason: str) -> None:
    if condition:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


# -- what adds up ------------------------------------------------------------------------


def test_in_is_out_plus_skipped_for_map(backend):
    out, stats = run_to_list(
        backend, backend.map(fails_on_multiples_of_3, range(30), workers=3, on_error="skip")
    )
    assert sorted(out) == [x for x in range(30) if x % 3]
    row = stats[0]
    assert row.items_in == 30
    assert row.items_out == 20
    assert row.skipped == row.failed == 10
    assert row.items_in == row.items_out + row.skipped


def test_in_is_out_plus_kept_and_rejected_for_filter(backend):
    stage = backend.map(fails_on_multiples_of_3, range(30), on_error="skip")
    stage = backend.filter(is_even, stage)
    out, stats = run_to_list(backend, stage)
    assert sorted(out) == [x for x in range(30) if x % 3 and x % 2 == 0]
    first, second = stats
    assert second.items_in == first.items_out == 20
    assert second.items_out == len(out)


def test_in_is_out_plus_dropped_with_a_timeout(backend, request):
    fn = slow_on_async if name_of(backend) == "task" else slow_on
    stage = backend.map(functools.partial(fn, (2, 4)), range(6), workers=2, timeout=TIMEOUT)
    out, stats = run_to_list(backend, stage)
    assert sorted(out) == [0, 10, 30, 50]
    row = stats[0]
    assert row.timed_out == 2
    assert (row.items_in, row.items_out) == (6, 4)


def test_a_timed_out_item_handed_to_on_error_is_counted_in_and_out(backend, request):
    fn = slow_on_async if name_of(backend) == "task" else slow_on
    stage = backend.map(
        functools.partial(fn, (2,)), range(6), workers=2, timeout=TIMEOUT, on_error=timeout_handler
    )
    out, stats = run_to_list(backend, stage)
    assert Counter(out) == Counter([0, 10, ("timed out", 2), 30, 40, 50])
    row = stats[0]
    assert (row.timed_out, row.failed) == (1, 1)
    assert (row.items_in, row.items_out) == (6, 6)


def test_every_stage_of_a_chain_takes_every_source_item(backend):
    n = 40
    stage = backend.map(double, range(n), workers=2)
    stage = backend.map(identity, stage, workers=3, maxsize=2)
    stage = backend.flat_map(twice, stage)
    stage = backend.filter(is_even, stage, workers=2)
    out, stats = run_to_list(backend, stage)
    assert len(out) == 2 * n
    assert len(stats) == 4
    assert [row.items_in for row in stats] == [n, n, n, 2 * n]
    assert [row.items_out for row in stats] == [n, n, 2 * n, 2 * n]
    for row in stats:
        assert (row.failed, row.retried, row.skipped, row.timed_out) == (0, 0, 0, 0)


def test_each_takes_every_item_and_emits_none(backend):
    stats = backend.run(backend.each(ignore, range(25), workers=2), stats=True)
    assert stats is not None
    (row,) = stats
    assert (row.items_in, row.items_out) == (25, 0)


def test_the_figures_after_the_run(backend):
    out, stats = run_to_list(backend, backend.map(identity, range(20), workers=2))
    assert sorted(out) == list(range(20))
    row = stats[0]
    assert row.workers_alive == 0
    assert row.queue_depth == 0
    assert row.busy >= 0 and row.waiting >= 0 and row.blocked >= 0
    assert stats.elapsed > 0
    assert not stats.running
    d = row.as_dict()
    for key in (
        "name",
        "workers",
        "items_in",
        "items_out",
        "failed",
        "retried",
        "skipped",
        "timed_out",
        "busy",
        "waiting",
        "blocked",
        "queue_depth",
        "queue_peak",
        "workers_alive",
    ):
        assert key in d
    assert d["items_in"] == 20


def test_rows_by_name_and_by_position(backend):
    stage = backend.filter(is_even, backend.map(double, range(10)))
    _, stats = run_to_list(backend, stage)
    assert [row.op for row in stats] == ["map", "filter"]
    for k, row in enumerate(stats):
        assert stats[k] is row
        assert stats[row.name] is row
        assert f"pl.{name_of(backend)}." in row.name
    assert "double" in stats[0].name and "is_even" in stats[1].name
    with pytest.raises(KeyError):
        stats["no such stage"]


# -- live --------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_stats_are_readable_live_while_the_consumer_waits(concurrent_backend):
    """The consumer holds one item and waits; meanwhile the stage goes on, and a thread
    watching ``it.stats`` sees `items_in` grow."""
    backend = concurrent_backend
    it = backend.to_iterable(backend.map(sleeping(backend, 0.005), range(300), workers=1))
    seen: List[int] = []
    alive: List[int] = []
    errors: List[BaseException] = []
    grown, stop = threading.Event(), threading.Event()

    def watch() -> None:
        try:
            while not stop.is_set():
                row = it.stats[0]
                seen.append(row.items_in)
                alive.append(row.workers_alive)
                str(it.stats.report())  # the report renders mid-run too
                if len(set(seen)) >= 3:
                    grown.set()
                time.sleep(0.005)
        except BaseException as e:
            errors.append(e)
            grown.set()

    first = next(it)  # the run is on
    watcher = threading.Thread(target=watch, name="test-stats-watcher", daemon=True)
    watcher.start()
    try:
        grew = grown.wait(10)
    finally:
        stop.set()
        watcher.join(5)
    rest = list(it)
    assert errors == []
    assert grew, f"items_in never grew while the run went on: {seen[:5]}...{seen[-5:]}"
    assert seen == sorted(seen), "items_in went down"
    assert max(alive) >= 1
    assert sorted([first, *rest]) == list(range(300))
    assert it.stats[0].items_in == 300
    assert it.stats[0].workers_alive == 0


@pytest.mark.timeout(30)
def test_stats_are_readable_from_another_thread_during_the_run(backend):
    it = backend.to_iterable(backend.map(sleeping(backend, 0.002), range(200), workers=2))
    seen: List[int] = []
    errors: List[BaseException] = []
    stop = threading.Event()

    def watch() -> None:
        try:
            while not stop.is_set():
                seen.append(sum(row.items_in for row in it.stats))
                it.stats.report()
                time.sleep(0.002)
        except BaseException as e:
            errors.append(e)

    watcher = threading.Thread(target=watch, name="test-stats-watcher", daemon=True)
    watcher.start()
    try:
        out = list(it)
    finally:
        stop.set()
        watcher.join(5)
    assert errors == []
    assert sorted(out) == list(range(200))
    assert seen == sorted(seen)
    assert len(set(seen)) >= 3, "the figures did not move while the run went on"
    assert it.stats[0].items_in == 200


def test_stats_before_the_run_starts(backend):
    it = backend.to_iterable(backend.map(identity, range(3)))
    report = it.stats.report()
    assert report.bottleneck is None
    assert isinstance(str(report), str)
    assert sorted(it) == [0, 1, 2]
    assert it.stats[0].items_out == 3


# -- run(stats=) -------------------------------------------------------------------------


def test_run_returns_the_stats_when_asked(backend):
    assert backend.run(backend.map(identity, range(5))) is None
    stats = backend.run(backend.map(identity, range(5)), stats=True)
    assert isinstance(stats, RunStats)
    assert len(stats) == 1
    assert (stats[0].items_in, stats[0].items_out) == (5, 5)
    assert not stats.running


def test_run_of_several_stages_returns_the_stats_of_all(backend):
    stats = backend.run(backend.each(ignore, range(5)), backend.map(identity, range(7)), stats=True)
    assert stats is not None
    taken = {row.op: row.items_in for row in stats if row.op in ("each", "map")}
    assert taken == {"each": 5, "map": 7}


def test_run_stats_must_be_a_bool(backend):
    with pytest.raises(TypeError, match=r"\bstats\b"):
        backend.run(backend.map(identity, range(5)), stats="yes")


# -- the report --------------------------------------------------------------------------


def test_the_report_names_every_stage(backend):
    stage = backend.map(double, range(20), workers=2)
    stage = backend.filter(is_even, stage)
    stage = backend.map(fails_on_multiples_of_3, stage, on_error="skip")
    _, stats = run_to_list(backend, stage)
    text = str(stats.report())
    assert len(stats) == 3
    for row in stats:
        assert row.name in text
    assert all(row.name in repr(stats) for row in stats)
    lines = text.splitlines()
    assert len(lines) >= 1 + len(stats)
    assert stats.report().summary() in text


def test_the_report_is_an_html_table(backend):
    stage = backend.filter(is_even, backend.map(double, range(20)))
    _, stats = run_to_list(backend, stage)
    html = stats._repr_html_()
    assert html.lstrip().startswith("<table")
    assert "</table>" in html
    assert html.count("<tr>") == 1 + len(stats)
    assert html.count("<th>") >= 10
    for row in stats:
        assert row.name in html  # module-level functions: nothing to escape
    assert html == stats.report()._repr_html_()


class _Cells(HTMLParser):
    """The cells of an HTML table, row by row, and any text outside a cell."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: List[List[str]] = []
        self.stray: List[str] = []
        self.paragraphs: List[str] = []
        self._cell: Any = None
        self._in_p = False

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "p":
            self._in_p = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self.rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "p":
            self._in_p = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        elif self._in_p:
            self.paragraphs.append(data)
        elif data.strip():
            self.stray.append(data)


def test_the_html_table_holds_the_text_tables_cells(backend):
    stage = backend.map(double, backend.map(double, range(20)), workers=2)
    _, stats = run_to_list(backend, stage)
    report = stats.report()
    parsed = _Cells()
    parsed.feed(stats._repr_html_())
    assert parsed.stray == [], f"text outside the table's cells: {parsed.stray}"
    header, *body = parsed.rows
    assert header == list(pl.Report.HEADERS)
    text_rows = [line.split() for line in str(report).splitlines()[1 : 1 + len(stats)]]
    assert len(body) == len(stats) == len(text_rows)
    for cells, words, row in zip(body, text_rows, stats):
        assert len(cells) == len(pl.Report.HEADERS)
        assert cells[0].lstrip("* ") == row.name
        assert " ".join(cells).split() == words  # the same values, column by column
    assert parsed.paragraphs == [report.summary()]


# -- the bottleneck ----------------------------------------------------------------------

#: How long the slow stage takes per item, and how many items.
SLOW_PER_ITEM = 0.008
ITEMS = 80


def three_stages(names: List[str], slow: int) -> Any:
    """Three maps of backends `names`; the one at position `slow` takes SLOW_PER_ITEM."""
    stage: Any = range(ITEMS)
    for k, name in enumerate(names):
        backend = getattr(pl, name)
        f = sleeping(backend, SLOW_PER_ITEM) if k == slow else identity
        stage = backend.map(f, stage)
    return stage


def assert_bottleneck(names: List[str], slow: int, evidence: bool = False) -> None:
    """The stage at position `slow` is named; with `evidence`, the stage after it is cited
    as waiting for input (only where all start together: a process stage after a thread
    stage may start when most of the run is over)."""
    consumer = getattr(pl, names[-1])
    it = consumer.to_iterable(three_stages(names, slow))
    assert sorted(it) == list(range(ITEMS))
    report = it.stats.report()
    rows = list(it.stats)
    assert [row.op for row in rows] == ["map"] * 3
    expected = rows[slow]
    assert report.bottleneck is expected, (
        f"expected {expected.name} (position {slow}), got "
        f"{report.bottleneck.name if report.bottleneck is not None else None}: {report.why}\n"
        f"{report}"
    )
    verdict = re.fullmatch(
        r"Bottleneck: (.+?): its workers were busy \d+% of the time(;.*)?\.", report.why
    )
    assert verdict is not None and verdict.group(1) == expected.name, report.why
    if evidence and slow + 1 < len(rows):
        # the evidence: the stage after it waited for input most of the time
        assert f"; {rows[slow + 1].name} after it waited for input " in report.why, report.why
    assert marked_rows(report) == [expected.name], f"only the bottleneck's row is marked:\n{report}"


def marked_rows(report: Any) -> List[str]:
    """The names of the report's rows marked as the bottleneck."""
    return [line[2:].split("  ")[0] for line in str(report).splitlines() if line.startswith("* ")]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("slow", [0, 1, 2], ids=["first", "middle", "last"])
def test_the_slow_stage_is_the_bottleneck(backend, slow):
    for _ in range(2):
        assert_bottleneck([name_of(backend)] * 3, slow, evidence=True)


def slow_source(n: int, seconds: float) -> Iterator[int]:
    for x in range(n):
        time.sleep(seconds)
        yield x


@pytest.mark.timeout(120)
def test_a_busy_stage_is_named_before_a_waiting_first_stage():
    """A slow source and, two stages on, a stage as slow as it: the first stage waits for
    input most of the time, but a stage whose workers were busy most of the time is the
    one named, not the source."""
    stage = pl.thread.map(identity, slow_source(ITEMS, SLOW_PER_ITEM))
    stage = pl.thread.map(functools.partial(takes, SLOW_PER_ITEM), stage)
    it = pl.thread.to_iterable(stage)
    assert sorted(it) == list(range(ITEMS))
    report = it.stats.report()
    first, busy = list(it.stats)
    assert report.bottleneck is busy, f"{report.why}\n{report}"


#: A slow source or loop: 40 items of 20 ms.
SLOW_END_ITEMS, SLOW_END_PER_ITEM = 40, 0.02


def assert_no_stage_named(backend: Any, report: Any, verdict: str) -> None:
    if name_of(backend) in ("process", "ray"):
        # starting processes or actors can take most of a short run on a busy machine
        verdict = rf"(?:{verdict})|No stage stands out: .+"
    assert report.bottleneck is None, f"{report.why}\n{report}"
    assert re.fullmatch(verdict, report.why), f"{report.why}\n{report}"
    assert marked_rows(report) == [], f"no row is marked:\n{report}"


@pytest.mark.timeout(120)
def test_a_slow_source_is_named_as_the_bottleneck(backend):
    """The stages wait for a slow source: the report says so and names no stage."""
    it = backend.to_iterable(backend.map(identity, slow_source(SLOW_END_ITEMS, SLOW_END_PER_ITEM)))
    assert sorted(it) == list(range(SLOW_END_ITEMS))
    report = it.stats.report()
    name = re.escape(it.stats[0].name)
    verdict = rf"The source is the bottleneck: {name} waited for input \d+% of the time\."
    assert_no_stage_named(backend, report, verdict)


@pytest.mark.timeout(120)
def test_a_slow_consumer_is_named_as_the_bottleneck(backend):
    """A loop slower than the stage, which its full output queue holds back: the report
    names the consumer, not the stage."""
    it = backend.to_iterable(backend.map(identity, range(SLOW_END_ITEMS), maxsize=1))
    for _ in it:
        time.sleep(SLOW_END_PER_ITEM)
    report = it.stats.report()
    name = re.escape(it.stats[0].name)
    verdict = (
        rf"The consumer is the bottleneck: {name} was blocked on its full output \d+% of the time\."
    )
    assert_no_stage_named(backend, report, verdict)


@pytest.mark.timeout(120)
def test_a_stage_that_was_hardly_busy_is_not_named(backend):
    """A slow loop behind an unbounded output: the stage is done early and never blocked,
    so no stage stands out, and none is called the bottleneck."""
    it = backend.to_iterable(backend.map(identity, range(SLOW_END_ITEMS)))
    for _ in it:
        time.sleep(SLOW_END_PER_ITEM)
    report = it.stats.report()
    if name_of(backend) == "sync":  # its output is the loop itself: the loop holds it back
        assert report.why.startswith("The consumer is the bottleneck"), report.why
        return
    name = re.escape(it.stats[0].name)
    verdict = rf"No stage stands out: the busiest, {name}, was busy \d% of the time; .+\."
    assert_no_stage_named(backend, report, verdict)


MIXED = [
    ["thread", "process", "task"],
    ["sync", "thread", "thread"],
    ["task", "thread", "process"],
    ["thread", "sync", "thread"],
    ["process", "task", "sync"],
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("slow", [0, 1, 2], ids=["first", "middle", "last"])
@pytest.mark.parametrize("names", MIXED, ids=["-".join(n) for n in MIXED])
def test_the_slow_stage_is_the_bottleneck_across_backends(names, slow):
    if not set(names) <= set(BACKEND_NAMES):
        pytest.skip("a backend is not present")
    assert_bottleneck(names, slow)


def keeps_slowly(seconds: float, x: int) -> bool:
    time.sleep(seconds)
    return True


def one_slowly(seconds: float, x: int) -> List[int]:
    time.sleep(seconds)
    return [x]


def nothing_slowly(seconds: float, x: int) -> None:
    time.sleep(seconds)


SLOW_OPS = {
    "filter": (keeps_slowly, list(range(ITEMS))),
    "flat_map": (one_slowly, list(range(ITEMS))),
    "each": (nothing_slowly, []),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("op", list(SLOW_OPS))
def test_any_operator_can_be_the_bottleneck(op):
    """A slow filter, flat_map or each between two maps is named, with its evidence: items
    waited for it, and the stage after it waited for input."""
    f, expected = SLOW_OPS[op]
    stage = pl.thread.map(identity, range(ITEMS))
    stage = getattr(pl.thread, op)(functools.partial(f, SLOW_PER_ITEM), stage)
    it = pl.thread.to_iterable(pl.thread.map(identity, stage))
    assert sorted(it) == expected
    before, slow, after = list(it.stats)
    report = it.stats.report()
    assert report.bottleneck is slow, f"{report.why}\n{report}"
    evidence = (
        rf"(up to \d+ items waited for it at once"
        rf"|{re.escape(before.name)} before it was blocked on a full queue \d+%)"
    )
    assert re.fullmatch(
        rf"Bottleneck: {re.escape(slow.name)}: its workers were busy \d+% of the time; "
        rf"{evidence}; {re.escape(after.name)} after it waited for input \d+%\.",
        report.why,
    ), f"{report.why}\n{report}"


def test_a_sync_stage_given_several_workers_is_weighed_as_the_one_it_runs(request):
    stage = pl.sync.map(functools.partial(takes, SLOW_PER_ITEM), range(ITEMS), workers=4)
    stage = pl.thread.map(functools.partial(takes, SLOW_PER_ITEM / 2), stage)
    it = pl.thread.to_iterable(stage)
    assert sorted(it) == list(range(ITEMS))
    assert it.stats.report().bottleneck is it.stats[0]


def test_the_report_of_an_empty_run(backend):
    out, stats = run_to_list(backend, backend.map(identity, []))
    assert out == []
    assert (stats[0].items_in, stats[0].items_out) == (0, 0)
    report = stats.report()
    assert stats[0].name in str(report)
    assert report.why


class Fetcher:
    def get(self, x: int) -> int:
        return x


class Named:
    """A callable object that carries a `__name__` (as some decorators' results do)."""

    def __init__(self) -> None:
        self.__name__ = "fetch"

    def __call__(self, x: int) -> int:
        return x


@pytest.mark.parametrize(
    "f, name",
    [
        (identity, "identity"),
        (Fetcher().get, "Fetcher.get"),
        (Named(), "fetch"),
        (functools.partial(functools.partial(takes, 0.0)), "takes"),
        (functools.partial(Named()), "fetch"),
        (functools.partial(abs), "abs"),
    ],
    ids=["function", "method", "named-object", "partial", "partial-object", "partial-builtin"],
)
def test_a_row_is_named_after_the_stage_and_its_function(f, name):
    stats = pl.thread.run(pl.thread.map(f, range(3)), stats=True)
    assert stats[0].name == f"pl.thread.map({name})"


def test_a_row_of_a_callable_without_a_name_is_named_after_the_stage():
    class Anonymous:
        def __call__(self, x: int) -> int:
            return x

    stats = pl.thread.run(pl.thread.map(Anonymous(), range(3)), stats=True)
    assert stats[0].name == "pl.thread.map"


def test_counting_does_not_leak_into_other_runs(backend):
    stage = backend.map(identity, range(10))
    first, second = backend.to_iterable(stage), backend.to_iterable(stage)
    assert sorted(first) == sorted(second) == list(range(10))
    assert first.stats is not second.stats
    assert first.stats[0].items_in == second.stats[0].items_in == 10


def test_a_run_counts_its_own_items_when_nested(backend):
    # a stage whose source is another backend's stage: one RunStats for the whole run
    other = pl.thread if name_of(backend) != "thread" else pl.sync
    stage = backend.map(identity, other.map(double, range(15)))
    out, stats = run_to_list(backend, stage)
    assert sorted(out) == [x * 2 for x in range(15)]
    assert [(row.op, row.items_in, row.items_out) for row in stats] == [
        ("map", 15, 15),
        ("map", 15, 15),
    ]
