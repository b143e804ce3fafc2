"""A small, real pipeline on every backend: fetch (simulated I/O), parse, crunch numbers.

Run it with ``./dev demo``. The `pl.ray` part runs when Ray is installed (the ``ray``
extra, which ``./dev test`` also installs); it starts a Ray on this machine for itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

import pypeln as pl


def fetch(page: int) -> str:
    """Blocking I/O (simulated): a thread stage overlaps the waits."""
    time.sleep(0.02)
    return f"page {page}: " + " ".join(str(page * k) for k in range(1, 6))


async def fetch_async(page: int) -> str:
    """Async I/O (simulated): a task stage runs many at once on one event loop."""
    await asyncio.sleep(0.02)
    return f"page {page}: " + " ".join(str(page * k) for k in range(1, 6))


def numbers(text: str) -> list:
    return [int(word) for word in text.split()[2:]]


def crunch(n: int) -> tuple:
    """CPU work: a process stage runs it in parallel, outside the GIL."""
    digest = str(n).encode()
    for _ in range(2000):
        digest = hashlib.sha256(digest).digest()
    return n, digest.hex()[:8]


def show(title: str, start: float, results: list) -> None:
    print(
        f"{title:<44} {len(results):>4} items in {time.perf_counter() - start:6.3f}s   "
        f"first: {results[0]}"
    )


def main() -> None:
    pages = range(50)
    backends = [name for name in ("sync", "thread", "process", "task") if hasattr(pl, name)]
    print(f"pypeln {pl.__version__}: fetch 50 pages -> split into numbers -> hash each number\n")

    start = time.perf_counter()
    results = list(pages | pl.sync.map(fetch) | pl.sync.flat_map(numbers) | pl.sync.map(crunch))
    show("sync (one item at a time, for reference)", start, results)

    start = time.perf_counter()
    results = list(
        pages
        | pl.thread.map(fetch, workers=25)
        | pl.thread.flat_map(numbers)
        | pl.thread.map(crunch, workers=2)
        | pl.thread.ordered
    )
    show("thread (25 fetchers), ordered", start, results)

    if "process" in backends:
        start = time.perf_counter()
        results = list(
            pages
            | pl.thread.map(fetch, workers=25)
            | pl.thread.flat_map(numbers)
            | pl.process.map(crunch, workers=2)
            | pl.sync.ordered
        )
        show("thread fetch -> process crunch (mixed)", start, results)

    if "task" in backends:
        start = time.perf_counter()
        results = list(
            pages
            | pl.task.map(fetch_async, workers=50)
            | pl.task.flat_map(numbers)
            | pl.thread.map(crunch, workers=2)
            | pl.sync.ordered
        )
        show("task fetch (50 at once) -> thread crunch", start, results)

    # Batches: crunch a list of numbers per call, then flatten; `ordered` streams, so the
    # first result arrives long before the last page is fetched.
    start = time.perf_counter()
    stream = (
        pages
        | pl.thread.map(fetch, workers=25)
        | pl.thread.flat_map(numbers)
        | pl.thread.batch(16, timeout=0.05)
        | pl.thread.map(lambda ns: [crunch(n) for n in ns], workers=2)
        | pl.thread.unbatch
        | pl.thread.ordered
    )
    first_at = None
    results = []
    for item in stream:
        if first_at is None:
            first_at = time.perf_counter() - start
        results.append(item)
    show("thread batch(16) -> crunch -> unbatch", start, results)
    print(f"{'':<44} (ordered: first item after {first_at:.3f}s)")

    if ray_demo(pages):
        backends.append("ray")

    print("\nbackends available:", ", ".join(backends))


def ray_demo(pages: range) -> bool:
    """The crunching on two Ray actors, in a Ray started on this machine for the demo;
    False if Ray is not installed."""
    try:
        import ray
    except ImportError:
        print("\nray: skipped, Ray is not installed (pip install -e '.[ray]' adds it)")
        return False
    start = time.perf_counter()
    # address="local": a new Ray on this machine, even if RAY_ADDRESS names a cluster.
    ray.init(address="local", include_dashboard=False, logging_level="ERROR")
    print(f"\nray: started a local Ray for the demo in {time.perf_counter() - start:.1f}s")
    try:
        start = time.perf_counter()
        results = list(
            pages
            | pl.thread.map(fetch, workers=25)
            | pl.thread.flat_map(numbers)
            | pl.ray.map(crunch, workers=2)
            | pl.sync.ordered
        )
        show("thread fetch -> ray crunch (2 actors)", start, results)
        print(f"{'':<44} (the time includes starting the 2 actors)")
    finally:
        ray.shutdown()
    return True


if __name__ == "__main__":
    main()
