"""The one write path for a service's desired state (what the server calls).

Every change writes the Service record, its generation history and a new Deployment
record in one transaction, publishes the events in that same transaction, then
enqueues ``berth.deploy`` by name. A change while another deployment of the service is
queued or running is refused (:class:`DeploymentInProgress`) unless ``force`` is given,
which cancels the running one first; uninstall always supersedes. Every call records
its actor. Nothing here touches an agent: the deployer does, in a worker.

If the broker cannot take the task the records stay written and the reconciler,
which re-drives queued deployments nobody runs, picks the deployment up.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

from catalog.names import SERVICE_NAME, require_service_name
from catalog.options import apply_at_paths, values_at_paths
from catalog.spec import map_secret_strings, secret_texts

from . import deployments
from .endpoints import check_routes, routes_of
from .errors import (
    AgentNotFound,
    DeploymentInProgress,
    GenerationNotFound,
    InstanceNotFound,
    InvalidRequest,
    MoveRefused,
    ServiceExists,
    ServiceNotFound,
)
from .move import crowding, refusal
from .records import (
    Agent,
    Backup,
    Deployment,
    Generation,
    Instance,
    MoveRequest,
    PackageRef,
    Service,
)
from .store import Store
from .store.base import Tx
from .store.crypto import DataKeys, has_sealed, require_keys

__all__ = ["DesiredState", "SERVICE_NAME", "MAX_INSTANCES"]

log = logging.getLogger(__name__)

MAX_INSTANCES = 1000
Enqueue = Callable[[str, Sequence[Any]], Any]


def _package_identity(package: Any) -> PackageRef:
    """``{"name", "version", "repository"}`` from a mapping or a ``catalog.Package``."""
    if isinstance(package, Mapping):
        return PackageRef(name=str(package.get("name") or ""),
                          version=str(package.get("version") or ""),
                          repository=str(package.get("repository") or ""))
    return PackageRef(name=str(getattr(package, "name", "")),
                      version=str(getattr(package, "version", "")),
                      repository=str(getattr(package, "repository", "")))


def _check_name(name: Any) -> str:
    return require_service_name(name)


def _check_count(count: Any) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_INSTANCES:
        raise InvalidRequest("invalid instance count", details=[{
            "path": "instances", "message": f"an integer from 0 to {MAX_INSTANCES}"}])
    return count


class DesiredState:
    """Install, scale, update, roll back, restart and uninstall services; read them."""

    def __init__(self, store: Store, enqueue: Enqueue | None = None,
                 keys: DataKeys | None = None) -> None:
        self.store = store
        self.enqueue = enqueue
        self.keys = keys

    def seal(self, options: Mapping[str, Any], spec: Mapping[str, Any],
             paths: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``options`` and ``spec`` as they are stored: each value at a secret path, and
        each spec string that holds one, sealed with the data key.

        :raises DataKeyError: when there is a secret value to seal and no data key.
        """
        plain_options, plain_spec = dict(options), dict(spec)
        if has_sealed(plain_options) or has_sealed(plain_spec):
            keys = require_keys(self.keys, "open the service's secret values")
            plain_options, plain_spec = keys.open_tree(plain_options), keys.open_tree(plain_spec)
        if not [v for v in values_at_paths(plain_options, paths) if v != ""]:
            return plain_options, plain_spec  # nothing secret to hide (empty or unset)
        keys = require_keys(self.keys, "store secret option values (it never keeps them "
                                       "in clear)")
        secrets = secret_texts(plain_options, paths)
        return (apply_at_paths(plain_options, paths, keys.seal),
                map_secret_strings(plain_spec, secrets, keys.seal))

    def seal_generated(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Generated secret values (by option path) as the service record keeps them:
        each sealed with the data key.

        :raises DataKeyError: when there is a value to seal and no data key.
        """
        if not values:
            return {}
        keys = require_keys(self.keys, "store generated secret values (it never keeps "
                                       "them in clear)")
        return {path: keys.seal(value) for path, value in values.items()}

    # writes -------------------------------------------------------------------
    def install(self, name: str, spec: Mapping[str, Any] | None = None, *,
                package: Any = None, options: Mapping[str, Any] | None = None,
                instances: int | None = None, actor: str = "",
                secret_paths: Sequence[str] = (), cluster: str | None = None,
                generated: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Write a new service (generation 1) and its install deployment, atomically.

        ``cluster`` names the cluster it runs on (``worker/clusters.py``; None or
        ``default``: Berth's own agents).

        ``secret_paths`` are the option paths the package actually installed marks
        secret (``/db/password``, ``/keys/*``): the record keeps them, and the values
        there are sealed (see :meth:`seal`). ``generated`` are the values Berth made for
        empty ``x-generate`` options, by path: the record keeps them sealed
        (``generated_secrets``) for the service's whole life, so an upgrade, a rollback
        or an option left empty again reuses them. Returns ``{"service": …,
        "deployment": …}``.

        :raises ServiceExists: when the name is taken.
        :raises InvalidRequest: for a bad name or instance count.
        :raises DataKeyError: when there is a secret to seal and no data key.
        """
        _check_name(name)
        paths = sorted(set(secret_paths))
        stored_options, spec = self.seal(dict(options or {}), dict(spec or {}), paths)
        count = _check_count(instances if instances is not None else spec.get("instances", 1))
        spec["instances"] = count
        now = time.time()
        deployment = deployments.new(name, "install", 1, count, actor)
        service = Service(name=name, package=_package_identity(package or {}),
                          options=stored_options, secret_paths=paths, spec=spec,
                          instances=count, generation=1, status="deploying",
                          deployment=deployment["id"], created_at=now, updated_at=now,
                          created_by=actor, updated_by=actor)
        if cluster and cluster != "default":
            service["cluster"] = cluster
        if generated:
            service["generated_secrets"] = self.seal_generated(generated)

        def change(tx: Tx) -> dict[str, Any]:
            if self.store.services.read(tx, name) is not None:
                raise ServiceExists(f"a service named {name!r} exists", service=name,
                                    details=[{"path": "name", "message": "taken"}])
            self._claim_routes(tx, service, None)
            written = self.store.services.stage_put(tx, service)
            self.store.services.stage_generation(tx, name, _generation_entry(
                service, "install", actor))
            tx.event("service.created", name, actor, {"generation": 1, "instances": count})
            dep = deployments.stage_create(self.store, tx, deployment)
            return {"service": written, "deployment": dep}

        result = self.store.state.transact(change)
        self._enqueue_deploy(result["deployment"]["id"])
        return result

    def scale(self, name: str, instances: int, *, actor: str = "",
              force: bool = False) -> Deployment:
        """Change the instance count; returns the deployment.

        :raises ServiceNotFound, DeploymentInProgress, InvalidRequest:
        """
        count = _check_count(instances)

        def apply(service: Service) -> None:
            service["instances"] = count
            service["spec"]["instances"] = count

        return self._change(name, "scale", apply, actor=actor, force=force,
                            new_generation=False)

    def update(self, name: str, *, spec: Mapping[str, Any], package: Any = None,
               options: Mapping[str, Any] | None = None, instances: int | None = None,
               actor: str = "", force: bool = False,
               secret_paths: Sequence[str] = (),
               generated: Mapping[str, Any] | None = None,
               backup: Backup | None = None) -> Deployment:
        """Move a service to a new spec (another version or options): a rolling upgrade.

        The instance count stays unless ``instances`` is given. The record's secret
        paths become ``secret_paths`` plus the ones it had: a value once secret stays
        hidden even if the new version forgets to mark it. ``generated`` (values made
        for ``x-generate`` options this version adds) join the record's kept ones; a
        kept value is never replaced.
        With ``backup`` (a new
        record, ``worker.backups.new_backup``) the deployment takes it first and
        upgrades only once it succeeded.

        :raises ServiceNotFound, DeploymentInProgress, InvalidRequest, DataKeyError:
        """
        sealed_new = self.seal_generated(generated or {})

        def apply(service: Service) -> None:
            total = _check_count(instances if instances is not None else service["instances"])
            if package is not None:
                service["package"] = _package_identity(package)
            paths = sorted(set(secret_paths) | set(service.get("secret_paths") or ()))
            given = options if options is not None else service.get("options") or {}
            stored_options, new_spec = self.seal(given, spec, paths)
            service["options"] = stored_options
            service["secret_paths"] = paths
            service["spec"] = {**new_spec, "instances": total}
            service["instances"] = total
            if sealed_new:
                service["generated_secrets"] = {**sealed_new,
                                                **(service.get("generated_secrets") or {})}

        return self._change(name, "upgrade", apply, actor=actor, force=force, backup=backup)

    def rollback(self, name: str, generation: int | None = None, *, actor: str = "",
                 force: bool = False, restore: str | None = None) -> Deployment:
        """Return to an earlier generation (the previous one by default) as a new one.

        The instance count stays as it is: scaling is not part of a generation. With
        ``restore`` (a backup id) the instances are stopped, the backup is written into
        their volumes, and the earlier generation starts on that data.

        :raises ServiceNotFound, GenerationNotFound, DeploymentInProgress:
        """
        current = self.get_service(name)
        target = self._rollback_target(name, int(current["generation"]), generation)

        def apply(service: Service) -> None:
            service["package"] = _package_identity(target.get("package") or {})
            service["options"] = dict(target.get("options") or {})
            if "secret_paths" in target or "secret_paths" in service:
                service["secret_paths"] = sorted(set(target.get("secret_paths") or ()) | set(
                    service.get("secret_paths") or ()))
            service["spec"] = {**copy.deepcopy(target["spec"]),
                               "instances": service["instances"]}

        return self._change(name, "rollback", apply, actor=actor, force=force,
                            rollback_to=int(target["generation"]),
                            extra={"restore": restore} if restore else None)

    def backup(self, name: str, backup: Backup, *, actor: str = "",
               force: bool = False) -> Deployment:
        """Write a queued backup record and the ``backup`` deployment that takes it.

        :raises ServiceNotFound, DeploymentInProgress:
        """
        return self._change(name, "backup", lambda service: None, actor=actor, force=force,
                            new_generation=False, backup=backup)

    def restore(self, name: str, backup_id: str, *, actor: str = "",
                force: bool = False, agent: str | None = None) -> Deployment:
        """Start a ``restore`` deployment: backup ``backup_id`` into ``name``'s volumes
        (on ``agent`` when given: the data is written there and the instances run there).

        :raises ServiceNotFound, DeploymentInProgress:
        """
        extra: dict[str, Any] = {"restore": backup_id}
        if agent:
            extra["restore_agent"] = agent
        return self._change(name, "restore", lambda service: None, actor=actor, force=force,
                            new_generation=False, extra=extra)

    def restart(self, name: str, *, actor: str = "", force: bool = False) -> Deployment:
        """Replace every instance with a fresh one of the same spec (a new generation).

        :raises ServiceNotFound, DeploymentInProgress:
        """
        return self._change(name, "restart", lambda service: None, actor=actor, force=force)

    def uninstall(self, name: str, *, actor: str = "", delete_data: bool = False) -> Deployment:
        """Stop and remove every instance, then the service; returns the deployment.

        With ``delete_data`` the service's named volumes are removed on every agent
        once its containers are gone; without it they stay, listed as left over.

        A deployment in progress is cancelled (uninstall supersedes it); uninstalling a
        service already being removed returns the running uninstall.

        :raises ServiceNotFound:
        """
        def change(tx: Tx) -> Deployment:
            service = self._locked_service(tx, name)
            running = deployments.active_of(self.store, tx, service)
            if running and running["kind"] == "uninstall":
                return running
            if running:
                deployments.stage_cancel(self.store, tx, running, actor,
                                         "superseded by uninstall")
            deployment = deployments.new(name, "uninstall", int(service["generation"]),
                                         0, actor, delete_data=delete_data)
            service.update({"status": "deleting", "deployment": deployment["id"],
                            "updated_at": time.time(), "updated_by": actor})
            self.store.services.stage_put(tx, service)
            tx.event("service.deleting", name, actor, {})
            return deployments.stage_create(self.store, tx, deployment)

        deployment = self.store.state.transact(change)
        self._enqueue_deploy(deployment["id"])
        return deployment

    def move(self, name: str, instance_id: str, target: str, *, accept_empty: bool = False,
             actor: str = "", force: bool = False) -> Deployment:
        """Move one instance to agent ``target`` with its data: a ``move`` deployment.

        The worker stops the instance, copies its named volumes to ``target``, starts
        it there and waits for healthy, then marks the old volumes left over
        (:mod:`worker.move`). Refused here, before anything changes, when the instance's
        agent does not answer (its data cannot be copied) unless ``accept_empty``.

        :raises ServiceNotFound, InstanceNotFound, AgentNotFound, DeploymentInProgress:
        :raises MoveRefused: the agent does not answer (without ``accept_empty``), the
            instance is on ``target`` already, or ``target`` cannot take instances.
        """
        def change(tx: Tx) -> Deployment:
            service = self._locked_service(tx, name)
            instance = self.store.instances.read(tx, instance_id)
            if instance is None or instance["service"] != name:
                raise InstanceNotFound(f"service {name!r} has no instance {instance_id!r}",
                                       service=name, instance=instance_id)
            _check_move(instance, self.store.agents.read(tx, instance["agent"]),
                        self.store.agents.read(tx, target), target, accept_empty)
            crowded = crowding(instance, target, self.store.instances.for_service(name),
                               service["spec"])
            if crowded:
                raise MoveRefused(crowded, details=[{"path": "to", "message": crowded}])
            self._supersede(tx, service, "move", actor, force)
            deployment = deployments.new(name, "move", int(service["generation"]),
                                         int(service["instances"]), actor)
            deployment["move"] = MoveRequest(instance=instance_id, source=instance["agent"],
                                             target=target, accept_empty=accept_empty,
                                             phase="requested")
            service.update({"status": "deploying", "deployment": deployment["id"],
                            "updated_at": time.time(), "updated_by": actor})
            self.store.services.stage_put(tx, service)
            tx.event("service.moving", name, actor, {"instance": instance_id, "to": target})
            return deployments.stage_create(self.store, tx, deployment)

        deployment = self.store.state.transact(change)
        self._enqueue_deploy(deployment["id"])
        return deployment

    def _supersede(self, tx: Tx, service: Service, kind: str, actor: str,
                   force: bool) -> None:
        """Refuse a change while a deployment runs, or (``force``) cancel that one.

        :raises DeploymentInProgress:
        """
        name = service["name"]
        if service.get("status") == "deleting":
            raise DeploymentInProgress(f"service {name!r} is being uninstalled", service=name)
        running = deployments.active_of(self.store, tx, service)
        if running and not force:
            raise DeploymentInProgress(
                f"deployment {running['id']} of {name!r} is {running['status']}",
                service=name, deployment=running["id"], hint="wait for it, cancel it, or force")
        if running:
            deployments.stage_cancel(self.store, tx, running, actor, f"superseded by {kind}")

    def cancel_deployment(self, deployment_id: str, *, actor: str = "") -> Deployment:
        """Stop a queued or running deployment where it is; a finished one is returned.

        The service keeps the instances it has; for an install or scale its desired
        count becomes what is there, so the reconciler does not undo the cancel.

        :raises DeploymentNotFound:
        """
        return deployments.cancel(self.store, deployment_id, actor=actor)

    # reads --------------------------------------------------------------------
    def get_service(self, name: str) -> Service:
        """:raises ServiceNotFound:"""
        return self.store.services.require(name)

    def list_services(self) -> list[Service]:
        return self.store.services.list()

    def services_page(self, start: int, stop: int) -> tuple[list[Service], int]:
        """The services ``start:stop`` by name, and the total."""
        return self.store.services.page(start, stop)

    def instances_of(self, names: Iterable[str]) -> dict[str, list[Instance]]:
        """The instances of several services in one batch, oldest first each."""
        return self.store.instances.for_services(names)

    def list_instances(self, name: str) -> list[Instance]:
        """A service's instances, oldest first (empty for an unknown name)."""
        return self.store.instances.for_service(name)

    def generations(self, name: str) -> list[Generation]:
        """A service's generations, newest last."""
        return self.store.services.generations(name)

    def get_deployment(self, deployment_id: str) -> Deployment:
        """:raises DeploymentNotFound:"""
        return self.store.deployments.require(deployment_id)

    def list_deployments(self, service: str | None = None,
                         limit: int = 50) -> list[Deployment]:
        """Recent deployments, newest first."""
        return self.store.deployments.list(service=service, limit=limit)

    def describe(self, name: str) -> dict[str, Any]:
        """A service with its instances and current deployment.

        :raises ServiceNotFound:
        """
        service = self.get_service(name)
        current = service.get("deployment")
        return {**service, "instances_list": self.list_instances(name),
                "current_deployment": self.store.deployments.get(current) if current else None}

    # helpers ------------------------------------------------------------------
    def _change(self, name: str, kind: str, apply: Callable[[Service], Any], *,
                actor: str, force: bool, new_generation: bool = True,
                rollback_to: int | None = None, extra: Mapping[str, Any] | None = None,
                backup: Backup | None = None) -> Deployment:
        """Apply a change to a service and start its deployment, in one transaction.

        ``extra``: more fields of the deployment record; ``backup``: a backup record
        the deployment takes first, written in the same transaction.
        """
        def change(tx: Tx) -> Deployment:
            service = self._locked_service(tx, name)
            self._supersede(tx, service, kind, actor, force)
            before = copy.deepcopy(service["spec"])
            apply(service)
            self._claim_routes(tx, service, before)
            if new_generation:
                service["generation"] = int(service["generation"]) + 1
            deployment = deployments.new(name, kind, int(service["generation"]),
                                         int(service["instances"]), actor,
                                         rollback_to=rollback_to)
            deployment.update(cast(Deployment, dict(extra or {})))
            if backup is not None:
                backup["deployment"] = deployment["id"]
                deployment["backup"] = backup["id"]
                self.store.backups.stage_put(tx, backup)
                tx.event("backup.queued", backup["id"], actor, {"service": name})
            service.update({"status": "deploying", "deployment": deployment["id"],
                            "updated_at": time.time(), "updated_by": actor})
            self.store.services.stage_put(tx, service)
            if new_generation:
                self.store.services.stage_generation(tx, name, _generation_entry(
                    service, kind, actor))
            tx.event("service.updated", name, actor, {"kind": kind,
                                                       "generation": service["generation"],
                                                       "instances": service["instances"]})
            return deployments.stage_create(self.store, tx, deployment)

        deployment = self.store.state.transact(change)
        self._enqueue_deploy(deployment["id"])
        return deployment

    def _claim_routes(self, tx: Tx, service: Service,
                      before: Mapping[str, Any] | None) -> None:
        """Refuse, inside ``tx``, a spec whose new routes clash with another service's.

        Every transaction that gives a service routes it did not have rewrites one
        document, ``routes:rev``, after WATCHing it and before reading the other
        services: of two such transactions racing, the second to commit fails and is
        recomputed on the records the first wrote, so two services never both get a
        host. The services themselves are read without watching (one ``MGET``): only
        route changes serialise, not every status write of every deployer. A change
        that adds no route (scale, restart, an upgrade keeping its routes) skips it.

        :raises RouteConflict:
        """
        if not routes_of(service) or routes_of(service) == routes_of(
                {"name": service["name"], "spec": before or {}}):
            return
        tx.put(self.store.state.key("routes", "rev"), {})
        check_routes(service, self.store.services.list(), before=before)

    def _locked_service(self, tx: Tx, name: str) -> Service:
        service = self.store.services.read(tx, name)
        if service is None:
            raise ServiceNotFound(f"no service {name!r}", service=name)
        return service

    def _rollback_target(self, name: str, current: int,
                         generation: int | None) -> Generation:
        """The generation entry a rollback returns to.

        :raises GenerationNotFound:
        """
        history = self.store.services.generations(name)
        if generation is None:
            earlier = [g for g in history if int(g["generation"]) < current]
            if not earlier:
                raise GenerationNotFound(f"{name!r} has no earlier generation", service=name)
            return earlier[-1]
        for entry in history:
            if int(entry["generation"]) == int(generation):
                return entry
        known = [g["generation"] for g in history]
        raise GenerationNotFound(f"{name!r} has no generation {generation}", service=name,
                                 details=[{"path": "generation", "message": f"known: {known}"}])

    def _enqueue_deploy(self, deployment_id: str) -> None:
        """Hand the deployment to the workers (the reconciler re-drives it if this fails)."""
        if self.enqueue is None:
            return
        try:
            self.enqueue("berth.deploy", [deployment_id])
        except Exception:  # noqa: BLE001 - the record is durable; the reconciler re-drives it
            log.warning("could not enqueue deployment %s; the reconciler will pick it up",
                        deployment_id, exc_info=True)


def _check_move(instance: Instance, source: Agent | None, target: Agent | None,
                target_id: str, accept_empty: bool) -> None:
    """Refuse a move that cannot be or would lose data without being told so.

    :raises AgentNotFound: no agent ``target_id``.
    :raises MoveRefused:
    """
    if target is None:
        raise AgentNotFound(f"no agent {target_id!r}", agent=target_id,
                            details=[{"path": "to", "message": "not a registered agent"}])
    problem = None
    if instance["agent"] == target_id:
        problem = f"instance {instance['id']} is on {target_id} already"
    elif target.get("drain"):
        problem = f"agent {target_id} is being drained"
    elif target.get("state") == "unreachable":
        problem = f"agent {target_id} does not answer"
    if problem:
        raise MoveRefused(problem, details=[{"path": "to", "message": problem}])
    reason = refusal(instance, source, accept_empty=accept_empty)
    if reason:
        raise MoveRefused(reason, details=[{"path": "acceptEmpty", "message": reason}],
                          hint="pass --accept-empty (acceptEmpty: true) to start it "
                               "there with empty volumes",
                          volumes=[v["name"] for v in instance.get("volumes") or []])


def _generation_entry(service: Service, kind: str, actor: str) -> Generation:
    """The history entry of a service's new generation."""
    entry = Generation(generation=int(service["generation"]), kind=kind,
                       package=_package_identity(service.get("package") or {}),
                       options=copy.deepcopy(service.get("options") or {}),
                       spec=copy.deepcopy(service["spec"]),
                       instances=int(service["instances"]), created_at=time.time(),
                       actor=actor)
    if "secret_paths" in service:  # a record from before secret paths were kept has none
        entry["secret_paths"] = list(service["secret_paths"])
    return entry
