"""Install a package: the generated options form, a review step, then the install.

GET shows the form for one version. POST with ``action=review`` validates through
``Operations.render`` (the server's validation is the authority) and shows the
resolved version and the rendered spec with secrets masked, or the form again with
every problem beside its field. POST with ``action=install`` re-validates and
installs, then redirects to the deployment page (or, when Berth generated secrets,
shows them once with a link to it). ``action=edit`` goes back to the
form with the same values. Works without JavaScript: the JSON view is a textarea
with its own submit button.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from catalog.links import link_marks, mark_credentials, mark_packages
from catalog.options import deep_merge, defaults_of

from . import common, form_builder, form_parser
from .blueprint import bp
from .markdown import render_markdown
from .packages import find_package
from .secrets import generated_page

MAX_JSON = 256 * 1024
ERRORS_AT = {"name": "service_name", "instances": "instances", "version": "version",
             "cluster": "cluster"}


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
    cluster = (request.form.get("cluster") or "").strip()[:100] or None
    options, problems = _posted_options(pkg, action)
    instances = _instances(raw_instances, problems)
    handover = sorted({o[:64] for o in request.form.getlist("handover")[:50] if o})
    state: dict[str, Any] = {"options": options, "service_name": service_name,
                             "instances": raw_instances, "cluster": cluster,
                             "handover": handover}
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
                cluster=cluster,
                handover=handover,
            )
            deployment = result["deployment"]
            if result.get("generated_secrets"):   # shown this once, before the deployment
                return generated_page(service_name, deployment, result["generated_secrets"])
            return redirect(url_for("storefront.deployment", deployment_id=deployment["id"]))
        preview = common.application().services.render(
            pkg.name,
            version=pkg.version,
            options=options,
            instances=instances,
            service_name=service_name,
            cluster=cluster,
            handover=handover,
            refuse_clashes=True,
        )
    except common.user_errors() as exc:
        return _form_page(pkg, problems=located(exc, options), **state), 422
    return render_template(
        "storefront/review.html",
        pkg=pkg,
        preview=preview,
        service_name=service_name,
        instances=raw_instances,
        cluster=cluster or "",
        handover=handover,
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


def located(error: BaseException, options: Mapping[str, Any]) -> list[dict[str, str]]:
    """The error's problems; a taken service name is put at the name field, and a
    host another service routes at the option that holds that host (if one does)."""
    problems = common.problems_of(error)
    if getattr(error, "code", "") == "service_exists":
        return [{"path": "name", "message": common.error_message(error)}]
    if getattr(error, "code", "") == "route_conflict":
        clashes = getattr(error, "data", {}).get("conflicts") or []
        hosts = [str(c.get("host") or "") for c in clashes]
        return [_at_option(problem, host, options) for problem, host in zip(
            problems, hosts + [""] * (len(problems) - len(hosts)), strict=True)]
    return problems


def _at_option(problem: dict[str, str], host: str,
               options: Mapping[str, Any]) -> dict[str, str]:
    """``problem`` at ``options/<path>`` of the first option whose value is ``host``
    (the spec path of a route means nothing on the form), else as it is."""
    def search(value: Any, path: tuple[str, ...]) -> tuple[str, ...] | None:
        if isinstance(value, str):
            return path if host and value.strip().lower() == host else None
        if isinstance(value, Mapping):
            for key, child in value.items():
                found = search(child, (*path, str(key)))
                if found is not None:
                    return found
        return None

    found = search(options, ())
    if not found:
        return problem
    return {"path": "options/" + "/".join(found), "message": problem["message"]}


def _link_selects(fields: list[form_builder.FormField], schema: Mapping[str, Any],
                  handover: Sequence[str] = ()) -> None:
    """An option marked ``x-berth-service`` becomes a select of the installed services
    of the named packages (or "none"), with a link to install one now. The value
    posted is the service's name, which the form parser reads as the text it is. A
    link that asks for credentials gets a checkbox, off unless the admin ticked it
    (``handover``), to confirm handing them over."""
    marks = link_marks(schema)
    for f in fields:
        mark = marks.get(f.path[0]) if len(f.path) == 1 else None
        if mark is None or f.kind not in ("text", "select"):
            continue
        packages = mark_packages(mark)
        names = sorted({n for p in packages
                        for n in common.application().services.linkable(p)})
        current = f.value if isinstance(f.value, str) else ""
        what = " or ".join(packages)
        f.kind = "select"
        f.choices = [("", f"— no {what} service —")] + [(n, n) for n in names]
        if current and current not in names:
            f.choices.append((current, f"{current} (not an installed {what})"))
        f.enum_values = {}
        f.install_url = url_for("storefront.package", name=packages[0])
        if mark_credentials(mark):
            f.handover = ", ".join(sorted(mark_credentials(mark).values()))
            f.handover_checked = f.path[0] in handover


def _form_page(
    pkg: Any,
    *,
    options: Mapping[str, Any],
    service_name: str,
    instances: str,
    cluster: str | None = None,
    problems: list[dict[str, str]] | None = None,
    handover: Sequence[str] = (),
) -> str:
    """Render the install form with values and the problems beside their fields."""
    schema = pkg.config_schema or {}
    fields = form_builder.build_form(schema, options, keep_secrets=True)
    _link_selects(fields, schema, handover)
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
        cluster=cluster or "",
        clusters=common.application().clusters.names(),
        options_json=json.dumps(deep_merge(defaults_of(pkg), options), indent=2),
        pre_install=render_markdown(pkg.pre_install_notes, heading_offset=3, **render),
    )
