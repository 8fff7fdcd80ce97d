"""The OpenAPI 3.1 document of ``/api/v1``, built in code from small pieces.

The request schemas here are the ones the views validate bodies against
(:func:`server.api.common.json_body`), so the document cannot drift from what the
server accepts. Record schemas list the fields clients rely on and allow more.
"""

from __future__ import annotations

from typing import Any

from catalog import names
from catalog.names import schema_pattern

NAME = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"}
SERVICE_NAME = {"type": "string", "pattern": schema_pattern(names.SERVICE_NAME)}
VERSION = {"type": "string", "minLength": 1, "maxLength": 100}
INSTANCES = {"type": "integer", "minimum": 0, "maximum": 1000}
OPTIONS = {"type": "object", "maxProperties": 200,
           "description": "Install options, validated against the package's config schema."}
CONSTRAINTS = {"type": "array", "maxItems": 20, "items": {
    "type": "array", "minItems": 2, "maxItems": 3,
    "items": {"type": "string", "minLength": 1, "maxLength": 200}},
    "description": "Added to the package's own, e.g. [[\"hostname\", \"MAX_PER\", \"2\"]]."}
HANDOVER = {"type": "array", "maxItems": 50, "uniqueItems": True,
            "items": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_-]{0,63}$"},
            "description": "The linked options (x-berth-service) whose credentials the "
                           "admin confirms handing over to this service."}


