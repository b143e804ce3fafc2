"""The names code written for pypeln 0.4.9 imports from ``pypeln.utils``.

Each is this package's own object under its 0.4.9 name, so such code keeps working;
new code should use the top-level names (`pypeln.Partial`, `pypeln.Element`,
`pypeln.Stage`). The 0.4.9 names that named internals of its polling implementation
(``TIMEOUT``, ``MAXSIZE``, ``Done``/``DONE``, ``Continue``/``CONTINUE``,
``StopThreadException``, ``function_args``, ``get_callable``) have no counterpart here
and are left out; docs/migration.md lists every 0.4.9 name.

>>> from pypeln.utils import Partial
>>> import pypeln as pl
>>> sorted(range(3) | Partial(lambda s: pl.thread.map(lambda x: x + 1, s)))
[1, 2, 3]
"""

from __future__ import annotations

from typing import Any, Dict, TypeVar

from ._core.element import Element
from ._core.namespace import Namespace
from ._core.stage import UNDEFINED, Partial, Stage, Undefined

#: Type variables, as in 0.4.9.
T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")

#: Keyword arguments, as in 0.4.9.
Kwargs = Dict[str, Any]

#: 0.4.9's base class of every stage: `pypeln.Stage` (also `pypeln.BaseStage`).
BaseStage = Stage


class StageReuseError(RuntimeError):
    """0.4.9 raised this when a stage was iterated a second time; never raised here.

    A stage here is a description of work, and iterating it again runs it again, so
    ``except StageReuseError`` in 0.4.9 code is kept only so that it still imports.
    """


class PipelineException(Exception):
    """0.4.9 carried a worker's error to the consumer in this type; never raised here.

    An error in a worker reaches the consumer as its own type, with its own args and the
    worker's traceback attached (docs/concepts/errors.md), so catch that type instead.
    """


class NoLock(Exception):
    """0.4.9's error for a namespace without a lock; never raised here (every
    `Namespace` can be locked with ``with ns:``)."""


__all__ = [
    "A",
    "B",
    "T",
    "Kwargs",
    "BaseStage",
    "Element",
    "Namespace",
    "NoLock",
    "Partial",
    "PipelineException",
    "StageReuseError",
    "Undefined",
    "UNDEFINED",
]
