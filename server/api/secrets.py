"""``/services/<name>/secrets``: a service's secret option values in clear, for admins.

Every other view masks them (``server.masking``); this one shows them, to the admin
role only (403 for lower roles, 401 anonymous), and writes each showing to the audit
stream (``service.secrets_revealed``: who, when, which service and option paths). The
answer is never cached (``Cache-Control: no-store``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from ..context import current_berth
from .common import allow
from .openapi import _error_responses, _json, _obj, _path
from .schema import add_fragment

SECRET = _obj({"path": {"type": "string", "description": "The option's path, e.g. "
                                                        "/auth/password"},
               "value": {"description": "The value in clear"},
               "generated": {"type": "boolean",
                             "description": "Berth made it (x-generate)"}},
              ("path", "value", "generated"), strict=False)

add_fragment({"/services/{name}/secrets": {"get": {
    "operationId": "revealSecrets",
    "summary": "The service's secret option values in clear (admin; audited)",
    "parameters": [_path("name")],
    "responses": {**_json("OK", _obj({
        "service": {"type": "string"}, "generation": {"type": "integer"},
        "secrets": {"type": "array", "items": {"$ref": "#/components/schemas/Secret"}}},
        ("service", "secrets"), strict=False)), **_error_responses("401 403 404 503")}}}},
    {"Secret": SECRET})


def register(bp: Blueprint) -> None:
    """Add the secrets route to the API blueprint."""
    bp.add_url_rule("/services/<name>/secrets", view_func=reveal_secrets, methods=["GET"])


def reveal_secrets(name: str) -> Any:
    """Show the service's secret values to an admin; the showing is audited."""
    actor = allow("admin")
    answer = jsonify(current_berth().application.services.reveal_secrets(actor, name))
    answer.headers["Cache-Control"] = "no-store"
    return answer
