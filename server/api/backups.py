"""``/backups`` and ``/services/{name}/backups``: backups of services' named volumes.

- ``POST /services/{name}/backups`` (admin) takes one: 202 with the backup and the
  deployment that copies it (``{"instance", "keep", "force"}``, all optional);
- ``GET /services/{name}/backups`` — that service's backups, newest first;
- ``GET /backups`` (``?service=``), ``GET /backups/{id}`` — every backup, one backup;
- ``POST /backups/{id}/restore`` (admin, ``{"to", "agent", "force"}``) — 202 with the
  restore deployment (into the backup's own service unless ``to`` names another; onto
  ``agent`` when given);
- ``DELETE /backups/{id}`` (admin) — 202; a worker removes its files, then the record;
- ``GET /backups/{id}/download`` (admin) — the backup as ``.tar.gz``, streamed from
  the backup store through the server, never whole in memory.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, stream_with_context, url_for

from catalog.names import SERVICE_NAME, schema_pattern

from ..application.backups import MAX_KEEP, BackupManager
from ..context import current_berth
from .common import accepted, allow, json_body, query_str
from .openapi import _error_responses, _json, _path, _query
from .schema import add_fragment


def register(bp: Blueprint) -> None:
    """Add the backup routes to the API blueprint."""
    bp.add_url_rule("/backups", view_func=list_backups, methods=["GET"])
    bp.add_url_rule("/backups/<backup_id>", view_func=show_backup, methods=["GET"])
    bp.add_url_rule("/backups/<backup_id>", view_func=delete_backup, methods=["DELETE"])
    bp.add_url_rule("/backups/<backup_id>/restore", view_func=restore_backup,
                    methods=["POST"])
    bp.add_url_rule("/backups/<backup_id>/download", view_func=download_backup,
                    methods=["GET"])
    bp.add_url_rule("/services/<name>/backups", view_func=service_backups, methods=["GET"])
    bp.add_url_rule("/services/<name>/backups", view_func=create_backup, methods=["POST"])


def _backups() -> BackupManager:
    return current_berth().application.backups


def list_backups() -> Any:
    """Every backup (of one service with ``?service=``), newest first."""
    allow("viewer")
    return jsonify({"items": _backups().list(query_str("service", max_length=100))})


def service_backups(name: str) -> Any:
    """One service's backups, newest first (also after it was uninstalled)."""
    allow("viewer")
    return jsonify({"items": _backups().list(name)})


def show_backup(backup_id: str) -> Any:
    """One backup: service, package and version, generation, options (masked), size,
    checksum, time and where it is kept."""
    allow("viewer")
    return jsonify(_backups().show(backup_id))


def create_backup(name: str) -> Any:
    """Take a backup of the service's named volumes: 202 with the backup and deployment."""
    actor = allow("admin")
    body = json_body("BackupRequest", optional=True)
    result = _backups().create(actor, name, instance=body.get("instance"),
                               keep=body.get("keep"), force=bool(body.get("force")))
    location = url_for("api.show_backup", backup_id=result["backup"]["id"])
    return accepted(result, location)


def restore_backup(backup_id: str) -> Any:
    """Restore a backup into its service (or ``to``): 202 with the deployment."""
    actor = allow("admin")
    body = json_body("RestoreRequest", optional=True)
    deployment = _backups().restore(actor, backup_id, to=body.get("to"),
                                    force=bool(body.get("force")), agent=body.get("agent"))
    location = url_for("api.show_deployment", deployment_id=deployment["id"])
    return accepted({"deployment": deployment}, location)


def delete_backup(backup_id: str) -> Any:
    """Delete a backup (its files, then its record): 202 with it marked ``deleting``."""
    actor = allow("admin")
    return accepted({"backup": _backups().delete(actor, backup_id)})


def download_backup(backup_id: str) -> Any:
    """The backup as a ``.tar.gz`` (``backup.json`` and ``<volume>/…``), streamed."""
    allow("admin")
    chunks = _backups().download(backup_id)
    return Response(stream_with_context(chunks), mimetype="application/gzip", headers={
        "Content-Disposition": f'attachment; filename="{backup_id}.tar.gz"',
        "X-Accel-Buffering": "no", "Cache-Control": "no-store"})


