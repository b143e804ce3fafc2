"""The package's shape: arrows point down (the core imports no backend), and every module
shows its public API only, the same on every backend."""

from __future__ import annotations

import ast
import asyncio
import pathlib
from typing import Any, Dict, List, Set, Tuple

import pytest
from conftest import BACKEND_NAMES, MODULE_API, MODULE_EXTRAS, WORKER_PARTS

import pypeln as pl
from pypeln._core import stage as core_stage

pytestmark = pytest.mark.timeout(60)

PACKAGE = pathlib.Path(pl.__file__).parent
BACKEND_PACKAGES = ("sync", "thread", "process", "task", "ray")


# -- the core imports no backend ---------------------------------------------------------


def imported_modules(source: str, module: str, is_package: bool = False) -> Set[str]:
    """The absolute names of the modules `source` (the code of `module`) imports.

    Relative imports are resolved; ``from x import y`` gives both ``x`` and ``x.y``
    (``y`` may be a module). Calls of ``importlib.import_module`` and ``__import__`` with
    a literal name count too.
    """
    parts = module.split(".")
    package = parts if is_package else parts[:-1]
    names: Set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            names.add(origin)
            names.update(f"{origin}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if called in ("import_module", "__import__") and isinstance(first, ast.Constant):
                names.add(str(first.value))
    return names


def is_backend(name: str) -> bool:
    return any(name == f"pypeln.{b}" or name.startswith(f"pypeln.{b}.") for b in BACKEND_PACKAGES)


def core_modules() -> List[Tuple[str, pathlib.Path, bool]]:
    found = []
    for path in sorted((PACKAGE / "_core").rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found.append((".".join(parts), path, is_package))
    return found


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from .. import task", "pypeln.task"),
        ("from ..thread.supervisor import Supervisor", "pypeln.thread.supervisor"),
        ("from ...pypeln import process", "pypeln.process"),
        ("import pypeln.sync", "pypeln.sync"),
        ("from pypeln import thread as t", "pypeln.thread"),
        ("importlib.import_module('pypeln.task')", "pypeln.task"),
        ("def f():\n    from ..task import run", "pypeln.task.run"),
    ],
)
def test_the_import_check_sees_backend_imports(source: str, expected: str) -> None:
    names = imported_modules(source, "pypeln._core.stage")
    assert expected in names
    assert any(is_backend(n) for n in names)


def test_the_import_check_lets_core_imports_pass() -> None:
    source = "from . import checks\nfrom .element import Item\nfrom ..errors import X"
    names = imported_modules(source, "pypeln._core.stage")
    assert not any(is_backend(n) for n in names), names


def test_the_core_imports_no_backend() -> None:
    modules = core_modules()
    assert len(modules) > 5
    offenders: Dict[str, List[str]] = {}
    for module, path, is_package in modules:
        names = imported_modules(path.read_text(encoding="utf-8"), module, is_package)
        bad = sorted(n for n in names if is_backend(n))
        if bad:
            offenders[module] = bad
    assert not offenders, f"the core imports backends: {offenders}"


def test_without_an_async_consumer_stages_say_what_is_missing(monkeypatch) -> None:
    monkeypatch.setattr(core_stage, "_async_consumer", None)
    stage = pl.sync.map(abs, [1])

    async def consume() -> Any:
        return await stage

    with pytest.raises(RuntimeError, match="pypeln.task"):
        asyncio.run(consume())
    with pytest.raises(RuntimeError, match="pypeln.task"):
        stage.__aiter__()


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_every_stage_is_consumable_from_asyncio(name: str) -> None:
    stage = getattr(pl, name).map(abs, [-1, -2])

    async def consume() -> Any:
        return sorted(await stage), sorted([x async for x in stage])

    assert asyncio.run(consume()) == ([1, 2], [1, 2])


# -- every module shows its public API only, the same on every backend -------------------

#: Names that are not public (not in ``__all__``, not in ``dir``) but stay importable.
KEPT_IMPORTABLE = {
    "process": ["Channel"],  # one worker's pipe end: internal
    "task": ["TaskBackend"],  # subclassed by extensions (and tests)
}


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_dir_shows_the_public_api_only(name: str) -> None:
    module = getattr(pl, name)
    assert len(set(module.__all__)) == len(module.__all__), "a name is listed twice"
    assert set(dir(module)) == set(module.__all__)
    for public in module.__all__:
        assert hasattr(module, public), public


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_every_module_exports_the_contract_and_only_documented_extras(name: str) -> None:
    expected = set(MODULE_API) | set(MODULE_EXTRAS.get(name, ()))
    if name != "sync":
        expected |= set(WORKER_PARTS)
    exported = set(getattr(pl, name).__all__)
    assert not expected - exported, f"missing from pl.{name}.__all__"
    assert not exported - expected, f"undocumented extras in pl.{name}.__all__"


@pytest.mark.parametrize("name", sorted(KEPT_IMPORTABLE))
def test_internal_names_stay_importable(name: str) -> None:
    module = getattr(pl, name)
    for internal in KEPT_IMPORTABLE[name]:
        assert hasattr(module, internal)
        assert internal not in module.__all__
