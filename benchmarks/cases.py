"""The timed bodies of every benchmark row.

Each case is a plain function ``case(n, **params) -> (seconds, output)``. It does its own
set-up that must stay out of the timing (resolving names, building the input description),
times the rest with ``time.perf_counter`` and returns the elapsed seconds together with the
output it produced, so the caller can check the work was really done. A case that measures
more than time returns a third element, a dict of numbers (``pl_map_rss``: memory in MB).

This module is imported by ``worker.py`` in a fresh interpreter for every row, possibly the
interpreter of the pypeln 0.4.9 virtual environment. It must therefore import nothing at
module level beyond the standard library: peers (mpire, aiostream, Ray) and pypeln are
imported inside the cases that need them. The item functions live at module level so that
process pools and Ray actors can pickle them by reference.

Rows that run on Ray share one local Ray instance per interpreter: the first Ray case
starts it (`ray_session`, outside the timing) and ``worker.py`` stops it (`teardown`) once
the row's repetitions are done.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import multiprocessing
import sys
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


def echo(x: Any) -> Any:
    """Returns its item: a big item crosses to the worker and back."""
    return x


FUNCTIONS: Dict[str, Callable[..., Any]] = {
    f.__name__: f
    for f in (
        inc,
        is_even,
        double,
        even_or_none,
        sleep_10ms,
        ainc,
        ais_even,
        adouble,
        asleep_10ms,
        echo,
    )
}

#: The function of a map stage on each backend in the chains (`pl_chain`, `pl_stream`).
CHAIN_FUNCTIONS = {"sync": inc, "thread": inc, "process": inc, "task": ainc, "ray": inc}


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
    if backend == "ray":
        ray_session()  # the driver's session, as a user would start it: not timed
    f = _fn(fn)
    kwargs = {} if workers is None else {"workers": workers}
    t0 = time.perf_counter()
    out = list(pl_map_(f, range(n), **kwargs))
    return time.perf_counter() - t0, out


def pl_map_progress(n: int, backend: str, fn: str, workers: Optional[int] = None) -> Measured:
    """``pl.<backend>.to_iterable(map(fn, range(n)), progress="force") | list``, bars drawn
    to a null device (the cost of drawing them, not of a terminal)."""
    import contextlib
    import os

    importlib.import_module("tqdm.auto")  # imported once per process: not per run
    mod = _backend(backend)
    f = _fn(fn)
    kwargs = {} if workers is None else {"workers": workers}
    with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
        t0 = time.perf_counter()
        out = list(mod.to_iterable(mod.map(f, range(n), **kwargs), progress="force"))
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


def pl_map_ordered(n: int, backend: str, fn: str, workers: Optional[int] = None) -> Measured:
    """``pl.<backend>.map(fn, range(n), workers=workers) | pl.<backend>.ordered | list``

    With each version's defaults: a streaming `ordered` with its default window now, one
    that waits for its whole input and sorts it in pypeln 0.4.9.
    """
    mod = _backend(backend)
    pl_map_, pl_ordered = _operator(mod, "map"), _operator(mod, "ordered")
    f = _fn(fn)
    kwargs = {} if workers is None else {"workers": workers}
    t0 = time.perf_counter()
    out = list(pl_ordered(pl_map_(f, range(n), **kwargs)))
    return time.perf_counter() - t0, out


def pl_first_item(
    n: int, backend: str, fn: str, workers: Optional[int] = None, ordered: bool = False
) -> Measured:
    """Time from starting to iterate ``pl.<backend>.map(fn, range(n))`` to its first item.

    With ``ordered``, the stage is followed by ``pl.<backend>.ordered``.
    """
    mod = _backend(backend)
    pl_map_ = _operator(mod, "map")
    pl_ordered = _operator(mod, "ordered") if ordered else None
    f = _fn(fn)
    kwargs = {} if workers is None else {"workers": workers}
    t0 = time.perf_counter()
    stage = pl_map_(f, range(n), **kwargs)
    if pl_ordered is not None:
        stage = pl_ordered(stage)
    items = iter(stage)
    first = next(items)
    elapsed = time.perf_counter() - t0
    # Leave early, as a consumer that only wanted one item would; the stage must tear down.
    close = getattr(items, "close", None)
    if close is not None:
        close()
    del items
    return elapsed, [first]


def _status_mb(field: str) -> Optional[float]:
    """A field of ``/proc/self/status`` given in kB (``VmRSS``, ``VmHWM``), in MB; None where
    /proc is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _rss_mb() -> Optional[float]:
    """This process's resident set size now (VmRSS), in MB; None where /proc is missing."""
    return _status_mb("VmRSS")


