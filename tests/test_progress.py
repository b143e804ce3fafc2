"""Progress bars: one per stage, drawn from the run's statistics by one thread.

tqdm writes to stderr, which pytest captures (not a terminal): ``progress="force"`` draws
the bars there anyway, ``progress=True`` draws none.
"""

from __future__ import annotations

import io
import re
import sys
import threading
import time
from typing import Any, List

import pytest
from conftest import BACKEND_NAMES, Leftovers

import pypeln as pl
from pypeln._core import bars as bars_module
from pypeln._core.bars import Bars, label
from pypeln._core.stats import RunStats

pytest.importorskip("tqdm")

BAR_THREAD = "pypeln-progress"


def inc(x: int) -> int:
    return x + 1


def even(x: int) -> bool:
    return x % 2 == 0


def slow(x: int) -> int:
    time.sleep(0.01)
    return x


def odd_fails(x: int) -> int:
    if x % 2:
        raise ValueError(x)
    return x


def bar_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == BAR_THREAD]


def final_lines(err: str) -> List[str]:
    """What the bars showed last: tqdm redraws a line after a carriage return."""
    return [line.rsplit("\r", 1)[-1] for line in err.splitlines() if line.strip()]


@pytest.mark.timeout(60)
def test_a_bar_per_stage_with_its_total(capsys: pytest.CaptureFixture[str]) -> None:
    stage = pl.thread.map(inc, range(50), workers=2) | pl.thread.filter(even, workers=2)
    it = pl.thread.to_iterable(stage, progress="force")
    assert sorted(it) == list(range(2, 51, 2))
    err = capsys.readouterr().err
    lines = final_lines(err)
    # upstream first, each with its count out of the source's length, and what it emitted
    assert re.search(r"thread\.map\(inc\)\s*: 100%.* 50/50 .*out=50", lines[-2]), lines
    assert re.search(r"thread\.filter\(even\): 100%.* 50/50 .*out=25", lines[-1]), lines
    assert "failed" not in err
    assert not bar_threads()


@pytest.mark.timeout(60)
def test_an_unknown_total_counts_without_one(capsys: pytest.CaptureFixture[str]) -> None:
    source = iter(range(30))  # no length
    pl.thread.run(pl.thread.map(inc, source), progress="force")
    last = final_lines(capsys.readouterr().err)[-1]
    assert re.search(r"thread\.map\(inc\): 30it ", last), last


@pytest.mark.timeout(60)
def test_failures_show_in_the_postfix(capsys: pytest.CaptureFixture[str]) -> None:
    stage = pl.thread.map(odd_fails, range(10), on_error="skip")
    assert sorted(pl.thread.to_iterable(stage, progress="force")) == [0, 2, 4, 6, 8]
    last = final_lines(capsys.readouterr().err)[-1]
    assert re.search(r"10/10 .*out=5, failed=5", last), last


@pytest.mark.timeout(60)
def test_bars_move_while_the_run_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    # 60 items at 10 ms each take 0.6 s: the bar thread draws counts between 0 and 60
    pl.thread.run(pl.thread.map(slow, range(60)), progress="force")
    err = capsys.readouterr().err
    counts = {int(n) for n in re.findall(r" (\d+)/60 ", err)}
    assert {0, 60} <= counts
    assert any(0 < n < 60 for n in counts), sorted(counts)


@pytest.mark.timeout(60)
def test_progress_true_draws_nothing_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    seen: List[str] = []

    def spy(x: int) -> int:
        seen.extend(t.name for t in threading.enumerate())
        return x

    assert not sys.stderr.isatty()
    assert sorted(pl.thread.to_iterable(pl.thread.map(spy, range(20)), progress=True)) == list(
        range(20)
    )
    pl.thread.run(pl.thread.map(spy, range(5)), progress=True)
    assert capsys.readouterr().err == ""
    assert BAR_THREAD not in seen  # no thread is started for bars nobody sees


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.timeout(60)
def test_progress_true_draws_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    pl.thread.run(pl.thread.map(inc, range(20)), progress=True)
    assert re.search(r"thread\.map\(inc\): 100%.* 20/20 ", terminal.getvalue())


@pytest.mark.timeout(60)
def test_without_progress_nothing_is_drawn_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.delenv("PYPELN_PROGRESS", raising=False)
    pl.thread.run(pl.thread.map(inc, range(20)))
    assert sorted(pl.thread.to_iterable(pl.thread.map(inc, range(5)))) == [1, 2, 3, 4, 5]
    assert pl.thread.run(pl.thread.map(inc, range(5)), stats=True) is not None
    assert terminal.getvalue() == ""


@pytest.mark.timeout(60)
def test_the_environment_turns_bars_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PYPELN_PROGRESS", "force")
    assert sorted(pl.thread.map(inc, range(20))) == list(range(1, 21))
    assert re.search(r"thread\.map\(inc\): 100%.* 20/20 ", capsys.readouterr().err)
    # "1" leaves it to tqdm, which draws nothing when stderr is not a terminal
    monkeypatch.setenv("PYPELN_PROGRESS", "1")
    assert len(list(pl.thread.map(inc, range(20)))) == 20
    monkeypatch.setenv("PYPELN_PROGRESS", "0")
    assert len(list(pl.thread.map(inc, range(20)))) == 20
    assert capsys.readouterr().err == ""


