"""Installed services: the list, a service's page and what an admin can do to it.

Scale, restart, rollback and uninstall are plain forms (uninstall asks for the
service name to be typed). Upgrade shows a form generated from the new version's
schema, prefilled with the current options merged over the new defaults, and the
list of what changes. Instance logs are shown and followed by polling a fragment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from catalog.options import deep_merge

from . import common, form_builder, form_parser, moves
from .backups import service_backups
from .blueprint import bp
from .install import located

LOG_TAIL = 300
SERVICES_PER_PAGE = 50
MASK = "********"


@bp.get("/services")
@common.needs("viewer")
def services() -> Any:
    """A page of services with package, version and instance counts (only that page's
    instances are read)."""
    page = request.args.get("page", "1")
    number = int(page) if page.isdigit() and 0 < len(page) < 7 and int(page) > 0 else 1
    result = common.application().services.services_page(number, SERVICES_PER_PAGE)
    return render_template("storefront/services.html", services=result["items"],
                           result=result, pages=max(1, -(-result["total"] // SERVICES_PER_PAGE)))


@bp.get("/services/<name>")
@common.needs("viewer")
def service(name: str) -> Any:
    """One service: instances, actions, deployment history."""
    ops = common.application().services
    status = ops.status(name)
    if request.args.get("partial") == "endpoints":
        return render_template("storefront/_endpoints.html", svc=status, **_reach(name))
    if request.args.get("partial") == "instances":
        return render_template(
            "storefront/_instances.html", svc=status, instances=common.instances_of(status)
        )
    return render_template(
        "storefront/service.html",
        svc=status,
        instances=common.instances_of(status),
        history=list(reversed(ops.history(name))),
        deployments=ops.deployments(service=name, limit=20),
        versions=_versions(status),
        volumes=_volumes(name, status),
        **_reach(name),
        move=moves.move_choices(status) if common.can("admin") else None,
        backups=service_backups(name) if status.get("spec", {}).get("volumes") else None,
    )


def _reach(name: str) -> dict[str, Any]:
    """The service's endpoints and its routes (the Endpoints panel)."""
    routing = common.application().routing
    return {"endpoints": routing.endpoints(name),
            "routes": [r for r in routing.routes() if r["service"] == name]}


