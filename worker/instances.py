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
import os
import secrets
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, cast

from catalog.errors import PlacementError
from catalog.placement import PlacementRequest, place

from . import deployments, health
from .agents import AgentPool, agent_view, release, reserve
from .errors import AgentError, ImageUnavailable, WorkerError
from .host_paths import check_host_folders, host_folders, policy_refusal
from .links import LinkUnresolved, open_links
from .pulls import PullStatus
from .records import Agent, Instance, InstanceVolume, Service, counts_healthy
from .registries import credentials_for
from .settings import WorkerSettings
from .store import RedisState, Store
from .store.base import Tx
from .store.crypto import DataKeyError, has_sealed, require_keys

__all__ = ["InstanceRunner", "ServiceLock", "alive", "counts_healthy", "removal_order",
           "container_labels", "bound_volumes", "wait_reason", "waiting_for", "revivable"]

log = logging.getLogger(__name__)

PullReport = Callable[[str, str, PullStatus], None]   # (agent id, image, status)

DEAD = ("failed", "lost", "unhealthy", "stopping", "stopped")
# take the lock with the next fencing generation: ``<generation>:<random>``
_ACQUIRE = """if redis.call('exists', KEYS[1]) == 1 then return false end
local generation = redis.call('incr', KEYS[2])
local token = generation .. ':' .. ARGV[1]
redis.call('set', KEYS[1], token, 'PX', ARGV[2])
return token"""
_RENEW = """if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"""
_RELEASE = """if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1]) else return 0 end"""


def alive(instance: Instance) -> bool:
    """Whether the instance still counts (not failed, lost, unhealthy or going)."""
    return instance.get("state") not in DEAD


def removal_order(instances: Iterable[Instance]) -> list[Instance]:
    """Which instances go first when scaling down: unhealthy first, then newest first."""
    return sorted(instances, key=lambda i: (counts_healthy(i), -float(i.get("created_at") or 0),
                                            i["id"]))


def bound_volumes(spec: Mapping[str, Any]) -> list[str]:
    """The named volumes of a spec that bind its instances to their agent.

    A volume the package declares ``replaceable`` (a cache) is left out: an instance
    whose only named volumes are replaceable may move with empty ones, as before.
    """
    return [str(v["name"]) for v in spec.get("volumes") or []
            if v.get("name") and not v.get("replaceable")]


def wait_reason(instance: Instance, agent_id: str) -> str:
    """What a resident instance waits for: "waiting for agent-2 (holds volume web-data)"."""
    names = [v["name"] for v in instance.get("volumes") or []]
    noun = "volume" if len(names) == 1 else "volumes"
    return f"waiting for {agent_id} (holds {noun} {', '.join(names)})"


def waiting_for(instance: Instance, agents: Mapping[str, Agent]) -> str | None:
    """Why a resident instance waits for its agent, or None when it does not wait.

    It waits when it is ``lost`` and the agent holding its volumes exists but does not
    answer; such an instance is neither replaced elsewhere nor forgotten. An agent
    removed from the cluster is not waited for (its volumes went with it).
    """
    if not instance.get("resident") or instance.get("state") != "lost":
        return None
    agent = agents.get(instance["agent"])
    if agent is None or agent.get("state") != "unreachable":
        return None
    return wait_reason(instance, agent["id"])


def revivable(instance: Instance, agents: Mapping[str, Agent]) -> bool:
    """Whether a lost resident instance can run again on its own agent: it answers again
    (and is not being drained, which moves the instance instead)."""
    agent = agents.get(instance["agent"])
    return (bool(instance.get("resident")) and instance.get("state") == "lost"
            and agent is not None and agent.get("state") == "up")


def container_labels(instance: Instance) -> dict[str, str]:
    return {"berth.service": instance["service"], "berth.instance": instance["id"],
            "berth.generation": str(instance["generation"])}


