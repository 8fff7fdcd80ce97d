"""The deployer: drive one deployment from plan to done — ``Deployer(store, agents).run(id)``.

A deployment converges a service's instances on its desired state (generation ``G``,
``N`` instances), re-reading everything from the store on each round, so running it
again after a crash picks up where the last run stopped:

1. drop dead instances (failed, lost, on a vanished agent), freeing what they reserved;
2. scale down extras of generation ``G`` (unhealthy first, then newest first);
3. start new instances of ``G`` as far as ``upgradeStrategy.maximumOverCapacity``
   allows — placed and reserved in one transaction (all or nothing), images ensured on
   each agent, containers created and started by one thread per agent;
4. stop old instances (another generation, or on a draining agent) as far as
   ``upgradeStrategy.minimumHealthCapacity`` allows, counting healthy instances;
5. look at the new instances (container state, health check) and record progress;
6. done when ``N`` healthy instances of ``G`` run and nothing old is left.

Only one deployer works on a service at a time (a Redis lock with a TTL, renewed while
it runs; a crashed worker's lock expires and the reconciler drives the deployment on).
Every instance record is written before its container is created, and containers have
deterministic names (``berth-<instance id>``), so a re-run reuses, never duplicates. A
placement failure ends the deployment ``failed`` with the reasons and reserves nothing.
"""

from __future__ import annotations

import logging
import math
import time

import redis

from catalog.errors import PlacementError, SpecRefused
from catalog.spec import check_policy

from . import deployments
from .agents import AgentPool
from .errors import AgentError
from .instances import InstanceRunner, ServiceLock, alive, counts_healthy, removal_order
from .records import Agent, Deployment, Instance, Progress, Service
from .settings import WorkerSettings
from .store import Store
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
                result = _Run(self, deployment).execute()
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
            _Run(self, deployment)._finish("failed", message)


class _Run:
    """One run of one deployment."""

    def __init__(self, deployer: Deployer, deployment: Deployment) -> None:
        self.store = deployer.store
        self.settings = deployer.settings
        self.ops = deployer.instances
        self.id = deployment["id"]
        self.kind = deployment["kind"]
        self.name = deployment["service"]
        self.failed_starts = int((deployment.get("progress") or {}).get("failed", 0))
        self.last_error = ""
        self.vacated: list[str] = []   # agents old instances left (their volumes stay there)
        self.delete_data = bool(deployment.get("delete_data"))
        self.pool = deployer.pool

    # outcome ------------------------------------------------------------------------
    def execute(self) -> Deployment | None:
        try:
            self._update(status="running", step=("start", f"{self.kind} running"))
            if self.kind == "uninstall":
                self._uninstall()
            else:
                self._converge()
        except Cancelled:
            pass
        except (PlacementError, SpecRefused) as error:
            self._finish("failed", error.message, details=error.details)
        except Exception as error:  # noqa: BLE001 - recorded; the task decides on retries
            log.exception("deployment %s stopped", self.id)
            if isinstance(error, AgentError | redis.RedisError):
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
            self.ops.stop(stoppable)
            self.vacated += [i["agent"] for i in stoppable]
        if to_start:
            self._start_some(service, current, to_start)
        self._watch(service, announced)
        fresh = self.store.instances.for_service(self.name)
        return (not stoppable and not to_start and len(fresh) == total
                and all(i["generation"] == generation and counts_healthy(i) for i in fresh))

    def _drop_dead(self, instances: list[Instance]) -> list[Instance]:
        """Remove failed and lost instances; count failed starts; keep the living."""
        dead = [i for i in instances if not alive(i)]
        if not dead:
            return instances
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
        return [i for i in instances if alive(i)]

    def _scale_down(self, current: list[Instance], count: int) -> None:
        victims = removal_order(current)[:count]
        self._update(step=("scale down", f"stopping {count} instances"))
        self.ops.stop(victims)

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
        placed = self.ops.place(service, current, count, self.id, prefer=self.vacated)
        spread = sorted({i["agent"] for i in placed})
        self._update(progress=self._progress(), step=(
            "place", f"{len(placed)} on {len(spread)} agents ({', '.join(spread)})"))
        errors = self.ops.start(service, placed)
        if errors:
            self.last_error = errors[-1]
        self._update(progress=self._progress(), step=(
            "start", f"started {len(placed) - len(errors)} of {len(placed)}"))

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
