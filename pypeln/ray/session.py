"""The Ray session a `pl.ray` stage runs in, and the checks of its resource requests.

Ray is imported on first use (never by ``import pypeln``). A stage uses the session the
driver has already started (``ray.init(...)``); if there is none, the first run starts one
with ``ray.init()``, which connects to the cluster named by ``RAY_ADDRESS`` when that is
set, or else starts a local Ray on this machine (a few seconds, once per process).
"""

from __future__ import annotations

import importlib
import math
import threading
from types import ModuleType
from typing import Any, Dict, Mapping

from .._core import checks

_lock = threading.Lock()

#: The resource requests a stage takes as keyword arguments, besides ``ray_options``.
RESOURCE_OPTIONS = ("num_cpus", "num_gpus", "memory", "resources")


def ray_module() -> ModuleType:
    """The `ray` package; an ImportError naming the extra if it is not installed."""
    try:
        ray = importlib.import_module("ray")
    except ImportError as e:
        raise ImportError(
            "pl.ray needs Ray, which is not installed: pip install 'pypeln[ray]'"
        ) from e
    if not callable(getattr(ray, "init", None)):
        # e.g. a folder named `ray` in the working directory (Ray leaves one in /tmp)
        where = getattr(ray, "__file__", None) or list(getattr(ray, "__path__", []))
        raise ImportError(
            f"pl.ray needs Ray, but `import ray` found something else ({where}): "
            "pip install 'pypeln[ray]', and run from a folder with no `ray` of its own"
        )
    return ray


def ensure_session() -> ModuleType:
    """The `ray` package, with a session: the driver's own, or one started now."""
    ray = ray_module()
    with _lock:
        if not ray.is_initialized():
            ray.init()
    return ray


def check_options(where: str, options: Dict[str, Any]) -> Dict[str, Any]:
    """Check a stage's resource requests and ``ray_options``; what its actors are
    created with (`ActorClass.options`)."""
    unknown = [k for k in options if k not in RESOURCE_OPTIONS and k != "ray_options"]
    if unknown:
        raise checks.unexpected(where, unknown)
    actor: Dict[str, Any] = {}
    extra = options.get("ray_options")
    if extra is not None:
        if not isinstance(extra, Mapping) or not all(isinstance(k, str) for k in extra):
            raise TypeError(
                f"{where}: ray_options must be a dict of Ray actor options "
                f"(as for ActorClass.options), got {extra!r}"
            )
        actor.update(extra)
    for name in ("num_cpus", "num_gpus", "memory"):
        value = options.get(name)
        if value is not None:
            _check_amount(where, name, value)
            actor[name] = value
    resources = options.get("resources")
    if resources is not None:
        if not isinstance(resources, Mapping):
            raise TypeError(
                f"{where}: resources must be a dict of custom resource names to amounts, "
                f"got {resources!r}"
            )
        for key, value in resources.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: resources: names must be str, got {key!r}")
            _check_amount(where, f"resources[{key!r}]", value)
        actor["resources"] = dict(resources)
    return actor


def _check_amount(where: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{where}: {name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{where}: {name} must be a finite number >= 0, got {value!r}")


def check_feasible(where: str, ray: ModuleType, actor_options: Mapping[str, Any]) -> None:
    """Raise if no node of the cluster could ever host one of the stage's actors (its
    actors would wait for resources forever); a busy cluster is fine: they wait."""
    wanted: Dict[str, float] = {}
    for name, key in (("num_cpus", "CPU"), ("num_gpus", "GPU"), ("memory", "memory")):
        if actor_options.get(name):
            wanted[key] = float(actor_options[name])
    for key, amount in (actor_options.get("resources") or {}).items():
        if amount:
            wanted[key] = float(amount)
    if not wanted:
        return
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if any(all(node.get(k, 0) >= v for k, v in wanted.items()) for node in nodes):
        return
    asked = ", ".join(f"{k}={v:g}" for k, v in wanted.items())
    have = "; ".join(", ".join(f"{k}={node.get(k, 0):g}" for k in wanted) for node in nodes)
    raise ValueError(
        f"{where}: no node of the Ray cluster has the resources one worker asks for "
        f"({asked}); its nodes have: {have or 'none'}"
    )


def actor_state(actor: Any) -> str:
    """Ray's state of `actor` (``"PENDING_CREATION"``, ``"ALIVE"``, ...; ``""`` if unknown)."""
    return actor_state_by_id(actor._actor_id.hex())


def actor_state_by_id(actor_id: str) -> str:
    """Ray's state of the actor with this hex id (``""`` if unknown)."""
    try:
        from ray._private import state

        info = state.actors(actor_id=actor_id)
        return str(info.get("State", ""))
    except Exception:  # a private API: without it, an actor's state is unknown
        return ""
