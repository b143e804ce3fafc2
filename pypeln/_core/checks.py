"""Argument checks: a mistake is reported where it is made, naming the parameter and value."""

from __future__ import annotations

import inspect
import threading
from typing import Any, Callable, Iterable, Optional

from .docs import see


def _fail(kind: type[Exception], where: str, message: str, hint: str = "") -> Exception:
    """``kind("where: message" + hint)``; `hint` adds what the value is for, or a link."""
    return kind(f"{where}: {message}{hint}")


def unexpected(where: str, names: Iterable[str]) -> TypeError:
    """The error for keyword arguments a function does not take."""
    return TypeError(f"{where}: unexpected keyword argument(s): {', '.join(names)}")


def arguments(where: str, function: Callable[..., Any], args: Any, kwargs: Any) -> None:
    """Raise what is wrong with calling `function(*args, **kwargs)` (an unknown keyword, a
    missing or extra argument) in the ``"where: ..."`` form of every other bad argument."""
    signature = inspect.signature(function)
    params = signature.parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        # (none of the functions checked has a positional-only parameter: `bind` below
        # would name one passed by keyword)
        names = [k for k in kwargs if k not in params]
        if names:
            raise unexpected(where, names) from None
    positional = [
        p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(args) > len(positional) and not any(p.kind is p.VAR_POSITIONAL for p in params.values()):
        extra = ", ".join(repr(a) for a in args[len(positional) :])
        takes = len(positional) - 1  # not counting self
        raise TypeError(
            f"{where}: takes at most {takes} positional arguments, got {len(args) - 1} "
            f"(the extra ones: {extra})"
        ) from None
    try:
        signature.bind(*args, **kwargs)
    except TypeError as e:
        raise TypeError(f"{where}: {e}") from None


def callable_(where: str, name: str, value: Any, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not callable(value):
        raise _fail(
            TypeError, where, f"{name} must be callable, got {value!r} ({type(value).__name__})"
        )


def integer(where: str, name: str, value: Any, minimum: int, hint: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(
            TypeError,
            where,
            f"{name} must be an int, got {value!r} ({type(value).__name__})",
            hint,
        )
    if value < minimum:
        raise _fail(ValueError, where, f"{name} must be >= {minimum}, got {value!r}", hint)


def workers(where: str, value: Any, minimum: int) -> None:
    """``workers``: how many workers run ``f`` at once (`task` also takes 0: no limit)."""
    if minimum == 0:
        meaning = "the most items in flight at once: 1 or more, or 0 for no limit"
    else:
        meaning = "how many workers run f at once: 1 or more"
    integer(where, "workers", value, minimum, f" (workers is {meaning}). {see('concepts/workers')}")


def number(where: str, name: str, value: Any, minimum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(
            TypeError, where, f"{name} must be a number, got {value!r} ({type(value).__name__})"
        )
    if not value >= minimum:  # also rejects NaN
        raise _fail(ValueError, where, f"{name} must be >= {minimum}, got {value!r}")


def seconds(where: str, name: str, value: Any) -> Any:
    """A duration (0: no limit), returned as the stage keeps it: one no wait can take
    (``float("inf")``, or past `threading.TIMEOUT_MAX`) is no limit, 0."""
    number(where, name, value, 0)
    return 0 if value >= threading.TIMEOUT_MAX else value


def flag(where: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise _fail(
            TypeError, where, f"{name} must be a bool, got {value!r} ({type(value).__name__})"
        )


def source(where: str, name: str, value: Any, allow_async: bool = False) -> None:
    from .stage import Stage

    if isinstance(value, Stage) or hasattr(value, "__iter__"):
        return
    if hasattr(value, "__aiter__"):
        if allow_async:
            return
        backend = where.rsplit(".", 1)[0]
        raise _fail(
            TypeError,
            where,
            f"{name} is an async iterable ({value!r}, {type(value).__name__}), and "
            f"{backend} reads only plain iterables. Read it with a pl.task stage first, "
            f"whose output any backend can take (e.g. `source | pl.task.map(f) | "
            f"{backend}.map(g)`), or consume it in async code with `async for` or "
            "`await` on a pl.task stage",
            f". {see('concepts/asyncio')}",
        )
    kinds = "a Stage, an iterable or an async iterable" if allow_async else "a Stage or an iterable"
    raise _fail(
        TypeError,
        where,
        f"{name} must be {kinds} (the items the stage works on, e.g. a list, a range, a "
        f"generator or another stage), got {value!r} ({type(value).__name__})",
        f". {see('concepts/stages')}",
    )


def stage_params(
    where: str,
    f: Optional[Callable[..., Any]],
    n_workers: Any,
    maxsize: Any,
    timeout: Any,
    on_start: Any,
    on_done: Any,
    min_workers: int = 1,
) -> Any:
    """The checks shared by map, filter, flat_map and each; the timeout the stage keeps."""
    callable_(where, "f", f)
    workers(where, n_workers, min_workers)
    integer(where, "maxsize", maxsize, 0)
    timeout = seconds(where, "timeout", timeout)
    callable_(where, "on_start", on_start, optional=True)
    callable_(where, "on_done", on_done, optional=True)
    return timeout
