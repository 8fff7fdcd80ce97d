"""``/packages/<name>/owners``: who a package name belongs to, and an admin's changes.

A name belongs to the repositories that may serve it (the first one that served it)
and, in ``hosted``, to the maintainers (tokens or users) that may publish and yank it
(the first one that published it). Anyone with the maintainer role may read a name's
owners, to know whom to ask; only an admin shares, unshares or transfers a name.
Tokens are named by id or, when exactly one token has it, by name; they are stored
by id (``token:<id>``), so a token that is revoked and created again must be shared
again.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from catalog.names import schema_pattern

from ..application.publishing import OWNER_KINDS as KINDS
from ..application.publishing import PACKAGE_NAME, Publisher
from ..context import current_berth
from .common import allow, json_body
from .openapi import _error_responses, _json, _path
from .schema import add_fragment


def register(bp: Blueprint) -> None:
    """Add the ownership routes to the API blueprint."""
    bp.add_url_rule("/packages/<name>/owners", view_func=show_owners, methods=["GET"])
    bp.add_url_rule("/packages/<name>/owners", view_func=add_owner, methods=["POST"])
    bp.add_url_rule("/packages/<name>/owners/<kind>/<value>", view_func=remove_owner,
                    methods=["DELETE"])
    bp.add_url_rule("/packages/<name>/owners/transfer", view_func=transfer_owner,
                    methods=["POST"])


def show_owners(name: str) -> Any:
    """The repositories and maintainers a package name belongs to."""
    allow("maintainer")
    return jsonify(_publishing().owners(name))


def add_owner(name: str) -> Any:
    """Share a name with a token, a user (both publish to ``hosted``) or a repository."""
    actor = allow("admin")
    body = json_body("OwnerRequest")
    kind = next(k for k in KINDS if k in body)  # the schema allows exactly one
    return jsonify(_publishing().add_owner(name, kind, str(body[kind]), actor))


def remove_owner(name: str, kind: str, value: str) -> Any:
    """Stop sharing a name with a token, a user or a repository."""
    actor = allow("admin")
    return jsonify(_publishing().remove_owner(name, kind, value, actor))


def transfer_owner(name: str) -> Any:
    """Give a name to one repository alone (new installs come from it from now on)."""
    actor = allow("admin")
    body = json_body("TransferRequest")
    return jsonify(_publishing().transfer_owner(name, body["repository"], actor))


def _publishing() -> Publisher:
    return current_berth().application.publishing


def _openapi() -> tuple[dict[str, Any], dict[str, Any]]:
    """This module's paths and schemas for the API document."""
    name = _path("name", {"type": "string", "pattern": schema_pattern(PACKAGE_NAME)})
    ok = _json("The name's owners", {"$ref": "#/components/schemas/Owners"})
    changes = "400 401 403 404 409 413 415 422 503"

    def op(op_id: str, summary: str, errors: str, body: str | None = None,
           params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        found: dict[str, Any] = {"operationId": op_id, "summary": summary,
                                 "parameters": [name, *(params or [])],
                                 "responses": {**ok, **_error_responses(errors)}}
        if body:
            found["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{body}"}}}}
        return found

    paths = {
        "/packages/{name}/owners": {
            "get": op("showOwners", "Who a package name belongs to (maintainer)",
                      "401 403 404 503"),
            "post": op("addOwner", "Share a name with a token, user or repository (admin)",
                       changes, "OwnerRequest")},
        "/packages/{name}/owners/{kind}/{value}": {"delete": op(
            "removeOwner", "Stop sharing a name (admin)", "401 403 404 409 503",
            params=[_path("kind", {"enum": list(KINDS)}), _path("value")])},
        "/packages/{name}/owners/transfer": {"post": op(
            "transferOwner", "Give a name to one repository alone (admin)", changes,
            "TransferRequest")},
    }
    text = {"type": "string", "minLength": 1, "maxLength": 100}
    schemas = {
        "OwnerRequest": {"type": "object", "additionalProperties": False,
                         "minProperties": 1, "maxProperties": 1,
                         "properties": {k: text for k in KINDS}},
        "TransferRequest": {"type": "object", "additionalProperties": False,
                            "required": ["repository"], "properties": {"repository": text}},
        "Owners": {"type": "object", "required": ["name", "repositories", "maintainers"],
                   "properties": {
                       "name": {"type": "string"},
                       "repositories": {"type": "array", "items": {"type": "string"}},
                       "maintainers": {"type": "array", "items": {
                           "type": "object", "properties": {
                               "id": {"type": "string"}, "kind": {"type": "string"},
                               "name": {"type": "string"}}}},
                       "resolves_to": {"type": ["string", "null"]},
                       "also_in": {"type": "array", "items": {"type": "string"}}}},
    }
    return paths, schemas


add_fragment(*_openapi())