def _without_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_missing_tqdm_fails_at_once(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    _without_tqdm(monkeypatch)
    module = getattr(pl, name)
    calls: List[int] = []

    def f(x: int) -> int:
        calls.append(x)
        return x + 1

    stage = module.map(inc if name == "process" else f, range(5))
    needs = r"progress=True needs tqdm: pip install 'pypeln\[progress\]'"
    with pytest.raises(ImportError, match=rf"pl\.{name}\.to_iterable: {needs}"):
        module.to_iterable(stage, progress=True)
    with pytest.raises(ImportError, match=rf"pl\.{name}\.run: {needs}"):
        module.run(stage, progress=True)
    with pytest.raises(ImportError, match=r"pypeln\[progress\]"):
        module.to_iterable(progress="force")  # a partial fails as early
    assert calls == []
    # without bars the same stage runs
    assert sorted(module.to_iterable(stage)) == [1, 2, 3, 4, 5]


@pytest.mark.timeout(60)
def test_missing_tqdm_with_the_environment_switch_warns_and_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _without_tqdm(monkeypatch)
    monkeypatch.setattr(bars_module, "_warned_environment", False)
    monkeypatch.setenv("PYPELN_PROGRESS", "1")
    with pytest.warns(RuntimeWarning) as warned:
        assert sorted(pl.thread.map(inc, range(3))) == [1, 2, 3]
        assert sorted(pl.thread.map(inc, range(3))) == [1, 2, 3]  # warned once only
    assert [str(w.message) for w in warned] == [
        "PYPELN_PROGRESS=1 needs tqdm: pip install 'pypeln[progress]'; "
        "running without progress bars"
    ]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("value", ["yes", 2, 1.0, "True"])
def test_bad_progress_values(value: Any) -> None:
    for call in (
        lambda: pl.thread.to_iterable(range(3), progress=value),
        lambda: pl.thread.run(range(3), progress=value),
        lambda: pl.sync.to_iterable(progress=value),
    ):
        with pytest.raises(ValueError, match=r"\.(to_iterable|run): progress must be"):
            call()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_bars_on_every_backend(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    module = getattr(pl, name)
    leftovers = Leftovers()
    stage = module.map(inc, range(40), workers=2) | module.filter(even, workers=2)
    assert sorted(module.to_iterable(stage, progress="force")) == list(range(2, 41, 2))
    err = capsys.readouterr().err
    # their counts may lag on backends whose workers do not report them yet
    assert re.search(rf"{name}\.map\(inc\)\s*:.*/40 ", err), err
    assert re.search(rf"{name}\.filter\(even\):.*/40 ", err), err
    assert leftovers.wait_gone(10) == []


@pytest.mark.timeout(60)
def test_a_mixed_pipeline_has_a_bar_per_stage(capsys: pytest.CaptureFixture[str]) -> None:
    stage = pl.thread.map(inc, range(20)) | pl.process.map(inc) | pl.task.map(inc)
    assert sorted(pl.thread.to_iterable(stage, progress="force")) == list(range(3, 23))
    err = capsys.readouterr().err
    for name in ("thread.map(inc)", "process.map(inc)", "task.map(inc)"):
        assert name in err


@pytest.mark.timeout(60)
def test_no_thread_left_after_a_break(capsys: pytest.CaptureFixture[str]) -> None:
    leftovers = Leftovers()
    for x in pl.thread.to_iterable(pl.thread.map(slow, range(10_000), workers=2), progress="force"):
        if x >= 5:
            assert bar_threads()  # drawing while the loop runs
            break
    assert leftovers.wait_gone(10) == []
    # closing an iterator explicitly does as much
    it = pl.thread.to_iterable(pl.thread.map(slow, range(10_000)), progress="force")
    next(it)
    it.close()
    assert leftovers.wait_gone(10) == []
    assert "/10000 " in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_no_thread_left_after_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    leftovers = Leftovers()
    with pytest.raises(ValueError):
        pl.thread.run(pl.thread.map(slow, range(30)) | pl.thread.map(odd_fails), progress="force")
    assert leftovers.wait_gone(10) == []
    assert "odd_fails" in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_close_is_quick_and_idempotent(capsys: pytest.CaptureFixture[str]) -> None:
    stats = RunStats()
    stats.plan(pl.thread.map(inc, range(3)))
    stats.start()
    bars = Bars(stats, None, "force")
    assert len(bar_threads()) == 1
    start = time.perf_counter()
    bars.close()
    bars.close()
    assert time.perf_counter() - start < 0.5
    assert not bar_threads()
    closer = threading.Thread(target=bars.close)
    closer.start()
    closer.join(5)
    assert not closer.is_alive()
    assert "thread.map(inc)" in capsys.readouterr().err


@pytest.mark.timeout(10)
def test_label() -> None:
    assert label("pl.thread.map(inc)") == "thread.map(inc)"
    assert label("pl.thread.map(test.<locals>.fetch)") == "thread.map(fetch)"
    assert label("pl.process.map(Model.predict)") == "process.map(predict)"
    assert label("pl.task.map(<lambda>)") == "task.map(<lambda>)"
    assert label("pl.thread.batch(10)") == "thread.batch(10)"
    long = label("pl.thread.map(" + "x" * 60 + ")")
    assert len(long) == 32 and long.endswith("\u2026")
