"""``/registries``: image registries Berth pulls from with credentials (admin only).

``POST`` stores a host with an optional username and password (the password sealed
with the data key at once; adding a known host replaces its credentials: 200, a new
one 201). ``GET`` lists hosts and usernames — never a password, sealed or not.
``DELETE /registries/<host>`` forgets one. Workers send the credentials to the
engines with each pull of an image on that host (docker-py's ``auth_config``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from ..application.registries import MAX_USERNAME, RegistryManager
from ..context import current_berth
from .common import allow, json_body
from .openapi import _error_responses, _json, _path
from .schema import add_fragment


def register(bp: Blueprint) -> None:
    """Add the registry routes to the API blueprint."""
    bp.add_url_rule("/registries", view_func=list_registries, methods=["GET"])
    bp.add_url_rule("/registries", view_func=add_registry, methods=["POST"])
    bp.add_url_rule("/registries/<host>", view_func=remove_registry, methods=["DELETE"])


def list_registries() -> Any:
    """Every registry: host and username (admin)."""
    allow("admin")
    return jsonify({"items": _registries().views()})


def add_registry() -> Any:
    """Add a registry or replace its credentials (admin)."""
    actor = allow("admin")
    view, created = _registries().add(json_body("RegistryRequest"), actor)
    response = jsonify(view)
    response.status_code = 201 if created else 200
    return response


def remove_registry(host: str) -> Any:
    """Forget a registry and its credentials (admin)."""
    actor = allow("admin")
    _registries().remove(host, actor)
    return "", 204


def _registries() -> RegistryManager:
    return current_berth().application.registries


def _openapi() -> tuple[dict[str, Any], dict[str, Any]]:
    """This module's paths and schemas for the API document."""
    ref = {"$ref": "#/components/schemas/Registry"}
    host = _path("host", {"type": "string", "minLength": 1, "maxLength": 255})

    def op(op_id: str, summary: str, ok: dict[str, Any], errors: str, **extra: Any) -> dict:
        return {"operationId": op_id, "summary": summary,
                "responses": {**ok, **_error_responses(errors)}, **extra}

    body = {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/RegistryRequest"}}}}
    paths = {
        "/registries": {
            "get": op("listRegistries", "Image registries: host and username (admin)",
                      _json("OK", {"type": "object", "properties": {
                          "items": {"type": "array", "items": ref}}}), "401 403 503"),
            "post": op("addRegistry", "Add a registry or replace its credentials (admin)",
                       {**_json("Added", ref, "201"), **_json("Credentials replaced", ref)},
                       "400 401 403 413 415 422 503", requestBody=body)},
        "/registries/{host}": {
            "delete": op("removeRegistry", "Forget a registry and its credentials (admin)",
                         {"204": {"description": "Removed"}}, "401 403 404 422 503",
                         parameters=[host])},
    }
    text = {"type": ["string", "null"]}
    schemas = {
        "Registry": {"type": "object", "required": ["host"], "properties": {
            "host": {"type": "string"}, "username": text,
            "created_at": {"type": ["number", "null"]}, "created_by": text,
            "updated_at": {"type": ["number", "null"]}, "updated_by": text}},
        # the password's own rules are checked in the application layer, whose
        # messages never repeat it (a schema message would quote the value)
        "RegistryRequest": {"type": "object", "required": ["host"],
                            "additionalProperties": False, "properties": {
            "host": {"type": "string", "minLength": 1, "maxLength": 255,
                     "description": "name[:port], e.g. registry.example.com:5000"},
            "username": {"type": ["string", "null"], "maxLength": MAX_USERNAME},
            "password": {"type": ["string", "null"], "writeOnly": True}}},
    }
    return paths, schemas


add_fragment(*_openapi())
