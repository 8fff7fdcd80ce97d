"""Instance operations shared by the deployer and the reconciler.

``InstanceRunner`` places and reserves new instances (one transaction), starts their
containers (one thread per agent), looks at them (container state and health checks,
concurrently) and stops them (freeing what they reserved). ``ServiceLock`` keeps two
deployers off the same service. Instance states::

    placed → starting → running ⇄ unhealthy        (healthy: state running)
       └────────┴──────────┴→ failed | lost → removed   stopping → removed
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, cast

from catalog.errors import PlacementError
from catalog.placement import PlacementRequest, place

from . import deployments, health
from .agents import AgentPool, agent_view, release, reserve
from .errors import AgentError
from .host_paths import check_host_folders, host_folders, policy_refusal
from .records import Agent, Instance, Service
from .settings import WorkerSettings
from .store import RedisState, Store
from .store.base import Tx
from .store.crypto import DataKeyError, has_sealed, require_keys

__all__ = ["InstanceRunner", "ServiceLock", "alive", "counts_healthy", "removal_order",
           "container_labels"]

log = logging.getLogger(__name__)

DEAD = ("failed", "lost", "unhealthy", "stopping", "stopped")
_RENEW = """if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"""
_RELEASE = """if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1]) else return 0 end"""


def alive(instance: Instance) -> bool:
    """Whether the instance still counts (not failed, lost, unhealthy or going)."""
    return instance.get("state") not in DEAD


def counts_healthy(instance: Instance) -> bool:
    """Running and healthy (or without a health check): it serves."""
    return instance.get("state") == "running" and instance.get("health") in ("healthy", "none")


def removal_order(instances: Iterable[Instance]) -> list[Instance]:
    """Which instances go first when scaling down: unhealthy first, then newest first."""
    return sorted(instances, key=lambda i: (counts_healthy(i), -float(i.get("created_at") or 0),
                                            i["id"]))


def container_labels(instance: Instance) -> dict[str, str]:
    return {"berth.service": instance["service"], "berth.instance": instance["id"],
            "berth.generation": str(instance["generation"])}


class ServiceLock:
    """A Redis lock on one service with a TTL, renewed by a thread while held."""

    def __init__(self, state: RedisState, service: str, ttl: float) -> None:
        self.redis = state.redis
        self.key = state.key("lock", "service", service)
        self.ttl_ms = max(1000, int(ttl * 1000))
        self.token = uuid.uuid4().hex

    @staticmethod
    def held(state: RedisState, service: str) -> bool:
        return bool(state.redis.exists(state.key("lock", "service", service)))

    def acquire(self) -> bool:
        return bool(self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        return bool(self.redis.eval(_RENEW, 1, self.key, self.token, self.ttl_ms))

    def release(self) -> None:
        try:
            self.redis.eval(_RELEASE, 1, self.key, self.token)
        except Exception:  # noqa: BLE001 - it expires by itself
            log.warning("could not release %s", self.key)

    @contextmanager
    def kept(self) -> Iterator[None]:
        """Renew the lock every third of its TTL until the block ends."""
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self.ttl_ms / 3000):
                try:
                    self.renew()
                except Exception:  # noqa: BLE001 - Redis away: try again next time
                    log.warning("could not renew %s", self.key)

        thread = threading.Thread(target=renew, name="berth-lock", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(5)


class InstanceRunner:
    """Place, start, observe and stop instances of services."""

    def __init__(self, store: Store, pool: AgentPool, settings: WorkerSettings) -> None:
        self.store = store
        self.pool = pool
        self.settings = settings
        self._checked: dict[str, float] = {}

    # place ----------------------------------------------------------------------------
    def place(self, service: Service, current: list[Instance], count: int,
              deployment_id: str, prefer: Iterable[str] = ()) -> list[Instance]:
        """Place ``count`` new instances and reserve their resources, atomically.

        A spec with named volumes goes back to the agents in ``prefer`` (where its
        volumes are) when they have room, before any other agent.

        :raises PlacementError: nothing is reserved.
        """
        spec = service["spec"]
        request = PlacementRequest.from_spec(spec, count)
        preferred = set(prefer) if any(v.get("name") for v in spec.get("volumes") or []) else set()

        def change(tx: Tx) -> list[Instance]:
            fetched = {i: self.store.agents.read(tx, i) for i in self.store.agents.ids()}
            agents: dict[str, Agent] = {i: a for i, a in fetched.items() if a}
            existing = [(i["agent"], agents[i["agent"]].get("attributes") or {})
                        for i in current if i["agent"] in agents]
            views = [agent_view(a) for a in agents.values()]
            placements = None
            if preferred:
                try:
                    placements = place(request, [v for v in views if v.id in preferred],
                                       existing)
                except PlacementError:
                    placements = None
            if placements is None:
                placements = place(request, views, existing)
            created = []
            for placement in placements:
                agent = agents[placement.agent_id]
                doc = self._new_instance(tx, service, agent, placement.ports, deployment_id)
                reserve(agent, doc["cpus"], doc["mem"], placement.ports)
                created.append(self.store.instances.stage_put(tx, doc))
            for agent_id in {p.agent_id for p in placements}:
                self.store.agents.stage_put(tx, agents[agent_id])
            tx.event("instances.placed", service["name"], "worker",
                     {"instances": [d["id"] for d in created]})
            return created

        return self.store.state.transact(change)

    def _new_instance(self, tx: Tx, service: Service, agent: Agent,
                      ports: tuple[int, ...], deployment_id: str) -> Instance:
        while True:
            instance_id = f"{service['name']}-{secrets.token_hex(3)}"
            if self.store.instances.read(tx, instance_id) is None:
                break
        spec = service["spec"]
        names = [p.get("name") or f"port{n}" for n, p in enumerate(spec.get("ports") or [])]
        return Instance(
            id=instance_id, service=service["name"], generation=int(service["generation"]),
            agent=agent["id"], container=f"berth-{instance_id}", container_id=None,
            ports=dict(zip(names, ports, strict=True)), port_list=list(ports),
            address=agent.get("address", ""), state="placed", health="unknown",
            created_at=time.time(), started_at=None, healthy_at=None, failures=0, error=None,
            deployment=deployment_id, cpus=float(spec.get("cpus") or 0),
            mem=int(spec.get("mem") or 0))

    # start ----------------------------------------------------------------------------
    def start(self, service: Service, instances: list[Instance]) -> list[str]:
        """Start the containers, one thread per agent; returns the errors met."""
        by_agent: dict[str, list[Instance]] = defaultdict(list)
        for instance in instances:
            by_agent[instance["agent"]].append(instance)
        agents = {a["id"]: a for a in self.store.agents.list()}
        with ThreadPoolExecutor(max_workers=max(1, len(by_agent))) as threads:
            jobs = [threads.submit(self._start_on, agents.get(agent_id), service, batch, agents)
                    for agent_id, batch in by_agent.items()]
            return [error for job in jobs for error in job.result()]

    def _start_on(self, agent: Agent | None, service: Service,
                  batch: list[Instance], agents: dict[str, Agent]) -> list[str]:
        if agent is None:
            return [self.fail(i, "its agent is gone") for i in batch]
        spec = service["spec"]
        docker = self.pool.get(agent)
        peers = [self.pool.get(a) for a in agents.values()
                 if a["id"] != agent["id"] and a.get("state") != "unreachable"]
        roots = self.settings.host_path_roots
        refusal = policy_refusal(spec, roots=roots, readonly=self.settings.readonly_host_paths)
        if refusal:
            return [self.fail(i, f"refused: {refusal}") for i in batch]
        images = [spec["image"]]
        if any(host_folders(spec, roots)):
            images.append(self.settings.toolbox_image)
        try:
            for image in images:
                docker.ensure_image(image, peers=peers,
                                    tarball_dir=self.settings.image_dir or None)
        except AgentError as error:
            return [self.fail(i, error.message) for i in batch]
        try:
            opened = self._opened(spec)
        except DataKeyError as error:
            return [self.fail(i, f"{error.message} ({error.hint})") for i in batch]
        errors = []
        for instance in batch:
            try:
                # on the agent, right before every create or restart: a host folder
                # may have become a link since the spec was checked
                check_host_folders(docker, spec, roots=roots, agent_name=agent["id"],
                                   image=self.settings.toolbox_image)
                container_id = docker.run_instance(
                    instance["container"], opened, labels=container_labels(instance),
                    env={"BERTH_SERVICE": instance["service"], "BERTH_INSTANCE": instance["id"]},
                    ports=instance["port_list"], address=instance["address"])
            except AgentError as error:
                errors.append(self.fail(instance, error.message))
                continue
            checked = bool(spec.get("healthCheck"))
            self._set(instance["id"], container_id=container_id, started_at=time.time(),
                      state="starting" if checked else "running",
                      health="unknown" if checked else "none")
            self.store.state.publish_event("instance.started", instance["id"], "worker",
                                           {"service": instance["service"],
                                            "agent": instance["agent"]})
        return errors

    def _opened(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The spec with its sealed secret values opened, for the container's env and
        command only: this copy lives in memory while the containers are created.

        :raises DataKeyError: without a data key, or with none that sealed them.
        """
        if not has_sealed(spec):
            return spec
        keys = require_keys(self.settings.data_keys(), "open the secret values this "
                                                       "service's containers need")
        opened: dict[str, Any] = keys.open_tree(spec)
        return opened

    def _set(self, instance_id: str, **changes: Any) -> Instance | None:
        """Update an instance unless it is already on its way out."""
        def apply(doc: Instance) -> Instance | None:
            if doc.get("state") in ("stopping", "stopped") and changes.get("state") != "stopped":
                return None
            return cast(Instance, {**doc, **changes})

        return self.store.instances.update(instance_id, apply)

    def fail(self, instance: Instance, reason: str, state: str = "failed") -> str:
        """Mark an instance failed (or lost) with the reason; returns the reason."""
        self._set(instance["id"], state=state, error=reason)
        self.store.state.publish_event(f"instance.{state}", instance["id"], "worker",
                                       {"service": instance["service"], "reason": reason})
        return reason

    # observe --------------------------------------------------------------------------
    def observe(self, service: Service, instances: list[Instance],
                *, interval: float | None = None) -> None:
        """Check containers and health of ``instances``; record what changed."""
        if not instances:
            return
        containers = self._containers(service["name"], {i["agent"] for i in instances})
        hc = service["spec"].get("healthCheck")
        due = []
        for instance in instances:
            if not instance.get("container_id") or instance["agent"] not in containers:
                continue  # not started yet, or its agent did not answer
            info = containers[instance["agent"]].get(instance["container"])
            if info is None or not info.running:
                status = info.status if info else "removed"
                self.fail(instance, f"container stopped ({status})")
            elif hc and self._due(instance, interval):
                due.append(instance)
        if hc and due:
            self._check_health(hc, due)

    def monitor(self, service: Service, instances: list[Instance], *,
                interval: float) -> None:
        """Health-check the running ``instances`` that are due (no container listing)."""
        hc = service["spec"].get("healthCheck")
        due = [i for i in instances if self._due(i, interval)]
        if hc and due:
            self._check_health(hc, due)

    def _containers(self, name: str, agent_ids: set[str]) -> dict[str, dict[str, Any]]:
        """Per reachable agent: the service's containers by name."""
        agents = {a["id"]: a for a in self.store.agents.list() if a["id"] in agent_ids}

        def listing(agent: dict[str, Any]) -> dict[str, Any] | None:
            try:
                found = self.pool.get(agent).list_instances({"berth.service": name})
            except AgentError:
                return None
            return {c.name: c for c in found}

        with ThreadPoolExecutor(max_workers=max(1, len(agents))) as threads:
            results = dict(zip(agents, threads.map(listing, agents.values()), strict=True))
        return {a: r for a, r in results.items() if r is not None}

    def _due(self, instance: Instance, interval: float | None) -> bool:
        every = self.settings.health_poll if instance.get("health") != "healthy" else interval
        last = self._checked.get(instance["id"], 0.0)
        return every is None or time.time() - last >= every

    def _check_health(self, hc: dict[str, Any], instances: list[Instance]) -> None:
        agents = {a["id"]: a for a in self.store.agents.list()}

        def one(instance: Instance) -> None:
            agent = agents.get(instance["agent"])
            docker = self.pool.get(agent) if agent else None
            ok = health.check(instance, instance.get("address", ""), hc, docker)
            self._record_health(instance, hc, ok)

        with ThreadPoolExecutor(max_workers=min(32, len(instances))) as threads:
            list(threads.map(one, instances))

    def _record_health(self, instance: Instance, hc: dict[str, Any], ok: bool) -> None:
        now = time.time()
        tracker = health.HealthTracker(
            hc, started_at=float(instance.get("started_at") or now),
            failures=int(instance.get("failures") or 0),
            status=str(instance.get("health")) if instance.get("health") in (
                "healthy", "unhealthy") else "unknown",
            startup_interval=self.settings.health_poll)
        before = (tracker.status, tracker.failures)
        status = tracker.record(ok, now)
        self._checked[instance["id"]] = now
        if (status, tracker.failures) == before:
            return
        changes: dict[str, Any] = {"health": status, "failures": tracker.failures}
        if status == "healthy":
            changes.update(state="running", healthy_at=instance.get("healthy_at") or now)
        elif status == "unhealthy":
            changes.update(state="unhealthy",
                           error=f"{tracker.failures} health checks failed in a row")
        if self._set(instance["id"], **changes) and status != before[0]:
            self.store.state.publish_event(f"instance.{status}", instance["id"], "worker",
                                           {"service": instance["service"]})

    # stop -----------------------------------------------------------------------------
    def stop(self, instances: list[Instance]) -> None:
        """Stop and remove the containers, free the reservations, delete the records."""
        if not instances:
            return
        for instance in instances:
            self._set(instance["id"], state="stopping")
        agents = {a["id"]: a for a in self.store.agents.list()}

        def remove(instance: Instance) -> None:
            agent = agents.get(instance["agent"])
            if agent is None or agent.get("state") == "unreachable":
                return  # beyond reach: the reconciler removes it as an orphan if it returns
            grace = self.settings.stop_timeout if alive_before_stop(instance) else None
            try:
                self.pool.get(agent).remove(instance.get("container_id") or
                                            instance["container"], stop_timeout=grace)
            except AgentError as error:
                log.warning("could not remove %s: %s", instance["container"], error.message)

        with ThreadPoolExecutor(max_workers=min(16, len(instances))) as threads:
            list(threads.map(remove, instances))
        self.forget(instances)

    def forget(self, instances: list[Instance]) -> None:
        """Delete instance records and give back their reservations, in one transaction."""
        def change(tx: Tx) -> None:
            touched: dict[str, Agent | None] = {}
            for instance in instances:
                if self.store.instances.read(tx, instance["id"]) is None:
                    continue
                agent_id = instance["agent"]
                if agent_id not in touched:
                    touched[agent_id] = self.store.agents.read(tx, agent_id)
                agent = touched[agent_id]
                if agent:
                    release(agent, instance)
                self.store.instances.stage_remove(tx, instance)
                tx.event("instance.removed", instance["id"], "worker",
                         {"service": instance["service"]})
            for agent in touched.values():
                if agent:
                    self.store.agents.stage_put(tx, agent)

        self.store.state.transact(change)
        for instance in instances:
            self._checked.pop(instance["id"], None)

    def sweep_service(self, name: str) -> int:
        """Remove every container of a service on every reachable agent; how many."""
        removed = 0
        for agent in self.store.agents.list():
            if agent.get("state") == "unreachable":
                continue
            docker = self.pool.get(agent)
            try:
                for info in docker.list_instances({"berth.service": name}):
                    removed += bool(docker.remove(info.id))
            except AgentError as error:
                log.warning("could not sweep %s on %s: %s", name, agent["id"], error.message)
        return removed

    def delete_service(self, name: str, deployment_id: str) -> None:
        """Forget a service and end its uninstall deployment, in one transaction."""
        def change(tx: Tx) -> None:
            deployment = self.store.deployments.read(tx, deployment_id)
            if deployment is not None:
                deployments.stage_finish(self.store, tx, deployment, "succeeded",
                                         message="uninstalled")
            self.store.services.stage_remove(tx, name)
            tx.event("service.deleted", name, deployment["actor"] if deployment else "", {})

        self.store.state.transact(change)

    def backoff_wait(self, failures: int) -> None:
        """Sleep before the next attempt after ``failures`` failed starts."""
        if failures > 0:
            time.sleep(min(self.settings.backoff_base * 2 ** (failures - 1),
                           self.settings.backoff_max))


def alive_before_stop(instance: Instance) -> bool:
    """Whether a stop deserves a grace period (a serving instance; dead ones are killed)."""
    return instance.get("state") in ("running", "starting", "placed")
