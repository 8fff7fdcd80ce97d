"""The JSON API blueprint (``/api/v1``): one module per area, each with ``register(bp)``.

Views parse the request, call ``server.application`` and answer. ``publish``,
``owners``, ``repositories``, ``registries``, ``moves`` and ``backups`` also add their
paths and schemas to the OpenAPI document (``schema.add_fragment``) when imported here.
"""

from __future__ import annotations

from flask import Blueprint

from . import (
    agents,
    backups,
    clusters,
    deployments,
    events,
    meta,
    moves,
    owners,
    packages,
    publish,
    registries,
    repositories,
    routing,
    secrets,
    services,
    smoke,
)

bp = Blueprint("api", __name__, url_prefix="/api/v1")

for _module in (meta, packages, services, deployments, agents, events, publish, owners,
                moves, registries, repositories, routing, secrets, backups, smoke, clusters):
    _module.register(bp)

bp.after_app_request(meta.remember_status)
