"""Argument checks: a mistake is reported where it is made, naming the parameter and value."""

from __future__ import annotations

from typing import Any, Callable, Optional


def _fail(kind: type[Exception], where: str, message: str) -> Exception:
    return kind(f"{where}: {message}")


def callable_(where: str, name: str, value: Any, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not callable(value):
        raise _fail(
            TypeError, where, f"{name} must be callable, got {value!r} ({type(value).__name__})"
        )


def integer(where: str, name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(
            TypeError, where, f"{name} must be an int, got {value!r} ({type(value).__name__})"
        )
    if value < minimum:
        raise _fail(ValueError, where, f"{name} must be >= {minimum}, got {value!r}")


def number(where: str, name: str, value: Any, minimum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(
            TypeError, where, f"{name} must be a number, got {value!r} ({type(value).__name__})"
        )
    if not value >= minimum:  # also rejects NaN
        raise _fail(ValueError, where, f"{name} must be >= {minimum}, got {value!r}")


def flag(where: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise _fail(
            TypeError, where, f"{name} must be a bool, got {value!r} ({type(value).__name__})"
        )


def source(where: str, name: str, value: Any, allow_async: bool = False) -> None:
    from .stage import Stage

    if isinstance(value, Stage) or hasattr(value, "__iter__"):
        return
    if allow_async and hasattr(value, "__aiter__"):
        return
    kinds = "a Stage, an iterable or an async iterable" if allow_async else "a Stage or an iterable"
    raise _fail(TypeError, where, f"{name} must be {kinds}, got {value!r} ({type(value).__name__})")


def stage_params(
    where: str,
    f: Optional[Callable[..., Any]],
    workers: Any,
    maxsize: Any,
    timeout: Any,
    on_start: Any,
    on_done: Any,
    min_workers: int = 1,
) -> None:
    """The checks shared by map, filter, flat_map and each."""
    callable_(where, "f", f)
    integer(where, "workers", workers, min_workers)
    integer(where, "maxsize", maxsize, 0)
    number(where, "timeout", timeout, 0)
    callable_(where, "on_start", on_start, optional=True)
    callable_(where, "on_done", on_done, optional=True)
