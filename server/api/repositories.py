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

from catalog.names import SERVICE_NAME, is_service_name, schema_pattern
from worker import remotes

from ..context import current_berth
from .common import Invalid, accepted, allow, json_body

_FIELDS = {"name", "url", "priority", "format", "interval"}
RESERVED = ("universe", "hosted")


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
    return jsonify({"items": repository_views()})


def show_repository(name: str) -> Any:
    """One repository."""
    allow("viewer")
    for view in repository_views():
        if view["name"] == name:
            return jsonify(view)
    current_berth().store.repositories.require(name)  # raises the 404
    return jsonify({})  # pragma: no cover - require() raised


def add_repository() -> Any:
    """Add a remote repository (admin); 202 with its pending state (a worker fetches it)."""
    actor = allow("admin")
    view = add_remote(json_body(), actor)
    return accepted(view, f"/api/v1/repositories/{view['name']}")


def add_remote(body: dict[str, Any], actor: str) -> dict[str, Any]:
    """Check a remote repository (fields, reserved names, the SSRF guard), store it
    and enqueue its first fetch; its (pending) view. The API and the store front both
    add repositories through here.

    :raises Invalid: a field is wrong (every problem listed).
    :raises UnsafeURL: the guard refuses the address.
    :raises RepositoryExists: the name is taken.
    """
    body = _check_body(dict(body))
    berth = current_berth()
    policy = remotes.RemotePolicy.of(berth.settings)
    remotes.check_url(body["url"], policy)
    store = berth.store
    store.repositories.add({"name": body["name"], "url": body["url"],
                            "priority": body["priority"], "format": body["format"],
                            "interval": body.get("interval")}, actor)
    berth.enqueue("berth.refresh_repository", [body["name"]])
    return _remote_view(store.repositories.require(body["name"]))


def remove_repository(name: str) -> Any:
    """Remove a remote repository and its copy (admin); its packages leave the catalog."""
    actor = allow("admin")
    store = current_berth().store
    store.repositories.require(name)
    store.repositories.remove(name, actor)
    return "", 204


def refresh_repository(name: str) -> Any:
    """Fetch a remote repository now (admin): conditional, so cheap when unchanged."""
    allow("admin")
    berth = current_berth()
    result = remotes.refresh(berth.store, name, remotes.RemotePolicy.of(berth.settings))
    view = _remote_view(berth.store.repositories.require(name))
    return jsonify({**view, "refresh": result})


def _check_body(body: dict[str, Any]) -> dict[str, Any]:
    """Validate an add request, every problem at once.

    :raises Invalid: listing the problems.
    """
    problems = [{"path": f"body/{k}", "message": "unknown field"}
                for k in sorted(set(body) - _FIELDS)[:10]]
    name, url = body.get("name"), body.get("url")
    if not is_service_name(name):
        problems.append({"path": "body/name", "message": "lower-case letters, digits and "
                                                         "dashes, at most 40"})
    elif name in RESERVED or name in _configured_names():
        problems.append({"path": "body/name", "message": f"{name!r} is reserved"})
    if not isinstance(url, str) or not url or len(url) > 2000:
        problems.append({"path": "body/url", "message": "an http(s) URL of at most 2000 "
                                                        "characters"})
    priority = body.setdefault("priority", 200)
    if not isinstance(priority, int) or isinstance(priority, bool) \
            or not 0 <= priority <= 100000:
        problems.append({"path": "body/priority", "message": "an integer from 0 to 100000 "
                                                             "(lower wins)"})
    if body.setdefault("format", "berth") not in ("berth", "dcos"):
        problems.append({"path": "body/format", "message": "'berth' or 'dcos'"})
    interval = body.get("interval")
    if interval is not None and (not isinstance(interval, int | float)
                                 or isinstance(interval, bool) or not 10 <= interval <= 86400):
        problems.append({"path": "body/interval", "message": "seconds from 10 to 86400"})
    if problems:
        raise Invalid("the request is invalid", details=problems)
    return body


def _configured_names() -> set[str]:
    from ..catalog_source import parse_directory_setting

    try:
        return {n for n, _, _ in parse_directory_setting(
            current_berth().settings.repository_dirs)}
    except ValueError:
        return set()


def repository_views() -> list[dict[str, Any]]:
    """The catalog's repositories merged with the remote records, by priority."""
    berth = current_berth()
    catalog = berth.catalog.get()
    records = {r["name"]: r for r in berth.store.repositories.list()}
    views = []
    for repo in catalog.repositories:
        view = {"name": repo.name, "kind": repo.kind, "priority": repo.priority,
                "packages": len({p.name for p in repo.packages}),
                "versions": len(repo.packages), "stale": bool(repo.stale),
                "error": repo.error, "fetched_at": repo.fetched_at,
                "format": "dcos" if any(p.format == "dcos" for p in repo.packages)
                else "berth"}
        if repo.name in records:
            view.update(_remote_view(records.pop(repo.name)))
        views.append(view)
    views.extend(_remote_view(r) for r in records.values())  # never fetched successfully
    return sorted(views, key=lambda v: (v["priority"], v["name"]))


def _remote_view(record: dict[str, Any]) -> dict[str, Any]:
    """A remote repository record as the API shows it."""
    return {"name": record["name"], "kind": "remote", "url": record.get("url"),
            "priority": record.get("priority"), "format": record.get("format", "berth"),
            "interval": record.get("interval"), "stale": bool(record.get("stale")),
            "pending": record.get("checked_at") is None,
            "error": record.get("error"), "error_status": record.get("error_status"),
            "fetched_at": record.get("fetched_at"), "checked_at": record.get("checked_at"),
            "packages": record.get("packages", 0)}


def _openapi() -> tuple[dict[str, Any], dict[str, Any]]:
    """This module's paths and schemas for the API document."""
    from .openapi import _error_responses, _json, _path

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
        "RepositoryRequest": {
            "type": "object", "required": ["name", "url"], "additionalProperties": False,
            "properties": {"name": {"type": "string", "pattern": schema_pattern(SERVICE_NAME)},
                           "url": {"type": "string", "maxLength": 2000},
                           "priority": {"type": "integer", "minimum": 0, "maximum": 100000},
                           "format": {"enum": ["berth", "dcos"]},
                           "interval": {"type": "number", "minimum": 10, "maximum": 86400}}},
    }
    return paths, schemas


OPENAPI_PATHS, OPENAPI_SCHEMAS = _openapi()
