"""``/packages``: search, package pages, versions, render (nothing installed)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from ..application import CatalogBrowser
from ..context import current_berth
from .common import allow, json_body, limit_anonymous, query_int, query_str


def register(bp: Blueprint) -> None:
    """Add the package routes to the API blueprint."""
    bp.add_url_rule("/packages", view_func=search_packages, methods=["GET"])
    bp.add_url_rule("/packages/<name>", view_func=show_package, methods=["GET"])
    bp.add_url_rule("/packages/<name>/versions", view_func=list_versions, methods=["GET"])
    bp.add_url_rule("/packages/<name>/versions/<version>", view_func=show_version,
                    methods=["GET"])
    bp.add_url_rule("/packages/<name>/render", view_func=render_package, methods=["POST"])
    bp.add_url_rule("/tags", view_func=list_tags, methods=["GET"])


def _ops() -> CatalogBrowser:
    return current_berth().application.catalog


def search_packages() -> Any:
    """Search the catalog: ``{"items", "total", "page", "per_page"}``."""
    allow("viewer")
    query = query_str("q") or ""
    body = _ops().search_json(query, tag=query_str("tag"), repository=query_str("repository"),
                              page=query_int("page", 1, low=1, high=100000),
                              per_page=query_int("per_page", 24, low=1, high=100))
    return Response(body, mimetype="application/json")


def show_package(name: str) -> Any:
    """The newest version of a package, with the list of versions."""
    allow("viewer")
    return jsonify(_ops().package(name))


def list_versions(name: str) -> Any:
    """Every version of a package, newest first."""
    allow("viewer")
    return jsonify({"items": _ops().versions(name)})


def show_version(name: str, version: str) -> Any:
    """One version in full: package fields, config schema, resource, README."""
    allow("viewer")
    return jsonify(_ops().package_version(name, version))


def render_package(name: str) -> Any:
    """The spec an install would write (secrets masked); anonymous callers are
    rate-limited (a render runs maintainer code)."""
    allow("viewer")
    limit_anonymous("render")
    body = json_body("RenderRequest", optional=True)
    return jsonify(current_berth().application.services.render(
        name, version=body.get("version"), options=body.get("options"),
        instances=body.get("instances"), service_name=body.get("name"),
        constraints=body.get("constraints") or ()))


def list_tags() -> Any:
    """Every tag with how many packages carry it."""
    allow("viewer")
    return jsonify({"items": _ops().tags()})
