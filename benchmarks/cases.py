"""The timed bodies of every benchmark row.

Each case is a plain function ``case(n, **params) -> (seconds, output)``. It does its own
set-up that must stay out of the timing (resolving names, building the input description),
times the rest with ``time.perf_counter`` and returns the elapsed seconds together with the
output it produced, so the caller can check the work was really done.

This module is imported by ``worker.py`` in a fresh interpreter for every row, possibly the
interpreter of the pypeln 0.4.9 virtual environment. It must therefore import nothing at
module level beyond the standard library: peers (mpire, aiostream) and pypeln are imported
inside the cases that need them. The item functions live at module level so that process
pools can pickle them by reference.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import multiprocessing
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

Measured = Tuple[float, Any]


class NotAvailable(Exception):
    """The thing this row measures does not exist (yet) in the interpreter running it."""


# --------------------------------------------------------------------------- item functions


def inc(x: int) -> int:
    return x + 1


def is_even(x: int) -> bool:
    return x % 2 == 0


def double(x: int) -> int:
    return x * 2


def even_or_none(x: int) -> Optional[int]:
    """A filter expressed as a map, for pools that only know how to map."""
    return x if x % 2 == 0 else None


def sleep_10ms(x: int) -> int:
    time.sleep(0.01)
    return x


async def ainc(x: int) -> int:
    return x + 1


async def ais_even(x: int) -> bool:
    return x % 2 == 0


async def adouble(x: int) -> int:
    return x * 2


async def asleep_10ms(x: int) -> int:
    await asyncio.sleep(0.01)
    return x


FUNCTIONS: Dict[str, Callable[..., Any]] = {
    f.__name__: f
    for f in (inc, is_even, double, even_or_none, sleep_10ms, ainc, ais_even, adouble, asleep_10ms)
}


def _fn(name: str) -> Callable[..., Any]:
    return FUNCTIONS[name]


# --------------------------------------------------------------------------- pypeln (any version)


def _backend(name: str) -> Any:
    """``pypeln.<name>``; NotAvailable if that backend or pypeln itself is missing."""
    try:
        return importlib.import_module("pypeln." + name)
    except ModuleNotFoundError as error:
        if error.name in ("pypeln", "pypeln." + name):
            raise NotAvailable(f"module pypeln.{name} not found") from error
        raise
    except ImportError as error:
        # A package that exists but cannot import its backend yet (e.g. half written).
        raise NotAvailable(f"pypeln.{name} cannot be imported: {error}") from error


def _operator(backend: Any, op: str) -> Callable[..., Any]:
    try:
        function: Callable[..., Any] = getattr(backend, op)
    except AttributeError as error:
        raise NotAvailable(f"{backend.__name__}.{op} not found") from error
    return function


def pl_map(n: int, backend: str, fn: str, workers: Optional[int] = None) -> Measured:
    """``pl.<backend>.map(fn, range(n), workers=workers) | list``"""
    pl_map_ = _operator(_backend(backend), "map")
    f = _fn(fn)
    kwargs = {} if workers is None else {"workers": workers}
    t0 = time.perf_counter()
    out = list(pl_map_(f, range(n), **kwargs))
    return time.perf_counter() - t0, out


def pl_pipeline(n: int, backend: str, workers: Optional[int] = None) -> Measured:
    """``range(n) | map(x+1) | filter(even) | map(x*2) | list`` on one backend."""
    mod = _backend(backend)
    pl_map_, pl_filter = _operator(mod, "map"), _operator(mod, "filter")
    kwargs = {} if workers is None else {"workers": workers}
    f_inc: Callable[[int], Any]
    f_even: Callable[[int], Any]
    f_double: Callable[[int], Any]
    if backend == "task":
        f_inc, f_even, f_double = ainc, ais_even, adouble
    else:
        f_inc, f_even, f_double = inc, is_even, double
    t0 = time.perf_counter()
    stage = pl_map_(f_inc, range(n), **kwargs)
    stage = pl_filter(f_even, stage, **kwargs)
    stage = pl_map_(f_double, stage, **kwargs)
    out = list(stage)
    return time.perf_counter() - t0, out


def pl_first_item(n: int, backend: str, fn: str, workers: Optional[int] = None) -> Measured:
    """Time from starting to iterate ``pl.<backend>.map(fn, range(n))`` to its first item."""
    pl_map_ = _operator(_backend(backend), "map")
    f = _fn(fn)
    kwargs = {} if workers is None else {"workers": workers}
    t0 = time.perf_counter()
    items = iter(pl_map_(f, range(n), **kwargs))
    first = next(items)
    elapsed = time.perf_counter() - t0
    # Leave early, as a consumer that only wanted one item would; the stage must tear down.
    close = getattr(items, "close", None)
    if close is not None:
        close()
    del items
    return elapsed, [first]


# --------------------------------------------------------------------------- built-ins


def builtin_map(n: int, fn: str) -> Measured:
    f = _fn(fn)
    t0 = time.perf_counter()
    out = list(map(f, range(n)))
    return time.perf_counter() - t0, out


def builtin_pipeline(n: int) -> Measured:
    t0 = time.perf_counter()
    out = list(map(double, filter(is_even, map(inc, range(n)))))
    return time.perf_counter() - t0, out


# --------------------------------------------------------------------------- concurrent.futures


def tpe_map(n: int, fn: str, workers: int) -> Measured:
    f = _fn(fn)
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as executor:
        out = list(executor.map(f, range(n)))
    return time.perf_counter() - t0, out


def tpe_pipeline(n: int, workers: int) -> Measured:
    """Three executors chained by their ``map`` results.

    The filter runs as a map to ``x or None`` plus ``is not None`` in the parent.
    """
    t0 = time.perf_counter()
    with (
        concurrent.futures.ThreadPoolExecutor(workers) as e1,
        concurrent.futures.ThreadPoolExecutor(workers) as e2,
        concurrent.futures.ThreadPoolExecutor(workers) as e3,
    ):
        incremented = e1.map(inc, range(n))
        evens = (y for y in e2.map(even_or_none, incremented) if y is not None)
        out = list(e3.map(double, evens))
    return time.perf_counter() - t0, out


def ppe_map(n: int, fn: str, workers: int, chunksize: int) -> Measured:
    f = _fn(fn)
    t0 = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(workers) as executor:
        out = list(executor.map(f, range(n), chunksize=chunksize))
    return time.perf_counter() - t0, out


def ppe_pipeline(n: int, workers: int, chunksize: int) -> Measured:
    t0 = time.perf_counter()
    with (
        concurrent.futures.ProcessPoolExecutor(workers) as e1,
        concurrent.futures.ProcessPoolExecutor(workers) as e2,
        concurrent.futures.ProcessPoolExecutor(workers) as e3,
    ):
        incremented = e1.map(inc, range(n), chunksize=chunksize)
        evens = (y for y in e2.map(even_or_none, incremented, chunksize=chunksize) if y is not None)
        out = list(e3.map(double, evens, chunksize=chunksize))
    return time.perf_counter() - t0, out


# --------------------------------------------------------------------------- multiprocessing


def pool_map(n: int, fn: str, workers: int, chunksize: int) -> Measured:
    f = _fn(fn)
    t0 = time.perf_counter()
    with multiprocessing.Pool(workers) as pool:
        out = list(pool.imap_unordered(f, range(n), chunksize=chunksize))
    return time.perf_counter() - t0, out


def pool_pipeline(n: int, workers: int, chunksize: int) -> Measured:
    """Three pools chained by ``imap_unordered``; each stage streams into the next."""
    t0 = time.perf_counter()
    with (
        multiprocessing.Pool(workers) as p1,
        multiprocessing.Pool(workers) as p2,
        multiprocessing.Pool(workers) as p3,
    ):
        incremented = p1.imap_unordered(inc, range(n), chunksize=chunksize)
        evens = (
            y
            for y in p2.imap_unordered(even_or_none, incremented, chunksize=chunksize)
            if y is not None
        )
        out = list(p3.imap_unordered(double, evens, chunksize=chunksize))
    return time.perf_counter() - t0, out


def pool_first_item(n: int, fn: str, workers: int, chunksize: int) -> Measured:
    f = _fn(fn)
    t0 = time.perf_counter()
    pool = multiprocessing.Pool(workers)
    items = pool.imap_unordered(f, range(n), chunksize=chunksize)
    first = next(items)
    elapsed = time.perf_counter() - t0
    pool.terminate()
    pool.join()
    return elapsed, [first]


# --------------------------------------------------------------------------- mpire


def mpire_map(n: int, fn: str, workers: int) -> Measured:
    try:
        from mpire.pool import WorkerPool
    except ImportError as error:
        raise NotAvailable("mpire is not installed") from error
    f = _fn(fn)
    t0 = time.perf_counter()
    with WorkerPool(n_jobs=workers) as pool:
        out = list(pool.map_unordered(f, range(n)))
    return time.perf_counter() - t0, out


# --------------------------------------------------------------------------- asyncio


async def _gather_limited(f: Callable[[Any], Any], items: Iterable[Any], limit: int) -> List[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def one(x: Any) -> Any:
        async with semaphore:
            return await f(x)

    return await asyncio.gather(*(one(x) for x in items))


def gather_map(n: int, fn: str, workers: int) -> Measured:
    f = _fn(fn)
    t0 = time.perf_counter()
    out = asyncio.run(_gather_limited(f, range(n), workers))
    return time.perf_counter() - t0, out


def gather_pipeline(n: int, workers: int) -> Measured:
    """One limited gather per stage, each over the previous stage's results."""

    async def main() -> List[int]:
        incremented = await _gather_limited(ainc, range(n), workers)
        keep = await _gather_limited(ais_even, incremented, workers)
        evens = [x for x, k in zip(incremented, keep) if k]
        return await _gather_limited(adouble, evens, workers)

    t0 = time.perf_counter()
    out = asyncio.run(main())
    return time.perf_counter() - t0, out


