"""The mistakes a newcomer is likely to make are reported like documentation: what
happened, what to do, and a link to the page that explains it."""

from __future__ import annotations

import multiprocessing
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from conftest import name_of

import pypeln as pl
from pypeln._core.docs import DOCS_URL, docs_link
from pypeln.process import spawning

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent
#: the start methods under which a worker process imports the main script again
REIMPORTING = [m for m in ("spawn", "forkserver") if m in multiprocessing.get_all_start_methods()]


def double(x: int) -> int:
    return x * 2


def says(message: str, *words: str, link: str) -> None:
    """`message` holds each of `words` (case-insensitive) and ends with `link`."""
    for word in words:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"
    assert message.rstrip().endswith(link), f"{message!r} does not end with {link!r}"


def run_script(tmp_path: Path, source: str, timeout: float = 40) -> subprocess.CompletedProcess:
    """Run `source` as a user's script (its own file, a fresh interpreter)."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- the helper --------------------------------------------------------------------------


def test_docs_link() -> None:
    assert DOCS_URL == "https://cgarciae.github.io/pypeln/"
    assert (
        docs_link("concepts/processes", "the-main-guard")
        == "https://cgarciae.github.io/pypeln/concepts/processes/#the-main-guard"
    )
    assert docs_link("concepts/workers") == "https://cgarciae.github.io/pypeln/concepts/workers/"


# -- workers=0 ---------------------------------------------------------------------------


def test_workers_out_of_range(backend: Any) -> None:
    bad = -1 if name_of(backend) == "task" else 0
    with pytest.raises(ValueError) as info:
        backend.map(double, range(3), workers=bad)
    says(
        str(info.value),
        f"{backend.__name__.replace('pypeln', 'pl')}.map",
        "workers",
        f"got {bad}",
        "at once",
        link=docs_link("concepts/workers"),
    )
    with pytest.raises(TypeError) as info:
        backend.map(double, workers=2.5)
    says(str(info.value), "workers must be an int", "2.5", link=docs_link("concepts/workers"))


# -- a source that is not iterable -------------------------------------------------------


@pytest.mark.parametrize("bad", [5, None], ids=["int", "None"])
@pytest.mark.parametrize("how", ["argument", "pipe", "run"])
def test_source_not_iterable(backend: Any, bad: Any, how: str) -> None:
    with pytest.raises(TypeError) as info:
        if how == "argument":
            backend.map(double, bad)
        elif how == "pipe":
            bad | backend.map(double)
        else:
            backend.run(bad)
    says(
        str(info.value),
        f"{backend.__name__.replace('pypeln', 'pl')}.{'run' if how == 'run' else 'map'}: stage",
        "must be a Stage",
        "an iterable",
        f"got {bad!r} ({type(bad).__name__})",
        "a list",
        link=docs_link("concepts/stages"),
    )


# -- an async source consumed by a sync backend ------------------------------------------


async def numbers(n: int) -> Any:
    for i in range(n):
        yield i


@pytest.mark.parametrize("how", ["argument", "pipe", "from_iterable"])
def test_async_source_in_a_sync_backend(backend: Any, how: str) -> None:
    if name_of(backend) == "task":
        assert sorted(numbers(3) | backend.map(double)) == [0, 2, 4]  # task reads it
        return
    source = numbers(3)
    try:
        with pytest.raises(TypeError) as info:
            if how == "argument":
                list(backend.map(double, source))
            elif how == "pipe":
                list(source | backend.map(double))
            else:
                list(backend.from_iterable(source))
    finally:
        source.aclose().close()  # never started: nothing to run
    says(
        str(info.value),
        "is an async iterable",
        "reads only plain iterables",
        "pl.task",
        "async for",
        link=docs_link("concepts/asyncio"),
    )


def test_async_source_read_by_task_feeds_the_others() -> None:
    """What the message suggests works: a task stage reads it, any backend takes over."""
    out = numbers(4) | pl.task.map(double) | pl.thread.map(double) | pl.sync.ordered | list
    assert out == [0, 4, 8, 12]


# -- a stage reused while running --------------------------------------------------------


@pytest.mark.parametrize("name", ["sync", "thread", "task"])
@pytest.mark.timeout(30)
def test_stage_iterated_by_its_own_workers(name: str) -> None:
    backend = getattr(pl, name)
    stages: Dict[str, Any] = {}

    def f(x: int) -> int:
        return sum(stages["it"]) + x

    stages["it"] = backend.map(f, range(3))
    with pytest.raises(RuntimeError) as info:
        list(stages["it"] | pl.thread.map(double))
    says(
        str(info.value),
        f"pl.{name}.map",
        "by one of its own workers",
        "without end",
        "pass the values f needs as items",
        link=docs_link("concepts/stages"),
    )
    assert str(info.value) == (
        f"pl.{name}.map: <Stage pl.{name}.map({f.__qualname__}) workers=1> was iterated by "
        "one of its own workers (e.g. in its f)" + REUSE_TAIL + docs_link("concepts/stages")
    )


REUSE_TAIL = (
    " while it was running: each run would start another one, without end. A pipeline "
    "cannot be consumed from inside itself: pass the values f needs as items (or through "
    "on_start), or build a separate stage for them (a stage is only a description). See "
)


@pytest.mark.parametrize("name", ["thread", "task"])
@pytest.mark.timeout(30)
def test_the_whole_message_of_a_stage_iterated_by_a_stage_built_on_it(name: str) -> None:
    backend = getattr(pl, name)
    stages: Dict[str, Any] = {}

    def f(x: int) -> int:
        return sum(stages["outer"]) + x

    # (not sync: it runs a stage's f in the thread of the stage built on it)
    stages["inner"] = backend.map(f, range(3), workers=2)
    stages["outer"] = backend.map(double, stages["inner"])
    with pytest.raises(RuntimeError) as info:
        list(stages["outer"])
    assert str(info.value) == (
        f"pl.{name}.map: <Stage pl.{name}.map(double) workers=1> was iterated by a "
        f"worker of <Stage pl.{name}.map({f.__qualname__}) workers=2>, a stage it is "
        "built on" + REUSE_TAIL + docs_link("concepts/stages")
    )


def test_a_stage_without_a_function_shows_no_name() -> None:
    assert repr(pl.thread.ordered([1], maxsize=3)) == "<Stage pl.thread.ordered workers=1>"
    assert repr(pl.process.map(double, [1], workers=3)) == (
        "<Stage pl.process.map(double) workers=3>"
    )


@pytest.mark.timeout(30)
def test_task_stage_iterated_by_its_own_workers_under_await() -> None:
    import asyncio

    stages: Dict[str, Any] = {}

    def f(x: int) -> int:
        return sum(stages["it"]) + x

    stages["it"] = pl.task.map(f, range(3))

    async def main() -> Any:
        return await stages["it"]

    with pytest.raises(RuntimeError) as info:
        asyncio.run(main())
    says(str(info.value), "by one of its own workers", link=docs_link("concepts/stages"))


@pytest.mark.parametrize("name", ["thread", "task", "process"])
@pytest.mark.timeout(30)
def test_stage_iterated_by_its_own_source(name: str) -> None:
    stages: Dict[str, Any] = {}

    def source() -> Any:
        yield from stages["it"]

    stages["it"] = getattr(pl, name).map(double, source())
    with pytest.raises(RuntimeError) as info:
        list(stages["it"])
    says(
        str(info.value),
        "by its own source (a generator)",
        "without end",
        link=docs_link("concepts/stages"),
    )


@pytest.mark.parametrize("name", ["sync", "thread", "task"])
def test_same_stage_twice_is_not_reuse(name: str) -> None:
    """Runs of one stage one after the other or side by side, or a stage twice in one
    pipeline, are fine; so is a worker that runs a stage its pipeline does not contain."""
    backend = getattr(pl, name)
    stage = backend.map(double, range(4), workers=2)
    assert sorted(backend.concat([stage, stage])) == [0, 0, 2, 2, 4, 4, 6, 6]
    assert [sorted(stage), sorted(stage)] == [[0, 2, 4, 6]] * 2
    assert sorted(a + b for a, b in zip(stage, stage)) == [0, 4, 8, 12]
    nested = backend.map(lambda x: sum(stage) + x, range(3))
    assert sorted(nested) == [12, 13, 14]
    # a worker may run, again, a stage its own stage is built on: a separate run of it
    downstream = backend.map(lambda x: sum(stage) + x, stage, workers=2)
    assert sorted(downstream) == [12, 14, 16, 18]


def run_process_stage(x: int) -> int:
    return sum(pl.process.map(double, range(x)))


@pytest.mark.timeout(60)
def test_process_stage_inside_a_worker_process() -> None:
    with pytest.raises(RuntimeError) as info:
        list(pl.process.map(run_process_stage, [3]))
    says(
        str(info.value),
        "pl.process.map",
        "daemonic",
        "cannot have children",
        "pl.thread inside the worker",
        link=docs_link("concepts/stages"),
    )


# -- lambdas under spawn without cloudpickle ---------------------------------------------


@pytest.mark.parametrize("method", REIMPORTING)
def test_lambda_without_cloudpickle(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle as plain

    monkeypatch.setattr(spawning, "_pickler", lambda: (plain.dumps, "pickle"))
    offset = 1
    for f, name in [(lambda x: x, "<lambda>"), (lambda x: x + offset, "<lambda>")]:
        with pytest.raises(TypeError) as info:
            list(pl.process.map(f, range(3), start_method=method))
        says(
            str(info.value),
            "pl.process.map",
            name,
            f"start with {method!r}",
            "pip install 'pypeln[cloudpickle]'",
            "top level of a module",
            link=docs_link("concepts/processes", "lambdas-and-closures"),
        )


@pytest.mark.parametrize("method", REIMPORTING)
@pytest.mark.timeout(60)
def test_function_under_the_main_guard_without_cloudpickle(method: str, tmp_path: Path) -> None:
    """Pickled by name, a function defined under the guard is missing in the worker."""
    done = run_script(
        tmp_path,
        f"""
        import sys
        sys.modules["cloudpickle"] = None  # as if it were not installed
        import pypeln as pl

        if __name__ == "__main__":
            def local(x):
                return x
            try:
                list(pl.process.map(local, range(3), start_method={method!r}))
            except TypeError as e:
                print(e)
        """,
    )
    assert done.returncode == 0, done.stderr
    says(
        done.stdout,
        "pl.process.map: a worker process could not load",
        "local",
        "outside that block, or install cloudpickle",
        link=docs_link("concepts/processes", "lambdas-and-closures"),
    )


# -- a script without the main guard -----------------------------------------------------


@pytest.mark.parametrize("method", REIMPORTING)
@pytest.mark.timeout(60)
def test_missing_main_guard(method: str, tmp_path: Path) -> None:
    done = run_script(
        tmp_path,
        f"""
        import pypeln as pl

        def double(x):
            return x * 2

        pl.process.set_start_method({method!r})
        print(sorted(range(5) | pl.process.map(double, workers=2)))
        """,
    )
    assert done.returncode == 1
    guard = docs_link("concepts/processes", "the-main-guard")
    last = done.stderr.rstrip().splitlines()[-1]
    assert last.startswith("pypeln._core.errors.WorkerDiedError: pl.process.map: ")
    if "the forkserver process" in last:
        # Pythons whose forkserver imports the main script itself, before any worker: the
        # script ends it (`test_forkserver_that_ends_while_importing`)
        assert method == "forkserver"
    else:
        says(
            last,
            "exited with code 1 before it started",
            f"started with {method!r} import the main script again",
            link=guard,
        )
    says(last, 'put the code that runs the pipeline under `if __name__ == "__main__":`', link=guard)
    assert "out of memory" not in done.stderr
    # The worker says it in one line; no traceback of its own, no multiprocessing essay.
    worker_lines = [line for line in done.stderr.splitlines() if line.startswith("pypeln: ")]
    assert worker_lines, done.stderr
    for line in worker_lines:
        says(line, "still importing the main script", "__main__", link=guard)
    assert "bootstrapping phase" not in done.stderr
    assert done.stderr.count("Traceback (most recent call last)") == 1, done.stderr


@pytest.mark.skipif("forkserver" not in REIMPORTING, reason="no forkserver start method")
@pytest.mark.timeout(60)
def test_forkserver_that_ends_while_importing(tmp_path: Path) -> None:
    """Where the forkserver imports the main script first (Python 3.14), a script without
    the guard ends it: simulated with a preloaded module that exits as that script would."""
    (tmp_path / "exits_on_import.py").write_text("raise SystemExit(1)\n")
    done = run_script(
        tmp_path,
        """
        import multiprocessing, sys
        import pypeln as pl

        def double(x):
            return x * 2

        if __name__ == "__main__":
            sys.path.insert(0, ".")
            multiprocessing.set_forkserver_preload(["exits_on_import"])
            print(sorted(range(5) | pl.process.map(double, start_method="forkserver")))
        """,
    )
    assert done.returncode == 1
    last = done.stderr.rstrip().splitlines()[-1]
    assert last.startswith("pypeln._core.errors.WorkerDiedError: pl.process.map: could not start")
    says(
        last,
        "the forkserver process",
        "ended",
        'put the code that runs the pipeline under `if __name__ == "__main__":`',
        link=docs_link("concepts/processes", "the-main-guard"),
    )


@pytest.mark.parametrize("method", REIMPORTING)
@pytest.mark.timeout(60)
def test_with_the_main_guard_it_runs(method: str, tmp_path: Path) -> None:
    done = run_script(
        tmp_path,
        f"""
        import pypeln as pl

        def double(x):
            return x * 2

        if __name__ == "__main__":
            pl.process.set_start_method({method!r})
            print(sorted(range(5) | pl.process.map(double, workers=2)))
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 2, 4, 6, 8]"


