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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from catalog.names import SERVICE_NAME, require_service_name
from catalog.options import apply_at_paths, values_at_paths
from catalog.spec import map_secret_strings, secret_texts

from . import deployments
from .errors import (
    DeploymentInProgress,
    GenerationNotFound,
    InvalidRequest,
    ServiceExists,
    ServiceNotFound,
)
from .records import Deployment, Generation, Instance, PackageRef, Service
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

    # writes -------------------------------------------------------------------
    def install(self, name: str, spec: Mapping[str, Any] | None = None, *,
                package: Any = None, options: Mapping[str, Any] | None = None,
                instances: int | None = None, actor: str = "",
                secret_paths: Sequence[str] = ()) -> dict[str, Any]:
        """Write a new service (generation 1) and its install deployment, atomically.

        ``secret_paths`` are the option paths the package actually installed marks
        secret (``/db/password``, ``/keys/*``): the record keeps them, and the values
        there are sealed (see :meth:`seal`). Returns ``{"service": …, "deployment": …}``.

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

        def change(tx: Tx) -> dict[str, Any]:
            if self.store.services.read(tx, name) is not None:
                raise ServiceExists(f"a service named {name!r} exists", service=name,
                                    details=[{"path": "name", "message": "taken"}])
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
               secret_paths: Sequence[str] = ()) -> Deployment:
        """Move a service to a new spec (another version or options): a rolling upgrade.

        The instance count stays unless ``instances`` is given. The record's secret
        paths become ``secret_paths`` plus the ones it had: a value once secret stays
        hidden even if the new version forgets to mark it.

        :raises ServiceNotFound, DeploymentInProgress, InvalidRequest, DataKeyError:
        """
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

        return self._change(name, "upgrade", apply, actor=actor, force=force)

    def rollback(self, name: str, generation: int | None = None, *, actor: str = "",
                 force: bool = False) -> Deployment:
        """Return to an earlier generation (the previous one by default) as a new one.

        The instance count stays as it is: scaling is not part of a generation.

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
                            rollback_to=int(target["generation"]))

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
                rollback_to: int | None = None) -> Deployment:
        """Apply a change to a service and start its deployment, in one transaction."""
        def change(tx: Tx) -> Deployment:
            service = self._locked_service(tx, name)
            if service.get("status") == "deleting":
                raise DeploymentInProgress(f"service {name!r} is being uninstalled",
                                           service=name)
            running = deployments.active_of(self.store, tx, service)
            if running and not force:
                raise DeploymentInProgress(
                    f"deployment {running['id']} of {name!r} is {running['status']}",
                    service=name, deployment=running["id"],
                    hint="wait for it, cancel it, or force")
            if running:
                deployments.stage_cancel(self.store, tx, running, actor,
                                         f"superseded by {kind}")
            apply(service)
            if new_generation:
                service["generation"] = int(service["generation"]) + 1
            deployment = deployments.new(name, kind, int(service["generation"]),
                                         int(service["instances"]), actor,
                                         rollback_to=rollback_to)
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
