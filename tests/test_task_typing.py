"""Typed user code of `pl.task`: async and sync `f` infer the stage's item type."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

USER_CODE = """
from __future__ import annotations

from typing import AsyncIterable, AsyncIterator, List

from typing_extensions import assert_type

import pypeln as pl
from pypeln import Element, Stage
from pypeln.task.consume import AsyncPipelineIterator


async def to_str(x: int) -> str:
    return str(x)


def to_str_sync(x: int) -> str:
    return str(x)


async def chars(x: int) -> AsyncIterator[str]:
    yield str(x)


async def words(x: int) -> List[str]:
    return [str(x)]


async def keep(x: int) -> bool:
    return x > 0


def stages(xs: List[int]) -> None:
    assert_type(pl.task.map(to_str, xs), Stage[str])
    assert_type(pl.task.map(to_str_sync, xs), Stage[str])
    assert_type(xs | pl.task.map(to_str), Stage[str])
    assert_type(pl.task.flat_map(chars, xs), Stage[str])
    assert_type(pl.task.flat_map(words, xs), Stage[str])
    assert_type(pl.task.flat_map(lambda x: [str(x)], xs), Stage[str])
    assert_type(pl.task.filter(keep, xs), Stage[int])
    assert_type(pl.task.to_async_iterable(pl.task.map(to_str, xs)), AsyncPipelineIterator[str])
    assert_type(
        pl.task.to_async_iterable(xs, return_index=True), AsyncPipelineIterator[Element]
    )
    iterable: AsyncIterable[str] = pl.task.to_async_iterable(pl.task.map(to_str, xs))


async def consume(xs: List[int]) -> None:
    assert_type(await pl.task.map(to_str, xs), List[str])
    assert_type(await pl.task.collect(pl.task.map(to_str, xs)), List[str])
    async for value in pl.task.map(to_str, xs):
        assert_type(value, str)
"""


@pytest.mark.timeout(120)
def test_async_functions_infer_item_types(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    code = tmp_path / "task_user_code.py"
    code.write_text(USER_CODE)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(code)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    errors = [line for line in result.stdout.splitlines() if str(code) in line]
    assert not errors, "\n".join(errors)
