"""Typed user code: checked by mypy (tests/test_typing.py), never executed.

`assert_type` fails the type check when the inferred type differs.
"""

from __future__ import annotations

from typing import Callable, Iterable, List, Optional

from typing_extensions import assert_type

import pypeln as pl
from pypeln import Element, Stage
from pypeln._core.report import Report
from pypeln._core.stage import PipelineIterator
from pypeln._core.stats import RunStats, StageStats


def to_str(x: int) -> str:
    return str(x)


def parse(f: Callable[[int], str], xs: List[int]) -> None:
    assert_type(pl.thread.map(f, xs), Stage[str])
    assert_type(pl.sync.map(f, xs), Stage[str])
    assert_type(pl.thread.map(to_str, xs, workers=2), Stage[str])
    assert_type(xs | pl.thread.map(f) | list, List[str])
    assert_type(pl.thread.filter(lambda x: x > 0, xs), Stage[int])
    assert_type(pl.thread.flat_map(lambda x: [str(x)], xs), Stage[str])
    assert_type(pl.thread.ordered(pl.thread.map(f, xs)), Stage[str])
    assert_type(pl.thread.concat([pl.thread.map(f, xs), pl.sync.map(f, xs)]), Stage[str])
    assert_type(pl.thread.each(print, xs, run=True), None)
    assert_type(pl.thread.to_iterable(pl.thread.map(f, xs)), pl.PipelineIterator[str])
    assert_type(pl.thread.to_iterable(xs, return_index=True), pl.PipelineIterator[Element])
    it: Iterable[str] = pl.thread.to_iterable(pl.thread.map(f, xs))
    assert_type(it, Iterable[str])
    stage: Stage[str] = pl.thread.map(f, pl.sync.filter(lambda x: x % 2 == 0, xs))
    for value in stage:
        assert_type(value, str)


def process_and_task(f: Callable[[int], str], xs: List[int]) -> None:
    assert_type(pl.process.map(f, xs), Stage[str])
    assert_type(xs | pl.process.map(f) | list, List[str])
    assert_type(pl.process.filter(lambda x: x > 0, xs), Stage[int])
    assert_type(pl.task.map(f, xs), Stage[str])


def fallback(error: BaseException, value: int) -> str:
    return f"{value}: {error}"


def policies(f: Callable[[int], str], xs: List[int]) -> None:
    assert_type(pl.thread.map(f, xs, on_error="skip"), Stage[str])
    assert_type(pl.thread.map(f, xs, on_error=fallback), Stage[str])
    assert_type(pl.thread.map(f, xs, on_error=lambda e, x: "?"), Stage[str])
    assert_type(
        pl.thread.map(f, xs, retries=3, backoff=0.5, retry_on=(KeyError, TimeoutError)),
        Stage[str],
    )
    assert_type(pl.sync.map(f, xs, retry_on=KeyError, rate=2.5), Stage[str])
    assert_type(pl.process.map(f, xs, workers=2, retries=1, rate=10), Stage[str])
    assert_type(pl.task.map(f, xs, on_error="skip", retries=2, rate=5.0), Stage[str])
    assert_type(pl.thread.filter(lambda x: x > 0, xs, on_error="skip", retries=1), Stage[int])
    assert_type(pl.thread.flat_map(lambda x: [str(x)], xs, on_error=fallback), Stage[str])
    assert_type(pl.task.flat_map(lambda x: [str(x)], xs, rate=1), Stage[str])
    assert_type(pl.thread.each(print, xs, on_error="skip"), Stage[None])
    assert_type(pl.thread.each(print, xs, run=True, retries=2, rate=1.0), None)
    assert_type(xs | pl.thread.map(f, on_error="skip", retries=1) | list, List[str])

    it = pl.thread.to_iterable(pl.thread.map(f, xs, on_error="skip"), progress=False)
    assert_type(it, PipelineIterator[str])
    assert_type(it.stats, RunStats)
    for value in it:
        assert_type(value, str)
    report = it.stats.report()
    assert_type(report, Report)
    assert_type(report.bottleneck, Optional[StageStats])
    assert_type(it.stats[0], StageStats)
    assert_type(it.stats["pl.thread.map(f)"], StageStats)

    assert_type(pl.thread.run(pl.thread.map(f, xs), stats=True), RunStats)
    assert_type(pl.sync.run(pl.sync.each(print, xs), stats=True), RunStats)
    assert_type(pl.thread.run(pl.thread.map(f, xs)), None)
    assert_type(pl.thread.run(pl.thread.map(f, xs), stats=False), None)

    pl.thread.map(f, xs, retries="3")  # type: ignore[call-overload]
    pl.thread.map(f, xs, on_error=42)  # type: ignore[call-overload]
    pl.thread.map(f, xs, retry_on=[KeyError])  # type: ignore[call-overload]
    pl.thread.map(f, xs, rate="fast")  # type: ignore[call-overload]
