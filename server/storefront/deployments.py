"""A deployment's page: steps, instances placed / started / healthy per agent, notes.

``?partial=1`` renders only the live block, which the page re-fetches until the
deployment is finished (marked ``data-final``), so progress shows without reloading.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from flask import render_template, request

from . import common
from .blueprint import bp
from .markdown import render_markdown

FINISHED = ("succeeded", "failed", "cancelled")


@bp.get("/deployments")
@common.needs("viewer")
def deployments() -> Any:
    """Recent deployments across services, newest first."""
    return render_template(
        "storefront/deployments.html",
        deployments=common.application().services.deployments(limit=100),
    )


@bp.get("/deployments/<deployment_id>")
@common.needs("viewer")
def deployment(deployment_id: str) -> Any:
    """The deployment's progress page (or its live block with ``?partial=1``)."""
    ops = common.application().services
    record = ops.deployment(deployment_id)
    instances = _instances(ops, record.get("service", ""))
    context = {
        "dep": record,
        "final": record.get("status") in FINISHED,
        "per_agent": per_agent(instances),
        "instances": instances,
    }
    if request.args.get("partial") == "1":
        return render_template("storefront/_progress.html", **context)
    return render_template("storefront/deployment.html", notes=_notes(record), **context)


def _instances(ops: Any, service: str) -> list[dict[str, Any]]:
    """The service's instances (none once it is uninstalled)."""
    try:
        return common.instances_of(ops.status(service))
    except common.user_errors():
        return []


def per_agent(instances: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Counts of placed, started and healthy instances on each agent."""
    rows: dict[str, dict[str, Any]] = defaultdict(lambda: {"placed": 0, "started": 0, "healthy": 0})
    for inst in instances:
        row = rows[str(inst.get("agent", "?"))]
        row["placed"] += 1
        if inst.get("state") in ("running", "unhealthy"):
            row["started"] += 1
        if inst.get("state") == "running" and inst.get("health") in ("healthy", "none"):
            row["healthy"] += 1
    return [{"agent": agent, **counts} for agent, counts in sorted(rows.items())]


def _notes(record: Mapping[str, Any]) -> Any:
    """The package's post-install (or post-uninstall) notes, rendered safely."""
    try:
        ident = common.application().services.status(record.get("service", "")).get("package") or {}
    except common.user_errors():  # uninstalled: the uninstall form said which package
        ident = {"name": request.args.get("package"), "version": request.args.get("version")}
    if not ident.get("name"):
        return None
    try:
        pkg = common.catalog().resolve(
            str(ident["name"]), ident.get("version") or None,
            repository=ident.get("repository") or None, include_yanked=True
        )
    except common.user_errors():
        return None
    text = (
        pkg.post_uninstall_notes if record.get("kind") == "uninstall" else (pkg.post_install_notes)
    )
    return render_markdown(
        text, heading_offset=2, file_url=common.file_url(pkg), files=common.image_files(pkg)
    )
