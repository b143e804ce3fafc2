"""0.4.9's ``pypeln.sync.utils``: its ``Namespace`` is `pypeln.sync.Namespace` and its
``StageStatus`` is `pypeln.sync.StageStatus` (0.4.9's ``NoOpContext`` was internal)."""

from __future__ import annotations

from .._core.inject import StageStatus
from .._core.namespace import Namespace

__all__ = ["Namespace", "StageStatus"]