def _openapi() -> tuple[dict[str, Any], dict[str, Any]]:
    """This module's paths and schemas for the API document."""
    ref = {"$ref": "#/components/schemas/Backup"}
    items = {"type": "object", "properties": {"items": {"type": "array", "items": ref}}}
    backup_id = _path("backup_id", {"type": "string", "pattern": "^b-[0-9a-f]{12}$"})
    name = _path("name", {"type": "string", "pattern": schema_pattern(SERVICE_NAME)})
    deployment = {"$ref": "#/components/schemas/Deployment"}

    def op(op_id: str, summary: str, ok: dict[str, Any], errors: str, **extra: Any) -> dict:
        return {"operationId": op_id, "summary": summary,
                "responses": {**ok, **_error_responses(errors)}, **extra}

    def body(schema: str) -> dict[str, Any]:
        return {"required": False, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{schema}"}}}}

    gzip = {"200": {"description": "The backup as .tar.gz", "content": {
        "application/gzip": {"schema": {"type": "string", "format": "binary"}}}}}
    paths = {
        "/backups": {"get": op("listBackups", "Every backup, newest first",
                               _json("OK", items), "400 401 403 503",
                               parameters=[_query("service", {"type": "string"})])},
        "/backups/{backup_id}": {
            "get": op("showBackup", "One backup", _json("OK", ref), "401 403 404 503",
                      parameters=[backup_id]),
            "delete": op("deleteBackup", "Delete a backup (admin)",
                         _json("Deleting", {"type": "object"}, "202"),
                         "401 403 404 409 503", parameters=[backup_id])},
        "/backups/{backup_id}/restore": {"post": op(
            "restoreBackup", "Restore a backup into its service or another (admin)",
            _json("Restore deployment queued", {"type": "object", "properties": {
                "deployment": deployment}}, "202"),
            "400 401 403 404 409 415 422 503", parameters=[backup_id],
            requestBody=body("RestoreRequest"))},
        "/backups/{backup_id}/download": {"get": op(
            "downloadBackup", "Download a backup as .tar.gz (admin)", gzip,
            "401 403 404 422 503", parameters=[backup_id])},
        "/services/{name}/backups": {
            "get": op("serviceBackups", "A service's backups", _json("OK", items),
                      "401 403 503", parameters=[name]),
            "post": op("createBackup", "Back up a service's named volumes (admin)",
                       _json("Backup queued", {"type": "object", "properties": {
                           "backup": ref, "deployment": deployment}}, "202"),
                       "400 401 403 404 409 415 422 503", parameters=[name],
                       requestBody=body("BackupRequest"))},
    }
    schemas = {
        "Backup": {"type": "object", "required": ["id", "service", "status"], "properties": {
            "id": {"type": "string"}, "service": {"type": "string"},
            "package": {"type": "object"}, "generation": {"type": "integer"},
            "options": {"type": "object"}, "instance": {"type": ["string", "null"]},
            "agent": {"type": ["string", "null"]}, "volumes": {"type": "array"},
            "size": {"type": ["integer", "null"]}, "checksum": {"type": ["string", "null"]},
            "status": {"enum": ["queued", "running", "succeeded", "failed", "deleting"]},
            "consistency": {"enum": ["stopped", "hook"]}, "store": {"type": "object"},
            "created_at": {"type": "number"}, "finished_at": {"type": ["number", "null"]}}},
        "BackupRequest": {"type": "object", "additionalProperties": False, "properties": {
            "instance": {"type": "string", "maxLength": 100},
            "keep": {"type": "integer", "minimum": 1, "maximum": MAX_KEEP},
            "force": {"type": "boolean"}}},
        "RestoreRequest": {"type": "object", "additionalProperties": False, "properties": {
            "to": {"type": "string", "pattern": schema_pattern(SERVICE_NAME)},
            "agent": {"type": "string", "minLength": 1, "maxLength": 100,
                      "description": "Write the data onto this agent and run the "
                                     "instances there (the old copy stays)"},
            "force": {"type": "boolean"}}},
    }
    return paths, schemas


add_fragment(*_openapi())
