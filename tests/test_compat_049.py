"""Code written for pypeln 0.4.9 imports more than the stage functions: ``pypeln.utils``,
each backend's ``utils`` module, ``BaseStage`` and ``pl.<backend>.Stage`` in annotations.
Every name is imported here in its 0.4.9 spelling and used in a small pipeline."""

from __future__ import annotations

import asyncio
import typing
from typing import Any, List

import pytest

import pypeln as pl
import pypeln.process.utils
import pypeln.sync.utils
import pypeln.task.utils
import pypeln.thread.utils
from pypeln.task.utils import run_test_async
from pypeln.utils import (
    UNDEFINED,
    A,
    B,
    BaseStage,
    Element,
    Kwargs,
    NoLock,
    Partial,
    PipelineException,
    StageReuseError,
    T,
    Undefined,
)

pytestmark = pytest.mark.timeout(60)

BACKENDS = ["sync", "thread", "process", "task"]


@pytest.mark.timeout(30)
def test_utils_names_are_this_packages_objects() -> None:
    assert Partial is pl.Partial
    assert Element is pl.Element
    assert BaseStage is pl.BaseStage is pl.Stage
    assert isinstance(UNDEFINED, Undefined) and Undefined() is UNDEFINED
    assert [typing.TypeVar] * 3 == [type(A), type(B), type(T)]
    assert Kwargs == typing.Dict[str, Any]
    assert issubclass(StageReuseError, Exception)
    assert issubclass(PipelineException, Exception) and issubclass(NoLock, Exception)
    assert Element((0,), 1).set(2) == Element((0,), 2)


@pytest.mark.timeout(30)
def test_a_hand_built_partial_is_piped() -> None:
    add1: Partial[pl.Stage[int]] = Partial(lambda s: pl.thread.map(lambda x: x + 1, s))
    assert sorted(range(3) | add1) == [1, 2, 3]
    assert sorted(add1(range(3)) | Partial(lambda s: pl.sync.map(str, s))) == ["1", "2", "3"]


@pytest.mark.timeout(30)
def test_a_stage_can_be_iterated_again_so_stage_reuse_error_never_comes() -> None:
    stage = pl.thread.map(abs, [-1, -2])
    try:
        assert sorted(stage) == sorted(stage) == [1, 2]
    except StageReuseError:  # pragma: no cover - the 0.4.9 spelling still imports
        pytest.fail("stages are reusable")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", BACKENDS)
def test_each_backends_utils_namespace_is_seen_by_the_workers(name: str) -> None:
    backend = getattr(pl, name)
    utils = getattr(pypeln, name).utils
    assert utils.Namespace is backend.Namespace
    ns = utils.Namespace(count=0)

    def count(x: int) -> None:
        with ns:
            ns.count += x

    backend.each(count, range(10), workers=2, run=True)
    assert ns.count == 45


@pytest.mark.timeout(30)
def test_sync_utils_stage_status_is_the_injected_one() -> None:
    assert pypeln.sync.utils.StageStatus is pl.sync.StageStatus


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", BACKENDS)
def test_every_backends_stage_is_a_base_stage(name: str) -> None:
    stage = getattr(pl, name).map(lambda x: x * 2, range(3))
    assert isinstance(stage, pl.BaseStage)
    assert isinstance(stage, BaseStage)
    assert isinstance(stage, getattr(pl, name).Stage)
    assert sorted(stage) == [0, 2, 4]


@pytest.mark.timeout(30)
def test_backend_stage_annotations_evaluate_at_run_time() -> None:
    def double(stage: pl.thread.Stage[int]) -> pl.thread.Stage[int]:
        return pl.thread.map(lambda x: x * 2, stage)

    hints = typing.get_type_hints(double, globalns={"pl": pl})
    assert typing.get_origin(hints["stage"]) is pl.Stage
    assert typing.get_args(hints["return"]) == (int,)
    assert sorted(double(pl.thread.from_iterable(range(3)))) == [0, 2, 4]


@run_test_async
async def _run_a_pipeline(n: int, *, factor: int) -> List[int]:
    await asyncio.sleep(0)
    return sorted(await pl.task.map(lambda x: x * factor, range(n)))


@pytest.mark.timeout(30)
def test_run_test_async_passes_arguments_and_returns_the_result() -> None:
    assert _run_a_pipeline(3, factor=10) == [0, 10, 20]
    assert _run_a_pipeline.__name__ == "_run_a_pipeline"


@pytest.mark.timeout(30)
@run_test_async
async def test_run_test_async_runs_an_async_test() -> None:
    stage = pl.task.map(lambda x: x + 1, range(3))
    assert [x async for x in pl.task.ordered(stage)] == [1, 2, 3]


@pytest.mark.timeout(30)
def test_run_test_async_inside_a_running_loop_uses_a_loop_of_its_own() -> None:
    async def outer() -> List[int]:
        return _run_a_pipeline(2, factor=3)

    assert asyncio.run(outer()) == [0, 3]


@pytest.mark.timeout(30)
def test_run_test_async_lets_errors_through() -> None:
    @run_test_async
    async def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        fails()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", BACKENDS)
def test_backend_dir_stays_the_public_api(name: str) -> None:
    module = getattr(pl, name)
    assert getattr(pypeln, name).utils is not None  # imported above
    assert set(dir(module)) == set(module.__all__)
    assert "utils" not in module.__all__


@pytest.mark.timeout(60)
def test_importing_pypeln_does_not_import_the_utils_modules() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pypeln; "
        "print(sorted(m for m in sys.modules if m.startswith('pypeln') and 'utils' in m))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["sync", "thread", "process", "task"])
def test_a_partial_piped_into_its_source_builds_the_stage(name: str) -> None:
    """0.4.9's partials take their source from either side of ``|``."""
    backend = getattr(pl, name)
    assert sorted(backend.map(abs) | [-1, 2, -3]) == [1, 2, 3]
    assert sorted([-1, 2, -3] | backend.map(abs)) == [1, 2, 3]


def test_the_missing_stage_shows_as_undefined() -> None:
    """(As the default of `stage` in the stage functions' signatures, e.g. in `help()`.)"""
    assert repr(UNDEFINED) == "UNDEFINED"
