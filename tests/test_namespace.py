"""``with ns:`` is re-entrant on every backend: the worker (or the consumer) that holds a
Namespace's lock may take it again, as with an `RLock`, and releases it level by level.

A non-reentrant lock shows only as a hang: each test runs the pipeline under `within`,
which fails with a message saying what did not finish instead of waiting for the suite's
timeout.
"""

from __future__ import annotations

import threading

import pytest
from conftest import name_of, within

pytestmark = pytest.mark.timeout(30)

#: Seconds a nested lock may take before the test calls it a deadlock.
LOCK_BOUND = 5


def nested_count(ns, x):
    """Count `x` under the lock taken three times over; the depth seen inside."""
    with ns:
        with ns:
            with ns:
                ns.count += 1
                ns.total += x
    return x


def nested_in_a_worker(backend, ns):
    if name_of(backend) == "task":

        async def f(x):
            return nested_count(ns, x)

        return f
    return lambda x: nested_count(ns, x)


def test_the_consumer_may_lock_a_namespace_again(backend):
    ns = backend.Namespace(count=0, total=0)
    within(LOCK_BOUND, nested_count, ns, 5)
    assert (ns.count, ns.total) == (1, 5)


def test_a_worker_may_lock_a_namespace_again(backend):
    ns = backend.Namespace(count=0, total=0)
    stage = backend.map(nested_in_a_worker(backend, ns), range(20), workers=3)
    out = within(2 * LOCK_BOUND, sorted, stage)
    assert out == list(range(20))
    assert (ns.count, ns.total) == (20, sum(range(20)))
    # every level was released: the consumer takes the lock again at once
    within(LOCK_BOUND, nested_count, ns, 0)
    assert ns.count == 21


def test_a_nested_lock_still_excludes_another_thread(backend):
    if name_of(backend) == "task":
        pytest.skip("a pl.task.Namespace held by a thread is covered in test_task_namespace")
    ns = backend.Namespace(count=0, total=0)
    entered = threading.Event()

    def other() -> None:
        with ns:
            entered.set()

    def hold_twice() -> threading.Thread:
        with ns:
            with ns:
                thread = threading.Thread(target=other, name="test-other", daemon=True)
                thread.start()
                assert not entered.wait(0.2), "another thread took a lock held twice"
            assert not entered.wait(0.1), "another thread took the lock after one release"
        return thread

    thread = within(LOCK_BOUND, hold_twice)
    assert entered.wait(LOCK_BOUND), "another thread never took the lock once it was free"
    thread.join(LOCK_BOUND)


def test_a_namespace_shows_its_attributes_not_its_lock(backend):
    ns = backend.Namespace(a=1, b="x")
    assert repr(ns) == "Namespace(a=1, b='x')"
    ns.c = [2]
    assert "c=[2]" in repr(ns) and "lock" not in repr(ns)
