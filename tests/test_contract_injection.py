"""on_start / on_done, dependency injection by parameter name, and `Namespace`."""

from __future__ import annotations

import pytest
from conftest import CALL_OPTIONS

pytestmark = pytest.mark.timeout(30)

WORKERS = 3


def test_on_start_resources_reach_f(backend):
    def on_start():
        return {"offset": 100, "scale": 2}

    def f(x, scale, offset):
        return x * scale + offset

    out = backend.map(f, range(10), workers=WORKERS, on_start=on_start)
    assert sorted(out) == [x * 2 + 100 for x in range(10)]


@pytest.mark.parametrize("op", ["map", "filter", "flat_map", "each"])
def test_every_per_item_operator_injects(backend, op):
    ns = backend.Namespace(seen=0)

    def on_start():
        return {"k": 7}

    def f(x, k):
        assert k == 7
        with ns:
            ns.seen += 1
        return [x] if op == "flat_map" else x

    list(getattr(backend, op)(f, range(6), workers=2, on_start=on_start))
    assert ns.seen == 6


def test_on_start_receives_worker_info(backend):
    def on_start(worker_info):
        return {"who": worker_info.index}

    def f(x, who, worker_info):
        return (who, worker_info.index)

    workers = WORKERS
    out = list(backend.map(f, range(12), workers=workers, on_start=on_start))
    assert len(out) == 12
    for who, index in out:
        assert who == index
        assert 0 <= index < workers


def test_worker_info_without_on_start(backend):
    def f(x, worker_info):
        return worker_info.index

    workers = 4
    out = list(backend.map(f, range(12), workers=workers))
    assert len(out) == 12 and set(out) <= set(range(workers))


def test_each_worker_runs_on_start_and_on_done_once(backend):
    ns = backend.Namespace(started=(), done=())

    def on_start(worker_info):
        with ns:
            ns.started = ns.started + (worker_info.index,)

    def on_done(worker_info):
        with ns:
            ns.done = ns.done + (worker_info.index,)

    workers = WORKERS
    stage = backend.map(lambda x: x, range(20), workers=workers, on_start=on_start, on_done=on_done)
    assert sorted(stage) == list(range(20))
    # `sync` has a single worker (index 0); the others start every worker they are given.
    assert sorted(ns.started) == sorted(ns.done)
    assert len(set(ns.started)) == len(ns.started) >= 1
    assert set(ns.started) <= set(range(workers))
    if backend.__name__.endswith(("thread", "process")):
        assert sorted(ns.started) == list(range(workers))


def test_on_done_runs_after_the_last_item(backend):
    ns = backend.Namespace(items=0, items_when_done=-1)

    def f(x):
        with ns:
            ns.items += 1
        return x

    def on_done():
        with ns:
            ns.items_when_done = ns.items

    backend.each(f, range(15), workers=1, on_done=on_done, run=True)
    assert ns.items_when_done == 15


def test_on_done_receives_on_start_resources(backend):
    ns = backend.Namespace(closed=0)

    class Resource:
        def __init__(self):
            self.used = 0

    def on_start():
        return {"resource": Resource()}

    def f(x, resource):
        resource.used += 1
        return x

    def on_done(resource):
        with ns:
            ns.closed += resource.used

    out = backend.map(f, range(10), workers=2, on_start=on_start, on_done=on_done)
    assert sorted(out) == list(range(10))
    assert ns.closed == 10


def test_on_done_receives_stage_status(backend):
    ns = backend.Namespace(statuses=())

    def on_done(stage_status, worker_info):
        with ns:
            ns.statuses = ns.statuses + (
                (stage_status.done, stage_status.active_workers, worker_info.index),
            )

    workers = WORKERS
    backend.each(lambda x: None, range(10), workers=workers, on_done=on_done, run=True)
    assert ns.statuses
    for done, active, index in ns.statuses:
        assert 0 <= index < workers
        assert isinstance(done, bool)
        assert 0 <= active < workers
        assert done == (active == 0)
    # whoever finishes last sees the stage done
    assert any(done for done, _, _ in ns.statuses)


