"""``POST /services/{name}/smoke``: run the service's package-declared smoke test.

``berth package test --cluster URL`` calls it after an install and after an upgrade.
Admins only, like install: the command runs inside the service's containers. Only the
installed package version's ``tests.smoke`` runs; the request carries no command.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from ..application.smoke import SmokeTests
from ..context import current_berth
from .common import allow
from .openapi import _error_responses, _json, _path
from .schema import add_fragment


def register(bp: Blueprint) -> None:
    """Add the smoke-test route to the API blueprint."""
    bp.add_url_rule("/services/<name>/smoke", view_func=smoke_service, methods=["POST"])


def smoke_service(name: str) -> Any:
    """Run the smoke test on every running instance: 200 with each outcome."""
    allow("admin")
    berth = current_berth()
    return jsonify(SmokeTests(berth, berth.application.services).run(name))


def _openapi() -> tuple[dict[str, Any], dict[str, Any]]:
    """This module's path and schema for the API document."""
    smoke = {"operationId": "smokeService",
             "summary": "Run the service's package-declared smoke test (admin)",
             "parameters": [_path("name", {"type": "string"})],
             "responses": {**_json("Each instance's outcome",
                                   {"$ref": "#/components/schemas/SmokeResult"}),
                           **_error_responses("401 403 404 409 503")}}
    result = {"type": "object", "required": ["service", "passed", "results"], "properties": {
        "service": {"type": "string"}, "package": {"type": "object"},
        "smoke": {"type": "object"}, "passed": {"type": "boolean"},
        "results": {"type": "array", "items": {"type": "object", "properties": {
            "instance": {"type": "string"}, "agent": {"type": ["string", "null"]},
            "ok": {"type": "boolean"}, "message": {"type": "string"}}}}}}
    return {"/services/{name}/smoke": {"post": smoke}}, {"SmokeResult": result}


add_fragment(*_openapi())
