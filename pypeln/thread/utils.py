"""0.4.9's ``pypeln.thread.utils``: its ``Namespace`` is `pypeln.thread.Namespace`."""

from __future__ import annotations

from .._core.namespace import Namespace

__all__ = ["Namespace"]
