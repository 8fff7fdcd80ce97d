"""Install a package: the generated options form, a review step, then the install.

GET shows the form for one version. POST with ``action=review`` validates through
``Operations.render`` (the server's validation is the authority) and shows the
resolved version and the rendered spec with secrets masked, or the form again with
every problem beside its field. POST with ``action=install`` re-validates and
installs, then redirects to the deployment page. ``action=edit`` goes back to the
form with the same values. Works without JavaScript: the JSON view is a textarea
with its own submit button.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from catalog.options import deep_merge, defaults_of

from . import common, form_builder, form_parser
from .blueprint import bp
from .markdown import render_markdown
from .packages import find_package

MAX_JSON = 256 * 1024
ERRORS_AT = {"name": "service_name", "instances": "instances", "version": "version"}


@bp.get("/packages/<name>/install")
@common.needs("admin")
def install(name: str) -> Any:
    """The install form for the selected version (newest by default)."""
    pkg = find_package(name, request.args.get("version"))
    if pkg.unsupported:
        return _not_installable(pkg)
    return _form_page(pkg, options={}, service_name=pkg.name, instances="")


def _not_installable(pkg: Any) -> Any:
    """Back to the package page, which lists why it cannot run on Docker hosts."""
    flash(f"{pkg.name} {pkg.version} cannot be installed: " + "; ".join(pkg.unsupported), "error")
    return redirect(url_for("storefront.package", name=pkg.name, version=pkg.version))


@bp.post("/packages/<name>/install")
@common.needs("admin")
def install_post(name: str) -> Any:
    """Review or install, or back to the form; problems go beside their fields."""
    pkg = find_package(name, request.form.get("version"))
    if pkg.unsupported:
        return _not_installable(pkg)
    action = request.form.get("action", "review")
    service_name = (request.form.get("service_name") or "").strip()[:100] or pkg.name
    raw_instances = (request.form.get("instances") or "").strip()[:20]
    options, problems = _posted_options(pkg, action)
    instances = _instances(raw_instances, problems)
    state: dict[str, Any] = {"options": options, "service_name": service_name,
                             "instances": raw_instances}
    if problems or action == "edit":
        return _form_page(pkg, problems=problems, **state), 422 if problems else 200
    try:
        if action == "install":
            result = common.application().services.install(
                common.identity().actor,
                package=pkg.name,
                version=pkg.version,
                name=service_name,
                options=options,
                instances=instances,
            )
            deployment = result["deployment"]
            return redirect(url_for("storefront.deployment", deployment_id=deployment["id"]))
        preview = common.application().services.render(
            pkg.name,
            version=pkg.version,
            options=options,
            instances=instances,
            service_name=service_name,
        )
    except common.user_errors() as exc:
        return _form_page(pkg, problems=_located(exc), **state), 422
    return render_template(
        "storefront/review.html",
        pkg=pkg,
        preview=preview,
        service_name=service_name,
        instances=raw_instances,
        options_json=json.dumps(options),
        spec_json=json.dumps(preview.get("spec"), indent=2, sort_keys=True),
        options_masked=json.dumps(preview.get("options"), indent=2, sort_keys=True),
    )


def _posted_options(pkg: Any, action: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The options from the JSON view (review step, JSON mode) or from the fields."""
    from_json = (
        action in ("install", "edit")
        or request.form.get("mode") == "json"
        or "json_submit" in request.form
    )
    if not from_json:
        return form_parser.parse_form(pkg.config_schema, request.form)
    raw = request.form.get("options_json", "") or "{}"
    if len(raw) > MAX_JSON:
        return {}, [{"path": "options_json", "message": "the JSON is too large"}]
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        return {}, [{"path": "options_json", "message": f"not valid JSON: {exc.msg} ({where})"}]
    if not isinstance(value, dict):
        return {}, [{"path": "options_json", "message": "the options must be a JSON object"}]
    return value, []


def _instances(raw: str, problems: list[dict[str, str]]) -> int | None:
    """The instance count typed, or None for the package's own default."""
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        problems.append({"path": "instances", "message": f"{raw!r} is not a whole number"})
        return None


def _located(error: BaseException) -> list[dict[str, str]]:
    """The error's problems; a taken service name is put at the name field."""
    problems = common.problems_of(error)
    if getattr(error, "code", "") == "service_exists":
        return [{"path": "name", "message": common.error_message(error)}]
    return problems


def _form_page(
    pkg: Any,
    *,
    options: Mapping[str, Any],
    service_name: str,
    instances: str,
    problems: list[dict[str, str]] | None = None,
) -> str:
    """Render the install form with values and the problems beside their fields."""
    schema = pkg.config_schema or {}
    fields = form_builder.build_form(schema, options, keep_secrets=True)
    top: dict[str, list[str]] = {key: [] for key in ERRORS_AT.values()}
    top["options_json"] = []
    option_problems = []
    for problem in problems or []:
        key = ERRORS_AT.get(problem["path"], problem["path"])
        if key in top:
            top[key].append(problem["message"])
        else:
            option_problems.append(problem)
    loose = form_parser.attach_errors(fields, option_problems)
    render: dict[str, Any] = {"file_url": common.file_url(pkg), "files": common.image_files(pkg)}
    return render_template(
        "storefront/install.html",
        pkg=pkg,
        versions=list(common.catalog().versions(pkg.name)),
        fields=fields,
        field_errors=top,
        loose=loose,
        has_errors=bool(problems),
        service_name=service_name,
        instances=instances,
        options_json=json.dumps(deep_merge(defaults_of(pkg), options), indent=2),
        pre_install=render_markdown(pkg.pre_install_notes, heading_offset=3, **render),
    )