# --------------------------------------------------------------------------- aiostream


def _aiostream() -> Any:
    try:
        import aiostream
    except ImportError as error:
        raise NotAvailable("aiostream is not installed") from error
    return aiostream


def aiostream_map(n: int, fn: str, workers: int) -> Measured:
    aiostream = _aiostream()
    stream = aiostream.stream
    f = _fn(fn)

    async def main() -> List[Any]:
        xs = stream.map(stream.iterate(range(n)), f, ordered=False, task_limit=workers)
        items: List[Any] = await stream.list(xs)
        return items

    t0 = time.perf_counter()
    out = asyncio.run(main())
    return time.perf_counter() - t0, out


def aiostream_pipeline(n: int, workers: int) -> Measured:
    aiostream = _aiostream()
    stream, pipe = aiostream.stream, aiostream.pipe

    async def main() -> List[Any]:
        xs = (
            stream.iterate(range(n))
            | pipe.map(ainc, ordered=False, task_limit=workers)
            | pipe.filter(ais_even)
            | pipe.map(adouble, ordered=False, task_limit=workers)
        )
        items: List[Any] = await stream.list(xs)
        return items

    t0 = time.perf_counter()
    out = asyncio.run(main())
    return time.perf_counter() - t0, out


# ----------------------------------------------------------------------- the harness's own tests


