"""Deployments and status of services on a Docker Swarm cluster.

Where Berth's own deployer places and starts instances itself (``worker/deploy.py``),
a Swarm service's deployment hands the generation to the Swarm in one call
(:meth:`SwarmBackend.deploy_generation`) and then watches: the Swarm's tasks become
Berth's instance records (:func:`sync_instances`), progress is counted from them, and
the deployment ends

- ``succeeded`` when the wanted number of tasks of the generation run healthy, none
  of another generation is left, and the Swarm's update is not under way;
- ``failed`` when the Swarm rolled the update back or paused it, or when, on an
  install, tasks failed ``BERTH_MAX_START_ATTEMPTS`` times (Swarm would retry forever).

Scale, upgrade, rollback (a new generation made from an earlier one, by
``DesiredState.rollback``) and restart are all one update of the Swarm service: the
Swarm rolls by the ``UpdateConfig`` Berth derived from ``upgradeStrategy``. Uninstall
removes the Swarm service and waits until its tasks are gone.

:func:`refresh` is the periodic half (the reconciler's pass): a Swarm service with no
deployment in progress gets its instance records from the live tasks, so a task the
Swarm replaced, or moved off a drained node, shows in Berth's instances and events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

from catalog.errors import SpecRefused

from . import deployments
from .clusters import DEFAULT_SWARM_PORTS, cluster_of, engine_url, is_swarm
from .errors import AgentError, ContainerNotFound, ImageUnavailable
from .instances import counts_healthy
from .records import Deployment, Instance, Progress, Service
from .registries import credentials_for
from .settings import WorkerSettings
from .store import Store
from .store.base import Tx
from .store.crypto import has_sealed, require_keys
from .swarm import SwarmBackend, TaskView
from .swarm_spec import (
    BLOCK,
    SwarmPlan,
    max_per_node,
    placement,
    port_blocks_needed,
    refusals,
)

__all__ = ["SwarmBackends", "SwarmRun", "sync_instances", "refresh", "blocks_of"]

log = logging.getLogger(__name__)
ACTOR = "swarm"
_RUNNING_STATES = ("new", "pending", "assigned", "accepted", "preparing", "ready",
                   "starting", "running")
FAILED_UPDATE = ("paused", "rollback_started", "rollback_paused", "rollback_completed")


class SwarmBackends:
    """One :class:`SwarmBackend` per cluster record, built on first use."""

    def __init__(self, store: Store, settings: WorkerSettings) -> None:
        self.store, self.settings = store, settings
        self._backends: dict[str, SwarmBackend] = {}

    def get(self, cluster: str) -> SwarmBackend:
        """:raises ClusterNotFound:"""
        record = self.store.clusters.require(cluster)
        known = self._backends.get(cluster)
        if known is None or known.url != engine_url(str(record["url"])):
            known = SwarmBackend(record, timeout=self.settings.docker_timeout,
                                 tls_dir=self.settings.agent_tls_dir)
            self._backends[cluster] = known
        return known

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()


def blocks_of(store: Store, service: Service) -> list[tuple[int, int]]:
    """The (even, odd) port-block pairs a Swarm service holds, reserving them once."""
    need = port_blocks_needed(service["spec"])
    if not need:
        return []
    cluster: dict[str, Any] = dict(store.clusters.require(cluster_of(service)))
    low, high = cluster.get("port_range") or DEFAULT_SWARM_PORTS
    bases = store.clusters.reserve_blocks(cluster_of(service), service["name"], need,
                                          (int(low), int(high)), BLOCK)
    return [(bases[i], bases[i + 1]) for i in range(0, len(bases), 2)]


def _instance_id(service: str, view: TaskView) -> str:
    return f"{service}-{view.id[:10]}"


def _instance(service: Service, view: TaskView, old: Instance | None,
              deployment: str | None) -> Instance:
    """The instance record of a task (keeping what an earlier record knew)."""
    now = time.time()
    before: dict[str, Any] = dict(old or {})
    record = Instance(
        id=_instance_id(service["name"], view), service=service["name"],
        generation=view.generation, agent=f"{cluster_of(service)}/{view.node or '?'}",
        container=f"berth-{service['name']}.{view.slot}.{view.id}",
        container_id=view.container_id, ports=dict(view.ports),
        port_list=list(view.ports.values()), address=view.address, state=view.state,
        health=view.health, created_at=old["created_at"] if old else now,
        started_at=before.get("started_at") or (now if view.state == "running" else None),
        failures=0, error=view.error)
    healthy_at = before.get("healthy_at")
    if view.state == "running" and view.health in ("healthy", "none"):
        healthy_at = healthy_at or now
    record["healthy_at"] = healthy_at
    if deployment:
        record["deployment"] = deployment
    if service["spec"].get("cpus"):
        record["cpus"] = float(service["spec"]["cpus"])
    if service["spec"].get("mem"):
        record["mem"] = int(service["spec"]["mem"])
    return record


def _same(a: Instance, b: Instance) -> bool:
    keys = ("agent", "state", "health", "container_id", "ports", "address", "error")
    return all(a.get(k) == b.get(k) for k in keys)


def sync_instances(store: Store, service: Service, views: list[TaskView],
                   deployment: str | None = None) -> dict[str, int]:
    """Make the service's instance records the live tasks; events for what changed.

    Returns counts ``{"added", "changed", "removed"}``.
    """
    name = service["name"]
    wanted = {_instance_id(name, v): v for v in views}
    counts: dict[str, int] = {"added": 0, "changed": 0, "removed": 0}
    # most rounds change nothing: one read of every record decides that, without the
    # transaction's read of each record
    known = {i["id"]: i for i in store.instances.for_service(name)}
    if set(known) == set(wanted) and all(
            _same(known[i], _instance(service, v, known[i], deployment))
            for i, v in wanted.items()):
        return counts

    def change(tx: Tx) -> dict[str, int]:
        counts.update(added=0, changed=0, removed=0)
        ids = tx.members(store.state.key("service", name, "instances"))
        current: dict[str, Instance | None] = {i: store.instances.read(tx, i) for i in ids}
        for instance_id, view in wanted.items():
            old = current.get(instance_id)
            record = _instance(service, view, old, deployment)
            if old is not None and _same(old, record):
                continue
            store.instances.stage_put(tx, record)
            counts["changed" if old else "added"] += 1
            kind = ("instance.started" if record["state"] == "running"
                    else f"instance.{record['state']}")
            if old is None or old.get("state") != record["state"]:
                tx.event(kind, instance_id, ACTOR, {
                    "service": name, "agent": record["agent"], "task": view.id,
                    "generation": view.generation})
        for instance_id, old in current.items():
            if instance_id in wanted:
                continue
            if old is not None:
                store.instances.stage_remove(tx, old)
                tx.event("instance.removed", instance_id, ACTOR,
                         {"service": name, "agent": old.get("agent")})
            else:
                tx.call("srem", store.state.key("service", name, "instances"), instance_id)
            counts["removed"] += 1
        return dict(counts)

    return store.state.transact(change)


class SwarmRun:
    """One run of one deployment of a Swarm service (the counterpart of ``_Run``)."""

    def __init__(self, store: Store, settings: WorkerSettings, backends: SwarmBackends,
                 deployment: Deployment, *, sleep: Callable[[float], None] = time.sleep,
                 timeout: float = 900) -> None:
        self.store, self.settings, self.backends = store, settings, backends
        self.id, self.kind = deployment["id"], deployment["kind"]
        self.name = deployment["service"]
        self.sleep, self.timeout = sleep, timeout

    def execute(self) -> Deployment | None:
        """Drive the deployment to its end; returns its final record."""
        try:
            self._update(status="running", step=("start", f"{self.kind} running on Swarm"))
            service = self.store.services.require(self.name)
            backend = self.backends.get(cluster_of(service))
            if self.kind == "uninstall":
                self._uninstall(backend)
            else:
                self._deploy(backend, service)
        except _Cancelled:
            pass
        except (SpecRefused, ImageUnavailable) as error:
            self._finish("failed", error.message, details=error.details)
        except AgentError:
            raise   # passing trouble: the task retries, the reconciler re-drives
        except Exception as error:  # noqa: BLE001 - recorded as the deployment's failure
            log.exception("deployment %s stopped", self.id)
            self._finish("failed", f"internal error: {error}")
        return self.store.deployments.get(self.id)

    def _update(self, *, step: tuple[str, str] | None = None, status: str | None = None,
                progress: Progress | None = None) -> Deployment:
        written = deployments.advance(self.store, self.id, step=step, status=status,
                                      progress=progress)
        if written is None:
            raise _Cancelled(self.id)
        return written

    def _finish(self, status: str, error: str | None = None, *,
                details: list[dict[str, str]] | None = None) -> None:
        outcome = "running" if status == "succeeded" else (
            "failed" if self.kind == "install" else "degraded")
        deployments.finish(self.store, self.id, status, error=error, details=details,
                           service_status=outcome)

    # uninstall -----------------------------------------------------------------------
    def _uninstall(self, backend: SwarmBackend) -> None:
        """Stop every task, then remove the Swarm service and wait until its tasks are
        gone (the nodes then remove their containers)."""
        deadline = time.monotonic() + self.timeout
        if backend.stop_tasks(self.name):
            self._update(step=("stop", "scaled the Swarm service to no task"))
            while any(t.get("Status", {}).get("State") in _RUNNING_STATES
                      for t in backend.tasks(self.name)) and time.monotonic() < deadline:
                self.sleep(self.settings.health_poll)
        removed = backend.remove_service(self.name)
        self._update(step=("remove", "Swarm service removed" if removed
                           else "no Swarm service was there"))
        while backend.tasks(self.name) and time.monotonic() < deadline:
            self.sleep(self.settings.health_poll)
        service = self.store.services.get(self.name)
        if service is not None:
            sync_instances(self.store, service, [])
            self.store.clusters.release_blocks(cluster_of(service), self.name)
        self._update(progress=Progress(total=0, placed=0, started=0, healthy=0),
                     step=("remove", "every task is gone"))

        def change(tx: Tx) -> None:
            deployment = self.store.deployments.read(tx, self.id)
            if deployment is not None:
                deployments.stage_finish(self.store, tx, deployment, "succeeded",
                                         message="uninstalled")
            self.store.services.stage_remove(tx, self.name)
            tx.event("service.deleted", self.name,
                     deployment["actor"] if deployment else "", {})

        self.store.state.transact(change)

    # deploy --------------------------------------------------------------------------
    def _opened(self, spec: dict[str, Any]) -> dict[str, Any]:
        if not has_sealed(spec):
            return spec
        keys = require_keys(self.settings.data_keys(), "open the secret values this "
                                                       "service's tasks need")
        return cast(dict[str, Any], keys.open_tree(spec))

    def _deploy(self, backend: SwarmBackend, service: Service) -> None:
        spec = service["spec"]
        problems = refusals(spec)
        if problems:
            raise SpecRefused("the Swarm cannot run this spec as Berth means it",
                              details=problems)
        generation, total = int(service["generation"]), int(service["instances"])
        blocks = blocks_of(self.store, service)
        limit = max_per_node(spec)
        room = None if limit is None else (
            limit * backend.eligible_nodes(placement(spec).get("constraints") or ()) - total)
        plan = SwarmPlan(service=self.name, generation=generation, replicas=total,
                         cluster=cluster_of(service), blocks=tuple(blocks),
                         ingress=backend.has_ingress(), room=room)
        if room is not None and room < 1 and self.kind not in ("install", "scale"):
            self._update(step=("plan", f"at most {limit} tasks per node leave no room to "
                                       f"start new tasks first: stopping first, one at a "
                                       f"time"))
        before = _started_at(backend, self.name)
        backend.deploy_generation(
            self.name, self._opened(dict(spec)), plan, restart=self.kind == "restart",
            auth_config=credentials_for(self.store, self.settings.data_keys(),
                                        str(spec["image"])))
        self._update(step=("update" if self.kind != "install" else "create",
                           f"Swarm service {self.kind}: generation {generation}, "
                           f"{total} replicas"))
        self._watch(backend, service, blocks, before)

    def _watch(self, backend: SwarmBackend, service: Service,
               blocks: list[tuple[int, int]], before: str | None) -> None:
        """Watch the tasks until the deployment's end. ``before`` is when the Swarm's
        last update started before this deployment: an update status that old (a
        scale starts none) says nothing about this one."""
        generation, total = int(service["generation"]), int(service["instances"])
        deadline = time.monotonic() + self.timeout
        last: Progress | None = None
        while True:
            current = self.store.services.get(self.name)
            if current is None or current.get("deployment") != self.id:
                raise _Cancelled(self.id)
            every = backend.views(self.name, service["spec"], blocks, nodes_age=2.0)
            views = [v for v in every if v.live]
            sync_instances(self.store, service, views, self.id)
            mine = [v for v in views if v.generation == generation]
            ready = [v for v in mine if v.state == "running"
                     and v.health in ("healthy", "none")]
            progress = Progress(total=total, placed=len(mine),
                                started=sum(1 for v in mine if v.container_id),
                                healthy=len(ready))
            if progress != last:
                self._update(progress=progress)
                last = progress
            # a new service has had no update; a scale starts none either
            update = {} if before is None else backend.update_status(self.name)
            if before is not None and update.get("StartedAt") == before:
                update = {}
            state = str(update.get("State") or "")
            if state in FAILED_UPDATE:
                self._finish("failed", f"the Swarm's update ended {state}: "
                                       f"{update.get('Message') or ''}".strip())
                return
            others = [v for v in views if v.generation != generation]
            if len(ready) == total and len(mine) == total and not others \
                    and state not in ("updating", "rollback_started"):
                self._finish("succeeded")
                return
            if self.kind == "install":
                failed = [v for v in every
                          if v.generation == generation and v.state == "failed"]
                if len(failed) >= self.settings.max_start_attempts:
                    self._finish("failed", f"{len(failed)} tasks failed to start; last: "
                                           f"{failed[-1].error or 'unknown'}")
                    return
            if time.monotonic() > deadline:
                self._finish("failed", f"not converged within {self.timeout:.0f}s")
                return
            self.sleep(self.settings.health_poll)


def _started_at(backend: SwarmBackend, service: str) -> str | None:
    """When the Swarm's last update of the service started (None: no service yet)."""
    try:
        return str(backend.update_status(service).get("StartedAt") or "")
    except ContainerNotFound:
        return None


