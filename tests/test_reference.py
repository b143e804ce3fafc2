"""The API reference covers every public name, and every public name documents itself.

The reference pages (docs/reference/) render docstrings with mkdocstrings, so the
docstrings are the single source: each public function and class has one with an example,
the examples run, each public name has its place in the reference, and the site's nav
lists every page. Building the site itself is `./dev docs`; these checks need no mkdocs.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set, Tuple

import pytest
from conftest import STAGE_FUNCTIONS

import pypeln as pl

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
REFERENCE = DOCS / "reference"
BACKENDS = ("process", "thread", "task", "sync", "ray")
MODULES = ("pypeln", *(f"pypeln.{b}" for b in BACKENDS))

#: The classes a run builds for each stage (API.md): the reference shows their docstring
#: only (``members: false``), as their methods are internal, so only the class needs one.
MACHINERY = {"Worker", "Supervisor", "IterableQueue"}


def _public() -> Iterator[Tuple[str, str, Any]]:
    """(module, name, object) for every name of every public module's ``__all__``."""
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            yield module_name, name, getattr(module, name)


def _has_example(doc: str) -> bool:
    return ">>> " in doc or "```python" in doc


def _members(cls: type) -> Iterator[Tuple[str, Any]]:
    """The public methods and properties a class defines (those it inherits from Python's
    own classes, such as `Exception.add_note`, left out), as the reference renders them."""
    for klass in cls.__mro__:
        if klass.__module__ in ("builtins", "typing"):
            continue
        for name, value in vars(klass).items():
            if not name.startswith("_") and (callable(value) or isinstance(value, property)):
                yield name, value


def test_every_public_name_has_a_docstring_with_an_example() -> None:
    missing = []
    for module_name, name, obj in _public():
        if inspect.ismodule(obj):
            doc = obj.__doc__ or ""
        elif isinstance(obj, str):  # `__version__`: the reference says what it is
            continue
        else:
            doc = inspect.getdoc(obj) or ""
        if not _has_example(doc):
            missing.append(f"{module_name}.{name}")
    assert not missing, f"no docstring with an example: {missing}"


def test_public_methods_of_public_classes_are_documented() -> None:
    """Methods have an example; a property has a docstring or is named in its class's."""
    missing = []
    seen: Set[int] = set()
    for module_name, name, obj in _public():
        if not inspect.isclass(obj) or name in MACHINERY or id(obj) in seen:
            continue
        seen.add(id(obj))
        class_doc = inspect.getdoc(obj) or ""
        for member, value in _members(obj):
            if isinstance(value, property):
                ok = bool(value.__doc__) or re.search(rf"\b{member}\b", class_doc) is not None
            elif inspect.isclass(value):
                continue
            else:
                ok = _has_example(inspect.getdoc(value) or "")
            if not ok:
                missing.append(f"{module_name}.{name}.{member}")
    assert not missing, f"undocumented (or without an example): {missing}"


def _class_examples() -> List[doctest.DocTest]:
    """The doctests of the `pypeln` module, the public classes, the functions that are not
    stage functions (those run in tests/test_docs.py), and the classes' methods."""
    finder = doctest.DocTestFinder()
    tests = {t.name: t for t in doctest.DocTestFinder(recurse=False).find(pl, "pypeln")}
    seen: Set[int] = set()
    for module_name, name, obj in _public():
        if id(obj) in seen or not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue
        if inspect.ismethod(obj) and name in STAGE_FUNCTIONS:
            continue
        seen.add(id(obj))
        for test in finder.find(obj, f"{module_name}.{name}", globs={}):
            if test.examples:
                tests.setdefault(test.name, test)
    return list(tests.values())


@pytest.mark.timeout(120)
def test_the_examples_of_public_classes_run() -> None:
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = _class_examples()
    assert len(tests) >= 20
    for test in tests:
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) failed (see above)"


# -- the reference pages ------------------------------------------------------------------

_DIRECTIVE = re.compile(r"^::: ([\w.]+)\s*$", re.M)


