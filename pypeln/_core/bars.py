"""Progress bars of a run: one `tqdm.auto` bar per stage, drawn from its statistics.

The workers only count (`pypeln._core.stats`); one daemon thread reads those counters
about ten times a second and moves the bars, so bars cost the workers nothing per item
and tqdm is only ever touched by that thread and by the consumer's (which makes the bars
when the run starts and closes them when it ends). tqdm is the optional dependency of
the ``progress`` extra: ``pip install 'pypeln[progress]'``.
"""

from __future__ import annotations

import importlib
import re
import threading
import time
import warnings
from typing import Any, Dict, List, Optional

from .stats import RunStats, StageStats

#: seconds between two looks at the statistics
INTERVAL = 0.1
#: seconds between two redraws of a bar whose count did not move (its clock still runs)
IDLE_REFRESH = 1.0
#: the longest label, in characters
LABEL_WIDTH = 32
#: the longest wait for the drawing thread in `Bars.close`
JOIN_TIMEOUT = 1.0


def require_tqdm(where: str, what: str = "progress=True") -> Any:
    """`tqdm.auto`, or an ImportError that says what asked for it (`where`: the function,
    `what`: the setting) and how to install it."""
    try:
        return importlib.import_module("tqdm.auto")
    except ImportError as e:
        prefix = f"{where}: " if where else ""
        raise ImportError(f"{prefix}{what} needs tqdm: pip install 'pypeln[progress]'") from e


_warned_environment = False


def environment_bars_possible(value: str) -> bool:
    """Whether bars asked for by ``PYPELN_PROGRESS`` can be drawn; warns once if not.

    A switch for every run should not make runs fail where tqdm is not installed: they
    go on without bars.
    """
    global _warned_environment
    try:
        require_tqdm("", f"PYPELN_PROGRESS={value}")
    except ImportError as e:
        if not _warned_environment:
            _warned_environment = True
            warnings.warn(f"{e}; running without progress bars", RuntimeWarning, stacklevel=2)
        return False
    return True


def label(name: str, width: int = LABEL_WIDTH) -> str:
    """A short label for the stage called `name`: ``pl.thread.map(Loader.<locals>.load)``
    becomes ``thread.map(load)``; whatever is still too long is cut with an ellipsis."""
    if name.startswith("pl."):
        name = name[3:]
    # keep the last part of a qualified function name: a.<locals>.b, Class.method
    name = re.sub(r"\(([^()]*\.)([^().]+)\)$", r"(\2)", name)
    if len(name) > width:
        name = name[: width - 1] + "\u2026"
    return name


_bar_classes: Dict[Any, Any] = {}


def bar_class(tqdm: Any) -> Any:
    """`tqdm` without its monitor thread: the drawing thread of `Bars` moves every bar
    itself, and the monitor would stay alive after the run."""
    cls = _bar_classes.get(tqdm)
    if cls is None:
        tqdm.get_lock()  # share the lock of every other bar of this process
        cls = _bar_classes[tqdm] = type("StageBar", (tqdm,), {"monitor_interval": 0})
    return cls


class Bars:
    """The bars of one run, one per row of `stats` (upstream first).

    Each bar counts the items its stage has finished taking (``items_in``) out of
    ``row.total`` when the sources' lengths tell it, and shows the items it emitted and
    those that failed once they are not zero. ``progress=True`` leaves tqdm to decide
    (no bars when the output is not a terminal); ``"force"`` always draws them.
    """

    def __init__(self, stats: RunStats, stage: Any = None, progress: Any = True) -> None:
        self.stats = stats
        self.stage = stage
        self._tqdm = bar_class(require_tqdm("pypeln progress bars").tqdm)
        self._disable: Optional[bool] = False if progress == "force" else None
        self._rows: List[StageStats] = []
        self._bars: List[Any] = []
        self._shown: List[Any] = []  # what each bar shows now: (items_in, postfix)
        self._idle: List[float] = []  # when each bar was last redrawn
        self._draw_lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        self._close_lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._width = max((len(label(r.name)) for r in stats.stages), default=0)
        try:
            self._add_rows()
        except BaseException:
            self._close_bars()
            raise
        if any(not bar.disable for bar in self._bars):
            self._thread = threading.Thread(target=self._loop, name="pypeln-progress", daemon=True)
            self._thread.start()

    # -- drawing ---------------------------------------------------------------------------

    def _add_rows(self) -> None:
        """A bar for every row made since the last look (rows of stages started late)."""
        for row in self.stats.stages[len(self._rows) :]:
            bar = self._tqdm(
                total=row.total,
                desc=label(row.name).ljust(self._width),
                leave=True,
                disable=self._disable,
                mininterval=0,
                miniters=1,
                dynamic_ncols=True,
            )
            self._rows.append(row)
            self._bars.append(bar)
            self._shown.append((0, ""))
            self._idle.append(0.0)

    def _draw(self) -> None:
        """Move every bar to its row's counts now."""
        self._add_rows()
        for k, (row, bar) in enumerate(zip(self._rows, self._bars)):
            if bar.disable:
                continue
            items_in, out, failed = row.items_in, row.items_out, row.failed
            postfix = ", ".join(
                f"{name}={n}" for name, n in (("out", out), ("failed", failed)) if n
            )
            n, shown = self._shown[k]
            now = time.monotonic()
            if items_in == n and postfix == shown:
                if now - self._idle[k] >= IDLE_REFRESH:
                    bar.refresh()
                    self._idle[k] = now
                continue
            if postfix != shown:
                bar.set_postfix_str(postfix, refresh=False)
            if items_in > n:
                bar.update(items_in - n)
            else:
                bar.refresh()
            self._shown[k] = (items_in, postfix)
            self._idle[k] = now

    def _loop(self) -> None:
        while not self._stop.wait(INTERVAL):
            with self._draw_lock:
                if self._stop.is_set():
                    return
                try:
                    self._draw()
                except Exception:  # an output that went away: stop drawing, the run goes on
                    return

    # -- the end -----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop drawing, show the final counts and close the bars (any thread; once)."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        deadline = time.monotonic() + JOIN_TIMEOUT
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT)
        if not self._draw_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return  # the drawing thread is stuck on its output: leave the bars as they are
        try:
            try:
                self._draw()
            except Exception:
                pass
            self._close_bars()
        finally:
            self._draw_lock.release()

    def _close_bars(self) -> None:
        for bar in self._bars:
            try:
                bar.close()
            except Exception:
                pass

    def __enter__(self) -> Bars:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
