"""Typed user code: checked by mypy (tests/test_typing.py), never executed.

`assert_type` fails the type check when the inferred type differs.
"""

from __future__ import annotations

from typing import Callable, Iterable, List

from typing_extensions import assert_type

import pypeln as pl
from pypeln import Element, Stage


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