def _peak_rss_mb() -> float:
    """This process's peak RSS since its interpreter started, in MB.

    ``VmHWM`` where /proc has it: the high-water mark of this process's own memory. Not
    ``ru_maxrss`` there, because on Linux ``ru_maxrss`` keeps the largest RSS the process
    had across fork and exec: a row's interpreter would report at least the RSS the
    harness had when it started the row (tens of MB once the harness has imported
    matplotlib for ``--plot``), whatever the row did. ``ru_maxrss`` elsewhere (macOS).
    """
    import resource

    hwm = _status_mb("VmHWM")
    return hwm if hwm is not None else _maxrss_mb(resource.RUSAGE_SELF)


def _maxrss_mb(who: int) -> float:
    """``getrusage(who).ru_maxrss`` in MB (Linux reports kB, macOS bytes)."""
    import resource

    maxrss = resource.getrusage(who).ru_maxrss
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


def pl_map_rss(
    n: int, backend: str, fn: str, workers: Optional[int] = None, ordered: bool = False
) -> Tuple[float, Any, Dict[str, Optional[float]]]:
    """A whole ``pl.<backend>.map(fn, range(n))`` run (``| ordered`` with ``ordered``), and
    the peak RSS of this process over it.

    The peak is `_peak_rss_mb` after the run: the high-water mark of this process (not of
    its children) since it started, so it is the run's own peak only
    in a fresh interpreter and on the first repetition (suite.py runs these rows once).
    `ordered` and the queues it reads from live in this process; the worker processes only
    run ``fn``. Also reported: the RSS just before the run (VmRSS), the peak before it, and
    the largest ru_maxrss of the child processes waited for by the end of the run.
    """
    import resource

    mod = _backend(backend)
    pl_map_ = _operator(mod, "map")
    pl_ordered = _operator(mod, "ordered") if ordered else None
    f = _fn(fn)
    kwargs = {} if workers is None else {"workers": workers}
    rss_before = _rss_mb()
    peak_before = _peak_rss_mb()
    t0 = time.perf_counter()
    stage = pl_map_(f, range(n), **kwargs)
    if pl_ordered is not None:
        stage = pl_ordered(stage)
    out = list(stage)
    elapsed = time.perf_counter() - t0
    memory = {
        "peak_rss_mb": _peak_rss_mb(),
        "rss_before_mb": rss_before,
        "peak_before_mb": peak_before,
        "children_peak_mb": _maxrss_mb(resource.RUSAGE_CHILDREN),
    }
    return elapsed, out, memory


def _chain(n: int, stages: List[List[Any]], maxsize: int) -> Any:
    """``range(n) | map(inc) | map(inc) | ...``: one map stage per ``[backend, workers]`` of
    `stages` (``ainc`` on task stages), each with ``maxsize`` when it is not 0."""
    stage: Any = range(n)
    for backend, workers in stages:
        pl_map_ = _operator(_backend(backend), "map")
        kwargs = {"workers": workers, **({"maxsize": maxsize} if maxsize else {})}
        stage = pl_map_(CHAIN_FUNCTIONS[backend], stage, **kwargs)
    return stage


def pl_chain(n: int, stages: List[List[Any]], maxsize: int = 0) -> Measured:
    """``range(n) | pl.<b1>.map(inc) | pl.<b2>.map(inc) | ... | list``, any backends mixed:
    what each stage added to a pipeline costs. The output is ``x + len(stages)``."""
    t0 = time.perf_counter()
    out = list(_chain(n, stages, maxsize))
    return time.perf_counter() - t0, out


