"""The deployment lifecycle: the one module that creates, advances, finishes and cancels.

A deployment is born ``queued`` (:func:`new`, written by :func:`stage_create` in the
transaction that changes its service), becomes ``running`` and gathers steps and
progress while the deployer drives it (:func:`advance`), and ends ``succeeded`` or
``failed`` (:func:`finish`, :func:`stage_finish`) or ``cancelled`` (:func:`cancel`,
:func:`stage_cancel`). Ending a deployment settles its service in the same
transaction: the service no longer points at it and shows the outcome.

Functions named ``stage_*`` queue their writes in a caller's transaction so that a
change to a service and to its deployment commit together; the others run their own.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from .errors import DeploymentNotFound
from .records import ACTIVE_DEPLOYMENT, Deployment, Progress, Service, Step
from .store import Store
from .store.base import Tx

__all__ = ["new", "stage_create", "is_active", "active_of", "stage_cancel", "cancel",
           "advance", "finish", "stage_finish", "open_recovery", "ACTIVE_DEPLOYMENT"]

# deployments whose cancel makes the service keep the instances it has
_COUNT_FOLLOWS_CANCEL = ("install", "scale", "recover")


def new(service: str, kind: str, generation: int, instances: int, actor: str,
        *, reason: str | None = None, rollback_to: int | None = None,
        delete_data: bool = False) -> Deployment:
    """A fresh, queued deployment record (not yet written)."""
    now = time.time()
    deployment = Deployment(
        id="d-" + secrets.token_hex(6), service=service, kind=kind, status="queued",
        generation=generation, instances=instances, steps=[],
        progress=Progress(total=instances, placed=0, started=0, healthy=0),
        error=None, actor=actor, created_at=now, updated_at=now, finished_at=None)
    if reason is not None:
        deployment["reason"] = reason
    if rollback_to is not None:
        deployment["rollback_to"] = rollback_to
    if delete_data:
        deployment["delete_data"] = True
    return deployment


def is_active(deployment: Deployment | None) -> bool:
    """Whether a deployment is queued or running."""
    return deployment is not None and deployment["status"] in ACTIVE_DEPLOYMENT


def stage_create(store: Store, tx: Tx, deployment: Deployment) -> Deployment:
    """Queue the write of a new deployment and its ``deployment.created`` event."""
    written = store.deployments.stage_put(tx, deployment)
    data: dict[str, Any] = {"service": deployment["service"], "kind": deployment["kind"]}
    if "reason" in deployment:
        data["reason"] = deployment["reason"]
    tx.event("deployment.created", written["id"], deployment["actor"], data)
    return written


def active_of(store: Store, tx: Tx, service: Service) -> Deployment | None:
    """The service's current deployment if it is queued or running (read in ``tx``)."""
    current = service.get("deployment")
    if not current:
        return None
    deployment = store.deployments.read(tx, current)
    return deployment if is_active(deployment) else None


def _step(name: str, status: str, message: str, at: float) -> Step:
    return Step(name=name, status=status, message=message, at=at)


def stage_cancel(store: Store, tx: Tx, deployment: Deployment, actor: str,
                 reason: str) -> Deployment:
    """Queue the cancellation of a deployment and its service's follow-up.

    For an install, scale or recover the service's desired count becomes what is
    there, so the reconciler does not undo the cancel.
    """
    now = time.time()
    deployment.update({"status": "cancelled", "error": reason, "updated_at": now,
                       "finished_at": now})
    deployment["steps"] = [*deployment.get("steps", []), _step("cancel", "done", reason, now)]
    written = store.deployments.stage_put(tx, deployment)
    tx.event("deployment.cancelled", deployment["id"], actor,
             {"service": deployment["service"], "reason": reason})
    service = store.services.read(tx, deployment["service"])
    if service and service.get("deployment") == deployment["id"]:
        if deployment["kind"] in _COUNT_FOLLOWS_CANCEL:
            live = store.instances.ids_for_service(service["name"])
            service["instances"] = len(live)
            service["spec"]["instances"] = len(live)
        service.update({"deployment": None, "updated_at": now, "updated_by": actor,
                        "status": "degraded" if service["status"] != "deleting"
                        else "deleting"})
        store.services.stage_put(tx, service)
    return written


def cancel(store: Store, deployment_id: str, *, actor: str = "") -> Deployment:
    """Stop a queued or running deployment where it is; a finished one is returned.

    :raises DeploymentNotFound:
    """
    store.deployments.require(deployment_id)

    def change(tx: Tx) -> Deployment:
        deployment = store.deployments.read(tx, deployment_id)
        if deployment is None:
            raise DeploymentNotFound(f"no deployment {deployment_id!r}",
                                     deployment=deployment_id)
        if not is_active(deployment):
            return deployment
        return stage_cancel(store, tx, deployment, actor, "cancelled by " + (actor or "?"))

    return store.state.transact(change)


