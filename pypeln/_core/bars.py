"""Progress bars, one per stage, drawn from a run's statistics (needs ``pypeln[progress]``)."""

from __future__ import annotations

import importlib
from typing import Any


def require_tqdm(where: str) -> None:
    """Fail at once, naming the extra, if tqdm is not installed."""
    try:
        importlib.import_module("tqdm.auto")
    except ImportError:
        raise ImportError(
            f"{where}: progress=True needs tqdm: pip install 'pypeln[progress]'"
        ) from None


class Bars:
    """Placeholder until the drawing lands: draws nothing."""

    def __init__(self, stats: Any, stage: Any, progress: Any) -> None:
        self.stats = stats

    def close(self) -> None:
        pass