def pl_stream(
    n: int, stages: List[List[Any]], maxsize: int = 0
) -> Tuple[float, Any, Dict[str, Optional[float]]]:
    """A long stream: `pl_chain`'s pipeline consumed item by item (a count and a sum, no
    list), timed from its first item out, and how much the peak RSS of this process rose.

    The seconds are those from the first item to the end of the stream, so that the
    items/s is the rate at which the pipeline streams, comparable between a short and a
    long run; the start-up (time to the first item, workers started) is reported apart as
    ``start_s``. Within the run, ``items_per_s_1eK`` is the rate over the decade of items
    that ends at item 10^K (from 10^(K-1)), for 10^5 and up: a stream that slows down as it
    gets longer shows it there too. The rise is the peak RSS after the run (`_peak_rss_mb`)
    minus the RSS just before it (VmRSS): an upper bound of the growth, the peak being a
    high-water mark since the interpreter started (suite.py runs these rows once, each in
    its own interpreter). The largest ru_maxrss of the child processes waited for (the
    process stage's workers) is reported too.
    """
    import resource

    stage = _chain(n, stages, maxsize)
    rss_before = _rss_mb()
    t0 = time.perf_counter()
    items = iter(stage)
    total = next(items)
    first = time.perf_counter()
    count = 1
    marks = [10**k for k in range(4, 19) if 10**k <= n]  # where the clock is read
    mark, at = (marks.pop(0) if marks else 0), {}
    for x in items:
        count += 1
        total += x
        if count == mark:
            at[mark] = time.perf_counter()
            mark = marks.pop(0) if marks else 0
    elapsed = time.perf_counter() - first
    peak = _peak_rss_mb()
    memory: Dict[str, Optional[float]] = {
        f"items_per_s_1e{len(str(m)) - 1}": (m - m // 10) / (t - at[m // 10])
        for m, t in at.items()
        if m // 10 in at and t > at[m // 10]
    }
    memory |= {
        "start_s": first - t0,
        "peak_rss_mb": peak,
        "rss_before_mb": rss_before,
        "rss_growth_mb": None if rss_before is None else peak - rss_before,
        "children_peak_mb": _maxrss_mb(resource.RUSAGE_CHILDREN),
    }
    return elapsed, (count, total), memory


def _payloads(n: int, size: int) -> Iterator[bytes]:
    """n distinct ``bytes`` objects of `size` bytes (distinct, so that pickling a batch of
    them cannot share one copy)."""
    return (bytes(size) for _ in range(n))


def pl_payload(n: int, backend: str, size: int, workers: int) -> Measured:
    """``pl.<backend>.map(echo, items, workers=workers)`` over n items of `size` bytes each:
    every item crosses to a worker and back; the consumer keeps only their lengths."""
    pl_map_ = _operator(_backend(backend), "map")
    t0 = time.perf_counter()
    out = [len(b) for b in pl_map_(echo, _payloads(n, size), workers=workers)]
    return time.perf_counter() - t0, out


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


def threads_map(n: int, fn: str, workers: int) -> Measured:
    """`workers` plain threads, each mapping its own share of ``range(n)`` (every
    `workers`-th item): no queue and no hand-over, the floor under any thread pool."""
    import threading

    f = _fn(fn)
    shares: List[List[Any]] = [[] for _ in range(workers)]

    def work(k: int) -> None:
        shares[k] = list(map(f, range(k, n, workers)))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=work, args=(k,)) for k in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - t0
    return elapsed, [x for share in shares for x in share]


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


def pool_map(n: int, fn: str, workers: int, chunksize: int, ordered: bool = False) -> Measured:
    """``Pool.imap_unordered``, or ``Pool.imap`` (results in input order) with ``ordered``."""
    f = _fn(fn)
    t0 = time.perf_counter()
    with multiprocessing.Pool(workers) as pool:
        imap = pool.imap if ordered else pool.imap_unordered
        out = list(imap(f, range(n), chunksize=chunksize))
    return time.perf_counter() - t0, out


def pool_payload(n: int, size: int, workers: int, chunksize: int) -> Measured:
    """`pl_payload` with ``Pool.imap_unordered``."""
    t0 = time.perf_counter()
    with multiprocessing.Pool(workers) as pool:
        items = pool.imap_unordered(echo, _payloads(n, size), chunksize=chunksize)
        out = [len(b) for b in items]
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


# --------------------------------------------------------------------------- Ray

#: How every Ray row starts Ray: a fresh local instance of 2 CPUs, whatever cluster
#: ``RAY_ADDRESS`` or an earlier ``ray start`` may name.
RAY_INIT: Dict[str, Any] = {
    "address": "local",
    "num_cpus": 2,
    "include_dashboard": False,
    "object_store_memory": 200 * 1024 * 1024,
}


def ray_session() -> Any:
    """The `ray` module, with this interpreter's local Ray started on first use.

    NotAvailable if Ray is not installed. Called before the clock starts: starting Ray
    takes seconds and is the same for every Ray row.
    """
    try:
        import ray
    except ImportError as error:
        raise NotAvailable("ray is not installed") from error
    if not ray.is_initialized():
        ray.init(**RAY_INIT)
    return ray