def _resolve(path: str) -> Any:
    """The object an identifier names, as Python sees it (a module's attribute first)."""
    parts = path.split(".")
    obj: Any = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], 1):
        if hasattr(obj, part):
            obj = getattr(obj, part)
        else:
            obj = importlib.import_module(".".join(parts[: i + 1]))
    return obj


def _reference() -> Dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(REFERENCE.glob("*.md"))}


def test_the_reference_has_a_page_per_module() -> None:
    pages = _reference()
    assert "index" in pages
    for backend in BACKENDS:
        assert f"::: pypeln.{backend}\n" in pages[backend], backend
        assert f"({backend}.md)" in pages["index"], backend
    assert "::: pypeln\n" in pages["pypeln"]


def test_every_public_name_is_in_the_reference() -> None:
    """Each name is rendered on its module's page (``::: module.name``), or, when it is an
    object shared with another module (``pl.thread.Stage is pl.Stage``), rendered once
    somewhere and named on its module's page with a link to it."""
    pages = _reference()
    rendered = {}
    for text in pages.values():
        for path in _DIRECTIVE.findall(text):
            rendered[path] = _resolve(path)
    rendered_ids = {id(obj) for obj in rendered.values()}
    missing = []
    for module_name, name, obj in _public():
        page = pages["pypeln" if module_name == "pypeln" else module_name.split(".")[1]]
        path = f"{module_name}.{name}"
        if path in rendered:
            assert rendered[path] is obj, path
        elif inspect.ismodule(obj):
            if obj.__name__ not in rendered:
                missing.append(path)
        elif name in ("__version__", "BaseStage"):  # not objects of their own: named
            if f"`{path}`" not in page:
                missing.append(path)
        elif id(obj) not in rendered_ids or f"`{path}`" not in page:
            missing.append(path)
    assert not missing, f"not in the reference: {missing}"


def test_every_directive_names_a_public_object() -> None:
    """A ``:::`` line names a public module or a name of a public module's ``__all__``."""
    public = {f"{m}.{n}" for m, n, _ in _public()} | set(MODULES)
    for page, text in _reference().items():
        for path in _DIRECTIVE.findall(text):
            assert path in public, f"reference/{page}.md: {path}"


def test_the_reference_builds_without_ray() -> None:
    """Importing `pypeln.ray` and every module under it (what the reference does) and
    reading its public names does not import Ray."""
    code = (
        "import pkgutil, sys, importlib, pypeln.ray as r\n"
        "for m in pkgutil.iter_modules(r.__path__):\n"
        "    importlib.import_module('pypeln.ray.' + m.name)\n"
        "[getattr(r, n).__doc__ for n in r.__all__]\n"
        "assert 'ray' not in sys.modules, 'Ray was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=50)


# -- the site's navigation ----------------------------------------------------------------


def _nav() -> List[str]:
    """The pages mkdocs.yml's nav lists (paths relative to docs/)."""
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = config[config.index("\nnav:\n") :]
    return re.findall(r"^\s+- (?:[^\n]*?: )?([\w/.-]+\.md)\s*$", nav, re.M)


def test_the_nav_lists_every_page() -> None:
    listed = _nav()
    assert len(listed) == len(set(listed)), "a page is listed twice"
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    orphans = pages - set(listed)
    assert not orphans, f"pages missing from mkdocs.yml's nav: {sorted(orphans)}"


def test_every_nav_entry_is_a_page() -> None:
    """(The strict build fails on it too; this says which, without building the site.)"""
    missing = [page for page in _nav() if not (DOCS / page).is_file()]
    assert not missing, f"pages in mkdocs.yml's nav that do not exist: {missing}"


def test_the_changelog_page_includes_the_changelog() -> None:
    text = (DOCS / "changelog.md").read_text(encoding="utf-8")
    assert '--8<-- "CHANGELOG.md"' in text
    assert "changelog.md" in _nav()
    if not (ROOT / "CHANGELOG.md").is_file():
        pytest.skip("CHANGELOG.md is not written yet in this checkout")
