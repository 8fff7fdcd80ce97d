"""``/repositories``: which repositories the catalog draws from, and their health.

Every repository has a priority: a lower number wins. The highest-priority repository
that has a package name supplies all versions of that name (no mixing of versions
from several sources). Remote repositories are added by URL (admin); the server
checks the fields and the URL against the SSRF policy, stores the repository as
``pending`` and answers 202: the first fetch is a worker task
(``berth.refresh_repository``), so a slow remote never holds a request, and the
workers refresh it on an interval. A remote that fails keeps its last good copy and
is shown ``stale`` with a short reason and the HTTP status (``error_status``), never
text the remote sent; the rest of the catalog is unaffected.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from catalog.names import SERVICE_NAME, schema_pattern
from catalog.repository_fields import REMOTE_SCHEMA

from ..application.repositories import RepositoryRegistry
from ..context import current_berth
from .common import accepted, allow, json_body
from .openapi import _error_responses, _json, _path
from .schema import add_fragment


def register(bp: Blueprint) -> None:
    """Add the repository routes to the API blueprint."""
    bp.add_url_rule("/repositories", view_func=list_repositories, methods=["GET"])
    bp.add_url_rule("/repositories", view_func=add_repository, methods=["POST"])
    bp.add_url_rule("/repositories/<name>", view_func=show_repository, methods=["GET"])
    bp.add_url_rule("/repositories/<name>", view_func=remove_repository, methods=["DELETE"])
    bp.add_url_rule("/repositories/<name>/refresh", view_func=refresh_repository,
                    methods=["POST"])


def list_repositories() -> Any:
    """Every repository the catalog draws from, by priority, with its health."""
    allow("viewer")
    return jsonify({"items": _repositories().views()})


def show_repository(name: str) -> Any:
    """One repository."""
    allow("viewer")
    return jsonify(_repositories().view(name))


def add_repository() -> Any:
    """Add a remote repository (admin); 202 with its pending state (a worker fetches it)."""
    actor = allow("admin")
    view = _repositories().add(json_body(), actor)
    return accepted(view, f"/api/v1/repositories/{view['name']}")


def remove_repository(name: str) -> Any:
    """Remove a remote repository and its copy (admin); its packages leave the catalog."""
    actor = allow("admin")
    _repositories().remove_existing(name, actor)
    return "", 204


def refresh_repository(name: str) -> Any:
    """Fetch a remote repository now (admin): conditional, so cheap when unchanged."""
    allow("admin")
    return jsonify(_repositories().refresh(name))


def _repositories() -> RepositoryRegistry:
    return current_berth().application.repositories


def _openapi() -> tuple[dict[str, Any], dict[str, Any]]:
    """This module's paths and schemas for the API document."""
    ref = {"$ref": "#/components/schemas/Repository"}
    name = _path("name", {"type": "string", "pattern": schema_pattern(SERVICE_NAME)})

    def op(op_id: str, summary: str, ok: dict[str, Any], errors: str, **extra: Any) -> dict:
        return {"operationId": op_id, "summary": summary,
                "responses": {**ok, **_error_responses(errors)}, **extra}

    body = {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/RepositoryRequest"}}}}
    paths = {
        "/repositories": {
            "get": op("listRepositories", "Repositories by priority, with health",
                      _json("OK", {"type": "object", "properties": {
                          "items": {"type": "array", "items": ref}}}), "401 403 503"),
            "post": op("addRepository", "Add a remote repository (admin)",
                       _json("Added; the first fetch is queued", ref, "202"),
                       "400 401 403 409 413 415 422 503",
                       requestBody=body)},
        "/repositories/{name}": {
            "get": op("showRepository", "One repository", _json("OK", ref), "401 403 404 503",
                      parameters=[name]),
            "delete": op("removeRepository", "Remove a remote repository (admin)",
                         {"204": {"description": "Removed"}}, "401 403 404 503",
                         parameters=[name])},
        "/repositories/{name}/refresh": {"post": op(
            "refreshRepository", "Fetch a remote repository now (admin)", _json("OK", ref),
            "401 403 404 503", parameters=[name])},
    }
    schemas = {
        "Repository": {"type": "object", "required": ["name", "priority"], "properties": {
            "name": {"type": "string"}, "kind": {"type": "string"},
            "priority": {"type": ["integer", "null"]}, "stale": {"type": "boolean"},
            "pending": {"type": "boolean"}, "error": {"type": ["string", "null"]},
            "error_status": {"type": ["integer", "null"]}}},
        "RepositoryRequest": REMOTE_SCHEMA,
    }
    return paths, schemas


add_fragment(*_openapi())
