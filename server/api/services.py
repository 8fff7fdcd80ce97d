"""``/services``: install, inspect, scale, upgrade, roll back, restart, uninstall, logs;
``/volumes``: Berth's named volumes on every agent."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, stream_with_context, url_for

from ..application import ServiceManager
from ..application.services import MAX_SERVICES_PER_PAGE, SERVICES_PER_PAGE
from ..context import current_berth
from .common import Invalid, accepted, allow, json_body, query_bool, query_int, query_str


def register(bp: Blueprint) -> None:
    """Add the service routes to the API blueprint."""
    bp.add_url_rule("/services", view_func=list_services, methods=["GET"])
    bp.add_url_rule("/services", view_func=install_service, methods=["POST"])
    bp.add_url_rule("/services/<name>", view_func=show_service, methods=["GET"])
    bp.add_url_rule("/services/<name>", view_func=change_service, methods=["PATCH"])
    bp.add_url_rule("/services/<name>", view_func=uninstall_service, methods=["DELETE"])
    bp.add_url_rule("/services/<name>/rollback", view_func=rollback_service, methods=["POST"])
    bp.add_url_rule("/services/<name>/restart", view_func=restart_service, methods=["POST"])
    bp.add_url_rule("/services/<name>/history", view_func=service_history, methods=["GET"])
    bp.add_url_rule("/services/<name>/instances/<instance_id>/logs", view_func=instance_logs,
                    methods=["GET"])
    bp.add_url_rule("/volumes", view_func=list_volumes, methods=["GET"])


def _ops() -> ServiceManager:
    return current_berth().application.services


def _deployment_answer(deployment: dict[str, Any], **extra: Any) -> Any:
    location = url_for("api.show_deployment", deployment_id=deployment["id"])
    return accepted({**extra, "deployment": deployment}, location)


def list_services() -> Any:
    """A page of services by name, each with its desired, running and healthy counts:
    ``{"items", "total", "page", "per_page"}``, and a ``Link: rel="next"`` header while
    more pages follow."""
    allow("viewer")
    page = query_int("page", 1, low=1, high=100000)
    per_page = query_int("per_page", SERVICES_PER_PAGE, low=1, high=MAX_SERVICES_PER_PAGE)
    result = _ops().services_page(page, per_page)
    response = jsonify(result)
    if page * per_page < result["total"]:
        following = url_for("api.list_services", page=page + 1, per_page=per_page)
        response.headers["Link"] = f'<{following}>; rel="next"'
    return response


def install_service() -> Any:
    """Install a package as a new service: 202 with the service and its deployment, and
    the values Berth generated for empty ``x-generate`` secrets (shown this once)."""
    actor = allow("admin")
    body = json_body("InstallRequest")
    result = _ops().install(
        actor, package=body["package"], version=body.get("version"), name=body.get("name"),
        options=body.get("options"), instances=body.get("instances"),
        constraints=body.get("constraints") or (), cluster=body.get("cluster"),
        handover=body.get("handover"))
    answer = _deployment_answer(result["deployment"], service=result["service"],
                                generated_secrets=result["generated_secrets"])
    answer.headers["Cache-Control"] = "no-store"  # generated secrets are shown this once
    return answer


def show_service(name: str) -> Any:
    """A service, desired and actual, with its instances."""
    allow("viewer")
    return jsonify(_ops().status(name))


def change_service(name: str) -> Any:
    """Scale (``instances`` alone) or upgrade (``version``, ``options`` and/or
    ``repository``, which moves the service to another repository's package)."""
    actor = allow("admin")
    body = json_body("ChangeRequest")
    if any(k in body for k in ("version", "options", "repository", "handover")):
        deployment = _ops().upgrade(actor, name, version=body.get("version"),
                                    options=body.get("options"),
                                    instances=body.get("instances"),
                                    repository=body.get("repository"),
                                    backup=bool(body.get("backup")),
                                    handover=body.get("handover"))
    elif "instances" in body:
        deployment = _ops().scale(actor, name, body["instances"])
    else:
        raise Invalid("nothing to change", details=[
            {"path": "body", "message": "give instances, or version and/or options"}])
    return _deployment_answer(deployment)


def uninstall_service(name: str) -> Any:
    """Stop and remove every instance, then the service; the answer names the volumes
    that stay (or, with ``delete_data``, that go once the containers are gone)."""
    actor = allow("admin")
    body = json_body("UninstallRequest", optional=True)
    result = _ops().uninstall(actor, name, delete_data=bool(body.get("delete_data")),
                              force=body.get("force") is True)
    return _deployment_answer(result["deployment"], delete_data=result["delete_data"],
                              volumes=result["volumes"])


def list_volumes() -> Any:
    """Berth's named volumes by service and agent, in use or left over, with sizes."""
    allow("viewer")
    return jsonify(_ops().volumes(query_str("service", max_length=100)))


def rollback_service(name: str) -> Any:
    """Return to an earlier generation (the previous one by default)."""
    actor = allow("admin")
    body = json_body("RollbackRequest", optional=True)
    return _deployment_answer(_ops().rollback(actor, name, body.get("generation"),
                                              restore_data=bool(body.get("restore_data"))))


def restart_service(name: str) -> Any:
    """Replace every instance with a fresh container."""
    actor = allow("admin")
    json_body("RestartRequest", optional=True)
    return _deployment_answer(_ops().restart(actor, name))


def service_history(name: str) -> Any:
    """The service's generations, newest last."""
    allow("viewer")
    return jsonify({"items": _ops().history(name)})


def instance_logs(name: str, instance_id: str) -> Any:
    """The container's output, read from its agent (streamed with ``follow=1``)."""
    allow("admin")
    tail = query_int("tail", 100, low=0, high=current_berth().settings.log_tail_max)
    follow = query_bool("follow")
    chunks = _ops().logs(name, instance_id, tail=tail, follow=follow)
    if not follow:
        return Response(b"".join(chunks), mimetype="text/plain")
    return Response(stream_with_context(chunks), mimetype="text/plain",
                    headers={"X-Accel-Buffering": "no", "Cache-Control": "no-store"})
