"""``/deployments``: progress of installs and changes; cancel one."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from ..application import ServiceManager
from ..context import current_berth
from .common import allow, query_int, query_str


def register(bp: Blueprint) -> None:
    """Add the deployment routes to the API blueprint."""
    bp.add_url_rule("/deployments", view_func=list_deployments, methods=["GET"])
    bp.add_url_rule("/deployments/<deployment_id>", view_func=show_deployment, methods=["GET"])
    bp.add_url_rule("/deployments/<deployment_id>", view_func=cancel_deployment,
                    methods=["DELETE"])


def _ops() -> ServiceManager:
    return current_berth().application.services


def list_deployments() -> Any:
    """Recent deployments, newest first (``?service=`` to filter)."""
    allow("viewer")
    items = _ops().deployments(service=query_str("service", max_length=100),
                               limit=query_int("limit", 50, low=1, high=500))
    return jsonify({"items": items})


def show_deployment(deployment_id: str) -> Any:
    """One deployment: status, steps, progress, error."""
    allow("viewer")
    return jsonify(_ops().deployment(deployment_id))


def cancel_deployment(deployment_id: str) -> Any:
    """Cancel a queued or running deployment."""
    actor = allow("admin")
    return jsonify(_ops().cancel_deployment(actor, deployment_id))
