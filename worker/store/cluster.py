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
from typing import Any

from ..errors import AgentNotFound, DeploymentNotFound, InstanceNotFound, ServiceNotFound
from .base import RedisState, Tx, dumps, loads

__all__ = ["ServiceStore", "DeploymentStore", "InstanceStore", "AgentStore",
           "ACTIVE_DEPLOYMENT", "FINISHED_DEPLOYMENT"]

ACTIVE_DEPLOYMENT = ("queued", "running")
FINISHED_DEPLOYMENT = ("succeeded", "failed", "cancelled")
DEPLOYMENT_HISTORY = 2000   # deployments kept in the global history


def _texts(values: Any) -> builtins.list[str]:
    return sorted(v.decode() if isinstance(v, bytes) else str(v) for v in values)


class _Records:
    """Common reads of one kind of document."""

    kind = ""
    missing: type[Exception] = LookupError

    def __init__(self, state: RedisState) -> None:
        self.state = state
        self.redis = state.redis

    def key(self, record_id: str) -> str:
        return self.state.key(self.kind, record_id)

    def get(self, record_id: str) -> dict[str, Any] | None:
        """The record or None."""
        return self.state.get_doc(self.key(record_id))

    def require(self, record_id: str) -> dict[str, Any]:
        """The record.

        :raises NotFound: (the kind's subclass) when there is none.
        """
        doc = self.get(record_id)
        if doc is None:
            raise self.missing(f"no {self.kind} {record_id!r}", **{self.kind: record_id})
        return doc

    def many(self, ids: builtins.list[str]) -> builtins.list[dict[str, Any]]:
        """The records of ``ids`` that exist, in order."""
        docs = self.state.get_docs(self.key(i) for i in ids)
        return [d for d in docs if d is not None]

    def update(self, record_id: str, fn: Any, *, event: str | None = None,
               actor: str = "") -> dict[str, Any] | None:
        """Compare-and-set ``fn`` over the record (None when it does not exist)."""
        spec = (event, record_id, actor) if event else None
        return self.state.cas_update(self.key(record_id), fn, event=spec)


