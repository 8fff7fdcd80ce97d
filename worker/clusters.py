"""Clusters: where a service's instances run — Berth's own agents, or a Docker Swarm.

The default cluster (:data:`DEFAULT`) is Berth's own agents; it has no record and
cannot be removed. Other clusters are records in the store (``store/clusters.py``):
``{"name", "kind": "swarm", "url", "port_range", "created_at", "created_by"}``. A
service records the cluster it is on (``service["cluster"]``; absent means the
default), and the deployer and the reconciler hand a Swarm service's deployments to
:mod:`worker.swarm_deploy` instead of placing instances themselves.

``swarm://host:port`` is the manager's Engine API over TCP (``tcp://host:port``); TLS
files are found as for agents: ``<BERTH_AGENT_TLS_DIR>/<cluster name>/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from catalog.names import require_service_name

from .errors import Conflict, InvalidRequest, NotFound

__all__ = ["DEFAULT", "KINDS", "ClusterNotFound", "ClusterExists", "ClusterBusy",
           "check_cluster_fields", "engine_url", "cluster_of", "is_swarm",
           "DEFAULT_SWARM_PORTS"]

DEFAULT = "default"
KINDS = ("swarm",)
URL_SCHEMES = ("swarm", "tcp", "unix", "ssh", "http", "https")
# host ports Berth assigns on a Swarm (10 blocks of 100), below Linux's ephemeral range
# (32768–60999), where a node's own outgoing connections would take ports from tasks
DEFAULT_SWARM_PORTS = (30000, 30999)


class ClusterNotFound(NotFound):
    code = "cluster_not_found"


class ClusterExists(Conflict):
    code = "cluster_exists"


class ClusterBusy(Conflict):
    code = "cluster_busy"


def engine_url(url: str) -> str:
    """The Docker URL of a cluster URL (``swarm://h:p`` → ``tcp://h:p``)."""
    return "tcp://" + url[len("swarm://"):] if url.startswith("swarm://") else url


def check_cluster_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A cluster record's fields, checked (every problem at once).

    :raises InvalidRequest: naming each bad field.
    """
    problems = []
    name = fields.get("name")
    try:
        require_service_name(name, "name")
    except Exception as error:  # noqa: BLE001 - its message becomes a problem
        problems.append({"path": "name", "message": getattr(error, "message", str(error))})
    if name == DEFAULT:
        problems.append({"path": "name", "message": f"{DEFAULT!r} is Berth's own agents"})
    kind = fields.get("kind", "swarm")
    if kind not in KINDS:
        problems.append({"path": "kind", "message": f"one of {', '.join(KINDS)}"})
    url = fields.get("url")
    if not _good_url(url):
        problems.append({"path": "url", "message": "a manager's URL: swarm://host:port, "
                                                   "tcp://host:2376 or unix:///path"})
    ports = fields.get("port_range") or list(DEFAULT_SWARM_PORTS)
    if not (isinstance(ports, list | tuple) and len(ports) == 2
            and all(isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535
                    for p in ports) and ports[1] - ports[0] >= 199):
        problems.append({"path": "port_range", "message": "[low, high] with room for two "
                                                          "blocks of 100 ports"})
    if problems:
        raise InvalidRequest("invalid cluster", details=problems)
    return {"name": name, "kind": kind, "url": url, "port_range": [int(p) for p in ports]}


def _good_url(url: object) -> bool:
    """Whether ``url`` is a manager URL of a scheme Berth reaches engines by."""
    if not isinstance(url, str):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:   # e.g. an unbalanced IPv6 bracket
        return False
    return parts.scheme in URL_SCHEMES and bool(parts.netloc or parts.path)


def cluster_of(service: Mapping[str, Any]) -> str:
    """The cluster a service record is on (the default when it names none)."""
    return str(service.get("cluster") or DEFAULT)


def is_swarm(service: Mapping[str, Any]) -> bool:
    """Whether a service runs on a Swarm cluster (not Berth's own agents)."""
    return cluster_of(service) != DEFAULT
