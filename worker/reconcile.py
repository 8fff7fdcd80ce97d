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

Services on a Swarm cluster are the Swarm's to keep: the periodic pass only refreshes
their instance records from the live tasks (``worker.swarm_deploy.refresh``).

Instances being deployed belong to their deployment: the reconciler leaves services
with a deployment in progress to it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from . import deployments
from .agents import AgentPool, heartbeat
from .containers import ContainerInfo
from .deploy import Deployer
from .errors import AgentError, Conflict
from .instances import (
    InstanceRunner,
    ServiceLock,
    alive,
    counts_healthy,
    revivable,
    wait_reason,
    waiting_for,
)
from .links import stale_links
from .records import Agent, Deployment, Instance, Service
from .service_ops import DesiredState
from .settings import WorkerSettings
from .store import Store
from .swarm_deploy import SwarmBackends, refresh, swarm_service

__all__ = ["Reconciler", "start_recovery"]

log = logging.getLogger(__name__)
Enqueue = Callable[[str, Sequence[Any]], Any]
ACTOR = "reconciler"
Agents = dict[str, Agent]
SWEEP_THREADS = 16  # agents listed at once in a pass, as many as the heartbeat pings


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
        self.swarms = SwarmBackends(store, self.settings)

    # agents ---------------------------------------------------------------------------
    def heartbeat(self) -> dict[str, list[str]]:
        """Ping the agents; mark the instances of newly unreachable ones lost."""
        changed = heartbeat(self.store, self.pool,
                            unreachable_timeout=self.settings.unreachable_timeout)
        if changed["unreachable"]:
            self._mark_lost()
        return changed

    def _mark_lost(self, agents: Agents | None = None) -> set[str]:
        """Instances on unreachable agents become ``lost``; returns their services."""
        services = set()
        for agent in (agents or self._agents()).values():
            if agent.get("state") != "unreachable":
                continue
            for instance in self.store.instances.for_agent(agent["id"]):
                if alive(instance):
                    reason = (wait_reason(instance, agent["id"]) if instance.get("resident")
                              else f"agent {agent['id']} is unreachable")
                    self.ops.fail(instance, reason, "lost")
                    services.add(instance["service"])
        return services

    def _revive(self, only: str | None = None, agents: Agents | None = None) -> list[str]:
        """Run lost resident instances again on their agents once these answer again.

        A service with a deployment in progress is left to it (the deployer revives
        them too); returns the instances started again.
        """
        agents = agents or self._agents()
        services = self.store.services.many([only]) if only else self.store.services.list()
        instances = self.store.instances.for_services(s["name"] for s in services)
        revived = []
        for service in services:
            if self._busy(service) or service.get("status") == "deleting" \
                    or ServiceLock.held(self.store.state, service["name"]):
                continue
            back = [i for i in instances.get(service["name"], []) if revivable(i, agents)]
            if back:
                self.ops.revive(service, back)
                revived += [i["id"] for i in back]
        return revived

    # the periodic pass ----------------------------------------------------------------
    def reconcile(self) -> dict[str, Any]:
        """One full pass over agents, deployments and services; returns what it did.

        Agents are read twice per pass (before the sweep, and fresh before the services
        are judged) and every service's instances in one batch, so a pass costs a few
        round trips per service rather than a read of every agent per service
        (``bench/RESULTS.md``, scale).
        """
        agents = self._agents()
        self._mark_lost(agents)
        revived = self._revive(agents=agents)
        removed = self._sweep_agents(agents)
        driven = self._drive_stuck()
        swarm = refresh(self.store, self.swarms)   # the Swarm replaces its own tasks
        recovering: list[str] = []
        relinked: list[str] = []
        agents = self._agents()  # read again: the sweep and the heartbeat take time
        services = self.store.services.list()
        instances = self.store.instances.for_services(s["name"] for s in services)
        for service in services:
            if swarm_service(service):
                continue
            mine = instances.get(service["name"], [])
            reason = self._needs_recovery(service, mine, agents)
            if reason and self._backoff_over(service["name"]):
                deployment = start_recovery(self.store, service["name"], reason)
                if deployment:
                    recovering.append(service["name"])
                    self._send("berth.deploy", [deployment["id"]])
            elif not reason:
                if self._restart_for_links(service, mine):
                    relinked.append(service["name"])
                    continue
                self._settle_status(service, mine, agents)
        self.store.deployments.trim()
        return {"orphans_removed": removed, "deployments_driven": driven,
                "recovering": recovering, "revived": revived, "relinked": relinked,
                "swarm_changed": swarm}

    def _restart_for_links(self, service: Service, instances: list[Instance]) -> bool:
        """Restart a service whose instances use a linked endpoint that moved away
        (``worker/links.py``); True when a ``restart`` deployment was opened."""
        if service.get("status") in ("deleting", "failed", "deploying") or self._busy(service):
            return False
        reason = stale_links(self.store, service, instances)
        if reason is None:
            return False
        try:
            deployment = DesiredState(self.store).restart(service["name"], actor=ACTOR)
        except Conflict:
            return False   # a deployment started meanwhile: it creates fresh containers
        self.store.state.publish_event("service.relinked", service["name"], ACTOR,
                                       {"reason": reason, "deployment": deployment["id"]})
        self._send("berth.deploy", [deployment["id"]])
        return True

    def _sweep_agents(self, agents: Agents | None = None) -> int:
        """Fail instances whose container stopped; remove containers no record wants.

        The agents are listed concurrently (a bounded pool, as the heartbeat pings), so
        a pass does not grow with the sum of every agent's answer time.
        """
        reachable = [a for a in (agents or self._agents()).values()
                     if a.get("state") != "unreachable"]
        if not reachable:
            return 0
        with ThreadPoolExecutor(max_workers=min(SWEEP_THREADS, len(reachable))) as threads:
            listings = list(threads.map(self._listing, reachable))
        by_agent = self.store.instances.for_agents(a["id"] for a in reachable)
        removed = 0
        for agent, (docker, containers) in zip(reachable, listings, strict=True):
            if containers is not None:
                removed += self._sweep_agent(docker, containers, by_agent[agent["id"]])
        return removed

    def _listing(self, agent: Agent) -> tuple[Any, list[ContainerInfo] | None]:
        """An agent's client and its Berth containers (None when it does not answer)."""
        docker = self.pool.get(agent)
        try:
            return docker, docker.list_instances()
        except AgentError:
            return docker, None

    def _sweep_agent(self, docker: Any, containers: list[ContainerInfo],
                     instances: list[Instance]) -> int:
        """One agent's part of the sweep; returns the orphans removed."""
        removed = 0
        records = {i["id"]: i for i in instances}
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
        """The fast path: check one service's containers, recover it in place if needed.

        While a deployment of the service runs, the deployment replaces what dies (each
        of its rounds drops dead instances), but it watches only the instances it
        starts: a serving one that dies then is marked failed here, so that deployment
        replaces it at once rather than the next periodic pass.
        """
        service = self.store.services.get(name)
        if service is None or swarm_service(service):
            return None
        if self._busy(service):
            serving = [i for i in self.store.instances.for_service(name) if counts_healthy(i)]
            self.ops.fail_stopped(service, serving)
            return None
        self._revive(only=name)
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

    def _agents(self) -> Agents:
        return {a["id"]: a for a in self.store.agents.list()}

    def _needs_recovery(self, service: Service, instances: list[Instance] | None = None,
                        agents: Agents | None = None) -> str | None:
        """Why a service must be recovered, or None when it is fine (or not ours now).

        ``instances`` and ``agents`` are what the pass read already (read here if not).
        """
        if service.get("status") in ("deleting", "failed") or self._busy(service):
            return None
        if instances is None:
            instances = self.store.instances.for_service(service["name"])
        agents = agents if agents is not None else self._agents()
        dead = [i for i in instances if not alive(i)
                and not waiting_for(i, agents) and not revivable(i, agents)]
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

    def _settle_status(self, service: Service, instances: list[Instance] | None = None,
                       agents: Agents | None = None) -> None:
        """``running`` when every wanted instance is healthy, else ``degraded``; the
        ``status_reason`` names the agents resident instances wait for."""
        if service.get("status") in ("deleting", "failed", "deploying") or self._busy(service):
            return
        if instances is None:
            instances = self.store.instances.for_service(service["name"])
        agents = agents if agents is not None else self._agents()
        healthy = sum(1 for i in instances if counts_healthy(i))
        status = "running" if healthy >= int(service["instances"]) else "degraded"
        waits = sorted({w for i in instances if (w := waiting_for(i, agents))})
        reason = "; ".join(waits) or None
        if status == service.get("status") and reason == service.get("status_reason"):
            return
        def settle(doc: Service) -> Service | None:
            if doc.get("deployment") is not None:
                return None
            return cast(Service, {**doc, "status": status, "status_reason": reason})

        self.store.services.update(service["name"], settle, event="service.updated",
                                   actor=ACTOR)
        if reason:
            self.store.state.publish_event("service.waiting", service["name"], ACTOR,
                                           {"reason": reason})

    # health ---------------------------------------------------------------------------
    def monitor(self) -> list[str]:
        """Run due health checks of running instances; services needing care."""
        services = self.store.services.list()
        before = self.store.instances.for_services(s["name"] for s in services)
        checked = []
        for service in services:
            hc = service["spec"].get("healthCheck")
            if not hc or self._busy(service) or swarm_service(service):
                continue
            # starting ones too: a resident instance revived outside a deployment
            instances = [i for i in before.get(service["name"], [])
                         if i.get("state") in ("running", "starting") and i.get("container_id")]
            self.ops.monitor(service, instances, interval=_interval(service))
            checked.append(service["name"])
        after = self.store.instances.for_services(checked)
        return [name for name in checked if any(not alive(i) for i in after[name])]

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