def selftest_sleep(n: int, seconds: float) -> Measured:
    """Sleeps, then returns range(n): lets tests exercise timeouts without a real row."""
    time.sleep(seconds)
    return seconds, list(range(n))


# --------------------------------------------------------------------------- expected outputs


def expected(check: str, n: int) -> Iterator[int]:
    """The items a row must produce (in any order) for the given check name."""
    if check == "inc":
        return (x + 1 for x in range(n))
    if check == "identity":
        return iter(range(n))
    if check == "pipeline":
        return ((x + 1) * 2 for x in range(n) if (x + 1) % 2 == 0)
    raise ValueError(f"unknown check {check!r}")


def verify(check: str, n: int, out: Any) -> Optional[str]:
    """None if ``out`` is the right result, else what is wrong with it."""
    if check == "first":
        # Any input item may come first from an unordered stage; it must be f(x) for some x.
        if not (isinstance(out, list) and len(out) == 1 and isinstance(out[0], int)):
            return f"expected one int, got {out!r:.80}"
        if not 1 <= out[0] <= n:
            return f"first item {out[0]!r} is not x + 1 for any input"
        return None
    want = list(expected(check, n))
    got = list(out)
    if len(got) != len(want):
        return f"expected {len(want)} items, got {len(got)}"
    if sum(got) != sum(want) or sorted(got) != want:
        return "items differ from the expected ones"
    return None
