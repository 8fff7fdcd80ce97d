"""A real Docker Swarm made of the test bed's three engines (``berth dev up --swarm``).

``SwarmBed(bed).start()`` turns the bed's engines into one Swarm with docker-py
(``client.swarm.init`` on the first, ``client.swarm.join`` on the others), advertising
and listening on the lane's loopback addresses (``127.0.(10+L).2..4:2377``; lane 0:
``127.0.0.2..4``). It labels the nodes like the bed's agents (``zone``, ``rack``, and
``berth.node`` = ``agent-i``, since every node reports the machine's one hostname) and
registers the cluster ``swarm`` (the manager's unix socket, host ports
``10000 + L*800 … +799``: outside every lane's agent ranges and below the kernel's
ephemeral ports). The hello images are
already on every engine (the bed loads them). ``stop()`` removes the cluster record
and Berth's Swarm services, and makes every engine leave (``force``), manager last.

With no bridge on these engines there is no ingress routing mesh: Berth runs Swarm
tasks on the host network, with host ports distinct per task (``worker/swarm_spec.py``).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import docker
import docker.errors

from worker.clusters import ClusterExists
from worker.records import JSON
from worker.testbed.bed import Testbed
from worker.testbed.processes import TestbedError

__all__ = ["SwarmBed", "CLUSTER", "swarm_ports"]

CLUSTER = "swarm"
SWARM_PORT = 2377


def swarm_ports(lane: int) -> tuple[int, int]:
    """The host ports Berth assigns to Swarm tasks in a lane: ``10000 + L*800 … +799``.

    Below the kernel's ephemeral range (32768–60999): a client connection's local port
    there (a health check, the worker's own calls) would make a task's bind fail.
    """
    low = 10000 + lane * 800
    return low, low + 799


class SwarmBed:
    """The Swarm of one test bed's engines."""

    def __init__(self, bed: Testbed) -> None:
        self.bed = bed
        self.clients: list[docker.DockerClient] = []

    def _client(self, index: int) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.bed.agents[index].url, version="auto",
                                   timeout=30)

    @property
    def manager(self) -> docker.DockerClient:
        if not self.clients:
            self.clients = [self._client(i) for i in range(len(self.bed.agents))]
        return self.clients[0]

    def node_ids(self) -> list[str]:
        """The Swarm node id of each engine, in agent order."""
        self.manager  # noqa: B018 - builds the clients
        return [str(c.info()["Swarm"].get("NodeID") or "") for c in self.clients]

    def start(self) -> SwarmBed:
        """Form the Swarm, label its nodes and register the cluster; returns self.

        :raises TestbedError: a node did not become ready.
        """
        self.leave()   # leftovers of an earlier run of this lane
        addresses = [a.address for a in self.bed.agents]
        manager = self.manager
        manager.swarm.init(advertise_addr=addresses[0],
                           listen_addr=f"{addresses[0]}:{SWARM_PORT}",
                           force_new_cluster=False)
        manager.swarm.reload()
        token = manager.swarm.attrs["JoinTokens"]["Worker"]
        for client, address in zip(self.clients[1:], addresses[1:], strict=True):
            client.swarm.join(remote_addrs=[f"{addresses[0]}:{SWARM_PORT}"],
                              join_token=token, advertise_addr=address,
                              listen_addr=f"{address}:{SWARM_PORT}")
        self._wait_ready()
        self.label_nodes()
        self.register()
        return self

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            nodes = self.manager.nodes.list()
            if len(nodes) == len(self.clients) and all(
                    n.attrs["Status"]["State"] == "ready" for n in nodes):
                return
            time.sleep(0.5)
        raise TestbedError("the Swarm's nodes did not all become ready",
                           hint=f"see {self.bed.log_dir}/agent-*.log")

    def label_nodes(self) -> None:
        """``zone``, ``rack`` and ``berth.node`` on each node, from the bed's agents."""
        for agent, node_id in zip(self.bed.agents, self.node_ids(), strict=True):
            self.set_node(node_id, labels={**{k: v for k, v in agent["attributes"].items()
                                              if k != "hostname"},
                                           "berth.node": agent.id,
                                           "berth.address": agent.address})

    def set_node(self, node_id: str, *, labels: dict[str, str] | None = None,
                 availability: str | None = None) -> None:
        """Change a node's labels and/or availability (``active``, ``drain``)."""
        node = self.manager.nodes.get(node_id)
        spec = dict(node.attrs["Spec"])
        if labels is not None:
            spec["Labels"] = labels
        if availability is not None:
            spec["Availability"] = availability
        node.update(spec)

    def drain(self, index: int, drain: bool = True) -> None:
        """Drain (or make active again) the node of agent ``index`` (1-based)."""
        self.set_node(self.node_ids()[index - 1],
                      availability="drain" if drain else "active")

    def register(self) -> dict[str, Any]:
        """The cluster record ``swarm`` (the manager's socket, the lane's port range)."""
        store = self.bed.store()
        store.clusters.remove(CLUSTER)
        low, high = swarm_ports(self.bed.lane)
        record: dict[str, JSON] = {"name": CLUSTER, "kind": "swarm",
                                   "url": self.bed.agents[0].url, "port_range": [low, high]}
        try:
            return dict(store.clusters.add(record, actor="testbed"))
        except ClusterExists:
            return dict(store.clusters.require(CLUSTER))

    def remove_services(self) -> int:
        """Remove Berth's Swarm services (tasks and containers go with them)."""
        removed = 0
        try:
            for service in self.manager.services.list(filters={"label": "berth.service"}):
                service.remove()
                removed += 1
        except docker.errors.APIError:
            return removed   # not a manager (any more)
        return removed

    def leave(self) -> None:
        """Every engine leaves the Swarm (``force``), workers first; the record goes."""
        self.manager  # noqa: B018 - builds the clients
        for client in reversed(self.clients):
            try:
                if client.info()["Swarm"].get("LocalNodeState") != "inactive":
                    client.swarm.leave(force=True)
            except docker.errors.APIError:
                continue
        with contextlib.suppress(Exception):  # Redis may be gone already at teardown
            self.bed.store().clusters.remove(CLUSTER)

    def stop(self) -> None:
        """Remove Berth's services, leave the Swarm, close the clients.

        An engine that crashed meanwhile is started again first, so that it leaves the
        Swarm too and the bed's later users find all of its engines running.
        """
        self.bed.revive_agents()
        for client in self.clients:
            client.close()
        self.clients = []   # a revived engine needs a new connection
        self.remove_services()
        self.leave()
        for client in self.clients:
            client.close()
        self.clients = []