def _obj(properties: dict[str, Any], required: tuple[str, ...] = (), *,
         strict: bool = True, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = list(required)
    if strict:
        schema["additionalProperties"] = False
    return schema


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _items(name: str) -> dict[str, Any]:
    return _obj({"items": {"type": "array", "items": _ref(name)}}, ("items",), strict=False)


SCHEMAS: dict[str, Any] = {
    "Error": _obj({
        "error": {"type": "string"}, "message": {"type": "string"},
        "details": {"type": "array", "items": _obj(
            {"path": {"type": "string"}, "message": {"type": "string"}},
            ("path", "message"), strict=False)},
        "hint": {"type": "string"}}, ("error", "message", "details"), strict=False),
    "RenderRequest": _obj({"version": VERSION, "options": OPTIONS, "instances": INSTANCES,
                           "name": SERVICE_NAME, "constraints": CONSTRAINTS}),
    "InstallRequest": _obj({"package": NAME, "version": VERSION, "name": SERVICE_NAME,
                            "options": OPTIONS, "instances": INSTANCES,
                            "constraints": CONSTRAINTS, "handover": HANDOVER,
                            "cluster": {**SERVICE_NAME, "description": (
                                "Where it runs: a cluster's name (default: Berth's own "
                                "agents).")}}, ("package",)),
    "ChangeRequest": _obj({"instances": INSTANCES, "version": VERSION, "options": OPTIONS,
                           "repository": {**NAME, "description": "Upgrade from this "
                                          "repository instead of the service's own."},
                           "backup": {"type": "boolean", "description": "Back the named "
                                      "volumes up first (an upgrade only)."},
                           "handover": HANDOVER},
                          minProperties=1),
    "RollbackRequest": _obj({"generation": {"type": "integer", "minimum": 1,
                                            "maximum": 1000000},
                             "restore_data": {"type": "boolean", "description": "Restore "
                                              "that generation's newest backup too."}}),
    "RestartRequest": _obj({}),
    "UninstallRequest": _obj({"delete_data": {"type": "boolean"},
                              "force": {"type": "boolean"}}),
    "AgentRequest": _obj({
        "url": {"type": "string", "maxLength": 500,
                "pattern": "^(tcp|unix|ssh|http|https)://[^\\s]+$"},
        "id": SERVICE_NAME,
        "attributes": {"type": "object", "maxProperties": 50,
                       "propertyNames": {"pattern": "^[A-Za-z0-9_.-]{1,64}$"},
                       "additionalProperties": {"type": "string", "maxLength": 200}},
        "capacity": _obj({"cpus": {"type": "number", "exclusiveMinimum": 0, "maximum": 1024},
                          "mem": {"type": "integer", "minimum": 1,
                                  "maximum": 1 << 30}}),
        "port_range": {"type": "array", "minItems": 2, "maxItems": 2,
                       "items": {"type": "integer", "minimum": 1, "maximum": 65535}},
    }, ("url",)),
    "PackageSummary": _obj({"name": {"type": "string"}, "version": {"type": "string"},
                            "description": {"type": "string"}}, ("name", "version"),
                           strict=False),
    "Package": _obj({"name": {"type": "string"}, "version": {"type": "string"},
                     "config": {"type": "object"}}, ("name", "version"), strict=False),
    "VersionEntry": _obj({"version": {"type": "string"},
                          "yanked": {"type": ["string", "null"]}}, ("version",), strict=False),
    "SearchPage": _obj({"items": {"type": "array", "items": _ref("PackageSummary")},
                        "total": {"type": "integer", "minimum": 0},
                        "page": {"type": "integer", "minimum": 1},
                        "per_page": {"type": "integer"}}, ("items", "total", "page"),
                       strict=False),
    "Rendered": _obj({"spec": {"type": "object"}, "options": {"type": "object"},
                      "name": {"type": "string"}, "package": {"type": "object"}},
                     ("spec",), strict=False),
    "Service": _obj({"name": {"type": "string"}, "package": {"type": "object"},
                     "instances": {"type": "integer"}, "status": {"type": "string"},
                     "generation": {"type": "integer"}}, ("name",), strict=False),
    "ServicePage": _obj({"items": {"type": "array", "items": _ref("Service")},
                         "total": {"type": "integer", "minimum": 0},
                         "page": {"type": "integer", "minimum": 1},
                         "per_page": {"type": "integer"}}, ("items", "total", "page"),
                        strict=False),
    "Instance": _obj({"id": {"type": "string"}, "agent": {"type": ["string", "null"]},
                      "state": {"type": "string"}, "health": {"type": "string"},
                      "ports": {"type": "object"}}, ("id",), strict=False),
    "ServiceStatus": {"allOf": [_ref("Service"), _obj(
        {"instances_list": {"type": "array", "items": _ref("Instance")},
         "counts": {"type": "object"}}, ("instances_list",),
        strict=False)]},
    "Deployment": _obj({
        "id": {"type": "string"}, "service": {"type": "string"},
        "kind": {"type": "string"},
        "status": {"enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
        "steps": {"type": "array"}, "progress": {"type": "object"}},
        ("id", "status"), strict=False),
    "Accepted": _obj({"deployment": _ref("Deployment"), "service": _ref("Service"),
                      "generated_secrets": {
                          "type": "array", "description": "An install's generated secret "
                          "values, in clear: shown this once",
                          "items": _obj({"path": {"type": "string"}, "value": {
                              "type": "string"}}, ("path", "value"), strict=False)}},
                     ("deployment",), strict=False),
    "Volume": _obj({"name": {"type": "string"}, "service": {"type": "string"},
                    "agent": {"type": "string"},
                    "size": {"type": ["integer", "null"], "description":
                             "bytes; null when the engine does not report it"},
                    "in_use": {"type": "boolean"},
                    "state": {"enum": ["in use", "left over"]},
                    "service_installed": {"type": "boolean"}},
                   ("name", "service", "agent", "size", "in_use", "state"), strict=False),
    "Agent": _obj({"id": {"type": "string"}, "url": {"type": "string"},
                   "state": {"type": "string"}}, ("id",), strict=False),
    "Identity": _obj({"kind": {"enum": ["token", "user", "anonymous"]},
                      "role": {"type": "string"}, "actor": {"type": "string"}},
                     ("kind", "role", "actor"), strict=False),
}

_ERRORS = {"400": "Malformed request", "401": "No valid credentials",
           "403": "Role too low", "404": "Not found", "409": "Conflict",
           "413": "Body too large", "415": "Not JSON", "422": "Invalid request (every problem)",
           "429": "Too many requests (Retry-After)",
           "503": "Redis, the broker or an agent cannot be reached"}


def _error_responses(codes: str) -> dict[str, Any]:
    out = {code: {"description": _ERRORS[code], "content": {
        "application/json": {"schema": _ref("Error")}}} for code in codes.split()}
    out["default"] = {"description": "Any other error",
                      "content": {"application/json": {"schema": _ref("Error")}}}
    return out


def _json(description: str, schema: dict[str, Any], status: str = "200") -> dict[str, Any]:
    return {status: {"description": description,
                     "content": {"application/json": {"schema": schema}}}}


def _op(op_id: str, summary: str, ok: dict[str, Any], errors: str = "401 403 503", *,
        params: list[dict[str, Any]] | None = None, body: str | None = None,
        body_required: bool = True, **extra: Any) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": op_id, "summary": summary,
                                 "responses": {**ok, **_error_responses(errors)}, **extra}
    if params:
        operation["parameters"] = params
    if body:
        operation["requestBody"] = {"required": body_required, "content": {
            "application/json": {"schema": _ref(body)}}}
    return operation


def _path(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True,
            "schema": schema or {"type": "string", "minLength": 1, "maxLength": 100}}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


PAGE = _query("page", {"type": "integer", "minimum": 1, "maximum": 100000})
PER_PAGE = _query("per_page", {"type": "integer", "minimum": 1, "maximum": 100})
SERVICES_PER_PAGE = _query("per_page", {"type": "integer", "minimum": 1, "maximum": 500})
PKG = _path("name", NAME)
SVC = _path("name")
ACCEPTED = {"202": {"description": "Accepted: a deployment was started",
                    "headers": {"Location": {"schema": {"type": "string"}}},
                    "content": {"application/json": {"schema": _ref("Accepted")}}}}


def _paths() -> dict[str, Any]:
    text = {"200": {"description": "OK", "content": {"text/plain": {"schema": {
        "type": "string"}}}}}
    return {
        "/healthz": {"get": _op("healthz", "The process is up", _json("OK", {"type": "object"}),
                                "", security=[{}])},
        "/readyz": {"get": _op("readyz", "Redis and the broker answer",
                               _json("Ready", {"type": "object"}), "503", security=[{}])},
        "/metrics": {"get": _op("metrics", "Prometheus text", text, "503", security=[{}])},
        "/openapi.json": {"get": _op("openapi", "This document",
                                     _json("OK", {"type": "object"}), "", security=[{}])},
        "/whoami": {"get": _op("whoami", "The caller's identity", _json("OK", _ref("Identity")),
                               "401 503")},
        "/packages": {"get": _op("searchPackages", "Search the catalog",
                                 _json("A page of results", _ref("SearchPage")),
                                 "401 403 422 503", params=[
                                     _query("q", {"type": "string", "maxLength": 200}),
                                     _query("tag", {"type": "string", "maxLength": 200}),
                                     _query("repository", {"type": "string", "maxLength": 200}),
                                     PAGE, PER_PAGE])},
        "/tags": {"get": _op("listTags", "Tags with counts", _json("OK", {"type": "object"}))},
        "/packages/{name}": {"get": _op("showPackage", "The newest version with the versions",
                                        _json("OK", _ref("Package")), "401 403 404 503",
                                        params=[PKG])},
        "/packages/{name}/versions": {"get": _op(
            "listVersions", "Every version, newest first", _json("OK", _items("VersionEntry")),
            "401 403 404 503", params=[PKG])},
        "/packages/{name}/versions/{version}": {"get": _op(
            "showVersion", "One version in full", _json("OK", _ref("Package")),
            "401 403 404 422 503", params=[PKG, _path("version", VERSION)])},
        "/packages/{name}/render": {"post": _op(
            "renderPackage", "The spec an install would write (secrets masked)",
            _json("OK", _ref("Rendered")), "400 401 403 404 413 415 422 429 503",
            params=[PKG], body="RenderRequest", body_required=False)},
        "/services": {
            "get": _op("listServices", "A page of services by name, with counts",
                       _json("OK", _ref("ServicePage")), "401 403 422 503",
                       params=[PAGE, SERVICES_PER_PAGE]),
            "post": _op("installService", "Install a package as a service (admin)", ACCEPTED,
                        "400 401 403 404 409 413 415 422 503", body="InstallRequest")},
        "/services/{name}": {
            "get": _op("showService", "Desired and actual state with instances",
                       _json("OK", _ref("ServiceStatus")), "401 403 404 503", params=[SVC]),
            "patch": _op("changeService", "Scale, or upgrade to a version and/or options",
                         ACCEPTED, "400 401 403 404 409 413 415 422 503", params=[SVC],
                         body="ChangeRequest"),
            "delete": _op("uninstallService", "Uninstall (admin); named volumes stay "
                          "unless delete_data", ACCEPTED,
                          "400 401 403 404 409 413 415 422 503", params=[SVC],
                          body="UninstallRequest", body_required=False)},
        "/services/{name}/rollback": {"post": _op(
            "rollbackService", "Return to an earlier generation", ACCEPTED,
            "400 401 403 404 409 413 415 422 503", params=[SVC], body="RollbackRequest",
            body_required=False)},
        "/services/{name}/restart": {"post": _op(
            "restartService", "Replace every instance", ACCEPTED,
            "400 401 403 404 409 413 415 422 503", params=[SVC], body="RestartRequest",
            body_required=False)},
        "/services/{name}/history": {"get": _op(
            "serviceHistory", "Generations, newest last", _json("OK", _items("Service")),
            "401 403 404 503", params=[SVC])},
        "/services/{name}/instances/{instance}/logs": {"get": _op(
            "instanceLogs", "The container's output (admin)", text, "401 403 404 422 503",
            params=[SVC, _path("instance"),
                    _query("tail", {"type": "integer", "minimum": 0, "maximum": 10000}),
                    _query("follow", {"type": "boolean"})])},
        "/deployments": {"get": _op("listDeployments", "Recent deployments, newest first",
                                    _json("OK", _items("Deployment")), "401 403 422 503",
                                    params=[_query("service", {"type": "string",
                                                               "maxLength": 100}),
                                            _query("limit", {"type": "integer", "minimum": 1,
                                                             "maximum": 500})])},
        "/deployments/{id}": {
            "get": _op("showDeployment", "Status, steps, progress, error",
                       _json("OK", _ref("Deployment")), "401 403 404 503",
                       params=[_path("id")]),
            "delete": _op("cancelDeployment", "Cancel (admin)", _json("OK", _ref("Deployment")),
                          "401 403 404 409 503", params=[_path("id")])},
        "/volumes": {"get": _op(
            "listVolumes", "Berth's named volumes by service and agent, with sizes",
            _json("OK", _obj({"volumes": {"type": "array", "items": _ref("Volume")},
                              "unreachable": {"type": "array",
                                              "items": {"type": "string"}}},
                             strict=False)),
            "400 401 403 503", params=[_query("service", {"type": "string",
                                                           "maxLength": 100})])},
        "/agents": {
            "get": _op("listAgents", "Every agent", _json("OK", _items("Agent"))),
            "post": _op("addAgent", "Register a Docker engine (admin)",
                        _json("Registered", _ref("Agent"), "201"),
                        "400 401 403 409 413 415 422 503", body="AgentRequest")},
        "/agents/{id}": {
            "get": _op("showAgent", "One agent", _json("OK", _ref("Agent")), "401 403 404 503",
                       params=[_path("id")]),
            "delete": _op("removeAgent", "Remove an agent (admin)",
                          {"204": {"description": "Removed"}}, "401 403 404 409 503",
                          params=[_path("id"), _query("force", {"type": "boolean"})])},
        "/agents/{id}/drain": {"post": _op(
            "drainAgent", "Move instances away, place nothing new (admin)",
            _json("OK", {"type": "object"}), "401 403 404 409 503", params=[_path("id")])},
        "/events": {"get": _op(
            "events", "Server-sent state changes, resumable with Last-Event-ID",
            {"200": {"description": "text/event-stream",
                     "content": {"text/event-stream": {"schema": {"type": "string"}}}}},
            "401 403 422 503", params=[
                {"name": "Last-Event-ID", "in": "header", "required": False,
                 "schema": {"type": "string", "pattern": "^[0-9]{1,15}-[0-9]{1,5}$"}},
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                _query("timeout", {"type": "integer", "minimum": 0, "maximum": 600}),
                _query("type", {"type": "string", "maxLength": 100})])},
    }


def document(extra_paths: dict[str, Any] | None = None) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document (``extra_paths``: routes other modules add)."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Berth API", "version": "1",
                 "description": "Browse the catalog, install and manage services, agents "
                                "and repositories. Errors are {error, message, details}."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}, {}],
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "berth_<id>_<secret>, from `berth admin token create`"}}},
        "paths": {**_paths(), **(extra_paths or {})},
    }
