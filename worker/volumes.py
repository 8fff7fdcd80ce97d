"""Berth's named volumes across agents: the inventory, left-over marks, removal.

Berth creates a spec's named volumes labelled ``berth.service`` and ``berth.volume``
(:meth:`worker.docker_agent.DockerAgent.ensure_volume`), so they are found by label on
every agent. A volume no container mounts is *left over* (its service was uninstalled
without ``delete_data``, or its instance went elsewhere); it stays until an admin
removes it (:func:`prune`, ``berth volumes prune``). Reading is all the server does
here; removing runs in the worker (an uninstall with ``delete_data``, a prune task).

A move leaves the old copy behind and *marks* it (:func:`mark_left_over`: where the
data went, when, by which deployment). Docker fixes a volume's labels when it is
created, so the mark is a Berth record keyed by agent and volume (one Redis hash),
shown with the volume by :func:`inventory` and dropped when the volume is removed.
A volume an instance record is bound to is never pruned, even while no container
mounts it (its instance waits for its agent, or is about to start).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .backend import BERTH_LABEL
from .errors import AgentError

if TYPE_CHECKING:
    from .backend import ClusterBackend
    from .containers import VolumeInfo
    from .store import Store

__all__ = ["inventory", "delete_service_volumes", "mark_left_over", "left_over_marks",
           "prune", "request_prune", "get_prune", "run_prune"]


def inventory(agents: Iterable[Mapping[str, Any]], backend: ClusterBackend, *,
              service: str | None = None, installed: Iterable[str] = (),
              marks: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Every Berth volume on ``agents``: ``{"volumes": [...], "unreachable": [agent ids]}``.

    Each entry: ``name``, ``service``, ``agent``, ``size`` (bytes, or None: "unknown"),
    ``in_use``, ``state`` (``in use`` | ``left over``), ``service_installed``, and for a
    copy a move left behind ``moved_to`` (the agent the data went to) and ``moved_at``
    (from ``marks``, :func:`left_over_marks`). An agent that does not answer is named
    in ``unreachable`` instead of failing the list.
    """
    labels: dict[str, str | None] = {BERTH_LABEL: service}
    names = set(installed)
    found: list[dict[str, Any]] = []
    unreachable: list[str] = []
    for agent in agents:
        try:
            volumes = backend.get(agent).list_volumes(labels)
        except AgentError:
            unreachable.append(str(agent["id"]))
            continue
        found.extend(_entry(v, str(agent["id"]), names, marks or {}) for v in volumes)
    found.sort(key=lambda v: (v["service"], v["name"], v["agent"]))
    return {"volumes": found, "unreachable": unreachable}