def _volumes(name: str, status: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The service's named volumes on the agents (None when its spec names none)."""
    if not any(v.get("name") for v in (status.get("spec") or {}).get("volumes") or []):
        return None
    return common.application().services.volumes(name)


def _versions(status: Mapping[str, Any]) -> list[Any]:
    """The versions an upgrade may pick: those of the service's own repository."""
    package = status.get("package") or {}
    try:
        return list(common.catalog().versions(package.get("name", ""),
                                              package.get("repository") or None))
    except common.user_errors():
        return []


def _deployment_redirect(deployment: Mapping[str, Any], message: str) -> Any:
    flash(message, "success")
    return redirect(_deployment_url(deployment))


def _deployment_url(deployment: Mapping[str, Any]) -> str:
    """The page of a deployment, where an action on a service goes next."""
    return url_for("storefront.deployment", deployment_id=deployment["id"])


def _whole_number(raw: str, problem: str) -> int:
    """``raw`` as an int; :raises ValueError: ``problem`` (it names the field)."""
    try:
        return int(raw)
    except ValueError:
        raise ValueError(problem) from None


@bp.post("/services/<name>/scale")
@common.needs("admin")
def service_scale(name: str) -> Any:
    """Change the instance count."""
    raw = (request.form.get("instances") or "").strip()

    def scale() -> Mapping[str, Any]:
        count = _whole_number(raw, f"Instances: {raw!r} is not a whole number.")
        return common.application().services.scale(common.identity().actor, name, count)

    return common.act(scale, back_to=url_for("storefront.service", name=name),
                      success=lambda _: f"Scaling {name} to {int(raw)}.", then=_deployment_url)


@bp.post("/services/<name>/restart")
@common.needs("admin")
def service_restart(name: str) -> Any:
    """Replace every instance with a fresh one."""
    return common.act(lambda: common.application().services.restart(common.identity().actor, name),
                      back_to=url_for("storefront.service", name=name),
                      success=f"Restarting {name}.", then=_deployment_url)


@bp.post("/services/<name>/rollback")
@common.needs("admin")
def service_rollback(name: str) -> Any:
    """Return to an earlier generation (the previous one unless one is chosen)."""
    raw = (request.form.get("generation") or "").strip()

    def rollback() -> Mapping[str, Any]:
        generation = _whole_number(raw, f"Generation: {raw!r} is not a number.") if raw else None
        return common.application().services.rollback(common.identity().actor, name, generation)

    return common.act(rollback, back_to=url_for("storefront.service", name=name),
                      success=f"Rolling {name} back.", then=_deployment_url)


@bp.post("/services/<name>/uninstall")
@common.needs("admin")
def service_uninstall(name: str) -> Any:
    """Remove the service, once its name is typed to confirm."""
    if (request.form.get("confirm_name") or "").strip() != name:
        flash(f"Type the service name “{name}” to confirm the uninstall.", "error")
        return redirect(url_for("storefront.service", name=name) + "#uninstall")

    delete_data = request.form.get("delete_data") == "1"

    def uninstall() -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        ident = common.application().services.status(name).get("package") or {}
        return ident, common.application().services.uninstall(
            common.identity().actor, name, delete_data=delete_data)

    def deployment_page(done: tuple[Mapping[str, Any], Mapping[str, Any]]) -> str:
        # The service record goes away: the page is told which package's notes to show.
        ident, answer = done
        return url_for("storefront.deployment", deployment_id=answer["deployment"]["id"],
                       package=ident.get("name"), version=ident.get("version"))

    return common.act(uninstall, back_to=url_for("storefront.service", name=name),
                      success=lambda done: _uninstall_message(name, done[1]),
                      then=deployment_page)


def _uninstall_message(name: str, answer: Mapping[str, Any]) -> str:
    """What the flash says after an uninstall: which volumes stay, or go."""
    volumes = answer.get("volumes") or []
    where = ", ".join(f"{v['name']} on {v['agent']}" for v in volumes)
    if not volumes:
        return f"Uninstalling {name}."
    if answer.get("delete_data"):
        return f"Uninstalling {name} and deleting its volumes: {where}."
    return f"Uninstalling {name}. These volumes stay (listed as left over): {where}."


@bp.route("/services/<name>/upgrade", methods=["GET", "POST"])
@common.needs("admin")
def service_upgrade(name: str) -> Any:
    """Upgrade form (prefilled, with the changes listed); POST starts the upgrade."""
    ops = common.application().services
    version = (request.values.get("version") or "").strip() or None
    preview = ops.upgrade_preview(name, version)
    schema = preview.get("config_schema") or {}
    problems: list[dict[str, str]] = []
    options = preview["options"]
    if request.method == "POST":
        options, problems = form_parser.parse_form(schema, request.form)
        if not problems:
            try:
                deployment = ops.upgrade(
                    common.identity().actor,
                    name,
                    version=preview["package"]["version"],
                    options=options,
                )
            except common.user_errors() as exc:
                problems = located(exc, options)
            else:
                return _deployment_redirect(
                    deployment, f"Upgrading {name} to {preview['package']['version']}."
                )
        options = deep_merge(preview["options"], options)
    status = ops.status(name)
    fields = form_builder.build_form(schema, options, keep_secrets=False)
    loose = form_parser.attach_errors(fields, problems)
    return render_template(
        "storefront/upgrade.html",
        svc=status,
        target=preview["package"],
        fields=fields,
        loose=loose,
        has_errors=bool(problems),
        changes=diff(status.get("options") or {}, preview["options"]),
        versions=_versions(status),
    ), 422 if problems else 200


def diff(old: Any, new: Any, path: str = "") -> list[dict[str, Any]]:
    """What changes between two option objects: ``[{path, kind, old, new}]``."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        changes: list[dict[str, Any]] = []
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in new:
                changes.append({"path": sub, "kind": "removed", "old": _show(old[key]), "new": ""})
            elif key not in old:
                changes.append({"path": sub, "kind": "added", "old": "", "new": _show(new[key])})
            else:
                changes.extend(diff(old[key], new[key], sub))
        return changes
    if old != new:
        return [
            {"path": path or "(options)", "kind": "changed", "old": _show(old), "new": _show(new)}
        ]
    return []


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "…"


@bp.get("/services/<name>/instances/<instance_id>/logs")
@common.needs("admin")
def instance_logs(name: str, instance_id: str) -> Any:
    """An instance's recent output; ``?partial=1`` is the block the page re-polls."""
    ops = common.application().services
    try:
        chunks = ops.logs(name, instance_id, tail=LOG_TAIL)
        text = b"".join(chunks).decode("utf-8", errors="replace")
        problem = None
    except common.user_errors() as exc:
        text, problem = "", common.error_message(exc)
    if request.args.get("partial") == "1":
        return render_template("storefront/_logs.html", text=text, problem=problem)
    return render_template(
        "storefront/logs.html",
        name=name,
        instance_id=instance_id,
        text=text,
        problem=problem,
        tail=LOG_TAIL,
    )
