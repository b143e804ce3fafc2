"""What a user gets from the wheel alone: run by .ci/wheel-check with the Python of a clean
virtual environment, from a folder outside the source tree.

    python wheel_smoke.py VERSION core   # stopit and typing-extensions only: no Ray, no tqdm
    python wheel_smoke.py VERSION ray    # the same environment after `pip install ray`
"""

from __future__ import annotations

import asyncio
import os
import sys
import sysconfig
import time
from typing import List

import pypeln as pl


def square(x: int) -> int:
    return x * x


def is_even(x: int) -> bool:
    return x % 2 == 0


async def double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


def check_installed(version: str) -> None:
    site = os.path.realpath(sysconfig.get_paths()["purelib"])
    here = os.path.realpath(os.path.dirname(pl.__file__))
    assert here.startswith(site + os.sep), f"pypeln imported from {here}, not from {site}"
    assert pl.__version__ == version, f"pl.__version__ {pl.__version__!r}, wheel {version!r}"
    assert os.path.isfile(os.path.join(here, "py.typed")), "py.typed is not installed"
    print(f"pypeln {pl.__version__} from {here}, py.typed installed")


def check_backends() -> None:
    expected = [x * x for x in range(20) if (x * x) % 2 == 0]

    result = list(range(20) | pl.sync.map(square) | pl.sync.filter(is_even))
    assert result == expected, ("sync", result)

    stage = range(20) | pl.thread.map(square, workers=4) | pl.thread.filter(is_even)
    assert sorted(stage) == expected, "thread"
    # iterating a stage again runs it again
    assert list(stage | pl.thread.ordered) == expected, "thread, ordered, second run"

    tasks = range(20) | pl.task.map(double, workers=5)
    assert sorted(tasks) == [2 * x for x in range(20)], "task, iterated"

    async def awaited() -> List[int]:
        return await tasks

    assert sorted(asyncio.run(awaited())) == [2 * x for x in range(20)], "task, awaited"

    for method in (None, "spawn"):  # the platform's default start method, and spawn
        stage = range(20) | pl.process.map(square, workers=2, start_method=method)
        result = list(stage | pl.process.filter(is_even) | pl.process.ordered)
        assert result == expected, ("process", method, result)

    mixed = (
        range(40)
        | pl.process.map(square, workers=2)
        | pl.thread.ordered
        | pl.thread.batch(8)
        | pl.task.unbatch
        | pl.sync.ordered
        | list
    )
    assert mixed == [x * x for x in range(40)], "mixed"
    print("sync, thread, task (iterated and awaited), process (default and spawn), mixed: ok")


def check_missing_extras() -> None:
    try:
        pl.ray.map(square, range(3))
    except ImportError as e:
        assert "pypeln[ray]" in str(e), str(e)
        print(f"without Ray: ImportError: {e}")
    else:
        raise AssertionError("pl.ray.map built a stage without Ray installed")
    try:
        pl.thread.to_iterable(range(3), progress=True)
    except ImportError as e:
        assert "pypeln[progress]" in str(e), str(e)
        print(f"without tqdm: ImportError: {e}")
    else:
        raise AssertionError("progress=True ran without tqdm installed")


def check_ray() -> None:
    import ray

    start = time.monotonic()
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        stage = range(20) | pl.ray.map(square, workers=1) | pl.thread.filter(is_even)
        result = list(stage | pl.sync.ordered)
        assert result == [x * x for x in range(20) if (x * x) % 2 == 0], ("ray", result)
    finally:
        ray.shutdown()
    print(f"ray {ray.__version__}: ok ({time.monotonic() - start:.1f} s with Ray's start)")


def main() -> None:
    version, mode = sys.argv[1:]
    check_installed(version)
    if mode == "core":
        check_backends()
        check_missing_extras()
    elif mode == "ray":
        check_ray()
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
