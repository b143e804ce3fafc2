"""The examples in the public docstrings run and give what they show, for every backend.

The docs pages' code runs in test_docs_pages.py."""

from __future__ import annotations

import doctest
from typing import List

import pytest
from conftest import BACKEND_NAMES, STAGE_FUNCTIONS

import pypeln as pl

pytestmark = pytest.mark.timeout(120)

#: examples whose output is printed by `f`, which in `process` runs in a child process (in
#: `ray`, in an actor, whose output Ray shows with a prefix of its own)
PRINTS_IN_WORKER = {("process", "each"), ("process", "run"), ("ray", "each"), ("ray", "run")}


def _examples(name: str) -> List[doctest.DocTest]:
    module = getattr(pl, name)
    finder = doctest.DocTestFinder(recurse=False)
    tests = finder.find(module, f"pl.{name}")
    for function in STAGE_FUNCTIONS:
        if (name, function) in PRINTS_IN_WORKER:
            continue
        tests += finder.find(getattr(module, function), f"pl.{name}.{function}", globs={})
    return [t for t in tests if t.examples]


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_docstring_examples(name: str) -> None:
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = _examples(name)
    assert len(tests) >= 5
    for test in tests:
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) failed (see above)"


def test_top_level_docstrings() -> None:
    runner = doctest.DocTestRunner()
    finder = doctest.DocTestFinder(recurse=False)
    for obj, name in ((pl.Element, "pl.Element"), (pl.thread.Namespace, "pl.thread.Namespace")):
        for test in finder.find(obj, name, globs={}):
            runner.run(test)
    assert runner.failures == 0
