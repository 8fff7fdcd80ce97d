"""The cluster's records: services, deployments, instances and agents.

Each sub-store knows its keys and indexes; writes that span records (a service and
its deployment, instances and the agents they reserve) are composed by the caller in
one :meth:`RedisState.transact` with the ``stage_*`` helpers here, so they commit
together. Keys (under the prefix):

    service:<name>                   Service document
    service:<name>:generations       list of generation entries, oldest first
    service:<name>:deployments       sorted set of deployment ids by creation time
    service:<name>:instances         set of instance ids
    services                         set of service names
    deployment:<id>                  Deployment document
    deployments                      sorted set of every deployment id by creation time
    deployments:active               set of queued or running deployment ids
    instance:<id>                    Instance document
    agent:<id>                       Agent document
    agent:<id>:instances             set of instance ids placed on the agent
    agents                           set of agent ids
    agents:seen                      hash: agent id → time of its last answered ping
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from ..errors import (
    AgentNotFound,
    DeploymentNotFound,
    InstanceNotFound,
    NotFound,
    ServiceNotFound,
)
from ..records import (
    ACTIVE_DEPLOYMENT,
    FINISHED_DEPLOYMENT,
    Agent,
    Deployment,
    Generation,
    Instance,
    Service,
    agent_from_json,
    agent_to_json,
    deployment_from_json,
    deployment_to_json,
    generation_from_json,
    generation_to_json,
    instance_from_json,
    instance_to_json,
    service_from_json,
    service_to_json,
)
from .base import Document, RedisState, Tx, dumps, loads

__all__ = ["ServiceStore", "DeploymentStore", "InstanceStore", "AgentStore",
           "ACTIVE_DEPLOYMENT", "FINISHED_DEPLOYMENT"]

DEPLOYMENT_HISTORY = 2000   # deployments kept in the global history

R = TypeVar("R", Service, Deployment, Instance, Agent)


def _texts(values: Iterable[object]) -> builtins.list[str]:
    return sorted(_texts_ordered(values))


def _texts_ordered(values: Iterable[object]) -> builtins.list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


class _Records(Generic[R]):
    """Common reads and writes of one kind of record, typed by its ``TypedDict``."""

    kind = ""
    missing: type[NotFound] = NotFound

    def __init__(self, state: RedisState) -> None:
        self.state = state
        self.redis = state.redis

    def load(self, doc: Mapping[str, object]) -> R:
        """The record of a stored document (see ``worker/records.py``)."""
        raise NotImplementedError

    def dump(self, record: R) -> Document:
        """The document stored for a record."""
        raise NotImplementedError

    def key(self, record_id: str) -> str:
        return self.state.key(self.kind, record_id)

    def get(self, record_id: str) -> R | None:
        """The record or None."""
        doc = self.state.get_doc(self.key(record_id))
        return None if doc is None else self.load(doc)

    def require(self, record_id: str) -> R:
        """The record.

        :raises NotFound: (the kind's subclass) when there is none.
        """
        record = self.get(record_id)
        if record is None:
            data: dict[str, Any] = {self.kind: record_id}
            raise self.missing(f"no {self.kind} {record_id!r}", **data)
        return record

    def read(self, tx: Tx, record_id: str) -> R | None:
        """The record as read inside a transaction (watched), or None."""
        doc = tx.get(self.key(record_id))
        return None if doc is None else self.load(doc)

    def many(self, ids: builtins.list[str]) -> builtins.list[R]:
        """The records of ``ids`` that exist, in order."""
        docs = self.state.get_docs(self.key(i) for i in ids)
        return [self.load(d) for d in docs if d is not None]

    def update(self, record_id: str, fn: Callable[[R], R | None], *,
               event: str | None = None, actor: str = "") -> R | None:
        """Compare-and-set ``fn`` over the record (None when it does not exist)."""
        spec = (event, record_id, actor) if event else None

        def change(doc: Document) -> Document | None:
            updated = fn(self.load(doc))
            return None if updated is None else self.dump(updated)

        written = self.state.cas_update(self.key(record_id), change, event=spec)
        return None if written is None else self.load(written)


class ServiceStore(_Records[Service]):
    """Services: desired state and generation history."""

    kind = "service"
    missing = ServiceNotFound

    def load(self, doc: Mapping[str, object]) -> Service:
        return service_from_json(doc)

    def dump(self, record: Service) -> Document:
        return service_to_json(record)

    def names(self) -> builtins.list[str]:
        return _texts(self.redis.smembers(self.state.key("services")))

    def list(self) -> builtins.list[Service]:
        """Every service, by name."""
        return self.many(self.names())

    def page(self, start: int, stop: int) -> tuple[builtins.list[Service], int]:
        """The services ``start:stop`` in name order, and how many there are in all
        (one set read and one ``MGET`` of the page, whatever the total)."""
        names = self.names()
        return self.many(names[start:stop]), len(names)

    def generations(self, name: str) -> builtins.list[Generation]:
        """The generation history, oldest first."""
        raw = self.redis.lrange(self.state.key("service", name, "generations"), 0, -1)
        return [generation_from_json(loads(r) or {}) for r in raw]

    def generation(self, name: str, number: int) -> Generation | None:
        """One generation entry or None."""
        for entry in self.generations(name):
            if int(entry.get("generation", 0)) == int(number):
                return entry
        return None

    def stage_put(self, tx: Tx, service: Service) -> Service:
        """Queue a write of a service (and its place in the index)."""
        written = tx.put(self.key(service["name"]), self.dump(service))
        tx.call("sadd", self.state.key("services"), service["name"])
        return self.load(written)

    def stage_generation(self, tx: Tx, name: str, entry: Generation) -> None:
        """Queue an entry at the end of the generation history."""
        tx.call("rpush", self.state.key("service", name, "generations"),
                dumps(generation_to_json(entry)))

    def stage_remove(self, tx: Tx, name: str) -> None:
        """Queue the removal of a service, its history and indexes."""
        tx.delete(self.key(name))
        tx.call("srem", self.state.key("services"), name)
        for suffix in ("generations", "deployments", "instances"):
            tx.call("delete", self.state.key("service", name, suffix))


class DeploymentStore(_Records[Deployment]):
    """Deployments: kind, steps, progress, outcome (written by ``worker/deployments.py``)."""

    kind = "deployment"
    missing = DeploymentNotFound

    def load(self, doc: Mapping[str, object]) -> Deployment:
        return deployment_from_json(doc)

    def dump(self, record: Deployment) -> Document:
        return deployment_to_json(record)

    def list(self, service: str | None = None, limit: int = 50) -> builtins.list[Deployment]:
        """Recent deployments, newest first (of one service when given)."""
        index = (self.state.key("service", service, "deployments") if service
                 else self.state.key("deployments"))
        ids = _texts_ordered(self.redis.zrevrange(index, 0, max(0, limit - 1)))
        return self.many(ids)

    def active_ids(self) -> builtins.list[str]:
        """Ids of queued or running deployments."""
        return _texts(self.redis.smembers(self.state.key("deployments:active")))

    def active(self) -> builtins.list[Deployment]:
        return self.many(self.active_ids())

    def stage_put(self, tx: Tx, deployment: Deployment) -> Deployment:
        """Queue a write of a deployment, keeping the indexes in step."""
        key = self.key(deployment["id"])
        is_new = tx.get(key) is None
        written = tx.put(key, self.dump(deployment))
        if is_new:
            score = float(deployment.get("created_at") or 0)
            tx.call("zadd", self.state.key("deployments"), {deployment["id"]: score})
            tx.call("zadd", self.state.key("service", deployment["service"], "deployments"),
                    {deployment["id"]: score})
        active = self.state.key("deployments:active")
        if deployment.get("status") in ACTIVE_DEPLOYMENT:
            tx.call("sadd", active, deployment["id"])
        else:
            tx.call("srem", active, deployment["id"])
        return self.load(written)

    def trim(self, keep: int = DEPLOYMENT_HISTORY) -> int:
        """Forget the oldest finished deployments beyond ``keep``; how many went."""
        index = self.state.key("deployments")
        old = _texts_ordered(self.redis.zrange(index, 0, -keep - 1))
        active = set(self.active_ids())
        gone = [i for i in old if i not in active]
        if gone:
            pipe = self.redis.pipeline()
            pipe.zrem(index, *gone)
            pipe.delete(*[self.key(i) for i in gone])
            pipe.execute()
        return len(gone)


class InstanceStore(_Records[Instance]):
    """Instances: one container of a service on one agent."""

    kind = "instance"
    missing = InstanceNotFound

    def load(self, doc: Mapping[str, object]) -> Instance:
        return instance_from_json(doc)

    def dump(self, record: Instance) -> Document:
        return instance_to_json(record)

    def ids_for_service(self, name: str) -> builtins.list[str]:
        return _texts(self.redis.smembers(self.state.key("service", name, "instances")))

    def ids_for_agent(self, agent_id: str) -> builtins.list[str]:
        return _texts(self.redis.smembers(self.state.key("agent", agent_id, "instances")))

    def for_service(self, name: str) -> builtins.list[Instance]:
        """A service's instances, oldest first."""
        docs = self.many(self.ids_for_service(name))
        return sorted(docs, key=lambda d: (float(d.get("created_at") or 0), d["id"]))

    def for_agent(self, agent_id: str) -> builtins.list[Instance]:
        """The instances placed on an agent."""
        return self.many(self.ids_for_agent(agent_id))

    def for_services(self, names: Iterable[str]) -> dict[str, builtins.list[Instance]]:
        """The instances of several services in two round trips, each oldest first.

        A pass over every service reads them this way instead of two round trips per
        service (``bench/RESULTS.md``, scale).
        """
        grouped = self._grouped("service", names, "service")
        for instances in grouped.values():
            instances.sort(key=lambda d: (float(d.get("created_at") or 0), d["id"]))
        return grouped

    def for_agents(self, agent_ids: Iterable[str]) -> dict[str, builtins.list[Instance]]:
        """The instances on several agents in two round trips."""
        return self._grouped("agent", agent_ids, "agent")

    def _grouped(self, kind: str, owners: Iterable[str],
                 field: str) -> dict[str, builtins.list[Instance]]:
        owners = builtins.list(owners)
        grouped: dict[str, builtins.list[Instance]] = {o: [] for o in owners}
        if not owners:
            return grouped
        pipe = self.redis.pipeline(transaction=False)
        for owner in owners:
            pipe.smembers(self.state.key(kind, owner, "instances"))
        ids = [i for members in pipe.execute() for i in _texts(members)]
        for instance in self.many(ids):
            owner = str(instance.get(field) or "")
            if owner in grouped:
                grouped[owner].append(instance)
        return grouped

    def stage_put(self, tx: Tx, instance: Instance) -> Instance:
        """Queue a write of an instance and its two index entries."""
        written = tx.put(self.key(instance["id"]), self.dump(instance))
        tx.call("sadd", self.state.key("service", instance["service"], "instances"),
                instance["id"])
        tx.call("sadd", self.state.key("agent", instance["agent"], "instances"),
                instance["id"])
        return self.load(written)

    def stage_remove(self, tx: Tx, instance: Instance) -> None:
        """Queue the removal of an instance and its index entries."""
        tx.delete(self.key(instance["id"]))
        tx.call("srem", self.state.key("service", instance["service"], "instances"),
                instance["id"])
        tx.call("srem", self.state.key("agent", instance["agent"], "instances"),
                instance["id"])


class AgentStore(_Records[Agent]):
    """Agents: Docker engines with attributes, capacity, port range and reservations."""

    kind = "agent"
    missing = AgentNotFound

    def load(self, doc: Mapping[str, object]) -> Agent:
        return agent_from_json(doc)

    def dump(self, record: Agent) -> Document:
        return agent_to_json(record)

    def ids(self) -> builtins.list[str]:
        return _texts(self.redis.smembers(self.state.key("agents")))

    def list(self) -> builtins.list[Agent]:
        """Every agent, by id."""
        return self.many(self.ids())

    def get(self, record_id: str) -> Agent | None:
        found = self.many([record_id])
        return found[0] if found else None

    def many(self, ids: builtins.list[str]) -> builtins.list[Agent]:
        """Agents with their latest heartbeat merged in as ``last_seen``."""
        agents = super().many(ids)
        if agents:
            seen = self.redis.hmget(self.state.key("agents:seen"), [a["id"] for a in agents])
            for agent, stamp in zip(agents, seen, strict=True):
                if stamp is not None:
                    agent["last_seen"] = max(float(stamp), float(agent.get("last_seen") or 0))
        return agents

    def confirm(self, tx: Tx, agent: Agent) -> Agent:
        """The agent, watched inside ``tx``, if it is unchanged since ``agent`` was read
        outside it; else the transaction restarts (``Tx.confirm``)."""
        return self.load(tx.confirm(self.key(agent["id"]), self.dump(agent)))

    def seen(self, agent_id: str, when: float) -> None:
        """Note a heartbeat (kept apart from the record so pings cause no write races)."""
        self.redis.hset(self.state.key("agents:seen"), agent_id, repr(when))

    def stage_put(self, tx: Tx, agent: Agent) -> Agent:
        """Queue a write of an agent (and its place in the index)."""
        written = tx.put(self.key(agent["id"]), self.dump(agent))
        tx.call("sadd", self.state.key("agents"), agent["id"])
        return self.load(written)

    def stage_remove(self, tx: Tx, agent_id: str) -> None:
        """Queue the removal of an agent, its heartbeat and its instance index."""
        tx.delete(self.key(agent_id))
        tx.call("srem", self.state.key("agents"), agent_id)
        tx.call("hdel", self.state.key("agents:seen"), agent_id)
        tx.call("delete", self.state.key("agent", agent_id, "instances"))
