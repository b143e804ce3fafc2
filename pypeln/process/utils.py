"""0.4.9's ``pypeln.process.utils``: its ``Namespace`` is `pypeln.process.Namespace`,
whose attributes every worker process sees.

0.4.9's ``MANAGER`` (the ``multiprocessing.Manager`` behind its namespaces) is left out:
the manager here is private, started with the first `Namespace` and shared by all.
"""

from __future__ import annotations

from .namespace import Namespace

__all__ = ["Namespace"]