# -- every link names a page and a heading that exist ------------------------------------

_CALL = re.compile(r"""\b(?:see|docs_link)\(\s*["']([^"']+)["'](?:\s*,\s*["']([^"']*)["'])?""")


def links_in_package() -> List[Tuple[str, str]]:
    found = set()
    for path in sorted((ROOT / "pypeln").rglob("*.py")):
        if path.name == "docs.py":
            continue  # the helper's own docstring examples
        for page, anchor in _CALL.findall(path.read_text()):
            found.add((page.strip("/"), anchor or ""))
    return sorted(found)


def slug(heading: str) -> str:
    """The anchor mkdocs gives a heading (its default `toc` slugify)."""
    text = re.sub(r"[^\w\s-]", "", heading.strip().lower())
    return re.sub(r"[-\s]+", "-", text).strip("-")


def test_package_makes_links() -> None:
    pages = {page for page, _ in links_in_package()}
    assert {
        "concepts/processes",
        "concepts/workers",
        "concepts/stages",
        "concepts/asyncio",
    } <= pages


@pytest.mark.parametrize("page,anchor", links_in_package())
def test_docs_link_target_exists(page: str, anchor: str) -> None:
    path = ROOT / "docs" / f"{page}.md"
    if not path.exists():
        pytest.skip(f"docs/{page}.md is not written yet (the docs pages land separately)")
    if not anchor:
        return
    headings = [
        line.lstrip("#").strip()
        for line in path.read_text().splitlines()
        if re.match(r"#{1,6} ", line)
    ]
    assert anchor in {slug(h) for h in headings}, f"no heading #{anchor} in docs/{page}.md"