def teardown() -> None:
    """Stop what the cases started for the whole interpreter: Ray, if a row started it."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


class RayMapper:
    """The actor of the hand-written Ray rows: applies a function to one item or a chunk."""

    def __init__(self, f: Callable[[Any], Any]) -> None:
        self.f = f

    def one(self, x: Any) -> Any:
        return self.f(x)

    def chunk(self, xs: List[Any]) -> List[Any]:
        f = self.f
        return [f(x) for x in xs]


def ray_pool_map(n: int, fn: str, workers: int, chunksize: int, in_flight: int) -> Measured:
    """A hand-written actor pool: `workers` actors, chunks of `chunksize` items, at most
    `in_flight` calls per actor, results taken in completion order with ``ray.wait``.

    The actors are created and killed inside the timing, as ``pl.ray`` does with its own.
    """
    import itertools

    ray = ray_session()
    mapper = ray.remote(RayMapper)
    f = _fn(fn)
    t0 = time.perf_counter()
    actors = [mapper.remote(f) for _ in range(workers)]
    items = iter(range(n))
    running: Dict[Any, Any] = {}  # ObjectRef -> the actor computing it

    def submit(actor: Any) -> None:
        chunk = list(itertools.islice(items, chunksize))
        if chunk:
            running[actor.chunk.remote(chunk)] = actor

    for actor in actors:
        for _ in range(in_flight):
            submit(actor)
    out: List[Any] = []
    while running:
        (ready,), _ = ray.wait(list(running), num_returns=1)
        actor = running.pop(ready)
        submit(actor)  # keep the actor busy while this chunk is copied out
        out.extend(ray.get(ready))
    for actor in actors:
        ray.kill(actor)
    return time.perf_counter() - t0, out


def ray_actorpool_map(n: int, fn: str, workers: int) -> Measured:
    """``ray.util.ActorPool(actors).map_unordered``, one item per call (its documented use).

    The actors are created and killed inside the timing, as ``pl.ray`` does with its own.
    """
    ray = ray_session()
    from ray.util import ActorPool

    mapper = ray.remote(RayMapper)
    f = _fn(fn)
    values = list(range(n))  # it is typed to take a list
    t0 = time.perf_counter()
    actors = [mapper.remote(f) for _ in range(workers)]
    pool = ActorPool(actors)
    out = list(pool.map_unordered(lambda actor, x: actor.one.remote(x), values))
    for actor in actors:
        ray.kill(actor)
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


def gather_all_map(n: int, fn: str) -> Measured:
    """``asyncio.gather`` of all n coroutines at once: no limit, every task started at once."""
    f = _fn(fn)

    async def main() -> List[Any]:
        return await asyncio.gather(*(f(x) for x in range(n)))

    t0 = time.perf_counter()
    out = asyncio.run(main())
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
    """The items a row must produce (in any order) for the given check name.

    A check name ending in ``-ordered`` wants the same items in exactly this order.
    """
    check = check[: -len("-ordered")] if check.endswith("-ordered") else check
    if check == "inc":
        return (x + 1 for x in range(n))
    if check.startswith("add-"):  # a chain of `inc` stages
        k = int(check[len("add-") :])
        return (x + k for x in range(n))
    if check.startswith("len-"):  # items of a given size, back as their lengths
        size = int(check[len("len-") :])
        return (size for _ in range(n))
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
    if check == "first-ordered":
        # After `ordered`, the first item can only be f(0).
        if out != [1]:
            return f"expected [1] (x + 1 for x = 0), got {out!r:.80}"
        return None
    if check.startswith("count-sum-add-"):
        # A long stream consumed without a list: (count, sum) of x + k over range(n).
        k = int(check[len("count-sum-add-") :])
        want_summary = (n, n * (n - 1) // 2 + k * n)
        if tuple(out) != want_summary:
            return f"expected (count, sum) {want_summary}, got {tuple(out)}"
        return None
    want = list(expected(check, n))
    got = list(out)
    if len(got) != len(want):
        return f"expected {len(want)} items, got {len(got)}"
    if check.endswith("-ordered") and got != want:
        at = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
        if sorted(got) == want:
            return f"right items, wrong order: first difference at position {at:,}"
        return f"items differ from the expected ones, from position {at:,}"
    if sum(got) != sum(want) or sorted(got) != want:
        return "items differ from the expected ones"
    return None