class ServiceStore(_Records):
    """Services: desired state and generation history."""

    kind = "service"
    missing = ServiceNotFound

    def names(self) -> builtins.list[str]:
        return _texts(self.redis.smembers(self.state.key("services")))

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every service, by name."""
        return self.many(self.names())

    def generations(self, name: str) -> builtins.list[dict[str, Any]]:
        """The generation history, oldest first."""
        raw = self.redis.lrange(self.state.key("service", name, "generations"), 0, -1)
        return [loads(r) for r in raw]

    def generation(self, name: str, number: int) -> dict[str, Any] | None:
        """One generation entry or None."""
        for entry in self.generations(name):
            if int(entry.get("generation", 0)) == int(number):
                return entry
        return None

    def stage_put(self, tx: Tx, doc: dict[str, Any]) -> dict[str, Any]:
        """Queue a write of a service (and its place in the index)."""
        written = tx.put(self.key(doc["name"]), doc)
        tx.call("sadd", self.state.key("services"), doc["name"])
        return written

    def stage_generation(self, tx: Tx, name: str, entry: dict[str, Any]) -> None:
        """Queue an entry at the end of the generation history."""
        tx.call("rpush", self.state.key("service", name, "generations"), dumps(entry))

    def stage_remove(self, tx: Tx, name: str) -> None:
        """Queue the removal of a service, its history and indexes."""
        tx.delete(self.key(name))
        tx.call("srem", self.state.key("services"), name)
        for suffix in ("generations", "deployments", "instances"):
            tx.call("delete", self.state.key("service", name, suffix))


class DeploymentStore(_Records):
    """Deployments: kind, steps, progress, outcome."""

    kind = "deployment"
    missing = DeploymentNotFound

    def list(self, service: str | None = None, limit: int = 50) -> builtins.list[dict[str, Any]]:
        """Recent deployments, newest first (of one service when given)."""
        index = (self.state.key("service", service, "deployments") if service
                 else self.state.key("deployments"))
        ids = _texts_ordered(self.redis.zrevrange(index, 0, max(0, limit - 1)))
        return self.many(ids)

    def active_ids(self) -> builtins.list[str]:
        """Ids of queued or running deployments."""
        return _texts(self.redis.smembers(self.state.key("deployments:active")))

    def active(self) -> builtins.list[dict[str, Any]]:
        return self.many(self.active_ids())

    def stage_put(self, tx: Tx, doc: dict[str, Any]) -> dict[str, Any]:
        """Queue a write of a deployment, keeping the indexes in step."""
        key = self.key(doc["id"])
        is_new = tx.get(key) is None
        written = tx.put(key, doc)
        if is_new:
            score = float(doc.get("created_at") or 0)
            tx.call("zadd", self.state.key("deployments"), {doc["id"]: score})
            tx.call("zadd", self.state.key("service", doc["service"], "deployments"),
                    {doc["id"]: score})
        active = self.state.key("deployments:active")
        if doc.get("status") in ACTIVE_DEPLOYMENT:
            tx.call("sadd", active, doc["id"])
        else:
            tx.call("srem", active, doc["id"])
        return written

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


class InstanceStore(_Records):
    """Instances: one container of a service on one agent."""

    kind = "instance"
    missing = InstanceNotFound

    def ids_for_service(self, name: str) -> builtins.list[str]:
        return _texts(self.redis.smembers(self.state.key("service", name, "instances")))

    def ids_for_agent(self, agent_id: str) -> builtins.list[str]:
        return _texts(self.redis.smembers(self.state.key("agent", agent_id, "instances")))

    def for_service(self, name: str) -> builtins.list[dict[str, Any]]:
        """A service's instances, oldest first."""
        docs = self.many(self.ids_for_service(name))
        return sorted(docs, key=lambda d: (float(d.get("created_at") or 0), d["id"]))

    def for_agent(self, agent_id: str) -> builtins.list[dict[str, Any]]:
        """The instances placed on an agent."""
        return self.many(self.ids_for_agent(agent_id))

    def stage_put(self, tx: Tx, doc: dict[str, Any]) -> dict[str, Any]:
        """Queue a write of an instance and its two index entries."""
        written = tx.put(self.key(doc["id"]), doc)
        tx.call("sadd", self.state.key("service", doc["service"], "instances"), doc["id"])
        tx.call("sadd", self.state.key("agent", doc["agent"], "instances"), doc["id"])
        return written

    def stage_remove(self, tx: Tx, doc: dict[str, Any]) -> None:
        """Queue the removal of an instance and its index entries."""
        tx.delete(self.key(doc["id"]))
        tx.call("srem", self.state.key("service", doc["service"], "instances"), doc["id"])
        tx.call("srem", self.state.key("agent", doc["agent"], "instances"), doc["id"])


class AgentStore(_Records):
    """Agents: Docker engines with attributes, capacity, port range and reservations."""

    kind = "agent"
    missing = AgentNotFound

    def ids(self) -> builtins.list[str]:
        return _texts(self.redis.smembers(self.state.key("agents")))

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every agent, by id."""
        return self.many(self.ids())

    def get(self, record_id: str) -> dict[str, Any] | None:
        found = self.many([record_id])
        return found[0] if found else None

    def many(self, ids: builtins.list[str]) -> builtins.list[dict[str, Any]]:
        """Agents with their latest heartbeat merged in as ``last_seen``."""
        docs = super().many(ids)
        if docs:
            seen = self.redis.hmget(self.state.key("agents:seen"), [d["id"] for d in docs])
            for doc, stamp in zip(docs, seen, strict=True):
                if stamp is not None:
                    doc["last_seen"] = max(float(stamp), float(doc.get("last_seen") or 0))
        return docs

    def seen(self, agent_id: str, when: float) -> None:
        """Note a heartbeat (kept apart from the record so pings cause no write races)."""
        self.redis.hset(self.state.key("agents:seen"), agent_id, repr(when))

    def stage_put(self, tx: Tx, doc: dict[str, Any]) -> dict[str, Any]:
        written = tx.put(self.key(doc["id"]), doc)
        tx.call("sadd", self.state.key("agents"), doc["id"])
        return written

    def stage_remove(self, tx: Tx, agent_id: str) -> None:
        tx.delete(self.key(agent_id))
        tx.call("srem", self.state.key("agents"), agent_id)
        tx.call("hdel", self.state.key("agents:seen"), agent_id)
        tx.call("delete", self.state.key("agent", agent_id, "instances"))


def _texts_ordered(values: Any) -> builtins.list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]