class ServiceLock:
    """A fenced Redis lock on one service with a TTL, renewed by a thread while held.

    Taking the lock draws the next generation of the service's fence counter
    (``<prefix>lock:service:<name>:fence``); the token ``<generation>:<random>`` is
    unique and names the holder (``<generation>:<host>.<pid>.<random>``). A deployer
    writes through :meth:`fenced` (``Store.fenced``), so the store
    refuses its writes once the key holds another token — after the lock expired in a
    stall, or was lost in a failover and taken by another deployer — and the old holder
    stops (``LockLost``) instead of working on the service beside the new one.
    """

    def __init__(self, state: RedisState, service: str, ttl: float) -> None:
        self.redis = state.redis
        self.key = state.key("lock", "service", service)
        self.fence_key = self.key + ":fence"
        self.ttl_ms = max(1000, int(ttl * 1000))
        # who holds it, for admins reading the key: host, process, then a random part
        self.nonce = f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:16]}"
        self.token = ""
        self.lost = threading.Event()

    @staticmethod
    def held(state: RedisState, service: str) -> bool:
        return bool(state.redis.exists(state.key("lock", "service", service)))

    @property
    def generation(self) -> int:
        """The fencing generation of this holder (0 before :meth:`acquire`)."""
        return int(self.token.split(":", 1)[0]) if self.token else 0

    def acquire(self) -> bool:
        """Take the lock unless someone holds it; draws a new fencing generation."""
        token = self.redis.eval(_ACQUIRE, 2, self.key, self.fence_key, self.nonce,
                                self.ttl_ms)
        self.token = str(token) if token else ""
        return bool(self.token)

    def fenced(self, store: Store) -> Store:
        """``store`` as this holder writes through it (refused once the lock is lost)."""
        return store.fenced(self.key, self.token)

    def renew(self) -> bool:
        """Extend the TTL while the lock is still ours; a False marks it :attr:`lost`."""
        kept = bool(self.redis.eval(_RENEW, 1, self.key, self.token, self.ttl_ms))
        if not kept:
            self.lost.set()
        return kept

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


def health_budget(service: Service) -> float:
    """Seconds a started instance may take to become healthy: its health check's grace
    period, then as many rounds (interval and timeout) as failures it allows, plus 30."""
    hc = service["spec"].get("healthCheck") or {}
    rounds = (float(hc.get("intervalSeconds", 10)) + float(hc.get("timeoutSeconds", 5))) * (
        int(hc.get("maxConsecutiveFailures", 3)) + 1)
    return float(hc.get("gracePeriodSeconds", 60)) + rounds + 30


