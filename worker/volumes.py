"""Berth's named volumes across agents: the inventory and their removal on uninstall.

Berth creates a spec's named volumes labelled ``berth.service`` and ``berth.volume``
(:meth:`worker.docker_agent.DockerAgent.ensure_volume`), so they are found by label on
every agent. A volume no container mounts is *left over* (its service was uninstalled
without ``delete_data``, or its instance went elsewhere); it stays until an admin
removes it. Reading is all the server does here; removing runs in the worker, as the
last step of an uninstall deployment with ``delete_data``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .backend import BERTH_LABEL
from .errors import AgentError

if TYPE_CHECKING:
    from .backend import ClusterBackend
    from .containers import VolumeInfo

__all__ = ["inventory", "delete_service_volumes"]


def inventory(agents: Iterable[Mapping[str, Any]], backend: ClusterBackend, *,
              service: str | None = None,
              installed: Iterable[str] = ()) -> dict[str, Any]:
    """Every Berth volume on ``agents``: ``{"volumes": [...], "unreachable": [agent ids]}``.

    Each entry: ``name``, ``service``, ``agent``, ``size`` (bytes, or None: "unknown"),
    ``in_use``, ``state`` (``in use`` | ``left over``), ``service_installed``. An agent
    that does not answer is named in ``unreachable`` instead of failing the list.
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
        found.extend(_entry(v, str(agent["id"]), names) for v in volumes)
    found.sort(key=lambda v: (v["service"], v["name"], v["agent"]))
    return {"volumes": found, "unreachable": unreachable}


def _entry(volume: VolumeInfo, agent: str, installed: set[str]) -> dict[str, Any]:
    return {"name": volume.name, "service": volume.service, "agent": agent,
            "size": volume.size, "in_use": volume.in_use,
            "state": "in use" if volume.in_use else "left over",
            "service_installed": volume.service in installed, "created": volume.created}


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