def _entry(volume: VolumeInfo, agent: str, installed: set[str],
           marks: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    entry = {"name": volume.name, "service": volume.service, "agent": agent,
             "size": volume.size, "in_use": volume.in_use,
             "state": "in use" if volume.in_use else "left over",
             "service_installed": volume.service in installed, "created": volume.created}
    mark = marks.get(f"{agent}/{volume.name}")
    if mark and not volume.in_use:
        entry.update(moved_to=mark.get("moved_to"), moved_at=mark.get("at"))
    return entry


def _marks_key(store: Store) -> str:
    return store.state.key("volumes", "left-over")


def mark_left_over(store: Store, agent: str, volume: str, *, service: str, moved_to: str,
                   deployment: str) -> None:
    """Record that ``volume`` on ``agent`` is the old copy a move left behind."""
    mark = {"service": service, "moved_to": moved_to, "deployment": deployment,
            "at": time.time()}
    store.redis.hset(_marks_key(store), f"{agent}/{volume}", json.dumps(mark))


def left_over_marks(store: Store) -> dict[str, dict[str, Any]]:
    """Every left-over mark: ``"agent/volume"`` → ``{service, moved_to, deployment, at}``."""
    raw = store.redis.hgetall(_marks_key(store)) or {}
    return {str(k): json.loads(v) for k, v in raw.items()}


def prune(store: Store, backend: ClusterBackend, *, service: str | None = None,
          agent: str | None = None) -> dict[str, list[str]]:
    """Remove every left-over Berth volume (of ``service``, on ``agent`` when given).

    Left over: no container mounts it and no instance record is bound to it. Returns
    ``{"removed": [...], "kept": [...]}`` as ``"agent/volume"``; an agent that does not
    answer is kept as ``"agent/*"``.
    """
    every = store.agents.list()
    bound = {(v["agent"], v["name"]) for a in every for i in store.instances.for_agent(a["id"])
             for v in i.get("volumes") or []}
    agents = [a for a in every if agent in (None, a["id"])]
    listed = inventory(agents, backend, service=service)
    removed: list[str] = []
    kept = [f"{a}/*" for a in listed["unreachable"]]
    records = {a["id"]: a for a in agents}
    for entry in listed["volumes"]:
        where = f"{entry['agent']}/{entry['name']}"
        if entry["in_use"] or (entry["agent"], entry["name"]) in bound:
            continue
        try:
            backend.get(records[entry["agent"]]).remove_volume(entry["name"])
        except AgentError:
            kept.append(where)
            continue
        store.redis.hdel(_marks_key(store), where)
        removed.append(where)
    return {"removed": removed, "kept": kept}


def delete_service_volumes(agents: Iterable[Mapping[str, Any]], backend: ClusterBackend,
                           service: str) -> tuple[list[str], list[str]]:
    """Remove every volume labelled ``berth.service=<service>`` on every agent.

    Runs after the service's containers are gone. Returns ``(removed, kept)`` as
    ``"agent/volume"`` strings; a volume on an agent that does not answer, or one a
    container still uses, is kept (and stays listed as left over).
    """
    removed: list[str] = []
    kept: list[str] = []
    for agent in agents:
        try:
            engine = backend.get(agent)
            volumes = engine.list_volumes({BERTH_LABEL: service})
        except AgentError:
            kept.append(f"{agent['id']}/*")
            continue
        for volume in volumes:
            where = f"{agent['id']}/{volume.name}"
            try:
                engine.remove_volume(volume.name)
            except AgentError:
                kept.append(where)
                continue
            removed.append(where)
    return removed, kept


# prune requests: the server asks, a worker removes -----------------------------------
PRUNE_TTL = 7 * 24 * 3600   # seconds a finished prune's answer is kept


def _prune_key(store: Store, prune_id: str) -> str:
    return store.state.key("prune", prune_id)


def request_prune(store: Store, *, service: str | None = None, agent: str | None = None,
                  actor: str = "") -> dict[str, Any]:
    """Write a queued prune request (the worker task ``berth.prune_volumes`` runs it)."""
    prune_id = "p-" + secrets.token_hex(6)
    record: dict[str, Any] = {"id": prune_id, "status": "queued", "service": service,
                              "agent": agent, "actor": actor, "created_at": time.time(),
                              "finished_at": None, "removed": [], "kept": []}
    store.redis.set(_prune_key(store, prune_id), json.dumps(record), ex=PRUNE_TTL)
    store.state.publish_event("volumes.prune_requested", prune_id, actor,
                              {"service": service, "agent": agent})
    return record


def get_prune(store: Store, prune_id: str) -> dict[str, Any] | None:
    """A prune request and, once done, what it removed and kept; None when unknown."""
    raw = store.redis.get(_prune_key(store, prune_id))
    return json.loads(raw) if raw else None


def run_prune(store: Store, backend: ClusterBackend, prune_id: str) -> dict[str, Any] | None:
    """Run a queued prune request and record its answer (a re-run of a done one is a no-op)."""
    record = get_prune(store, prune_id)
    if record is None or record["status"] == "done":
        return record
    result = prune(store, backend, service=record.get("service"), agent=record.get("agent"))
    record.update(result, status="done", finished_at=time.time())
    store.redis.set(_prune_key(store, prune_id), json.dumps(record), ex=PRUNE_TTL)
    store.state.publish_event("volumes.pruned", prune_id, "worker",
                              {"removed": result["removed"], "kept": result["kept"]})
    return record