def test_on_start_may_return_none(backend):
    ns = backend.Namespace(started=0)

    def on_start():
        with ns:
            ns.started += 1

    assert sorted(backend.map(lambda x: x, range(4), on_start=on_start)) == [0, 1, 2, 3]
    assert ns.started == 1


def test_f_ignores_resources_it_does_not_declare(backend):
    def on_start():
        return {"unused": object(), "also_unused": 1}

    assert sorted(backend.map(lambda x: x + 1, range(4), workers=2, on_start=on_start)) == [
        1,
        2,
        3,
        4,
    ]


def test_builtin_f_without_signature(backend):
    out = backend.map(str, range(3), on_start=lambda: {"unused": 1})
    assert sorted(out) == ["0", "1", "2"]


def test_keyword_only_injection(backend):
    def f(x, *, factor, element_index):
        return (x * factor, element_index)

    out = backend.map(f, [1, 2], on_start=lambda: {"factor": 3})
    assert sorted(out) == [(3, (0,)), (6, (1,))]


# -- Namespace ---------------------------------------------------------------------------


def test_namespace_attributes(backend):
    ns = backend.Namespace(a=1, b="x")
    assert (ns.a, ns.b) == (1, "x")
    ns.a = 2
    ns.c = [1]
    assert (ns.a, ns.c) == (2, [1])


def test_namespace_shared_across_workers_with_lock(backend):
    ns = backend.Namespace(count=0)

    def count(x):
        with ns:
            value = ns.count
            import time

            time.sleep(0.0005)
            ns.count = value + 1

    backend.each(count, range(40), workers=4, run=True)
    assert ns.count == 40


def test_namespace_written_by_workers_is_visible_to_the_consumer(backend):
    ns = backend.Namespace(last=-1)

    def record(x):
        with ns:
            ns.last = max(ns.last, x)
        return x

    seen = []
    for x in backend.map(record, range(5)) | backend.ordered:
        seen.append(x)
    assert seen == [0, 1, 2, 3, 4]
    assert ns.last == 4


def test_namespace_set_by_the_parent_is_seen_by_workers(backend):
    ns = backend.Namespace(factor=1)
    ns.factor = 5

    def scale(x):
        return x * ns.factor

    assert sorted(backend.map(scale, range(3), workers=2)) == [0, 5, 10]


@pytest.mark.parametrize("options", **CALL_OPTIONS)
@pytest.mark.parametrize("op", ["map", "filter", "flat_map", "each"])
def test_every_operator_passes_element_index(backend, op, options):
    ns = backend.Namespace(seen=())

    def f(x, element_index):
        with ns:
            ns.seen = ns.seen + ((element_index, x),)
        return [x] if op == "flat_map" else x

    stage = getattr(backend, op)(f, [5, 6, 7], workers=2, **options)
    out = sorted(stage)
    assert sorted(ns.seen) == [((0,), 5), ((1,), 6), ((2,), 7)]
    assert out == ([] if op == "each" else [5, 6, 7])


class Flaky(Exception):
    pass


@pytest.mark.parametrize("options", [{}, {"timeout": 30}], ids=["policy", "both"])
@pytest.mark.parametrize("op", ["map", "filter", "flat_map", "each"])
def test_a_retried_attempt_gets_the_same_value_and_element_index(backend, op, options):
    """Each item fails its first attempt: the retry calls `f` with the item's value and
    index again, and the handler of an item that fails for good gets its value."""
    ns = backend.Namespace(tried=(), seen=())

    def f(x, element_index):
        with ns:
            first = x not in ns.tried
            ns.tried = ns.tried + (x,)
        if first or x == 7:
            raise Flaky(x)
        with ns:
            ns.seen = ns.seen + ((element_index, x),)
        return [x] if op == "flat_map" else x

    def handler(e, x):
        with ns:
            ns.seen = ns.seen + (("failed", x),)
        return [x] if op == "flat_map" else x

    stage = getattr(backend, op)(f, [5, 6, 7], workers=2, retries=1, on_error=handler, **options)
    out = sorted(stage)
    assert sorted(ns.seen, key=repr) == sorted([((0,), 5), ((1,), 6), ("failed", 7)], key=repr)
    assert out == ([] if op == "each" else [5, 6, 7])
