"""``/services/{name}/instances/{instance}/move`` (a stateful instance to another agent,
with its data) and ``/volumes/prune`` (remove left-over volumes), with their part of
the OpenAPI document."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, url_for

from ..application import ServiceManager
from ..context import current_berth
from .common import accepted, allow, json_body
from .openapi import ACCEPTED, SERVICE_NAME, SVC, _json, _obj, _op, _path, _ref
from .schema import add_fragment


def register(bp: Blueprint) -> None:
    """Add the move and prune routes to the API blueprint."""
    bp.add_url_rule("/services/<name>/instances/<instance_id>/move", view_func=move_instance,
                    methods=["POST"])
    bp.add_url_rule("/volumes/prune", view_func=prune_volumes, methods=["POST"])
    bp.add_url_rule("/volumes/prune/<prune>", view_func=show_prune, methods=["GET"])


def _ops() -> ServiceManager:
    return current_berth().application.services


def move_instance(name: str, instance_id: str) -> Any:
    """Move an instance to agent ``to`` with its data: 202 with the ``move`` deployment.

    409 ``move_refused`` when its agent does not answer (unless ``acceptEmpty``): the
    message names the volumes whose data would be lost.
    """
    actor = allow("admin")
    body = json_body("MoveRequest")
    deployment = _ops().move(actor, name, instance_id, to=body["to"],
                             accept_empty=bool(body.get("acceptEmpty")))
    location = url_for("api.show_deployment", deployment_id=deployment["id"])
    return accepted({"deployment": deployment}, location)


def prune_volumes() -> Any:
    """Remove every left-over volume (of ``service``, on ``agent``): 202 with the request."""
    actor = allow("admin")
    body = json_body("PruneRequest", optional=True)
    record = _ops().prune_volumes(actor, service=body.get("service"),
                                  agent=body.get("agent"))
    return accepted({"prune": record}, url_for("api.show_prune", prune=record["id"]))


def show_prune(prune: str) -> Any:
    """A prune request: ``status`` (queued | done), ``removed`` and ``kept``."""
    allow("admin")
    return jsonify(_ops().prune(prune))


def _openapi() -> tuple[dict[str, Any], dict[str, Any]]:
    instance = _path("instance")
    prune_ref = _ref("Prune")
    paths = {
        "/services/{name}/instances/{instance}/move": {"post": _op(
            "moveInstance", "Move an instance to another agent with its data (admin)",
            ACCEPTED, "400 401 403 404 409 413 415 422 503", params=[SVC, instance],
            body="MoveRequest")},
        "/volumes/prune": {"post": _op(
            "pruneVolumes", "Remove left-over volumes (admin)",
            _json("Accepted: a worker removes them", _obj({"prune": prune_ref}), "202"),
            "400 401 403 404 413 415 422 503", body="PruneRequest", body_required=False)},
        "/volumes/prune/{prune}": {"get": _op(
            "showPrune", "A prune request and what it removed (admin)", _json("OK", prune_ref),
            "401 403 404 503", params=[_path("prune")])},
    }
    schemas = {
        "MoveRequest": _obj({"to": {"type": "string", "minLength": 1, "maxLength": 100},
                             "acceptEmpty": {"type": "boolean"}}, ("to",)),
        "PruneRequest": _obj({"service": SERVICE_NAME,
                              "agent": {"type": "string", "minLength": 1, "maxLength": 100}}),
        "Prune": _obj({"id": {"type": "string"}, "status": {"enum": ["queued", "done"]},
                       "service": {"type": ["string", "null"]},
                       "agent": {"type": ["string", "null"]},
                       "removed": {"type": "array", "items": {"type": "string"}},
                       "kept": {"type": "array", "items": {"type": "string"}}},
                      ("id", "status"), strict=False),
    }
    return paths, schemas


add_fragment(*_openapi())