class _Cancelled(Exception):
    """The deployment was cancelled or superseded while it ran."""


def refresh(store: Store, backends: SwarmBackends) -> dict[str, int]:
    """Instance records of every idle Swarm service from its live tasks, and its status.

    Returns the number of changed records per service (only services that changed).
    """
    changed: dict[str, int] = {}
    for service in store.services.list():
        if not is_swarm(service) or service.get("status") == "deleting":
            continue
        active = service.get("deployment")
        if active and deployments.is_active(store.deployments.get(active)):
            continue
        try:
            backend = backends.get(cluster_of(service))
            views = backend.observe(service["name"], service["spec"],
                                    blocks_of(store, service))
        except Exception as error:  # noqa: BLE001 - an unreachable manager: the next pass
            log.warning("swarm refresh of %s: %s", service["name"], error)
            continue
        counts = sync_instances(store, service, views)
        if any(counts.values()):
            changed[service["name"]] = sum(counts.values())
        _settle(store, service)
    return changed


def _settle(store: Store, service: Service) -> None:
    """``running`` when every wanted task is healthy, else ``degraded``."""
    if service.get("status") in ("failed", "deploying"):
        return
    healthy = sum(1 for i in store.instances.for_service(service["name"])
                  if counts_healthy(i))
    status = "running" if healthy >= int(service["instances"]) else "degraded"
    if status == service.get("status"):
        return

    def settle(doc: Service) -> Service | None:
        if doc.get("deployment") is not None:
            return None
        return cast(Service, {**doc, "status": status})

    store.services.update(service["name"], settle, event="service.updated", actor=ACTOR)


def swarm_service(service: Mapping[str, Any] | None) -> bool:
    """Whether a service record runs on a Swarm (for the deployer's and reconciler's
    dispatch)."""
    return service is not None and is_swarm(service)