def advance(store: Store, deployment_id: str, *, step: tuple[str, str] | None = None,
            status: str | None = None, progress: Progress | None = None,
            replace: str = "") -> Deployment | None:
    """Record a running deployment's status, progress and a new step.

    With ``replace`` (a step-name prefix, e.g. ``"pull"``), a step of the same name
    among the latest steps whose names start with it is rewritten in place instead of
    a new one added: a pull's progress is one step per agent, not one per report.

    Returns None — writing nothing — when the deployment is no longer active or its
    service moved on to another one (it was cancelled or superseded).
    """
    def change(tx: Tx) -> Deployment | None:
        deployment = store.deployments.read(tx, deployment_id)
        if deployment is None or not is_active(deployment):
            return None
        service = store.services.read(tx, deployment["service"])
        if service is None or service.get("deployment") != deployment_id:
            return None
        now = time.time()
        if status is not None:
            deployment["status"] = status
        if progress is not None:
            deployment["progress"] = progress
        deployment["updated_at"] = now
        if step:
            deployment["steps"] = _with_step(deployment.get("steps", []),
                                             _step(step[0], "done", step[1], now), replace)
        written = store.deployments.stage_put(tx, deployment)
        tx.event("deployment.updated", deployment_id, deployment.get("actor", ""),
                 {"service": deployment["service"], "status": written["status"],
                  "progress": written.get("progress"), "step": step[0] if step else None})
        return written

    return store.state.transact(change)


def _with_step(steps: list[Step], step: Step, replace: str) -> list[Step]:
    """``steps`` with ``step`` added, or rewritten in place (see :func:`advance`)."""
    if replace:
        for index in range(len(steps) - 1, -1, -1):
            name = str(steps[index].get("name", ""))
            if not name.startswith(replace):
                break
            if name == step["name"]:
                return [*steps[:index], step, *steps[index + 1:]]
    return [*steps, step]


def stage_finish(store: Store, tx: Tx, deployment: Deployment, status: str, *,
                 error: str | None = None, message: str | None = None,
                 details: list[dict[str, str]] | None = None) -> Deployment:
    """Queue the end of a deployment (``succeeded`` or ``failed``) and its event."""
    now = time.time()
    deployment.update({"status": status, "error": error, "finished_at": now,
                       "updated_at": now, "error_details": details or []})
    deployment["steps"] = [*deployment.get("steps", []),
                           _step("finish", status, message or error or "done", now)]
    written = store.deployments.stage_put(tx, deployment)
    tx.event(f"deployment.{status}", deployment["id"], deployment.get("actor", ""),
             {"service": deployment["service"], "error": error})
    return written


def finish(store: Store, deployment_id: str, status: str, *, service_status: str,
           error: str | None = None, details: list[dict[str, str]] | None = None) -> None:
    """End an active deployment and settle its service's status, in one transaction.

    The service shows ``service_status`` and no current deployment, unless it has
    already moved on to another one. A finished deployment is left as it is.
    """
    def change(tx: Tx) -> None:
        deployment = store.deployments.read(tx, deployment_id)
        if deployment is None or not is_active(deployment):
            return
        name = deployment["service"]
        service = store.services.read(tx, name)
        stage_finish(store, tx, deployment, status, error=error, details=details)
        if service is not None and service.get("deployment") == deployment_id:
            service.update({"deployment": None, "updated_at": deployment["updated_at"],
                            "status": service_status})
            store.services.stage_put(tx, service)
            tx.event("service.updated", name, "worker", {"status": service["status"]})

    store.state.transact(change)


def open_recovery(store: Store, name: str, reason: str, actor: str) -> Deployment | None:
    """Open a ``recover`` deployment for a service idle and not being removed; or None."""
    def change(tx: Tx) -> Deployment | None:
        service = store.services.read(tx, name)
        if service is None or service.get("status") in ("deleting", "failed"):
            return None
        if active_of(store, tx, service):
            return None
        deployment = new(name, "recover", int(service["generation"]),
                         int(service["instances"]), actor, reason=reason)
        service.update({"deployment": deployment["id"], "status": "deploying",
                        "updated_at": time.time()})
        store.services.stage_put(tx, service)
        return stage_create(store, tx, deployment)

    return store.state.transact(change)
