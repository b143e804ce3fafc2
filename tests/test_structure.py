"""The package's shape: arrows point down (the core imports no backend), every module
shows its public API only, the same on every backend, and each backend provides the
core's contracts (`pypeln._core.contracts`; tests/typing/backend_contracts.py checks the
same statically)."""

from __future__ import annotations

import ast
import asyncio
import inspect
import pathlib
import textwrap
from typing import Any, Dict, List, Set, Tuple

import pytest
from conftest import BACKEND_NAMES, MODULE_API, MODULE_EXTRAS, WORKER_PARTS

import pypeln as pl
from pypeln._core import contracts
from pypeln._core.execution import Execution

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


# -- each backend provides the core's contracts ------------------------------------------

WORKER_BACKENDS = [name for name in BACKEND_NAMES if name != "sync"]

#: Dunder methods a protocol may require; other underscored names are typing machinery.
_DUNDERS = ("__iter__", "__aiter__", "__len__")


def protocol_members(protocol: type) -> Dict[str, Any]:
    """The members `protocol` declares, its bases' in `contracts` included."""
    members: Dict[str, Any] = {}
    for klass in reversed(protocol.__mro__):
        if klass.__module__ != contracts.__name__:
            continue
        for name, value in vars(klass).items():
            if not name.startswith("_") or name in _DUNDERS:
                members[name] = value
    return members


def instance_attributes(cls: type) -> Set[str]:
    """The attributes instances of `cls` get: its slots and every ``self.x = ...``."""
    names: Set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("pypeln"):
            continue
        slots = vars(klass).get("__slots__", ())
        names.update([slots] if isinstance(slots, str) else slots)
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                if isinstance(node.value, ast.Name) and node.value.id == "self":
                    names.add(node.attr)
    return names


def positional_parameters(function: Any) -> int:
    """How many positional arguments `function` requires, ``self`` aside."""
    parameters = list(inspect.signature(function).parameters.values())[1:]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in parameters if p.kind in positional and p.default is p.empty)


def contract_problems(cls: type, protocol: type) -> List[str]:
    """How `cls` fails to provide `protocol`'s members (their names, sync or async, and
    the positional arguments the core passes); empty if it does."""
    problems = []
    attributes = instance_attributes(cls)
    for name, member in protocol_members(protocol).items():
        if isinstance(member, property):
            if not hasattr(cls, name) and name not in attributes:
                problems.append(f"{name}: missing attribute")
            continue
        implementation = getattr(cls, name, None)
        if not callable(implementation):
            problems.append(f"{name}: missing method")
            continue
        if inspect.iscoroutinefunction(member) != inspect.iscoroutinefunction(implementation):
            problems.append(f"{name}: sync/async differs from the contract")
        n = positional_parameters(member)
        try:
            inspect.signature(implementation).bind(None, *range(n))
        except TypeError:
            problems.append(f"{name}: cannot be called with {n} positional argument(s)")
    return problems


PROTOCOLS = [
    contracts.Run,
    contracts.Runner,
    contracts.Startable,
    contracts.Backend,
    contracts.ConnectingBackend,
    contracts.SourceReadingBackend,
    contracts.Worker,
    contracts.Supervisor,
    contracts.IterableQueue,
    contracts.BlockingIterableQueue,
    contracts.AsyncIterableQueue,
]


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.__name__)
def test_every_hook_of_the_contracts_is_documented(protocol: type) -> None:
    assert inspect.getdoc(protocol)
    members = protocol_members(protocol)
    assert members
    for name, member in members.items():
        doc = member.__doc__ if isinstance(member, property) else inspect.getdoc(member)
        assert doc, f"{protocol.__name__}.{name} has no docstring"


def test_the_contract_checker_sees_a_missing_or_wrong_hook() -> None:
    class NotAQueue:
        maxsize = 0

        def __len__(self) -> int:
            return 0

        def add_producers(self) -> None: ...

        async def done(self) -> None: ...

    problems = contract_problems(NotAQueue, contracts.IterableQueue)
    assert problems == [
        "add_producers: cannot be called with 1 positional argument(s)",
        "done: sync/async differs from the contract",
        "close: missing method",
    ]


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_every_backend_provides_the_backend_hooks(name: str) -> None:
    backend = getattr(pl, name).from_iterable([]).backend
    assert backend.name == name
    assert contract_problems(type(backend), contracts.Backend) == []
    run = backend.start(getattr(pl, name).from_iterable([1, 2]), 0)
    try:
        assert contract_problems(type(run), contracts.Run) == []
        assert [x for batch in run for _, x in batch] == [1, 2]
    finally:
        run.cancel()
        run.close()


def test_the_optional_backend_hooks() -> None:
    task_backend = type(pl.task.from_iterable([]).backend)
    assert contract_problems(task_backend, contracts.ConnectingBackend) == []
    process_backend = type(pl.process.from_iterable([]).backend)
    assert contract_problems(process_backend, contracts.SourceReadingBackend) == []
    for name in ("sync", "thread"):
        backend = getattr(pl, name).from_iterable([]).backend
        assert getattr(backend, "connect", None) is None
        assert getattr(backend, "source_runner", None) is None


def test_the_core_run_is_a_run() -> None:
    assert contract_problems(Execution, contracts.Run) == []


@pytest.mark.parametrize("part", WORKER_PARTS)
def test_each_backend_has_a_part_of_its_own(part: str) -> None:
    objects = [getattr(getattr(pl, name), part) for name in WORKER_BACKENDS]
    assert all(inspect.isclass(o) for o in objects), objects
    assert len({id(o) for o in objects}) == len(objects), f"{part} is shared: {objects}"
    for name, o in zip(WORKER_BACKENDS, objects):  # its own, or the core's: no one else's
        assert o.__module__.startswith((f"pypeln.{name}", "pypeln._core.")), (name, o)


def _queue_contract(name: str) -> type:
    return contracts.AsyncIterableQueue if name == "task" else contracts.BlockingIterableQueue


@pytest.mark.parametrize("name", WORKER_BACKENDS)
def test_each_backends_parts_provide_the_contracts(name: str) -> None:
    module = getattr(pl, name)
    assert contract_problems(module.Worker, contracts.Worker) == []
    assert contract_problems(module.Supervisor, contracts.Supervisor) == []
    assert contract_problems(module.IterableQueue, _queue_contract(name)) == []
    if name != "task":  # a task supervisor is a coroutine of the run's loop, not a runner
        assert contract_problems(module.Supervisor, contracts.Runner) == []


def test_the_process_queue_is_the_core_queue_under_its_own_name() -> None:
    queue = pl.process.IterableQueue(maxsize=1)
    assert isinstance(queue, pl.thread.IterableQueue)
    queue.add_producers(1)
    queue.put(((0,), "x"))
    queue.done()
    assert list(queue) == [((0,), "x")]
