"""What the harness runs: the rows of every workload, and the targets checked against them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

LEGACY_VERSION = "0.4.9"
CHUNKSIZE = 256  # for multiprocessing.Pool and ProcessPoolExecutor rows
RAY_CHUNKSIZE = 256  # items per call of the hand-written Ray actor pool
RAY_IN_FLIGHT = 2  # calls at once per actor of the hand-written Ray actor pool

# Item counts. Rows of pypeln 0.4.9, and Ray's ActorPool (one call per item), may use fewer
# items where they are slow: rows are compared by items/s, never by total seconds, so the
# counts need not match there.
FULL_SIZES: Dict[str, int] = {
    "overhead": 200_000,
    "overhead_legacy": 20_000,
    "overhead_legacy_process": 20_000,
    "io_thread": 2_000,
    "io_task": 10_000,
    "io_ray": 2_000,
    "overhead_ray": 100_000,
    "overhead_ray_actorpool": 5_000,
    "pipeline": 200_000,
    "pipeline_legacy": 20_000,
    "pipeline_legacy_process": 20_000,
    "first_item": 1_000_000,
    "ordered": 200_000,
    "ordered_legacy": 20_000,
    "ordered_legacy_process": 20_000,
    "ordered_first_item": 1_000_000,
    "ordered_memory": 1_000_000,
    "progress": 1_000_000,
    "big_items": 200,  # items of PAYLOAD_BYTES
    "depth": 200_000,
    "many_thread": 20_000,
    "many_task": 100_000,
    "stream_short": 100_000,
    "stream_long": 10_000_000,
    "sweep_items_max": 1_000_000,  # sweep-items: 10^3, 10^4, ... up to this
    "sweep_stages": 100_000,  # items of every row of sweep-stages
    "sweep_per_worker": 10,  # sweep-workers: items = workers x this
    "sweep_payload_bytes": 100_000_000,  # sweep-payload: items x size, at least 50 items
}
QUICK_SIZES: Dict[str, int] = {
    "overhead": 20_000,
    "overhead_legacy": 2_000,
    "overhead_legacy_process": 1_000,
    "io_thread": 400,
    "io_task": 2_000,
    "io_ray": 200,
    "overhead_ray": 10_000,
    "overhead_ray_actorpool": 1_000,
    "pipeline": 20_000,
    "pipeline_legacy": 2_000,
    "pipeline_legacy_process": 1_000,
    "first_item": 1_000_000,
    "ordered": 20_000,
    "ordered_legacy": 2_000,
    "ordered_legacy_process": 1_000,
    "ordered_first_item": 1_000_000,
    "ordered_memory": 200_000,
    "progress": 20_000,
    "big_items": 30,
    "depth": 20_000,
    "many_thread": 4_000,
    "many_task": 20_000,
    "stream_short": 10_000,
    "stream_long": 1_000_000,
    "sweep_items_max": 100_000,
    "sweep_stages": 20_000,
    "sweep_per_worker": 5,
    "sweep_payload_bytes": 20_000_000,
}

PAYLOAD_BYTES = 1_000_000  # the big items of the payload workload: 1 MB of bytes each
POOL_CHUNK_BYTES = 250_000  # Pool rows of big items: chunks of about this many bytes
STREAM_MAXSIZE = 1000  # the long stream's queues
STREAM_TIMEOUT = 600.0  # seconds: the 10^7-item stream row's own limit (about 1 min on 2 cores)
#: The stages of the chains: [backend, workers] per stage.
DEPTH_STAGES = [["thread", 4]] * 10
MIXED_STAGES = [["thread", 4], ["process", 2], ["task", 100], ["process", 2], ["thread", 4]]
STREAM_STAGES = [["thread", 2], ["process", 2], ["task", 100]]
SWEEP_STAGES = [1, 2, 5, 10]
SWEEP_THREAD_WORKERS = [1, 10, 100, 1000]
SWEEP_TASK_WORKERS = [10, 100, 1000]  # 10,000 tasks: the many-workers workload
SWEEP_PAYLOADS = [1_000, 10_000, 100_000, 1_000_000]

#: The sweeps: workload -> (what the x axis is, whether it is drawn on a log scale).
SWEEPS: Dict[str, Tuple[str, bool]] = {
    "sweep-items": ("items", True),
    "sweep-stages": ("map stages in the pipeline", False),
    "sweep-workers": ("workers (10 ms sleeps, the same number per worker)", True),
    "sweep-payload": ("bytes per item", True),
}


def pool_chunksize(size: int) -> int:
    """The chunk size of a Pool row whose items have `size` bytes: about 250 kB a chunk."""
    return max(1, POOL_CHUNK_BYTES // size)


def _bytes_text(size: int) -> str:
    return f"{size // 1_000_000} MB" if size >= 1_000_000 else f"{size // 1000} kB"


OURS, PEER, LEGACY = "ours", "peer", "legacy"
THROUGHPUT, LATENCY, MEMORY = "throughput", "latency", "memory"


@dataclass(frozen=True)
class Row:
    """One measured line of the table: a workload run by one implementation."""

    workload: str  # overhead | io-sleep | pipeline | first-item | ordered | ordered-...
    group: str  # the backend the row is compared within: sync | thread | process | task | ray
    slug: str  # short, stable name of the implementation inside the group
    label: str  # what the table shows
    kind: str  # OURS | PEER | LEGACY
    case: str  # function name in cases.py
    n: int
    check: str  # how cases.verify checks the output
    params: Dict[str, Any] = field(default_factory=dict)
    metric: str = THROUGHPUT
    ideal: Optional[float] = None  # seconds a perfect implementation would take
    note: str = ""
    runs: Optional[int] = None  # at most this many repetitions, whatever --repeat says
    timeout: Optional[float] = None  # this row's own limit, when longer than --timeout
    x: Optional[float] = None  # sweeps: the row's point on the x axis
    series: str = ""  # sweeps: the line the row belongs to

    @property
    def key(self) -> str:
        return f"{self.workload}/{self.group}/{self.slug}"

    @property
    def search_text(self) -> str:
        """What ``--only`` patterns are matched against."""
        return f"{self.key} {self.label} {self.kind}"


def build_rows(sizes: Dict[str, int]) -> List[Row]:
    rows: List[Row] = []

    def add(
        workload: str,
        group: str,
        slug: str,
        label: str,
        kind: str,
        case: str,
        n: int,
        check: str,
        **kw: Any,
    ) -> None:
        rows.append(Row(workload, group, slug, label, kind, case, n, check, **kw))

    legacy = f"pypeln {LEGACY_VERSION}"
    fewer = "fewer items: compared by items/s"

    # 1. overhead: a trivial function, so the cost measured is the machinery itself.
    n, n_old = sizes["overhead"], sizes["overhead_legacy"]
    n_old_proc = sizes["overhead_legacy_process"]
    w = "overhead"
    add(
        w,
        "sync",
        "ours",
        "pl.sync.map",
        OURS,
        "pl_map",
        n,
        "inc",
        params={"backend": "sync", "fn": "inc"},
    )
    add(w, "sync", "builtin", "builtin map", PEER, "builtin_map", n, "inc", params={"fn": "inc"})
    add(
        w,
        "sync",
        "pypeln049",
        f"{legacy} sync.map",
        LEGACY,
        "pl_map",
        n_old,
        "inc",
        params={"backend": "sync", "fn": "inc"},
        note=fewer if n_old != n else "",
    )

    add(
        w,
        "thread",
        "ours",
        "pl.thread.map workers=4",
        OURS,
        "pl_map",
        n,
        "inc",
        params={"backend": "thread", "fn": "inc", "workers": 4},
    )
    add(
        w,
        "thread",
        "tpe",
        "ThreadPoolExecutor(4).map",
        PEER,
        "tpe_map",
        n,
        "inc",
        params={"fn": "inc", "workers": 4},
    )
    add(w, "thread", "builtin", "builtin map, one thread (the limit under the GIL)", PEER,
        "builtin_map", n, "inc", params={"fn": "inc"})  # fmt: skip
    add(
        w,
        "thread",
        "pypeln049",
        f"{legacy} thread.map workers=4",
        LEGACY,
        "pl_map",
        n_old,
        "inc",
        params={"backend": "thread", "fn": "inc", "workers": 4},
        note=fewer if n_old != n else "",
    )

    add(
        w,
        "process",
        "ours",
        "pl.process.map workers=2",
        OURS,
        "pl_map",
        n,
        "inc",
        params={"backend": "process", "fn": "inc", "workers": 2},
    )
    add(
        w,
        "process",
        "pool",
        f"multiprocessing.Pool(2).imap_unordered chunksize={CHUNKSIZE}",
        PEER,
        "pool_map",
        n,
        "inc",
        params={"fn": "inc", "workers": 2, "chunksize": CHUNKSIZE},
    )
    add(
        w,
        "process",
        "ppe",
        f"ProcessPoolExecutor(2).map chunksize={CHUNKSIZE}",
        PEER,
        "ppe_map",
        n,
        "inc",
        params={"fn": "inc", "workers": 2, "chunksize": CHUNKSIZE},
    )
    add(
        w,
        "process",
        "mpire",
        "mpire WorkerPool(n_jobs=2).map_unordered",
        PEER,
        "mpire_map",
        n,
        "inc",
        params={"fn": "inc", "workers": 2},
        note=f"default chunk size: n / (n_jobs * 64) = {-(-n // 128)}",
    )
    add(
        w,
        "process",
        "pypeln049",
        f"{legacy} process.map workers=2",
        LEGACY,
        "pl_map",
        n_old_proc,
        "inc",
        params={"backend": "process", "fn": "inc", "workers": 2},
        note=fewer if n_old_proc != n else "",
    )

    add(
        w,
        "task",
        "ours",
        "pl.task.map workers=100",
        OURS,
        "pl_map",
        n,
        "inc",
        params={"backend": "task", "fn": "ainc", "workers": 100},
    )
    add(
        w,
        "task",
        "gather",
        "asyncio.gather + Semaphore(100)",
        PEER,
        "gather_map",
        n,
        "inc",
        params={"fn": "ainc", "workers": 100},
    )
    add(
        w,
        "task",
        "aiostream",
        "aiostream stream.map task_limit=100",
        PEER,
        "aiostream_map",
        n,
        "inc",
        params={"fn": "ainc", "workers": 100},
        note="ordered=False",
    )
    add(
        w,
        "task",
        "pypeln049",
        f"{legacy} task.map workers=100",
        LEGACY,
        "pl_map",
        n_old,
        "inc",
        params={"backend": "task", "fn": "ainc", "workers": 100},
        note=fewer if n_old != n else "",
    )

    # Ray: actors are started inside every row's timing (see cases.ray_pool_map). One item
    # per call is so slow with ActorPool that its row runs fewer items: compared by items/s.
    n, n_pool = sizes["overhead_ray"], sizes["overhead_ray_actorpool"]
    add(w, "ray", "ours", "pl.ray.map workers=2", OURS, "pl_map", n, "inc",
        params={"backend": "ray", "fn": "inc", "workers": 2})  # fmt: skip
    add(w, "ray", "actors",
        f"hand-written pool: 2 actors, chunks of {RAY_CHUNKSIZE}, "
        f"{RAY_IN_FLIGHT} calls in flight each, ray.wait",
        PEER, "ray_pool_map", n, "inc",
        params={"fn": "inc", "workers": 2, "chunksize": RAY_CHUNKSIZE,
                "in_flight": RAY_IN_FLIGHT})  # fmt: skip
    add(w, "ray", "actorpool", "ray.util.ActorPool(2 actors).map_unordered, 1 item per call",
        PEER, "ray_actorpool_map", n_pool, "inc", params={"fn": "inc", "workers": 2},
        note=fewer if n_pool != n else "")  # fmt: skip

    # 2. io-sleep: every item waits 10 ms; the ideal is items * 10 ms / workers.
    w = "io-sleep"
    n = sizes["io_thread"]
    ideal = n * 0.01 / 100
    for slug, label, kind, case, params in (
        (
            "ours",
            "pl.thread.map workers=100",
            OURS,
            "pl_map",
            {"backend": "thread", "fn": "sleep_10ms", "workers": 100},
        ),
        (
            "tpe",
            "ThreadPoolExecutor(100).map",
            PEER,
            "tpe_map",
            {"fn": "sleep_10ms", "workers": 100},
        ),
        (
            "pypeln049",
            f"{legacy} thread.map workers=100",
            LEGACY,
            "pl_map",
            {"backend": "thread", "fn": "sleep_10ms", "workers": 100},
        ),
    ):
        add(
            w,
            "thread",
            slug,
            label,
            kind,
            case,
            n,
            "identity",
            params=params,
            ideal=ideal,
            note="time.sleep(0.01) per item",
        )
    n = sizes["io_task"]
    ideal = n * 0.01 / 1000
    for slug, label, kind, case, params in (
        (
            "ours",
            "pl.task.map workers=1000",
            OURS,
            "pl_map",
            {"backend": "task", "fn": "asleep_10ms", "workers": 1000},
        ),
        (
            "gather",
            "asyncio.gather + Semaphore(1000)",
            PEER,
            "gather_map",
            {"fn": "asleep_10ms", "workers": 1000},
        ),
        (
            "aiostream",
            "aiostream stream.map task_limit=1000",
            PEER,
            "aiostream_map",
            {"fn": "asleep_10ms", "workers": 1000},
        ),
        (
            "pypeln049",
            f"{legacy} task.map workers=1000",
            LEGACY,
            "pl_map",
            {"backend": "task", "fn": "asleep_10ms", "workers": 1000},
        ),
    ):
        add(
            w,
            "task",
            slug,
            label,
            kind,
            case,
            n,
            "identity",
            params=params,
            ideal=ideal,
            note="await asyncio.sleep(0.01) per item",
        )

    # Ray: two actors sleeping 10 ms per item; over 10 s at full size, so the --budget rule
    # runs it once.
    n = sizes["io_ray"]
    add(w, "ray", "ours", "pl.ray.map workers=2", OURS, "pl_map", n, "identity",
        params={"backend": "ray", "fn": "sleep_10ms", "workers": 2}, ideal=n * 0.01 / 2,
        note="time.sleep(0.01) per item")  # fmt: skip

    # 3. pipeline: map(x + 1) -> filter(even) -> map(x * 2), every stage with its own workers.
    w = "pipeline"
    n, n_old = sizes["pipeline"], sizes["pipeline_legacy"]
    n_old_proc = sizes["pipeline_legacy_process"]
    add(
        w,
        "sync",
        "ours",
        "pl.sync map | filter | map",
        OURS,
        "pl_pipeline",
        n,
        "pipeline",
        params={"backend": "sync"},
    )
    add(w, "sync", "builtin", "builtin map | filter | map", PEER, "builtin_pipeline", n, "pipeline")
    add(
        w,
        "sync",
        "pypeln049",
        f"{legacy} sync map | filter | map",
        LEGACY,
        "pl_pipeline",
        n_old,
        "pipeline",
        params={"backend": "sync"},
        note=fewer if n_old != n else "",
    )

    add(
        w,
        "thread",
        "ours",
        "pl.thread, workers=2 per stage",
        OURS,
        "pl_pipeline",
        n,
        "pipeline",
        params={"backend": "thread", "workers": 2},
    )
    add(
        w,
        "thread",
        "tpe",
        "3 x ThreadPoolExecutor(2).map chained",
        PEER,
        "tpe_pipeline",
        n,
        "pipeline",
        params={"workers": 2},
        note="filter as map + `is not None` in the parent",
    )
    add(
        w,
        "thread",
        "pypeln049",
        f"{legacy} thread, workers=2 per stage",
        LEGACY,
        "pl_pipeline",
        n_old,
        "pipeline",
        params={"backend": "thread", "workers": 2},
        note=fewer if n_old != n else "",
    )

    add(
        w,
        "process",
        "ours",
        "pl.process, workers=2 per stage",
        OURS,
        "pl_pipeline",
        n,
        "pipeline",
        params={"backend": "process", "workers": 2},
    )
    add(
        w,
        "process",
        "pool",
        f"3 x Pool(2).imap_unordered chunksize={CHUNKSIZE} chained",
        PEER,
        "pool_pipeline",
        n,
        "pipeline",
        params={"workers": 2, "chunksize": CHUNKSIZE},
        note="filter as map + `is not None` in the parent",
    )
    add(
        w,
        "process",
        "ppe",
        f"3 x ProcessPoolExecutor(2).map chunksize={CHUNKSIZE} chained",
        PEER,
        "ppe_pipeline",
        n,
        "pipeline",
        params={"workers": 2, "chunksize": CHUNKSIZE},
        note="filter as map + `is not None` in the parent",
    )
    add(
        w,
        "process",
        "pypeln049",
        f"{legacy} process, workers=2 per stage",
        LEGACY,
        "pl_pipeline",
        n_old_proc,
        "pipeline",
        params={"backend": "process", "workers": 2},
        note=fewer if n_old_proc != n else "",
    )

    add(
        w,
        "task",
        "ours",
        "pl.task, workers=100 per stage",
        OURS,
        "pl_pipeline",
        n,
        "pipeline",
        params={"backend": "task", "workers": 100},
    )
    add(
        w,
        "task",
        "gather",
        "3 x asyncio.gather + Semaphore(100), stage by stage",
        PEER,
        "gather_pipeline",
        n,
        "pipeline",
        params={"workers": 100},
    )
    add(
        w,
        "task",
        "aiostream",
        "aiostream map | filter | map, task_limit=100",
        PEER,
        "aiostream_pipeline",
        n,
        "pipeline",
        params={"workers": 100},
        note="ordered=False",
    )
    add(
        w,
        "task",
        "pypeln049",
        f"{legacy} task, workers=100 per stage",
        LEGACY,
        "pl_pipeline",
        n_old,
        "pipeline",
        params={"backend": "task", "workers": 100},
        note=fewer if n_old != n else "",
    )

    # 4. first-item: how long until a process stage over a big input yields anything.
    w = "first-item"
    n = sizes["first_item"]
    add(
        w,
        "process",
        "ours",
        f"pl.process.map(range({n:,}), workers=2)",
        OURS,
        "pl_first_item",
        n,
        "first",
        params={"backend": "process", "fn": "inc", "workers": 2},
        metric=LATENCY,
    )
    add(
        w,
        "process",
        "pool",
        f"Pool(2).imap_unordered(range({n:,}), chunksize={CHUNKSIZE})",
        PEER,
        "pool_first_item",
        n,
        "first",
        params={"fn": "inc", "workers": 2, "chunksize": CHUNKSIZE},
        metric=LATENCY,
    )
    add(
        w,
        "process",
        "pypeln049",
        f"{legacy} process.map(range({n:,}), workers=2)",
        LEGACY,
        "pl_first_item",
        n,
        "first",
        params={"backend": "process", "fn": "inc", "workers": 2},
        metric=LATENCY,
    )
    # 5. ordered: the cost of putting a stage's output back in source order. `ordered`
    #    streams with a bounded window; each group also runs the same map without it (a
    #    pypeln row that is a peer here, for the price of the order) and a peer that is
    #    ordered by nature. pypeln 0.4.9's `ordered` waits for the whole input, then sorts.
    w = "ordered"
    n, n_old = sizes["ordered"], sizes["ordered_legacy"]
    n_old_proc = sizes["ordered_legacy_process"]
    in_order = "output checked in order"
    ordered_peers = {  # peers that keep order by nature: (key, label, case, params)
        "thread": [("tpe", "ThreadPoolExecutor(4).map", "tpe_map", {"fn": "inc", "workers": 4})],
        "process": [
            (
                "pool",
                f"multiprocessing.Pool(2).imap chunksize={CHUNKSIZE}",
                "pool_map",
                {"fn": "inc", "workers": 2, "chunksize": CHUNKSIZE, "ordered": True},
            )
        ],
        "task": [],
    }
    for group, fn, workers, n_legacy in (
        ("thread", "inc", 4, n_old),
        ("process", "inc", 2, n_old_proc),
        ("task", "ainc", 100, n_old),
    ):
        stage_params = {"backend": group, "fn": fn, "workers": workers}
        stage = f"pl.{group}.map workers={workers}"
        add(w, group, "ours", f"{stage} | pl.{group}.ordered", OURS, "pl_map_ordered", n,
            "inc-ordered", params=stage_params, note=in_order)  # fmt: skip
        add(w, group, "unordered", f"{stage} (unordered)", PEER, "pl_map", n, "inc",
            params=stage_params, note="same stage without ordered")  # fmt: skip
        for key, label, case, params in ordered_peers[group]:
            add(w, group, key, label, PEER, case, n, "inc-ordered", params=params, note=in_order)
        add(w, group, "pypeln049", f"{legacy} {group}.map workers={workers} | {group}.ordered",
            LEGACY, "pl_map_ordered", n_legacy, "inc-ordered", params=stage_params,
            note="; ".join([in_order, *([fewer] if n_legacy != n else [])]))  # fmt: skip

    # 6. ordered-first-item: `ordered` streams, so its first item (x = 0) must come about as
    #    soon as the unordered stage's first item does, even over a big input.
    w = "ordered-first-item"
    n = sizes["ordered_first_item"]
    add(
        w,
        "process",
        "ours",
        f"pl.process.map(range({n:,}), workers=2) | pl.process.ordered",
        OURS,
        "pl_first_item",
        n,
        "first-ordered",
        params={"backend": "process", "fn": "inc", "workers": 2, "ordered": True},
        metric=LATENCY,
    )
    add(
        w,
        "process",
        "unordered",
        f"pl.process.map(range({n:,}), workers=2) (unordered)",
        PEER,
        "pl_first_item",
        n,
        "first",
        params={"backend": "process", "fn": "inc", "workers": 2},
        metric=LATENCY,
    )

    # 7. ordered-memory: the peak RSS of a whole run over a big input. The window bounds what
    #    `ordered` holds, so it should cost little more memory than the unordered stage.
    #    The peak is a high-water mark that a later repetition cannot lower: one run each.
    w = "ordered-memory"
    n = sizes["ordered_memory"]
    add(
        w,
        "process",
        "ours",
        f"pl.process.map(range({n:,}), workers=2) | pl.process.ordered",
        OURS,
        "pl_map_rss",
        n,
        "inc-ordered",
        params={"backend": "process", "fn": "inc", "workers": 2, "ordered": True},
        metric=MEMORY,
        runs=1,
    )
    add(
        w,
        "process",
        "unordered",
        f"pl.process.map(range({n:,}), workers=2) (unordered)",
        PEER,
        "pl_map_rss",
        n,
        "inc",
        params={"backend": "process", "fn": "inc", "workers": 2},
        metric=MEMORY,
        runs=1,
    )

    # 8. progress: statistics are always on; bars are drawn by one thread that reads them.
    #    The same stage with and without `progress="force"` (bars to a null device).
    #    Long enough a run that the bars' set-up (a few ms) does not count as throughput.
    w = "progress"
    n = sizes["progress"]
    thread_params = {"backend": "thread", "fn": "inc", "workers": 4}
    add(w, "thread", "ours", f"pl.thread.map(range({n:,}), workers=4, progress=True)", OURS,
        "pl_map_progress", n, "inc", params=thread_params)  # fmt: skip
    add(w, "thread", "plain", f"pl.thread.map(range({n:,}), workers=4) (no bars)", PEER,
        "pl_map", n, "inc", params=thread_params)  # fmt: skip

    _limit_rows(add, sizes)
    _sweep_rows(add, sizes)
    return rows


Add = Callable[..., None]


def _chain_label(stages: List[List[Any]]) -> str:
    if all(stage == stages[0] for stage in stages):
        backend, workers = stages[0]
        times = f"{len(stages)} x " if len(stages) > 1 else ""
        return f"{times}pl.{backend}.map workers={workers}"
    return " | ".join(f"{backend}({workers})" for backend, workers in stages)


def _limit_rows(add: Add, sizes: Dict[str, int]) -> None:
    """The workloads near the limits: big items, long pipelines, many workers, long streams."""
    # big-items: items of 1 MB, to a worker and back. Pool with chunks of about 250 kB (one
    # item per chunk here): 256 items of 1 MB a chunk would hold 256 MB at once.
    w, n, size = "big-items", sizes["big_items"], PAYLOAD_BYTES
    check = f"len-{size}"
    params = {"size": size, "workers": 2}
    add(w, "process", "ours", f"pl.process.map workers=2, {_bytes_text(size)} bytes items",
        OURS, "pl_payload", n, check, params={"backend": "process", **params},
        note="f returns its item")  # fmt: skip
    chunk = pool_chunksize(size)
    add(w, "process", "pool", f"Pool(2).imap_unordered chunksize={chunk}", PEER,
        "pool_payload", n, check, params={**params, "chunksize": chunk},
        note="f returns its item")  # fmt: skip

    # depth: the same trivial map repeated, and a pipeline mixing backends, each against one
    # stage of thread.map in the same run (the reference of the depth targets).
    w, n = "depth", sizes["depth"]
    one = [["thread", 4]]
    for group, stages in (("thread", DEPTH_STAGES), ("mixed", MIXED_STAGES)):
        add(w, group, "ours", _chain_label(stages), OURS, "pl_chain", n,
            f"add-{len(stages)}", params={"stages": stages})  # fmt: skip
        add(w, group, "one", f"{_chain_label(one)} (one stage)", PEER, "pl_chain", n, "add-1",
            params={"stages": one})  # fmt: skip

    # many-workers: 10 ms waits on 1,000 threads and on 10,000 tasks.
    w, n = "many-workers", sizes["many_thread"]
    sleep = {"fn": "sleep_10ms", "workers": 1000}
    for slug, label, kind, case, params in (
        ("ours", "pl.thread.map workers=1000", OURS, "pl_map", {"backend": "thread", **sleep}),
        ("tpe", "ThreadPoolExecutor(1000).map", PEER, "tpe_map", sleep),
        (
            "bare",
            "1,000 plain threads, each its share of the items (no queue)",
            PEER,
            "threads_map",
            sleep,
        ),
    ):
        add(w, "thread", slug, label, kind, case, n, "identity", params=params,
            ideal=n * 0.01 / 1000, note="time.sleep(0.01) per item")  # fmt: skip
    n = sizes["many_task"]
    add(w, "task", "ours", "pl.task.map workers=10000", OURS, "pl_map", n, "identity",
        params={"backend": "task", "fn": "asleep_10ms", "workers": 10_000},
        ideal=n * 0.01 / 10_000, note="await asyncio.sleep(0.01) per item")  # fmt: skip
    add(w, "task", "gather", f"asyncio.gather of all {n:,} coroutines (no limit)", PEER,
        "gather_all_map", n, "identity", params={"fn": "asleep_10ms"},
        note="await asyncio.sleep(0.01) per item")  # fmt: skip

    # long-stream: a long run through a 3-stage mixed pipeline with small queues, consumed item
    # by item; items/s of 10^7 items against 10^5 (from the first item out: the streaming
    # rate, start-up apart), and how much the consumer's RSS rose. One run each, in a fresh
    # interpreter (the RSS is a high-water mark).
    w = "long-stream"
    params = {"stages": STREAM_STAGES, "maxsize": STREAM_MAXSIZE}
    check = f"count-sum-add-{len(STREAM_STAGES)}"
    label = f"{_chain_label(STREAM_STAGES)}, maxsize={STREAM_MAXSIZE}"
    n, n_short = sizes["stream_long"], sizes["stream_short"]
    timed = "timed from the first item out"
    add(w, "mixed", "ours", f"{label}: {n:,} items", OURS, "pl_stream", n, check,
        params=params, runs=1, timeout=STREAM_TIMEOUT, note=timed)  # fmt: skip
    add(w, "mixed", "short", f"{label}: {n_short:,} items", PEER, "pl_stream", n_short,
        check, params=params, runs=1, note=f"the same pipeline, a short run; {timed}")  # fmt: skip


def _sweep_rows(add: Add, sizes: Dict[str, int]) -> None:
    """The curves: items/s against items, stages, workers and payload size. A row's group is
    ``<backend>@<x>``, so that each point's ratio pits pypeln against the peer at that x."""

    def point(w: str, backend: str, x: int, slug: str, series: str, kind: str, case: str,
              n: int, check: str, **kw: Any) -> None:  # fmt: skip
        add(w, f"{backend}@{x}", slug, f"{series}, {w[len('sweep-') :]}={x:,}", kind, case, n,
            check, x=float(x), series=series, **kw)  # fmt: skip

    w = "sweep-items"
    top = sizes["sweep_items_max"]
    counts = [10**k for k in range(3, 10) if 10**k <= top]
    for n in counts:
        point(w, "process", n, "ours", "pl.process.map workers=2", OURS, "pl_map", n, "inc",
              params={"backend": "process", "fn": "inc", "workers": 2})  # fmt: skip
        point(w, "process", n, "pool", f"Pool(2).imap_unordered chunksize={CHUNKSIZE}", PEER,
              "pool_map", n, "inc",
              params={"fn": "inc", "workers": 2, "chunksize": CHUNKSIZE})  # fmt: skip
        point(w, "thread", n, "ours", "pl.thread.map workers=4", OURS, "pl_map", n, "inc",
              params={"backend": "thread", "fn": "inc", "workers": 4})  # fmt: skip

    w, n = "sweep-stages", sizes["sweep_stages"]
    for k in SWEEP_STAGES:
        for backend, workers in (("thread", 4), ("task", 100)):
            point(w, backend, k, "ours", f"pl.{backend}.map workers={workers} per stage", OURS,
                  "pl_chain", n, f"add-{k}",
                  params={"stages": [[backend, workers]] * k})  # fmt: skip

    w, per = "sweep-workers", sizes["sweep_per_worker"]
    for backend, counts, fn, peer in (
        ("thread", SWEEP_THREAD_WORKERS, "sleep_10ms", ("tpe", "ThreadPoolExecutor.map",
                                                        "tpe_map")),
        ("task", SWEEP_TASK_WORKERS, "asleep_10ms", ("gather", "asyncio.gather + Semaphore",
                                                     "gather_map")),
    ):  # fmt: skip
        for workers in counts:
            n = workers * per
            params = {"fn": fn, "workers": workers}
            point(w, backend, workers, "ours", f"pl.{backend}.map", OURS, "pl_map", n,
                  "identity", params={"backend": backend, **params},
                  ideal=per * 0.01)  # fmt: skip
            point(w, backend, workers, peer[0], peer[1], PEER, peer[2], n, "identity",
                  params=params, ideal=per * 0.01)  # fmt: skip

    w, total = "sweep-payload", sizes["sweep_payload_bytes"]
    for size in SWEEP_PAYLOADS:
        n = max(50, total // size)
        params = {"size": size, "workers": 2}
        point(w, "process", size, "ours", "pl.process.map workers=2", OURS, "pl_payload", n,
              f"len-{size}", params={"backend": "process", **params})  # fmt: skip
        point(w, "process", size, "pool",
              f"Pool(2).imap_unordered, chunks of ~{_bytes_text(POOL_CHUNK_BYTES)}", PEER,
              "pool_payload", n, f"len-{size}",
              params={**params, "chunksize": pool_chunksize(size)})  # fmt: skip


# --------------------------------------------------------------------------- targets

RATIO, TIME_VS_IDEAL, LATENCY_MS = "ratio", "time-vs-ideal", "latency-ms"
RSS_ABOVE_MB = "rss-above-mb"
STEADY, RSS_GROWTH_MB = "steady", "rss-growth-mb"


@dataclass(frozen=True)
class Target:
    """A goal the library has set itself, checked against the measured rows."""

    text: str
    kind: str  # RATIO: ours/peer op threshold; TIME_VS_IDEAL: seconds <= threshold * ideal;
    #            LATENCY_MS: first item within threshold ms;
    #            RSS_ABOVE_MB: ours's peak RSS at most threshold MB above peer's;
    #            STEADY: ours/peer items/s within 1 +- threshold (a long run against a
    #            short one); RSS_GROWTH_MB: ours's RSS rose by at most threshold MB
    ours: str  # row key
    threshold: float
    peer: Optional[str] = None  # row key, for RATIO and RSS_ABOVE_MB
    strict: bool = False  # ">" instead of ">="


TARGETS: List[Target] = [
    Target(
        "thread.map with progress bars >= 0.9x the same without",
        RATIO,
        "progress/thread/ours",
        0.9,
        "progress/thread/plain",
    ),
    Target(
        "thread.map trivial workers=4 >= 10x ThreadPoolExecutor(4).map",
        RATIO,
        "overhead/thread/ours",
        10,
        "overhead/thread/tpe",
    ),
    Target(
        "thread.map trivial workers=4 >= 20x pypeln 0.4.9 thread.map",
        RATIO,
        "overhead/thread/ours",
        20,
        "overhead/thread/pypeln049",
    ),
    Target(
        "thread 10 ms sleeps, workers=100: time <= 1.5 x ideal",
        TIME_VS_IDEAL,
        "io-sleep/thread/ours",
        1.5,
    ),
    Target(
        "process.map trivial workers=2 >= 0.8x Pool.imap_unordered(chunksize=256)",
        RATIO,
        "overhead/process/ours",
        0.8,
        "overhead/process/pool",
    ),
    Target(
        "process.map trivial workers=2 > ProcessPoolExecutor.map(chunksize=256)",
        RATIO,
        "overhead/process/ours",
        1,
        "overhead/process/ppe",
        strict=True,
    ),
    Target(
        "process.map trivial workers=2 > mpire map_unordered",
        RATIO,
        "overhead/process/ours",
        1,
        "overhead/process/mpire",
        strict=True,
    ),
    Target(
        "process.map trivial workers=2 >= 100x pypeln 0.4.9 process.map",
        RATIO,
        "overhead/process/ours",
        100,
        "overhead/process/pypeln049",
    ),
    Target(
        "3-stage process pipeline >= 100x pypeln 0.4.9",
        RATIO,
        "pipeline/process/ours",
        100,
        "pipeline/process/pypeln049",
    ),
    Target(
        "first item of a process stage within 100 ms", LATENCY_MS, "first-item/process/ours", 100
    ),
    Target(
        "task.map trivial workers=100 >= 8x asyncio.gather + Semaphore(100)",
        RATIO,
        "overhead/task/ours",
        8,
        "overhead/task/gather",
    ),
    Target(
        "task.map trivial workers=100 >= 30x pypeln 0.4.9 task.map",
        RATIO,
        "overhead/task/ours",
        30,
        "overhead/task/pypeln049",
    ),
    Target(
        "task.map trivial workers=100 >= 30x aiostream task_limit=100",
        RATIO,
        "overhead/task/ours",
        30,
        "overhead/task/aiostream",
    ),
    Target(
        "task 10 ms asyncio.sleep, workers=1000: time <= 1.5 x ideal",
        TIME_VS_IDEAL,
        "io-sleep/task/ours",
        1.5,
    ),
    Target(
        f"ray.map trivial workers=2 >= 1x a hand-written pool of 2 actors "
        f"(chunks of {RAY_CHUNKSIZE}, {RAY_IN_FLIGHT} in flight each)",
        RATIO,
        "overhead/ray/ours",
        1,
        "overhead/ray/actors",
    ),
    Target(
        "ray.map trivial workers=2 >= 3x ray.util.ActorPool(2 actors).map_unordered",
        RATIO,
        "overhead/ray/ours",
        3,
        "overhead/ray/actorpool",
    ),
    Target(
        "ray 10 ms sleeps, workers=2: time <= 1.3 x ideal",
        TIME_VS_IDEAL,
        "io-sleep/ray/ours",
        1.3,
    ),
    Target(
        "thread.map trivial workers=4 | ordered >= 0.85x thread.map alone",
        RATIO,
        "ordered/thread/ours",
        0.85,
        "ordered/thread/unordered",
    ),
    Target(
        "first item of process.map | ordered over 1,000,000 items within 200 ms",
        LATENCY_MS,
        "ordered-first-item/process/ours",
        200,
    ),
    Target(
        "peak RSS of process.map | ordered over 1,000,000 items <= unordered's + 100 MB",
        RSS_ABOVE_MB,
        "ordered-memory/process/ours",
        100,
        "ordered-memory/process/unordered",
    ),
    # Near the limits (payload, depth, many-workers, stream).
    Target(
        "thread.map trivial workers=4 >= 0.25x builtin map in one thread",
        RATIO,
        "overhead/thread/ours",
        0.25,
        "overhead/thread/builtin",
    ),  # fmt: skip
    Target(
        "process.map of 1 MB bytes items workers=2 > Pool(2).imap_unordered",
        RATIO,
        "big-items/process/ours",
        1,
        "big-items/process/pool",
        strict=True,
    ),  # fmt: skip
    Target(
        "10 thread.map stages >= 0.4x the items/s of one stage",
        RATIO,
        "depth/thread/ours",
        0.4,
        "depth/thread/one",
    ),  # fmt: skip
    Target(
        "5 mixed stages (thread, process, task, process, thread) >= 0.35x one thread.map stage",
        RATIO,
        "depth/mixed/ours",
        0.35,
        "depth/mixed/one",
    ),  # fmt: skip
    Target(
        "thread 10 ms sleeps, workers=1000: time <= 2 x ideal",
        TIME_VS_IDEAL,
        "many-workers/thread/ours",
        2,
    ),  # fmt: skip
    Target(
        "task 10 ms asyncio.sleep, workers=10000 > asyncio.gather of all (no limit)",
        RATIO,
        "many-workers/task/ours",
        1,
        "many-workers/task/gather",
        strict=True,
    ),  # fmt: skip
    Target(
        "long stream (3 mixed stages, maxsize=1000): items/s of the long run within 20% "
        "of the short run's",
        STEADY,
        "long-stream/mixed/ours",
        0.2,
        "long-stream/mixed/short",
    ),  # fmt: skip
    Target(
        "long stream: RSS growth over the run < 50 MB",
        RSS_GROWTH_MB,
        "long-stream/mixed/ours",
        50,
        strict=True,
    ),  # fmt: skip
]
