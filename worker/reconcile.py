"""The reconciler: compare what runs with what is wanted, and act.

- ``heartbeat()`` pings every agent; one silent longer than the unreachable timeout
  is marked ``unreachable`` and its instances ``lost``.
- ``reconcile()`` (periodic) lists Berth containers on every reachable agent: an
  instance whose container stopped is marked failed, a container no record wants is
  removed; a deployment that nobody drives (its worker died) is driven on; a service
  short of healthy instances, with failed or lost ones, or with instances on a
  draining agent gets a ``recover`` deployment — after a backoff when its previous
  deployments failed (``backoff_base`` doubling up to ``backoff_max``).
- ``reconcile_service(name)`` is the fast path behind Docker events: the same checks
  for one service, running the recovery in place.
- ``monitor()`` runs due health checks of running instances (every
  ``intervalSeconds``); an instance failing ``maxConsecutiveFailures`` in a row
  becomes ``unhealthy`` and is replaced.

Instances being deployed belong to their deployment: the reconciler leaves services
with a deployment in progress to it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from . import deployments
from .agents import AgentPool, heartbeat
from .containers import ContainerInfo
from .deploy import Deployer
from .errors import AgentError
from .instances import InstanceRunner, ServiceLock, alive, counts_healthy
from .records import Agent, Deployment, Service
from .settings import WorkerSettings
from .store import Store

__all__ = ["Reconciler", "start_recovery"]

log = logging.getLogger(__name__)
Enqueue = Callable[[str, Sequence[Any]], Any]
ACTOR = "reconciler"


def start_recovery(store: Store, name: str, reason: str) -> Deployment | None:
    """Open a ``recover`` deployment for a service idle and not being removed; or None."""
    return deployments.open_recovery(store, name, reason, ACTOR)


class Reconciler:
    """Keeps actual state in line with desired state."""

    def __init__(self, store: Store, agents: AgentPool | None = None,
                 settings: WorkerSettings | None = None, enqueue: Enqueue | None = None) -> None:
        self.store = store
        self.settings = settings or WorkerSettings()
        self.pool = agents or AgentPool(timeout=self.settings.docker_timeout,
                                        tls_dir=self.settings.agent_tls_dir)
        self.ops = InstanceRunner(store, self.pool, self.settings)
        self.enqueue = enqueue

    # agents ---------------------------------------------------------------------------
    def heartbeat(self) -> dict[str, list[str]]:
        """Ping the agents; mark the instances of newly unreachable ones lost."""
        changed = heartbeat(self.store, self.pool,
                            unreachable_timeout=self.settings.unreachable_timeout)
        if changed["unreachable"]:
            self._mark_lost()
        return changed

    def _mark_lost(self) -> set[str]:
        """Instances on unreachable agents become ``lost``; returns their services."""
        services = set()
        for agent in self.store.agents.list():
            if agent.get("state") != "unreachable":
                continue
            for instance in self.store.instances.for_agent(agent["id"]):
                if alive(instance):
                    self.ops.fail(instance, f"agent {agent['id']} is unreachable", "lost")
                    services.add(instance["service"])
        return services

    # the periodic pass ----------------------------------------------------------------
    def reconcile(self) -> dict[str, Any]:
        """One full pass over agents, deployments and services; returns what it did."""
        self._mark_lost()
        removed = self._sweep_agents()
        driven = self._drive_stuck()
        recovering = []
        for service in self.store.services.list():
            reason = self._needs_recovery(service)
            if reason and self._backoff_over(service["name"]):
                deployment = start_recovery(self.store, service["name"], reason)
                if deployment:
                    recovering.append(service["name"])
                    self._send("berth.deploy", [deployment["id"]])
            elif not reason:
                self._settle_status(service)
        self.store.deployments.trim()
        return {"orphans_removed": removed, "deployments_driven": driven,
                "recovering": recovering}

    def _sweep_agents(self) -> int:
        """Fail instances whose container stopped; remove containers no record wants."""
        removed = 0
        for agent in self.store.agents.list():
            if agent.get("state") == "unreachable":
                continue
            docker = self.pool.get(agent)
            try:
                containers = docker.list_instances()
            except AgentError:
                continue
            records = {i["id"]: i for i in self.store.instances.for_agent(agent["id"])}
            for info in containers:
                instance = records.get(info.labels.get("berth.instance", ""))
                if instance is None or instance["container"] != info.name:
                    removed += self._remove_orphan(docker, info)
                elif not info.running and alive(instance) and instance.get("container_id"):
                    self.ops.fail(instance, f"container stopped ({info.status})")
            listed = {c.name for c in containers}
            for instance in records.values():
                if (alive(instance) and instance.get("container_id")
                        and instance["container"] not in listed
                        and not ServiceLock.held(self.store.state, instance["service"])):
                    self.ops.fail(instance, "container removed outside Berth")
        return removed

    def _remove_orphan(self, docker: Any, info: ContainerInfo) -> int:
        try:
            docker.remove(info.id)
        except AgentError as error:
            log.warning("could not remove orphan %s: %s", info.name, error.message)
            return 0
        self.store.state.publish_event("container.orphan_removed", info.name, ACTOR,
                                       {"agent": docker.url})
        return 1

    def _drive_stuck(self) -> list[str]:
        """Re-send deployments whose worker died (no lock) or that nobody picked up."""
        driven = []
        now = time.time()
        for deployment in self.store.deployments.active():
            if ServiceLock.held(self.store.state, deployment["service"]):
                continue
            waiting = now - float(deployment.get("updated_at") or 0)
            if deployment["status"] == "queued" and waiting < self.settings.stuck_after:
                continue
            kick = self.store.state.key("kick", deployment["id"])
            if self.store.redis.set(kick, "1", nx=True, px=int(self.settings.stuck_after * 1000)):
                self._send("berth.deploy", [deployment["id"]])
                driven.append(deployment["id"])
        return driven

    # one service ----------------------------------------------------------------------
    def reconcile_service(self, name: str) -> Deployment | None:
        """The fast path: check one service's containers, recover it in place if needed."""
        service = self.store.services.get(name)
        if service is None or self._busy(service):
            return None
        instances = self.store.instances.for_service(name)
        self.ops.observe(service, [i for i in instances if alive(i)],
                         interval=_interval(service))
        service = self.store.services.get(name)
        reason = self._needs_recovery(service) if service else None
        if not reason or not self._backoff_over(name):
            return None
        deployment = start_recovery(self.store, name, reason)
        if deployment is None:
            return None
        return Deployer(self.store, self.pool, self.settings).run(deployment["id"])

    def _busy(self, service: Service) -> bool:
        current = service.get("deployment")
        return bool(current) and deployments.is_active(self.store.deployments.get(current or ""))

    def _needs_recovery(self, service: Service) -> str | None:
        """Why a service must be recovered, or None when it is fine (or not ours now)."""
        if service.get("status") in ("deleting", "failed") or self._busy(service):
            return None
        instances = self.store.instances.for_service(service["name"])
        agents = {a["id"]: a for a in self.store.agents.list()}
        dead = [i for i in instances if not alive(i)]
        if dead:
            return f"{len(dead)} instances {dead[0]['state']}: {dead[0].get('error') or ''}"
        drained = [i for i in instances if _drained(agents.get(i["agent"]))]
        if drained:
            return f"{len(drained)} instances on draining agents"
        if len(instances) < int(service["instances"]):
            return f"{len(instances)} of {service['instances']} instances"
        if len(instances) > int(service["instances"]):
            return f"{len(instances)} instances, {service['instances']} wanted"
        return None

    def _backoff_over(self, name: str) -> bool:
        """Whether enough time passed since the service's last failed deployments."""
        failed, last = 0, 0.0
        for deployment in self.store.deployments.list(service=name, limit=12):
            if deployment["status"] != "failed":
                break
            failed += 1
            last = max(last, float(deployment.get("finished_at") or 0))
        if not failed:
            return True
        delay = min(self.settings.backoff_base * 2 ** (failed - 1), self.settings.backoff_max)
        return time.time() >= last + delay

    def _settle_status(self, service: Service) -> None:
        """``running`` when every wanted instance is healthy, else ``degraded``."""
        if service.get("status") in ("deleting", "failed", "deploying") or self._busy(service):
            return
        instances = self.store.instances.for_service(service["name"])
        healthy = sum(1 for i in instances if counts_healthy(i))
        status = "running" if healthy >= int(service["instances"]) else "degraded"
        if status != service.get("status"):
            self.store.services.update(service["name"], lambda s: {**s, "status": status}
                                       if s.get("deployment") is None else None,
                                       event="service.updated", actor=ACTOR)

    # health ---------------------------------------------------------------------------
    def monitor(self) -> list[str]:
        """Run due health checks of running instances; services needing care."""
        troubled = []
        for service in self.store.services.list():
            hc = service["spec"].get("healthCheck")
            if not hc or self._busy(service):
                continue
            instances = [i for i in self.store.instances.for_service(service["name"])
                         if i.get("state") == "running" and i.get("container_id")]
            self.ops.monitor(service, instances, interval=_interval(service))
            after = self.store.instances.for_service(service["name"])
            if any(not alive(i) for i in after):
                troubled.append(service["name"])
        return troubled

    def _send(self, task: str, args: list[Any]) -> None:
        if self.enqueue is None:
            return
        try:
            self.enqueue(task, args)
        except Exception:  # noqa: BLE001 - the next pass tries again
            log.warning("could not enqueue %s%s", task, args, exc_info=True)


def _drained(agent: Agent | None) -> bool:
    """Whether instances may not stay on an agent: it is being drained, or it is gone."""
    return agent is None or agent["drain"]


def _interval(service: Service) -> float:
    hc = service["spec"].get("healthCheck") or {}
    return float(hc.get("intervalSeconds", 10))
