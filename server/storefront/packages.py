"""The package page (README, versions, notes, screenshots) and the package's own files.

Icons and screenshots are served from the package's files with their image content
type, ``X-Content-Type-Options: nosniff`` and a CSP that lets no script run, so an
SVG a maintainer ships cannot run script even when opened on its own.
"""

from __future__ import annotations

from typing import Any

from flask import abort, render_template, request
from werkzeug.wrappers import Response

from . import common
from .blueprint import bp
from .markdown import render_markdown

FILE_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def find_package(name: str, version: str | None) -> Any:
    """The package ``name`` at ``version`` (when None, the newest the page shows first:
    installable if any, else the newest, marked), from the one repository the name
    resolves to.

    :raises catalog.errors.NotFound: left to the error handler (a 404 page).
    """
    if not version:
        return common.catalog().newest(name)
    return common.catalog().resolve(name, version, include_yanked=True)


@bp.get("/packages/<name>")
@common.needs("viewer")
def package(name: str) -> Any:
    """The package page at the selected version (``?version=``, newest by default)."""
    cat = common.catalog()
    pkg = find_package(name, request.args.get("version"))
    versions = list(cat.versions(name))
    render: dict[str, Any] = {"file_url": common.file_url(pkg), "files": common.image_files(pkg)}
    return render_template(
        "storefront/package.html",
        pkg=pkg,
        versions=versions,
        newest=versions[0] if versions else pkg,
        readme=render_markdown(pkg.readme, heading_offset=2, **render),
        pre_install=render_markdown(pkg.pre_install_notes, heading_offset=2, **render),
        screenshots=common.screenshots(pkg),
        also_in=cat.also_in(name),
        can_install=common.can("admin") and not pkg.unsupported and not pkg.yanked,
        volumes=_volumes(pkg),
    )


def _volumes(pkg: Any) -> list[dict[str, Any]]:
    """The named volumes the package mounts with its default options, each saying
    whether it is ``replaceable`` (may move to another agent empty) or kept on its
    agent; none when the package does not render with its defaults alone."""
    if pkg.unsupported:
        return []
    try:
        spec = common.application().services.render(pkg.name, version=pkg.version)["spec"]
    except common.user_errors():
        return []
    return [{"name": v["name"], "replaceable": bool(v.get("replaceable"))}
            for v in spec.get("volumes") or [] if v.get("name")]


@bp.get("/packages/<name>/<version>/icon")
@common.needs("viewer")
def package_icon(name: str, version: str) -> Response:
    """The package's icon file, from its own files."""
    pkg = find_package(name, version)
    filename = common.own_file(pkg, common.icon_ref(pkg))
    if filename is None:
        abort(404, description=f"{name} {version} has no icon file")
    return _file_response(pkg, filename)


@bp.get("/packages/<name>/<version>/files/<path:filename>")
@common.needs("viewer")
def package_file(name: str, version: str, filename: str) -> Response:
    """One image file of the package (screenshots, README images)."""
    pkg = find_package(name, version)
    if common.own_file(pkg, filename) is None:
        abort(404, description=f"{name} {version} has no image file {filename!r}")
    return _file_response(pkg, filename)


def _file_response(pkg: Any, filename: str) -> Response:
    data = common.file_bytes(pkg, filename)
    if data is None:
        abort(404, description=f"{pkg.name} {pkg.version} has no file {filename!r}")
    response = Response(data, mimetype=common.content_type(filename))
    response.headers["Content-Security-Policy"] = FILE_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["Content-Disposition"] = "inline"
    return response
