"""Clusters: where services run — Berth's own agents (``default``) or a Docker Swarm.

Adding a Swarm checks the fields (``worker.clusters.check_cluster_fields``) and that
the URL answers as a Swarm manager; removing one is refused while services are on it.
A Swarm's nodes are read from its manager for the agents page (read-only agents).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.clusters import (
    DEFAULT,
    ClusterBusy,
    ClusterNotFound,
    check_cluster_fields,
    cluster_of,
)
from worker.errors import AgentError, InvalidRequest
from worker.swarm import SwarmBackend

NODE_READ_TIMEOUT = 5   # seconds a manager has to list its nodes for one request


class ClusterRegistry:
    """List, add and remove clusters; read a Swarm's nodes."""

    def __init__(self, berth: Any) -> None:
        self.berth = berth

    @property
    def store(self) -> Any:
        return self.berth.store

    def _backend(self, record: Mapping[str, Any]) -> SwarmBackend:
        return SwarmBackend(record, timeout=NODE_READ_TIMEOUT,
                            tls_dir=self.berth.settings.agent_tls_dir)

    def names(self) -> list[str]:
        """Every cluster's name, the default first (for the install form's select)."""
        return [DEFAULT, *(str(c["name"]) for c in self.store.clusters.list())]

    def clusters(self) -> list[dict[str, Any]]:
        """The default cluster (Berth's agents) and every Swarm, with service counts."""
        services = self.store.services.list()
        counts: dict[str, int] = {}
        for service in services:
            counts[cluster_of(service)] = counts.get(cluster_of(service), 0) + 1
        default = {"name": DEFAULT, "kind": "agents", "url": None,
                   "agents": len(self.store.agents.ids()), "services": counts.get(DEFAULT, 0)}
        return [default, *({**c, "services": counts.get(str(c["name"]), 0)}
                           for c in self.store.clusters.list())]

    def require(self, name: str | None) -> str:
        """The cluster name an install goes to (``default`` when none is given).

        :raises ClusterNotFound:
        """
        if not name or name == DEFAULT:
            return DEFAULT
        self.store.clusters.require(name)
        return name

    def add(self, actor: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Add a Swarm cluster after checking its manager answers as one.

        :raises InvalidRequest: bad fields, or the URL is not a Swarm manager.
        :raises ClusterExists:
        """
        record = check_cluster_fields(fields)
        backend = self._backend(record)
        try:
            info = backend.manager.client.info()
        except AgentError as error:
            raise InvalidRequest(f"cluster {record['name']!r}: the manager does not answer",
                                 details=[{"path": "url", "message": error.message}]) from error
        finally:
            backend.close()
        swarm = info.get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
            raise InvalidRequest(f"cluster {record['name']!r}: not a Swarm manager",
                                 details=[{"path": "url", "message": (
                                     "the engine answers but is not a manager of an active "
                                     "Swarm")}])
        return dict(self.store.clusters.add(record, actor))

    def remove(self, actor: str, name: str) -> None:
        """Remove a Swarm cluster's record (nothing on the Swarm changes).

        :raises ClusterBusy: while services are installed on it.
        :raises ClusterNotFound:
        """
        if name == DEFAULT:
            raise ClusterBusy("the default cluster is Berth's own agents: it stays",
                              details=[{"path": "name", "message": "cannot be removed"}])
        self.store.clusters.require(name)
        on_it = [s["name"] for s in self.store.services.list() if cluster_of(s) == name]
        if on_it:
            raise ClusterBusy(f"cluster {name!r} has services: {', '.join(sorted(on_it))}",
                              details=[{"path": "name", "message": "uninstall them first"}])
        self.store.clusters.remove(name, actor)

    def nodes(self) -> list[dict[str, Any]]:
        """Every Swarm's nodes as read-only agents (a silent manager lists none, and says
        so in one entry of state ``unreachable``)."""
        out: list[dict[str, Any]] = []
        for record in self.store.clusters.list():
            backend = self._backend(record)
            try:
                out += backend.node_views()
            except AgentError as error:
                out.append({"id": str(record["name"]), "cluster": record["name"],
                            "kind": "swarm", "state": "unreachable", "error": error.message})
            finally:
                backend.close()
        return out


__all__ = ["ClusterRegistry", "ClusterNotFound"]