class InstanceRunner:
    """Place, start, observe and stop instances of services."""

    def __init__(self, store: Store, pool: AgentPool, settings: WorkerSettings) -> None:
        self.store = store
        self.pool = pool
        self.settings = settings
        self._checked: dict[str, float] = {}

    # place ----------------------------------------------------------------------------
    def place(self, service: Service, current: list[Instance], count: int,
              deployment_id: str, prefer: Iterable[str] = (),
              only: Iterable[str] | None = None) -> list[Instance]:
        """Place ``count`` new instances and reserve their resources, atomically.

        A spec with named volumes goes back to the agents in ``prefer`` (where its
        volumes are) when they have room, before any other agent. ``only`` keeps
        placement to those agents (a move to a chosen agent).

        Unless all its named volumes are ``shared``, such a spec gets at most one
        instance per agent (:func:`catalog.placement.exclusive_volumes`): besides
        ``current``, every other instance record of the service (an older generation,
        one being stopped) keeps new instances off its agent, since its container may
        still mount the volumes there.

        :raises PlacementError: nothing is reserved.
        """
        spec = service["spec"]
        request = PlacementRequest.from_spec(spec, count, service=service["name"])
        preferred = set(prefer) if any(v.get("name") for v in spec.get("volumes") or []) else set()

        def change(tx: Tx) -> list[Instance]:
            # every agent in one MGET, unwatched; only the chosen ones are confirmed
            # (watched and checked unchanged) before their reservations are written
            agents: dict[str, Agent] = {a["id"]: a for a in self.store.agents.list()}
            existing = [(i["agent"], agents[i["agent"]].get("attributes") or {})
                        for i in current if i["agent"] in agents]
            mounted = self._mounted(service["name"], current) if request.exclusive else set()
            allowed = set(only) if only is not None else None
            views = [agent_view(a) for a in agents.values()
                     if allowed is None or a["id"] in allowed]
            placements = None
            if preferred:
                try:
                    placements = place(request, [v for v in views if v.id in preferred],
                                       existing, mounted)
                except PlacementError:
                    placements = None
            if placements is None:
                placements = place(request, views, existing, mounted)
            for agent_id in {p.agent_id for p in placements}:
                agents[agent_id] = self.store.agents.confirm(tx, agents[agent_id])
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

    def _mounted(self, name: str, current: Iterable[Instance]) -> set[str]:
        """The agents of the service's instance records outside ``current``."""
        counted = {i["id"] for i in current}
        return {i["agent"] for i in self.store.instances.for_service(name)
                if i["id"] not in counted}

    def _new_instance(self, tx: Tx, service: Service, agent: Agent,
                      ports: tuple[int, ...], deployment_id: str) -> Instance:
        while True:
            instance_id = f"{service['name']}-{secrets.token_hex(3)}"
            if self.store.instances.read(tx, instance_id) is None:
                break
        spec = service["spec"]
        names = [p.get("name") or f"port{n}" for n, p in enumerate(spec.get("ports") or [])]
        volumes = [InstanceVolume(name=v, agent=agent["id"]) for v in bound_volumes(spec)]
        return Instance(
            id=instance_id, service=service["name"], generation=int(service["generation"]),
            agent=agent["id"], container=f"berth-{instance_id}", container_id=None,
            ports=dict(zip(names, ports, strict=True)), port_list=list(ports),
            address=agent.get("address", ""), state="placed", health="unknown",
            created_at=time.time(), started_at=None, healthy_at=None, failures=0, error=None,
            deployment=deployment_id, cpus=float(spec.get("cpus") or 0),
            mem=int(spec.get("mem") or 0), resident=bool(volumes), volumes=volumes)

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
        roots = self.settings.host_path_roots
        refusal = policy_refusal(spec, roots=roots, readonly=self.settings.readonly_host_paths)
        if refusal:
            return [self.fail(i, f"refused: {refusal}") for i in batch]
        try:
            self._ensure_on(agent, spec, agents)
        except AgentError as error:
            return [self.fail(i, error.message) for i in batch]
        except DataKeyError as error:
            return [self.fail(i, f"{error.message} ({error.hint})") for i in batch]
        try:
            opened = self._opened(spec)
        except DataKeyError as error:
            return [self.fail(i, f"{error.message} ({error.hint})") for i in batch]
        try:
            # the linked services' endpoints as they are now (worker/links.py)
            opened, linked = open_links(self.store, opened, self.settings.data_keys())
        except LinkUnresolved as error:
            return [self.fail(i, f"refused: {error.message}") for i in batch]
        except DataKeyError as error:
            return [self.fail(i, f"{error.message} ({error.hint})") for i in batch]
        errors = []
        for instance in batch:
            try:
                # on the agent, right before every create or restart: a host folder
                # may have become a link since the spec was checked
                check_host_folders(docker, spec, roots=roots, agent_name=agent["id"],
                                   image=self.settings.toolbox_image)
                self.store.state.check_fence()   # a deployer that lost its lock stops here
                container_id = docker.run_instance(
                    instance["container"], opened, labels=container_labels(instance),
                    env={"BERTH_SERVICE": instance["service"], "BERTH_INSTANCE": instance["id"]},
                    ports=instance["port_list"], address=instance["address"])
            except AgentError as error:
                errors.append(self.fail(instance, error.message))
                continue
            checked = bool(spec.get("healthCheck"))
            recorded = {"links": linked} if linked else {}
            self._set(instance["id"], container_id=container_id, started_at=time.time(),
                      state="starting" if checked else "running",
                      health="unknown" if checked else "none", **recorded)
            self.store.state.publish_event("instance.started", instance["id"], "worker",
                                           {"service": instance["service"],
                                            "agent": instance["agent"]})
        return errors

    # images ---------------------------------------------------------------------------
    def ensure_images(self, service: Service, instances: list[Instance],
                      progress: PullReport | None = None) -> None:
        """Make sure the spec's images are on every agent the instances are placed on,
        one thread per agent; ``progress(agent_id, image, status)`` hears how pulls go.

        :raises ImageUnavailable: an agent could get an image from no source (the
            first such error; its class says why: unauthorized, not found, unreachable).
        :raises DataKeyError: a registry password cannot be opened.
        """
        agents = {a["id"]: a for a in self.store.agents.list()}
        targets = sorted({i["agent"] for i in instances if i["agent"] in agents})
        if not targets:
            return
        with ThreadPoolExecutor(max_workers=len(targets)) as threads:
            jobs = [threads.submit(self._ensure_on, agents[a], service["spec"], agents,
                                   progress) for a in targets]
            failures: list[WorkerError] = []
            for job in jobs:
                try:
                    job.result()
                except (ImageUnavailable, DataKeyError) as error:
                    failures.append(error)
                except AgentError:
                    continue   # the agent's trouble: starting there fails and is retried
        if failures:
            raise failures[0]

    def _ensure_on(self, agent: Agent, spec: Mapping[str, Any], agents: Mapping[str, Agent],
                   progress: PullReport | None = None) -> None:
        """Make sure one agent has the spec's image (and the toolbox when the spec uses
        host folders): pulled with the registry's credentials, else copied from a peer
        (unless ``BERTH_IMAGE_PEER_COPY`` is off), else from ``BERTH_IMAGE_DIR``.

        :raises AgentError: (``ImageUnavailable`` …) as ``DockerAgent.ensure_image``.
        :raises DataKeyError: a registry password cannot be opened.
        """
        docker = self.pool.get(agent)
        peers = [self.pool.get(a) for a in agents.values()
                 if a["id"] != agent["id"] and a.get("state") != "unreachable"
                 ] if self.settings.image_peer_copy else []
        images = [spec["image"]]
        if any(host_folders(spec, self.settings.host_path_roots)):
            images.append(self.settings.toolbox_image)
        keys = self.settings.data_keys()
        for image in images:
            told = (lambda status, image=image: progress(agent["id"], image, status)
                    ) if progress is not None else None
            docker.ensure_image(image, peers=peers, tarball_dir=self.settings.image_dir or None,
                                auth_config=credentials_for(self.store, keys, image),
                                progress=told)

    def revive(self, service: Service, instances: list[Instance]) -> list[str]:
        """Run lost resident instances again on their own agents, on their own volumes.

        The container is reused when it is still there (started when stopped) or
        created again under the same name; returns the errors met.
        """
        revived = []
        for instance in instances:
            doc = self._set(instance["id"], state="placed", health="unknown", failures=0,
                            error=None)
            if doc is None:
                continue
            revived.append(doc)
            self.store.state.publish_event("instance.revived", instance["id"], "worker",
                                           {"service": instance["service"],
                                            "agent": instance["agent"]})
        return self.start(service, revived) if revived else []

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
                *, interval: float | None = None, poll: float | None = None) -> None:
        """Check containers and health of ``instances``; record what changed.

        A healthy instance is checked again ``interval`` seconds after its last check
        (every time when None); one not healthy yet every ``poll`` seconds
        (``BERTH_HEALTH_POLL`` when None).
        """
        running = self.fail_stopped(service, instances)
        hc = service["spec"].get("healthCheck")
        due = [i for i in running if hc and self._due(i, interval, poll)]
        if hc and due:
            self._check_health(hc, due)

    def wait_healthy(self, service: Service, instance_id: str, *,
                     waiting: Callable[[Instance], bool] = alive) -> str | None:
        """Check one just started instance until it is healthy; None then, else why not.

        The first check comes at once and what it finds is read at once; within a grace
        period the next ones 50 ms, then 100 ms later (a program's listener is often up
        by then); then every ``BERTH_HEALTH_POLL``. It gives up when the instance is gone, no longer
        ``waiting`` (its container stopped, say), or not healthy within the limits of its
        health check (:func:`health_budget`).
        """
        budget = health_budget(service)
        deadline = time.monotonic() + budget
        # pauses before the first checks, then BERTH_HEALTH_POLL; the quick ones only
        # while failed checks do not count (a grace period), lest they add up in 0.15 s
        grace = float((service["spec"].get("healthCheck") or {}).get("gracePeriodSeconds", 30))
        pauses = [0.0, 0.05, 0.1] if grace > 0 else [0.0]
        while True:
            current = self.store.instances.get(instance_id)
            if current is None or not waiting(current):
                return (current.get("error") if current else None) or "its container stopped"
            if counts_healthy(current):
                return None
            if time.monotonic() > deadline:
                return f"{instance_id} was not healthy within {budget:g} s"
            pause = min(pauses.pop(0), self.settings.health_poll) if pauses else \
                self.settings.health_poll
            time.sleep(pause)
            self.observe(service, [current], poll=pause)

    def fail_stopped(self, service: Service, instances: list[Instance]) -> list[Instance]:
        """Mark failed those of ``instances`` whose container stopped or went; returns the
        ones whose container runs (instances not started yet, or on an agent that did
        not answer, are in neither)."""
        if not instances:
            return []
        containers = self._containers(service["name"], {i["agent"] for i in instances})
        running = []
        for instance in instances:
            if not instance.get("container_id") or instance["agent"] not in containers:
                continue  # not started yet, or its agent did not answer
            info = containers[instance["agent"]].get(instance["container"])
            if info is None or not info.running:
                status = info.status if info else "removed"
                self.fail(instance, f"container stopped ({status})")
            else:
                running.append(instance)
        return running

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

    def _due(self, instance: Instance, interval: float | None,
             poll: float | None = None) -> bool:
        if instance.get("health") != "healthy":
            every: float | None = self.settings.health_poll if poll is None else poll
        else:
            every = interval
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
