"""Agents: Docker engines that run instances — registration, heartbeats, drain, removal.

An agent record (``docs/architecture.md``) holds its URL and address, attributes
(``hostname`` always present), capacity (cpus, mem in MiB, read from the engine unless
given), a host-port range, what is reserved on it (``allocated``) and a state:
``up``, ``unreachable`` (silent longer than the unreachable timeout) or ``draining``
(no new instances; the reconciler moves the ones there away). Draining is stored only
as the ``drain`` flag (``worker/records.py``), so an agent that drops out and comes
back while draining stays so; ``draining`` is the state it shows.

This module also holds the reservation arithmetic shared by the deployer and the
reconciler, and :class:`AgentPool`, the per-process cache of ``DockerAgent`` clients.

TLS agents (``tcp://host:2376``, engine started with ``--tlsverify``) are reached with
the client certificate in ``BERTH_AGENT_TLS_DIR/<agent-id>/{ca,cert,key}.pem``: the
files stay on the hosts of the workers (and servers), never in a Redis record.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from catalog.names import require_service_name
from catalog.placement import AgentView

from .backend import Engine
from .docker_agent import DockerAgent, agent_tls
from .errors import (
    AgentBusy,
    AgentError,
    AgentExists,
    AgentUnreachable,
    ContainerError,
    InvalidRequest,
)
from .records import Agent, Allocation, Capacity, Instance, agent_state
from .store import Store
from .store.base import Tx

__all__ = ["register_agent", "register", "get_agent", "list_agents", "drain", "activate",
           "remove", "heartbeat", "agent_view", "reserve", "release", "AgentPool",
           "DEFAULT_PORT_RANGE", "schedulable"]

log = logging.getLogger(__name__)

DEFAULT_PORT_RANGE = (31000, 31999)
ATTRIBUTE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
URL_SCHEMES = ("tcp", "unix", "ssh", "http", "https", "npipe")


# reservations -----------------------------------------------------------------------

def _allocated(agent: Mapping[str, Any]) -> Allocation:
    alloc = agent.get("allocated") or {}
    return Allocation(cpus=float(alloc.get("cpus") or 0), mem=int(alloc.get("mem") or 0),
                      ports=[int(p) for p in alloc.get("ports") or []])


def reserve(agent: Agent, cpus: float, mem: int, ports: Iterable[int]) -> None:
    """Add one instance's cpus, mem and host ports to the agent's reservations."""
    alloc = _allocated(agent)
    alloc["cpus"] = round(alloc["cpus"] + float(cpus), 6)
    alloc["mem"] += int(mem)
    alloc["ports"] = sorted(set(alloc["ports"]) | {int(p) for p in ports})
    agent["allocated"] = alloc


def release(agent: Agent, instance: Instance) -> None:
    """Give back what an instance reserved (never below zero)."""
    alloc = _allocated(agent)
    alloc["cpus"] = max(0.0, round(alloc["cpus"] - float(instance.get("cpus") or 0), 6))
    alloc["mem"] = max(0, alloc["mem"] - int(instance.get("mem") or 0))
    gone = {int(p) for p in instance.get("port_list") or []}
    alloc["ports"] = [p for p in alloc["ports"] if p not in gone]
    agent["allocated"] = alloc


def schedulable(agent: Mapping[str, Any]) -> bool:
    """Whether new instances may go to the agent."""
    return agent.get("state") == "up" and not agent.get("drain")


def agent_view(agent: Mapping[str, Any]) -> AgentView:
    """What placement needs to know of an agent record."""
    alloc = _allocated(agent)
    capacity = agent.get("capacity") or {}
    low, high = (int(x) for x in agent.get("port_range") or DEFAULT_PORT_RANGE)
    taken = set(alloc["ports"])
    return AgentView(
        id=agent["id"], attributes=dict(agent.get("attributes") or {}),
        cpus_free=round(float(capacity.get("cpus") or 0) - alloc["cpus"], 6),
        mem_free=int(capacity.get("mem") or 0) - alloc["mem"],
        ports_free=tuple(p for p in range(low, high + 1) if p not in taken),
        schedulable=schedulable(agent), port_range=(low, high),
        ports_taken=frozenset(p for p in taken if not low <= p <= high))


# registration ---------------------------------------------------------------------------

def _check_url(url: Any) -> str:
    if not isinstance(url, str) or urlsplit(url).scheme not in URL_SCHEMES:
        raise InvalidRequest("invalid agent URL", details=[{
            "path": "url", "message": "a Docker engine URL: tcp://host:2375, unix:///path, "
                                      "ssh://user@host"}])
    return url


def _check_port_range(port_range: Any) -> tuple[int, int]:
    try:
        low, high = (int(p) for p in port_range)
    except (TypeError, ValueError):
        low, high = 0, -1
    if not 1 <= low <= high <= 65535:
        raise InvalidRequest("invalid port range", details=[{
            "path": "port_range", "message": "[low, high] with 1 <= low <= high <= 65535"}])
    return low, high


def _check_attributes(attributes: Mapping[str, Any]) -> dict[str, str]:
    problems = [{"path": f"attributes/{k}", "message": "names are 1-64 of A-Z a-z 0-9 _ . -"}
                for k in attributes if not ATTRIBUTE.fullmatch(str(k))]
    if problems:
        raise InvalidRequest("invalid agent attributes", details=problems)
    return {str(k): str(v) for k, v in attributes.items()}


def _check_capacity(capacity: Mapping[str, Any]) -> Capacity:
    try:
        cpus, mem = float(capacity["cpus"]), int(capacity["mem"])
    except (KeyError, TypeError, ValueError):
        cpus, mem = -1.0, -1
    if cpus <= 0 or mem <= 0:
        raise InvalidRequest("invalid agent capacity", details=[{
            "path": "capacity", "message": "{\"cpus\": > 0, \"mem\": MiB > 0}"}])
    return Capacity(cpus=cpus, mem=mem)


def _check_id(agent_id: Any) -> str:
    """The agent id if it follows the service-name rule (it names containers' labels)."""
    return require_service_name(agent_id, "id", "invalid agent id")


def _registration_error(url: str, error: AgentError) -> AgentError:
    """A fixed message for an engine that failed registration: never the text it sent
    (an error body can hold anything, and the message is shown to the caller)."""
    status = _http_status(error)
    if status is not None:
        message = f"the engine at {url} answered an error (HTTP {status})"
        return ContainerError(message, details=[{"path": "url", "message": message}])
    reason = str(error.details[0].get("message", "")) if error.details else ""
    if reason != "connection refused" and not reason.startswith("no answer within"):
        reason = "no usable answer"
    message = f"the engine at {url} did not answer ({reason})"
    return AgentUnreachable(message, details=[{"path": "url", "message": message}])


def _http_status(error: BaseException) -> int | None:
    """The HTTP status an engine answered with, found along the error's causes."""
    cursor: BaseException | None = error
    for _ in range(10):
        if cursor is None:
            return None
        response = getattr(cursor, "response", None)
        status = getattr(cursor, "status_code", None) or getattr(response, "status_code", None)
        if isinstance(status, int) and status >= 400:
            return status
        cursor = cursor.__cause__ or cursor.__context__
    return None


def _url_host(url: str) -> str:
    host = urlsplit(url).hostname
    return host or "127.0.0.1"


def _default_id(store: Store, url: str) -> str:
    host = re.sub(r"[^a-z0-9-]+", "-", _url_host(url).lower()).strip("-") or "local"
    return f"agent-{host}"[:40].rstrip("-")


def register_agent(store: Store, url: str, attributes: Mapping[str, Any] | None = None,
                   port_range: Sequence[int] | None = None,
                   capacity: Mapping[str, Any] | None = None, *, agent_id: str | None = None,
                   address: str | None = None, actor: str = "",
                   docker: Any = None, tls_dir: str = "") -> Agent:
    """Register a Docker engine as an agent (or update the agent of that id).

    Capacity is read from the engine (``DockerAgent.info()``, over TLS when
    ``tls_dir`` holds the agent's files) unless given; so is the ``hostname``
    attribute. Reservations of an existing agent are kept.

    :raises InvalidRequest: for a bad URL, port range, attribute or capacity.
    :raises AgentExists: when another agent has that URL.
    :raises AgentUnreachable: when the engine must be asked and does not answer.
    """
    _check_url(url)
    low, high = _check_port_range(port_range or DEFAULT_PORT_RANGE)
    attrs = _check_attributes(attributes or {})
    agent_id = _check_id(agent_id or _default_id(store, url))
    client = docker or _client(url, agent_id, tls_dir, timeout=5)
    try:
        info = _engine_info(client, url, required=capacity is None)
    finally:
        if docker is None:
            client.close()
    cap = _check_capacity(capacity) if capacity else Capacity(cpus=info["cpus"], mem=info["mem"])
    attrs.setdefault("hostname", info.get("hostname") or agent_id)
    now = time.time()

    def change(tx: Tx) -> Agent:
        for other in store.agents.list():
            if other["url"] == url and other["id"] != agent_id:
                raise AgentExists(f"{url} is registered as {other['id']}", agent=other["id"])
        current = store.agents.read(tx, agent_id)
        drained = bool(current and current["drain"])
        agent = Agent(
            id=agent_id, url=url, address=address or _url_host(url), attributes=attrs,
            capacity=cap, port_range=[low, high],
            allocated=(current and current.get("allocated")) or Allocation(cpus=0.0, mem=0,
                                                                           ports=[]),
            drain=drained, state=_state({"drain": drained}, up=bool(info.get("up"))),
            last_seen=now if info.get("up") else float(current.get("last_seen", 0)
                                                       if current else 0),
            engine={"version": info.get("version", "")},
            registered_at=current.get("registered_at", now) if current else now,
            registered_by=actor)
        written = store.agents.stage_put(tx, agent)
        tx.event("agent.registered", agent_id, actor, {"url": url})
        return written

    return store.state.transact(change)


register = register_agent


def _client(url: str, agent_id: str, tls_dir: str, *, timeout: float) -> DockerAgent:
    """A ``DockerAgent`` for one agent, with its TLS files when ``tls_dir`` has them.

    :raises AgentError: the agent's TLS folder lacks a file.
    """
    return DockerAgent(url, timeout=timeout, tls=agent_tls(tls_dir, agent_id))


def _engine_info(client: Any, url: str, *, required: bool) -> dict[str, Any]:
    """The engine's capacity, hostname and version (``up`` says whether it answered).

    :raises AgentUnreachable: when ``required`` and the engine does not answer.
    """
    try:
        return {**client.info(), "up": True}
    except AgentError as exc:
        if required:
            raise _registration_error(url, exc) from None
        return {"up": False}


def _state(agent: Mapping[str, Any], *, up: bool) -> str:
    """The state an agent shows once it answered a ping (``up``) or did not."""
    return agent_state({"drain": agent.get("drain"), "state": "up" if up else "unreachable"})


# reads and changes ----------------------------------------------------------------

def get_agent(store: Store, agent_id: str) -> Agent:
    """An agent with the instances placed on it.

    :raises AgentNotFound:
    """
    agent = store.agents.require(agent_id)
    agent["instances"] = sorted(i["id"] for i in store.instances.for_agent(agent_id))
    return agent


def list_agents(store: Store) -> list[Agent]:
    return store.agents.list()


def drain(store: Store, agent_id: str, *, actor: str = "",
          enqueue: Callable[[str, Sequence[Any]], Any] | None = None) -> Agent:
    """Stop placing on the agent and move its instances away (via the reconciler).

    :raises AgentNotFound:
    """
    store.agents.require(agent_id)

    def apply(agent: Agent) -> Agent:
        agent["drain"] = True
        agent["state"] = agent_state(agent)
        return agent

    agent = store.agents.update(agent_id, apply, event="agent.draining", actor=actor)
    agent = agent or store.agents.require(agent_id)
    if enqueue is not None:
        try:
            enqueue("berth.reconcile", [])
        except Exception:  # noqa: BLE001 - the periodic reconcile moves them anyway
            log.warning("could not enqueue a reconcile after draining %s", agent_id)
    return agent


def activate(store: Store, agent_id: str, *, actor: str = "") -> Agent:
    """End a drain: the agent takes new instances again.

    :raises AgentNotFound:
    """
    store.agents.require(agent_id)

    def apply(agent: Agent) -> Agent:
        agent["drain"] = False
        agent["state"] = agent_state(agent)
        return agent

    agent = store.agents.update(agent_id, apply, event="agent.activated", actor=actor)
    return agent or store.agents.require(agent_id)


def remove(store: Store, agent_id: str, *, force: bool = False, actor: str = "",
           pool: AgentPool | None = None, enqueue: Any = None) -> None:
    """Forget an agent; refused while instances remain on it unless ``force``.

    With ``force`` its instance records go (the reconciler places replacements
    elsewhere) and its containers are removed where the engine still answers: here,
    through ``pool``, or — when ``enqueue`` is given, as the server does, since it
    never changes anything on an agent — by a ``berth.remove_agent_containers`` task.

    :raises AgentNotFound:
    :raises AgentBusy: instances remain and ``force`` is not set.
    """
    agent = store.agents.require(agent_id)
    instances = store.instances.for_agent(agent_id)
    if instances and not force:
        raise AgentBusy(f"{len(instances)} instances remain on {agent_id}", agent=agent_id,
                        details=[{"path": f"instances/{i['id']}", "message": i["service"]}
                                 for i in instances],
                        hint="drain the agent first, or force the removal")
    if instances and enqueue is None:
        remove_containers(agent, _container_refs(instances), pool=pool or AgentPool(timeout=5))

    def change(tx: Tx) -> None:
        for instance in instances:
            store.instances.stage_remove(tx, instance)
        store.agents.stage_remove(tx, agent_id)
        tx.event("agent.removed", agent_id, actor, {"forced": bool(instances)})

    store.state.transact(change)
    if instances and enqueue is not None:
        enqueue("berth.remove_agent_containers",
                [{"id": agent_id, "url": agent["url"]}, _container_refs(instances)])


def _container_refs(instances: Iterable[Instance]) -> list[str]:
    return [i.get("container_id") or i["container"] for i in instances]


def remove_containers(agent: Mapping[str, Any], containers: Iterable[str], *,
                      pool: AgentPool) -> int:
    """Remove ``containers`` from a (forgotten) agent's engine; how many went.

    Stops quietly at the first engine error: an engine that is away keeps its
    containers, beyond Berth's reach.
    """
    docker = pool.get(agent)
    removed = 0
    for container in containers:
        try:
            docker.remove(container)
        except AgentError:
            break
        removed += 1
    return removed


# heartbeats ---------------------------------------------------------------------------

def heartbeat(store: Store, pool: AgentPool, *, unreachable_timeout: float,
              now: float | None = None) -> dict[str, list[str]]:
    """Ping every agent; record who answered and who is now unreachable.

    Returns ``{"up": [...], "unreachable": [...]}`` of agents whose state changed.
    """
    agents = store.agents.list()
    if not agents:
        return {"up": [], "unreachable": []}
    with ThreadPoolExecutor(max_workers=min(16, len(agents))) as threads:
        answers = list(threads.map(lambda a: _answers(pool, a), agents))
    changed: dict[str, list[str]] = {"up": [], "unreachable": []}
    stamp = time.time() if now is None else now
    for agent, up in zip(agents, answers, strict=True):
        before = agent.get("state")
        if up:
            store.agents.seen(agent["id"], stamp)
            if before == _state(agent, up=True):
                continue
        last_seen = float(agent.get("last_seen") or 0)
        updated = store.agents.update(agent["id"], functools.partial(
            _beat, up=up, now=stamp, last_seen=last_seen, timeout=unreachable_timeout))
        if updated and updated.get("state") != before:
            kind = "unreachable" if updated["state"] == "unreachable" else "up"
            changed[kind].append(agent["id"])
            store.state.publish_event(f"agent.{updated['state']}", agent["id"], "worker", {})
    return changed


def _answers(pool: AgentPool, agent: Mapping[str, Any]) -> bool:
    """Whether the agent's engine answers a ping (False when it cannot even be asked)."""
    try:
        return bool(pool.heartbeat_client(agent).is_up())
    except AgentError as error:
        log.warning("cannot ping %s: %s", agent.get("id"), error.message)
        return False


def _beat(agent: Agent, up: bool, now: float, last_seen: float,
          timeout: float) -> Agent | None:
    """The agent after one ping; None when nothing changes."""
    if up:
        agent["last_seen"] = now
        agent["state"] = _state(agent, up=True)
        return agent
    if agent.get("state") != "unreachable" and now - last_seen > timeout:
        agent["state"] = "unreachable"
        return agent
    return None


class AgentPool:
    """``DockerAgent`` clients by agent and URL, shared by the threads of one process.

    The first :class:`worker.backend.ClusterBackend`: Berth places instances on Docker
    engines it knows as agent records, and each engine is a ``DockerAgent``.

    ``tls_dir`` is ``BERTH_AGENT_TLS_DIR``: an agent with a folder there is reached
    over TLS with its client certificate.
    """

    def __init__(self, timeout: float = 10, heartbeat_timeout: float = 2,
                 tls_dir: str = "") -> None:
        self.timeout = timeout
        self.heartbeat_timeout = heartbeat_timeout
        self.tls_dir = tls_dir
        self._clients: dict[tuple[str, str, float], DockerAgent] = {}
        self._lock = threading.Lock()

    def _client(self, agent: Mapping[str, Any], timeout: float) -> DockerAgent:
        with self._lock:
            key = (str(agent.get("id") or ""), agent["url"], timeout)
            if key not in self._clients:
                self._clients[key] = _client(key[1], key[0], self.tls_dir, timeout=timeout)
            return self._clients[key]

    def get(self, agent: Mapping[str, Any]) -> Engine:
        """The client of an agent record.

        :raises AgentError: the agent's TLS folder lacks a file.
        """
        return self._client(agent, self.timeout)

    def heartbeat_client(self, agent: Mapping[str, Any]) -> Engine:
        """A client with a short timeout, for pings."""
        return self._client(agent, self.heartbeat_timeout)

    def close(self) -> None:
        """Close every client's connections (the pool can be used again afterwards)."""
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
