"""The deployer: drive one deployment from plan to done — ``Deployer(store, agents).run(id)``.

A deployment converges a service's instances on its desired state (generation ``G``,
``N`` instances), re-reading everything from the store on each round, so running it
again after a crash picks up where the last run stopped:

1. drop dead instances (failed, lost, on a vanished agent), freeing what they reserved;
2. scale down extras of generation ``G`` (unhealthy first, then newest first);
3. start new instances of ``G`` as far as ``upgradeStrategy.maximumOverCapacity``
   allows — placed and reserved in one transaction (all or nothing), images ensured on
   each agent (pulled with the registry's credentials, progress as ``pull <agent>``
   steps; an image no source has fails the deployment at once and frees what it
   reserved), containers created and started by one thread per agent;
4. stop old instances (another generation, or on a draining agent) as far as
   ``upgradeStrategy.minimumHealthCapacity`` allows, counting healthy instances; a
   *resident* one (bound to its named volumes) is moved instead, one at a time, with
   its data (:mod:`worker.move`): stopped, replaced on its own agent when it may stay
   there (an upgrade), else copied to another agent and started there (a drain, or an
   upgrade that no longer fits);
5. look at the new instances (container state, health check) and record progress;
6. done when ``N`` healthy instances of ``G`` run and nothing old is left.

A serving instance is drained before steps 2 and 4 stop it: it leaves the service's
endpoints (and so the proxies) ``BERTH_DRAIN_DELAY`` before its container is stopped
(``worker/endpoints.py``).

Only one deployer works on a service at a time (a Redis lock with a TTL, renewed while
it runs; a crashed worker's lock expires and the reconciler drives the deployment on).
The lock is fenced: a run writes through a store that refuses every write once the lock
holds another deployer's token (``LockLost``), so a deployer that lost its lock in a
failover or a stall stops at its next write instead of working beside the new holder.
Every instance record is written before its container is created, and containers have
deterministic names (``berth-<instance id>``), so a re-run reuses, never duplicates. A
placement failure ends the deployment ``failed`` with the reasons and reserves nothing.

A service on a Swarm cluster (``service["cluster"]``) is driven by
:class:`worker.swarm_deploy.SwarmRun` instead: the Swarm places and rolls its tasks.
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import nullcontext
from typing import cast

import redis

from catalog.errors import PlacementError, SpecRefused
from catalog.placement import exclusive_volumes
from catalog.spec import check_policy

from . import deployments
from .agents import AgentPool
from .backups import DataSteps
from .endpoints import drain
from .errors import AgentError, ImageUnavailable, LockLost, MoveRefused, NotDurable
from .instances import (
    InstanceRunner,
    ServiceLock,
    alive,
    bound_volumes,
    counts_healthy,
    removal_order,
    revivable,
    waiting_for,
)
from .move import MoveFailed, Mover, may_take_down
from .pulls import PullStatus
from .records import Agent, Deployment, Instance, Progress, Service
from .settings import WorkerSettings
from .store import Store
from .store.crypto import DataKeyError
from .swarm_deploy import SwarmBackends, SwarmRun, swarm_service
from .volumes import delete_service_volumes

__all__ = ["Deployer", "Cancelled"]

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """The deployment was cancelled or superseded while it ran."""


class Deployer:
    """Runs deployments; one instance per worker process is enough."""

    def __init__(self, store: Store, agents: AgentPool | None = None,
                 settings: WorkerSettings | None = None) -> None:
        self.store = store
        self.settings = settings or WorkerSettings()
        self.pool = agents or AgentPool(timeout=self.settings.docker_timeout,
                                        tls_dir=self.settings.agent_tls_dir)
        self.instances = InstanceRunner(store, self.pool, self.settings)
        self.swarms = SwarmBackends(store, self.settings)

    def run(self, deployment_id: str) -> Deployment | None:
        """Drive a deployment to its end; returns its final record.

        Returns at once (with the record as it is) when the deployment is finished or
        another deployer holds the service. When the run ends because a newer deployment
        of the service superseded it, that one is driven next (its own task may have
        found the service locked and left it).
        """
        result = None
        next_id: str | None = deployment_id
        while next_id:
            result, next_id = self._run_one(next_id)
        return result

    def _run_one(self, deployment_id: str) -> tuple[Deployment | None, str | None]:
        """Run one deployment; (its record, the id of a successor to drive or None)."""
        deployment = self.store.deployments.get(deployment_id)
        if deployment is None or not deployments.is_active(deployment):
            return deployment, None
        lock = ServiceLock(self.store.state, deployment["service"], self.settings.deploy_lock_ttl)
        if not lock.acquire():
            return deployment, None
        try:
            with lock.kept():
                if swarm_service(self.store.services.get(deployment["service"])):
                    result = SwarmRun(lock.fenced(self.store), self.settings, self.swarms,
                                      deployment).execute()
                else:
                    result = _Run(self, deployment, store=lock.fenced(self.store)).execute()
        finally:
            lock.release()
        service = self.store.services.get(deployment["service"])
        successor = service.get("deployment") if service else None
        if successor and successor != deployment_id:
            return result, successor
        return result, None

    def fail(self, deployment_id: str, message: str) -> None:
        """End a deployment as failed from outside its run (e.g. retries exhausted)."""
        deployment = self.store.deployments.get(deployment_id)
        if deployment is not None and deployments.is_active(deployment):
            if swarm_service(self.store.services.get(deployment["service"])):
                SwarmRun(self.store, self.settings, self.swarms, deployment)._finish(
                    "failed", message)
                return
            _Run(self, deployment)._finish("failed", message)


class _Run:
    """One run of one deployment."""

    def __init__(self, deployer: Deployer, deployment: Deployment, *,
                 store: Store | None = None) -> None:
        """``store``: the (fenced) store this run writes through; the deployer's own
        when not given (ending a deployment from outside a run)."""
        self.store = store or deployer.store
        self.settings = deployer.settings
        self.ops = (deployer.instances if store is None
                    else InstanceRunner(self.store, deployer.pool, deployer.settings))
        self.id = deployment["id"]
        self.kind = deployment["kind"]
        self.name = deployment["service"]
        self.failed_starts = int((deployment.get("progress") or {}).get("failed", 0))
        self.last_error = ""
        self.vacated: list[str] = []   # agents old instances left (their volumes stay there)
        # agents holding the data of failed resident instances: their replacements go
        # there and nowhere else (elsewhere they would start on empty volumes)
        self.bound: list[str] = []
        self.delete_data = bool(deployment.get("delete_data"))
        # a backup or restore first (worker/backups.py): a backup, an upgrade taking one,
        # a restore, a rollback with its data
        self.data_steps = bool(deployment.get("backup") or deployment.get("restore"))
        self.pool = deployer.pool

    # outcome ------------------------------------------------------------------------
    def execute(self) -> Deployment | None:
        try:
            self._update(status="running", step=("start", f"{self.kind} running"))
            if self.kind == "uninstall":
                self._uninstall()
            elif self.kind == "move":
                self._move()
            elif not (self.data_steps and DataSteps(self).execute()):
                self._converge()
        except Cancelled:
            pass
        except LockLost as error:
            log.warning("deployment %s: %s; another deployer goes on", self.id, error.message)
            return self.store.deployments.get(self.id)
        except (PlacementError, SpecRefused, MoveFailed, MoveRefused) as error:
            self._finish("failed", error.message, details=error.details)
        except Exception as error:  # noqa: BLE001 - recorded; the task decides on retries
            log.exception("deployment %s stopped", self.id)
            if isinstance(error, AgentError | NotDurable | redis.RedisError):
                raise  # passing trouble: the task retries, the reconciler re-drives
            self._finish("failed", f"internal error: {error}")
        return self.store.deployments.get(self.id)

    def _update(self, *, step: tuple[str, str] | None = None, status: str | None = None,
                progress: Progress | None = None) -> Deployment:
        """Record progress of the deployment.

        :raises Cancelled: when it is no longer active.
        """
        written = deployments.advance(self.store, self.id, step=step, status=status,
                                      progress=progress)
        if written is None:
            raise Cancelled(self.id)
        return written

    def _finish(self, status: str, error: str | None = None, *,
                details: list[dict[str, str]] | None = None) -> None:
        """End the deployment and settle the service's status, in one transaction."""
        deployments.finish(self.store, self.id, status, error=error, details=details,
                           service_status=self._service_status(status))

    def _service_status(self, outcome: str) -> str:
        if outcome == "succeeded":
            return "running"
        return "failed" if self.kind == "install" else "degraded"

    # uninstall ----------------------------------------------------------------------
    def _uninstall(self) -> None:
        instances = self.store.instances.for_service(self.name)
        self._update(step=("stop", f"stopping {len(instances)} instances"))
        self.ops.stop(instances)
        leftovers = self.ops.sweep_service(self.name)
        message = f"removed {len(instances)} instances" + (
            f" and {leftovers} stray containers" if leftovers else "")
        self._update(progress=Progress(total=0, placed=0, started=0, healthy=0),
                     step=("remove", message))
        if self.delete_data:
            self._delete_data()
        self.ops.delete_service(self.name, self.id)

    def _delete_data(self) -> None:
        """Remove the service's named volumes on every agent (its containers are gone)."""
        removed, kept = delete_service_volumes(self.store.agents.list(), self.pool,
                                               self.name)
        message = f"removed {len(removed)} volumes" + (
            f"; kept {', '.join(kept)} (agent away or volume in use)" if kept else "")
        self._update(step=("delete data", message))

    # move ---------------------------------------------------------------------------
    def _mover(self) -> Mover:
        return Mover(self.store, self.ops, self.settings,
                     lambda name, message: self._update(step=(name, message)))

    def _move(self) -> None:
        """Move one instance to another agent with its data (``berth move``).

        :raises MoveRefused, MoveFailed: recorded as the deployment's failure.
        """
        service = self.store.services.require(self.name)
        interrupted = self._mover().resume(service, self.id)
        if interrupted:
            self._finish("failed", interrupted)
            return
        request = dict(self.store.deployments.require(self.id).get("move") or {})
        if request.get("phase") == "done":
            self._finish("succeeded")
            return
        instance = self.store.instances.get(str(request.get("instance")))
        if instance is None or instance["service"] != self.name:
            raise MoveFailed(f"instance {request.get('instance')} of {self.name} is gone")
        successor = self._mover().move(service, instance, self.id,
                                       target=str(request.get("target")),
                                       accept_empty=bool(request.get("accept_empty")))
        self._update(progress=self._progress(), step=(
            "moved", f"{instance['id']} on {instance['agent']} is now {successor['id']} "
                     f"on {successor['agent']}"))
        self._finish("succeeded")

    def _move_resident(self, service: Service, instances: list[Instance],
                       agents: dict[str, Agent]) -> bool:
        """Move one resident instance that must leave (drain) or be replaced (upgrade)
        with its data; True when one moved or is waiting its turn (the round ends).

        One at a time, honouring ``minimumHealthCapacity`` (see :func:`may_take_down`).
        An upgrade of a spec whose named volumes allow one instance per agent
        (:func:`catalog.placement.exclusive_volumes`) replaces its old instances the same
        way, stopped before their successors start, so that no agent ever runs two
        containers on one volume.
        """
        generation = int(service["generation"])
        exclusive = bool(exclusive_volumes(service["spec"]))
        due = [i for i in instances if alive(i)
               and agents.get(i["agent"]) is not None
               and agents[i["agent"]].get("state") != "unreachable"
               and ((i.get("resident") and (i["generation"] != generation
                                            or not _usable_agent(agents[i["agent"]])))
                    or (exclusive and i["generation"] != generation))]
        if not due or not (bound_volumes(service["spec"]) or exclusive):
            return False
        strategy = service["spec"].get("upgradeStrategy") or {}
        victim = due[0]
        if not may_take_down(victim, instances, int(service["instances"]), strategy):
            self._watch(service, set())
            return True
        old = self._generation_service(service, int(victim["generation"]))
        draining = not _usable_agent(agents[victim["agent"]])
        # a drain moves one instance at a time off its agent, whatever the service
        lock = ServiceLock(self.store.state, f"move-from-{victim['agent']}",
                           self.settings.deploy_lock_ttl) if draining else None
        if lock is not None and not lock.acquire():
            self._watch(service, set())
            return True
        try:
            self._update(step=("move", f"{'draining' if draining else 'upgrade'}: moving "
                                       f"{victim['id']} from {victim['agent']} with its data"))
            with lock.kept() if lock is not None else nullcontext():
                self._mover().move(service, victim, self.id, old_service=old)
        finally:
            if lock is not None:
                lock.release()
        self._update(progress=self._progress())
        return True

    def _generation_service(self, service: Service, generation: int) -> Service:
        """``service`` with the spec of ``generation`` (an old instance's own spec)."""
        if generation == int(service["generation"]):
            return service
        for entry in self.store.services.generations(self.name):
            if int(entry["generation"]) == generation:
                return cast(Service, {**service, "spec": entry["spec"]})
        return service

    # converge -----------------------------------------------------------------------
    def _check_policy(self, service: Service) -> None:
        """Refuse a spec that would give a container the host, before any Docker call.

        :raises SpecRefused:
        """
        spec = service["spec"]
        package = str((service.get("package") or {}).get("name") or "")
        check_policy(spec, allowed_host_paths=self.settings.host_path_roots,
                     readonly_host_paths=self.settings.readonly_host_paths,
                     container=self.settings.container_policy, package=package)

    def _converge(self) -> None:
        announced: set[str] = set()
        service = self.store.services.get(self.name)
        if service is not None:
            self._check_policy(service)
            interrupted = self._mover().resume(service, self.id)
            if interrupted:
                self._update(step=("roll back", interrupted))
        while True:
            service = self.store.services.get(self.name)
            if service is None or service.get("deployment") != self.id:
                raise Cancelled(self.id)
            instances = self._drop_dead(self.store.instances.for_service(self.name))
            if self._round(service, instances, announced):
                self._finish("succeeded")
                return
            time.sleep(self.settings.health_poll)

    def _round(self, service: Service, instances: list[Instance],
               announced: set[str]) -> bool:
        """One round of the loop; True when the service has converged."""
        generation, total = int(service["generation"]), int(service["instances"])
        agents = {a["id"]: a for a in self.store.agents.list()}
        current = [i for i in instances if i["generation"] == generation
                   and _usable_agent(agents.get(i["agent"]))]
        retiring = [i for i in instances if i not in current]
        if self._move_resident(service, instances, agents):
            return False
        orphaned = [i for i in current if i.get("state") == "placed"]
        if orphaned:  # placed by an earlier run that died before starting them
            self._update(step=("resume", f"starting {len(orphaned)} placed instances"))
            self.ops.start(service, orphaned)
            return False
        if len(current) > total:
            self._scale_down(current, len(current) - total)
            return False
        strategy = service["spec"].get("upgradeStrategy") or {}
        healthy = sum(1 for i in instances if counts_healthy(i))
        min_healthy = math.ceil(total * float(strategy.get("minimumHealthCapacity", 1.0)))
        max_total = total + math.floor(total * float(strategy.get("maximumOverCapacity", 1.0)))
        to_start = min(total - len(current), max(0, max_total - len(instances)))
        stoppable = [i for i in retiring if not counts_healthy(i)]
        spare = max(0, healthy - min_healthy)
        stoppable += [i for i in retiring if counts_healthy(i)][:spare]
        if to_start == 0 and not stoppable and len(current) < total:
            to_start = 1  # strategy leaves no room to move: go one over capacity
        if stoppable:
            self._update(step=("stop", f"stopping {len(stoppable)} old instances"))
            self._drain_and_stop(stoppable)
            self.vacated += [i["agent"] for i in stoppable]
        if to_start:
            self._start_some(service, current, to_start)
        self._watch(service, announced)
        fresh = self.store.instances.for_service(self.name)
        # a resident instance waiting for its agent holds its place: the service is
        # degraded until the agent answers, but nothing is left to deploy
        return (not stoppable and not to_start and len(fresh) == total
                and all(i["generation"] == generation
                        and (counts_healthy(i) or waiting_for(i, agents)) for i in fresh))

    def _drop_dead(self, instances: list[Instance]) -> list[Instance]:
        """Remove failed and lost instances; count failed starts; keep the living.

        A resident instance waiting for its unreachable agent is kept (its volumes are
        there); one whose agent answers again is started there again.
        """
        agents = {a["id"]: a for a in self.store.agents.list()}
        back = [i for i in instances if revivable(i, agents)]
        service = self.store.services.get(self.name) if back else None
        if back and service is not None:
            self._update(step=("revive", f"starting {len(back)} resident instances again "
                                         f"on their agents"))
            self.ops.revive(service, back)
            instances = self.store.instances.for_service(self.name)
        dead = [i for i in instances if not alive(i) and not waiting_for(i, agents)]
        if not dead:
            return instances
        # a replacement of a resident instance goes back to its volumes, and only there:
        # elsewhere it would start on an empty volume (an agent removed from the
        # cluster took its volumes with it: its instances' replacements go anywhere)
        self.bound += [i["agent"] for i in dead if i.get("resident") and i["agent"] in agents]
        for instance in dead:
            if not instance.get("healthy_at"):
                self.failed_starts += 1
                self.last_error = instance.get("error") or self.last_error
        self.ops.stop(dead)
        self._update(progress=self._progress(),
                     step=("replace", f"replacing {len(dead)} failed instances: "
                                      f"{self.last_error or 'container stopped'}"))
        if self.failed_starts >= self.settings.max_start_attempts:
            self._finish("failed", f"{self.failed_starts} instances failed to start; last: "
                                   f"{self.last_error or 'unknown'}")
            raise Cancelled(self.id)
        self.ops.backoff_wait(self.failed_starts)
        return [i for i in instances if alive(i) or waiting_for(i, agents)]

    def _scale_down(self, current: list[Instance], count: int) -> None:
        victims = removal_order(current)[:count]
        self._update(step=("scale down", f"stopping {count} instances"))
        self._drain_and_stop(victims)

    def _drain_and_stop(self, instances: list[Instance]) -> None:
        """Take serving instances out of the endpoints first (see ``worker/endpoints.py``),
        then stop them: proxies drop them before their containers go."""
        drain(self.store, instances, self.settings.drain_delay)
        self.ops.stop(instances)

    def _start_some(self, service: Service, current: list[Instance],
                    count: int) -> None:
        """Start ``count`` instances; outside an install, settle for one when all do not fit.

        :raises PlacementError: when not even that fits.
        """
        try:
            self._start(service, current, count)
        except PlacementError:
            if self.kind == "install" or count == 1:
                raise
            self._start(service, current, 1)

    def _start(self, service: Service, current: list[Instance],
               count: int) -> None:
        """Place, reserve and start ``count`` new instances."""
        placed = self._place_bound(service, current, count)
        if count > len(placed):
            placed += self.ops.place(service, current + placed, count - len(placed), self.id,
                                     prefer=self.vacated)
        spread = sorted({i["agent"] for i in placed})
        self._update(progress=self._progress(), step=(
            "place", f"{len(placed)} on {len(spread)} agents ({', '.join(spread)})"))
        self._pull(service, placed)
        errors = self.ops.start(service, placed)
        if errors:
            self.last_error = errors[-1]
        self._update(progress=self._progress(), step=(
            "start", f"started {len(placed) - len(errors)} of {len(placed)}"))

    def _place_bound(self, service: Service, current: list[Instance],
                     count: int) -> list[Instance]:
        """Place the replacements of failed resident instances, each on the agent that
        holds its data (:attr:`bound`), up to ``count``.

        :raises PlacementError: an agent holding data cannot take its replacement now:
            the deployment fails with the reason (the service is degraded; the data
            stays where it is, and the reconciler tries again after its backoff).
        """
        placed: list[Instance] = []
        for agent_id in list(self.bound)[:count]:
            try:
                placed += self.ops.place(service, current + placed, 1, self.id,
                                         only=[agent_id])
            except PlacementError as error:
                raise PlacementError(
                    f"{agent_id} holds the data of a failed instance of {self.name} and "
                    f"cannot take its replacement now: {error.message}; it is not "
                    f"started elsewhere on an empty volume", details=error.details,
                    hint=f"free room on {agent_id}, or move the data with berth move"
                ) from None
            self.bound.remove(agent_id)
        return placed

    def _pull(self, service: Service, placed: list[Instance]) -> None:
        """Get the images onto the agents of ``placed``, recording each pull's progress
        as a step ``pull <agent>`` (rewritten in place, throttled by the tracker).

        An image no source has ends the deployment at once — ``failed`` with the reason
        (unauthorized, not found, unreachable) — and gives back what ``placed``
        reserved: retrying would only ask the registry the same question again.

        :raises Cancelled: when the deployment failed so.
        """
        def report(agent_id: str, image: str, status: PullStatus) -> None:
            deployments.advance(self.store, self.id, replace="pull",
                                step=(f"pull {agent_id}", f"{image}: {status}"))

        try:
            self.ops.ensure_images(service, placed, progress=report)
        except (ImageUnavailable, DataKeyError) as error:
            self.ops.forget(placed)
            self._finish("failed", error.message, details=error.details)
            raise Cancelled(self.id) from None

    def _watch(self, service: Service, announced: set[str]) -> None:
        """Look at new instances once; record those that became healthy."""
        fresh = [i for i in self.store.instances.for_service(self.name)
                 if i["generation"] == int(service["generation"]) and alive(i)]
        self.ops.observe(service, [i for i in fresh if not counts_healthy(i)])
        progress = self._progress()
        ready = {i["id"] for i in self.store.instances.for_service(self.name)
                 if counts_healthy(i)}
        if ready - announced:
            announced |= ready
            self._update(progress=progress)

    def _progress(self) -> Progress:
        service = self.store.services.get(self.name)
        generation = int(service["generation"]) if service else 0
        mine = [i for i in self.store.instances.for_service(self.name)
                if i["generation"] == generation]
        return Progress(total=int(service["instances"]) if service else 0, placed=len(mine),
                        started=sum(1 for i in mine if i.get("container_id")),
                        healthy=sum(1 for i in mine if counts_healthy(i)),
                        failed=self.failed_starts)


def _usable_agent(agent: Agent | None) -> bool:
    """Whether instances on this agent may stay (it exists and is not being drained)."""
    return agent is not None and not agent["drain"]
