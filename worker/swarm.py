"""The Docker Swarm backend: a Swarm manager runs a service's generation itself.

:class:`SwarmBackend` is a :class:`worker.backend.GenerationBackend`: Berth hands it one
generation of a service (spec, replicas) and the Swarm places, starts, rolls and
replaces the tasks. Every call goes through docker-py's ``client.services``,
``client.nodes`` and ``client.api.tasks`` on the manager, inside the Docker funnel of
:class:`worker.docker_agent.DockerAgent`, so failures are the classified
:mod:`worker.errors` types. No CLI shell-outs.

The pure halves are here too: :func:`task_view` (one Swarm task as Berth sees an
instance: node, state, health, ports) and :func:`node_view` (one node as a read-only
agent: labels, availability, resources).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import docker.errors

from .clusters import engine_url
from .docker_agent import DockerAgent, agent_tls
from .errors import ContainerNotFound, ImageUnauthorized, RegistryUnreachable
from .pulls import image_registry
from .swarm_spec import SwarmPlan, service_kwargs, slot_port, swarm_name

__all__ = ["SwarmBackend", "TaskView", "task_view", "node_view", "TASK_STATES"]

# Swarm task state → Berth instance state
TASK_STATES = {"new": "placed", "pending": "placed", "assigned": "placed",
               "accepted": "placed", "preparing": "placed", "ready": "starting",
               "starting": "starting", "running": "running", "complete": "stopped",
               "shutdown": "stopped", "failed": "failed", "rejected": "failed",
               "orphaned": "lost", "remove": "stopping"}


@dataclass(frozen=True)
class TaskView:
    """One Swarm task as an instance: where it runs, its state, health and ports."""

    id: str
    slot: int
    node: str                    # the node's name (``berth.node`` label, else hostname-id)
    node_id: str
    address: str
    generation: int
    state: str                   # Berth's instance state (see ``TASK_STATES``)
    swarm_state: str
    desired: str
    health: str                  # healthy | unhealthy | unknown | none
    ports: dict[str, int] = field(default_factory=dict)
    container_id: str | None = None
    error: str | None = None
    created: str = ""

    @property
    def live(self) -> bool:
        """Whether the task runs or is on its way to running (not history)."""
        return self.desired in ("running", "ready") or self.swarm_state == "running"


def _node_address(node: Mapping[str, Any]) -> str:
    """Where a node's tasks answer: its ``berth.address`` label, else the address the
    manager sees (a worker's may be the source address of its connection)."""
    labels = ((node.get("Spec") or {}).get("Labels") or {})
    manager = (node.get("ManagerStatus") or {}).get("Addr", "")
    return str(labels.get("berth.address") or str(manager).rsplit(":", 1)[0]
               or (node.get("Status") or {}).get("Addr") or "")


def _node_name(node: Mapping[str, Any]) -> str:
    labels = ((node.get("Spec") or {}).get("Labels") or {})
    if labels.get("berth.node"):
        return str(labels["berth.node"])
    host = str(((node.get("Description") or {}).get("Hostname")) or "node")
    return f"{host}-{str(node.get('ID', ''))[:6]}"


def task_view(task: Mapping[str, Any], nodes: Mapping[str, Mapping[str, Any]],
              spec: Mapping[str, Any], blocks: Sequence[tuple[int, int]],
              has_health: bool) -> TaskView:
    """One task of ``GET /tasks`` as Berth's instance view.

    Ports are computed the way the task's template expands them (block base of the
    task's generation parity plus its slot); a running task of a service with a health
    check is healthy (Swarm reports ``running`` only once the check passed, and stops a
    task whose check fails).
    """
    status = task.get("Status") or {}
    container = (task.get("Spec") or {}).get("ContainerSpec") or {}
    labels = container.get("Labels") or {}
    generation = int(labels.get("berth.generation") or 0)
    slot = int(task.get("Slot") or 0)
    node = nodes.get(str(task.get("NodeID") or ""), {})
    swarm_state = str(status.get("State") or "new")
    state = TASK_STATES.get(swarm_state, "placed")
    health = ("healthy" if state == "running" else "unknown") if has_health else "none"
    ports: dict[str, int] = {}
    block_iter = iter(blocks)
    network_host = spec.get("network", "host") != "bridge"
    for index, port in enumerate(spec.get("ports") or []):
        fixed = int(port.get("hostPort") or 0)
        if fixed or not network_host:
            value = fixed or int(port.get("containerPort") or 0)
        else:
            pair = next(block_iter, None)
            if pair is None:   # not known to the caller: no port to show
                value = 0
            else:
                value = slot_port(pair[1] if generation % 2 else pair[0], slot)
        ports[str(port.get("name") or f"port{index}")] = value
    return TaskView(
        id=str(task.get("ID", "")), slot=slot, node=_node_name(node) if node else "",
        node_id=str(task.get("NodeID") or ""),
        address=_node_address(node) if node else "", generation=generation,
        state=state, swarm_state=swarm_state, desired=str(task.get("DesiredState") or ""),
        health=health, ports=ports,
        container_id=(status.get("ContainerStatus") or {}).get("ContainerID") or None,
        error=status.get("Err") or None, created=str(task.get("CreatedAt") or ""))


def node_view(node: Mapping[str, Any], cluster: str) -> dict[str, Any]:
    """A Swarm node as a read-only agent of the agents page."""
    spec, desc, status = node.get("Spec") or {}, node.get("Description") or {}, \
        node.get("Status") or {}
    resources = desc.get("Resources") or {}
    labels = {str(k): str(v) for k, v in (spec.get("Labels") or {}).items()}
    availability = str(spec.get("Availability") or "active")
    ready = status.get("State") == "ready"
    return {"id": _node_name(node), "node_id": str(node.get("ID", "")), "cluster": cluster,
            "kind": "swarm", "role": spec.get("Role", "worker"),
            "address": _node_address(node), "availability": availability,
            "state": ("draining" if availability == "drain" else "up") if ready
            else "unreachable",
            "attributes": {"hostname": str(desc.get("Hostname") or ""), **labels},
            "capacity": {"cpus": round(int(resources.get("NanoCPUs") or 0) / 1e9, 2),
                         "mem": int(resources.get("MemoryBytes") or 0) // (1024 * 1024)},
            "engine": {"version": str((desc.get("Engine") or {}).get("EngineVersion") or "")}}


class SwarmBackend:
    """One Swarm cluster, reached through its manager's Engine API."""

    def __init__(self, cluster: Mapping[str, Any], *, timeout: float = 10,
                 tls_dir: str | os.PathLike[str] | None = None) -> None:
        self.name = str(cluster["name"])
        self.manager = DockerAgent(engine_url(str(cluster["url"])), timeout=timeout,
                                   tls=agent_tls(tls_dir, self.name))
        self._nodes: tuple[float, dict[str, dict[str, Any]]] = (0.0, {})

    @property
    def url(self) -> str:
        return self.manager.url

    def ping(self) -> bool:
        return self.manager.ping()

    def close(self) -> None:
        self.manager.close()

    # services ------------------------------------------------------------------------
    def _service(self, service: str) -> Any | None:
        try:
            return self.manager.client.services.get(swarm_name(service))
        except docker.errors.NotFound:
            return None

    def has_ingress(self) -> bool:
        """Whether the Swarm has an ingress network (a routing mesh to publish on)."""
        with self.manager._funnel("list networks"):
            return bool(self.manager.client.api.networks(filters={"name": "ingress"}))

    def deploy_generation(self, service: str, spec: Mapping[str, Any], plan: SwarmPlan,
                          *, restart: bool = False,
                          auth_config: Mapping[str, str] | None = None) -> str:
        """Create the Swarm service of ``service`` or update it to ``plan``'s generation
        and replicas (Swarm rolls by its ``UpdateConfig``); returns its id.

        ``auth_config`` (the image registry's credentials) goes with the request, as
        ``docker service create --with-registry-auth`` does: the nodes pull with it.
        Idempotent: the same spec and plan leave a running service as it is.

        :raises ImageUnauthorized: the registry refused the credentials.
        """
        kwargs = service_kwargs(spec, plan)
        if auth_config:
            self._log_in(str(spec["image"]), auth_config)
        with self.manager._funnel("deploy", subject=swarm_name(service)):
            current = self._service(service)
            if current is None:
                return str(self.manager.client.services.create(**kwargs).id)
            template = current.attrs["Spec"]["TaskTemplate"]
            force = int(template.get("ForceUpdate", 0)) + (1 if restart else 0)
            current.update(fetch_current_spec=False, force_update=force, **kwargs)
            return str(current.id)

    def _log_in(self, image: str, auth_config: Mapping[str, str]) -> None:
        """Log the manager's client in to ``image``'s registry, so docker-py sends the
        credentials as ``X-Registry-Auth`` with the create or update and the Swarm hands
        them to the nodes. The engine checks them with the registry first, so wrong ones
        fail here, before anything is created. Nothing is stored on the engine."""
        registry = image_registry(image)
        try:
            self.manager.client.login(username=auth_config["username"],
                                      password=auth_config.get("password", ""),
                                      registry=registry, reauth=True)
        except docker.errors.APIError as exc:
            refused = exc.status_code in (401, 403) or "unauthorized" in str(exc).lower()
            cls = ImageUnauthorized if refused else RegistryUnreachable
            reason = str(exc.explanation or exc)
            raise self.manager._error(cls, "log in to", reason, registry) from exc

    def update_status(self, service: str) -> dict[str, Any]:
        """The Swarm's ``UpdateStatus`` of the service (``{}`` before any update)."""
        with self.manager._funnel("inspect", subject=swarm_name(service)):
            current = self._service(service)
            if current is None:
                raise ContainerNotFound(f"no Swarm service {swarm_name(service)!r}")
            current.reload()
            return dict(current.attrs.get("UpdateStatus") or {})

    def tasks(self, service: str) -> list[dict[str, Any]]:
        """Every task the manager keeps of the service (history included); none once
        the service is gone."""
        try:
            with self.manager._funnel("list tasks", subject=swarm_name(service)):
                return list(self.manager.client.api.tasks(
                    filters={"service": swarm_name(service)}))
        except ContainerNotFound:
            return []

    def nodes(self, max_age: float = 0.0) -> dict[str, dict[str, Any]]:
        """The Swarm's nodes by id (``GET /nodes``); a list younger than ``max_age``
        seconds is reused (a deployment's watch asks several times a second)."""
        taken, known = self._nodes
        if known and time.monotonic() - taken < max_age:
            return known
        with self.manager._funnel("list nodes"):
            fresh = {str(n["ID"]): n for n in self.manager.client.api.nodes()}
        self._nodes = (time.monotonic(), fresh)
        return fresh

    def views(self, service: str, spec: Mapping[str, Any],
              blocks: Sequence[tuple[int, int]], *, nodes_age: float = 0.0
              ) -> list[TaskView]:
        """Every task the manager keeps of the service (history too), oldest first."""
        tasks = self.tasks(service)
        nodes = self.nodes(max_age=nodes_age)
        views = [task_view(t, nodes, spec, blocks, bool(spec.get("healthCheck")))
                 for t in tasks]
        return sorted(views, key=lambda v: (v.created, v.id))

    def observe(self, service: str, spec: Mapping[str, Any],
                blocks: Sequence[tuple[int, int]]) -> list[TaskView]:
        """The service's live tasks as instance views (newest last)."""
        return [v for v in self.views(service, spec, blocks) if v.live]

    def eligible_nodes(self, constraints: Sequence[str] = ()) -> int:
        """How many ready, active nodes match ``node.hostname==…`` / ``node.labels.…==…``
        placement constraints (what a per-node limit multiplies)."""
        count = 0
        for node in self.nodes().values():
            spec, desc = node.get("Spec") or {}, node.get("Description") or {}
            if (node.get("Status") or {}).get("State") != "ready" \
                    or spec.get("Availability", "active") != "active":
                continue
            fields = {"node.hostname": str(desc.get("Hostname") or ""),
                      **{f"node.labels.{k}": str(v)
                         for k, v in (spec.get("Labels") or {}).items()}}
            if all(fields.get(c.split("==", 1)[0]) == c.split("==", 1)[1]
                   for c in constraints if "==" in c):
                count += 1
        return count

    def stop_tasks(self, service: str) -> bool:
        """Scale the service to no task (its containers stop); False when absent."""
        with self.manager._funnel("scale down", subject=swarm_name(service)):
            current = self._service(service)
            if current is None:
                return False
            current.scale(0)
            return True

    def remove_service(self, service: str) -> bool:
        """Remove the Swarm service (its tasks and containers go); False when absent."""
        with self.manager._funnel("remove", subject=swarm_name(service)):
            current = self._service(service)
            if current is None:
                return False
            current.remove()
            return True

    def logs(self, service: str, tail: int | str = 100, task: str | None = None) -> str:
        """The logs of the service's tasks (``service.logs``; ``task`` is not used: a
        Swarm interleaves its tasks' output)."""
        with self.manager._funnel("read logs", subject=swarm_name(service)):
            current = self._service(service)
            if current is None:
                raise ContainerNotFound(f"no Swarm service {swarm_name(service)!r}")
            chunks = current.logs(stdout=True, stderr=True, tail=tail, timestamps=False)
            return b"".join(chunks).decode("utf-8", "replace")

    def node_views(self) -> list[dict[str, Any]]:
        """The Swarm's nodes as read-only agents."""
        return sorted((node_view(n, self.name) for n in self.nodes().values()),
                      key=lambda n: str(n["id"]))
