"""Publishing: ``POST /packages`` (a bundle) and yanking a published version.

A maintainer's bundle is checked like ``berth lint`` checks a folder — every problem
at once (422) — after :func:`catalog.bundle.read_bundle` has refused anything unsafe,
all in memory. An accepted version is stored in Redis in one atomic step (an existing
version is refused, 409: published versions are immutable) and the catalog generation
moves, so every server process shows it at the next request.

Package names are owned (``owners.py``): publishing a name another repository serves,
or one other maintainers published first, is refused (409 ``name_owned``, naming the
owner and the command an admin runs to share it); so is yanking a version of a name
the caller does not own, unless the caller is an admin.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from flask import Blueprint, jsonify, request, url_for

from catalog.bundle import BundleLimits, lint_bundle, package_from_bundle
from catalog.errors import PackageInvalid
from catalog.render import rendering_with

from ..auth import current_identity
from ..context import current_berth
from .common import Invalid, TooLarge, UnsupportedMediaType, allow, json_body

BUNDLE_TYPES = ("application/gzip", "application/x-gzip", "application/octet-stream",
                "application/x-tar+gzip")
_REASON_MAX = 500
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def register(bp: Blueprint) -> None:
    """Add the publishing routes to the API blueprint."""
    bp.add_url_rule("/packages", view_func=publish_package, methods=["POST"])
    bp.add_url_rule("/packages/<name>/versions/<version>/yank", view_func=yank_version,
                    methods=["POST"])


def bundle_limits() -> BundleLimits:
    """The bundle caps for this server (the compressed cap is ``BERTH_MAX_BODY``)."""
    return BundleLimits(max_bundle=min(current_berth().settings.max_body,
                                       BundleLimits().max_bundle))


def publish_package() -> Any:
    """Store a new package version from a bundle; 201 with its identity."""
    actor = allow("maintainer")
    if request.mimetype not in BUNDLE_TYPES:
        raise UnsupportedMediaType("send the bundle as application/gzip", details=[
            {"path": "Content-Type", "message": f"got {request.mimetype or 'nothing'}"}],
            hint="build one with `berth package build DIR`")
    limits = bundle_limits()
    data = _read_body(limits.max_bundle)
    with rendering_with(current_berth().renderer):  # lint renders maintainer code
        manifest, problems = lint_bundle(data, limits=limits)
    if problems:
        raise PackageInvalid(f"{manifest.get('name')} {manifest.get('version')} has "
                             f"{len(problems)} problem(s)", package=manifest.get("name"),
                             version=manifest.get("version"), details=problems,
                             hint="run `berth lint DIR` on the package folder")
    package = package_from_bundle(data, repository="hosted", limits=limits)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    # Build the current catalog first: it claims every name the other repositories
    # serve (a remote refreshed a moment ago included) before this publish can.
    current_berth().catalog.get()
    meta = current_berth().store.hosted.publish(
        package.name, package.version, data, digest=digest, actor=actor,
        extra={"title": package.title, "description": package.description[:500]})
    body = {**_public(meta), "repository": "hosted",
            "url": url_for("api.show_version", name=package.name, version=package.version)}
    response = jsonify(body)
    response.status_code = 201
    response.headers["Location"] = body["url"]
    return response


def _read_body(cap: int) -> bytes:
    """The request body, refusing more than ``cap`` bytes (413) before reading it all."""
    declared = request.content_length
    if declared is not None and declared > cap:
        raise TooLarge(f"the bundle is {declared} bytes; the limit is {cap}",
                       details=[{"path": "body", "message": f"at most {cap} bytes"}])
    data = request.stream.read(cap + 1)
    if len(data) > cap:
        raise TooLarge(f"the bundle is over the limit of {cap} bytes",
                       details=[{"path": "body", "message": f"at most {cap} bytes"}])
    if not data:
        raise Invalid("the body is empty; send a bundle",
                      details=[{"path": "body", "message": "empty"}])
    return data


def yank_version(name: str, version: str) -> Any:
    """Yank a published version: no new installs or range matches, still listed."""
    actor = allow("maintainer")
    body = json_body()
    reason = body.get("reason")
    problems = []
    if not isinstance(reason, str) or not reason.strip():
        problems.append({"path": "body/reason", "message": "say why the version is yanked"})
    elif len(reason) > _REASON_MAX:
        problems.append({"path": "body/reason", "message": f"at most {_REASON_MAX} characters"})
    extra = sorted(set(body) - {"reason"})
    problems += [{"path": f"body/{k}", "message": "unknown field"} for k in extra[:10]]
    if problems:
        raise Invalid("the request is invalid", details=problems)
    if not _NAME.fullmatch(name) or len(version) > 128:
        raise Invalid("bad package name or version", details=[
            {"path": "path", "message": "name or version not allowed"}])
    meta = current_berth().store.hosted.yank(name, version, str(reason).strip(), actor,
                                              admin=current_identity().allows("admin"))
    return jsonify(_public(meta))


def _public(meta: dict[str, Any]) -> dict[str, Any]:
    """A published version's metadata as the API shows it."""
    yanked = meta.get("yanked") or None
    return {"name": meta["name"], "version": meta["version"], "digest": meta.get("digest"),
            "size": meta.get("size"), "published_at": meta.get("published_at"),
            "published_by": meta.get("published_by"),
            "yanked": yanked.get("reason") if isinstance(yanked, dict) else yanked,
            "yanked_at": yanked.get("at") if isinstance(yanked, dict) else None}


def _openapi() -> tuple[dict[str, Any], dict[str, Any]]:
    """This module's paths and schemas for the API document."""
    from .openapi import _error_responses, _json, _path, _paths

    name = _path("name", {"type": "string", "pattern": f"^{_NAME.pattern}$"})
    version = _path("version", {"type": "string", "minLength": 1, "maxLength": 128})
    publish = {"operationId": "publishPackage",
               "summary": "Publish a package version from a bundle (maintainer)",
               "requestBody": {"required": True, "content": {
                   t: {"schema": {"type": "string", "format": "binary"}}
                   for t in BUNDLE_TYPES[:3]}},
               "responses": {**_json("Published", {"$ref": "#/components/schemas/Published"},
                                     "201"),
                             **_error_responses("400 401 403 409 413 415 422 503")}}
    yank = {"operationId": "yankVersion",
            "summary": "Yank a published version (an owner of the name, or an admin)",
            "parameters": [name, version],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/YankRequest"}}}},
            "responses": {**_json("Yanked", {"$ref": "#/components/schemas/Published"}),
                          **_error_responses("400 401 403 404 409 413 415 422 503")}}
    paths = {"/packages": {**_paths().get("/packages", {}), "post": publish},
             "/packages/{name}/versions/{version}/yank": {"post": yank}}
    schemas = {
        "Published": {"type": "object", "required": ["name", "version", "digest"],
                      "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                                     "digest": {"type": "string"},
                                     "yanked": {"type": ["string", "null"]}}},
        "YankRequest": {"type": "object", "required": ["reason"],
                        "additionalProperties": False, "properties": {
                            "reason": {"type": "string", "minLength": 1,
                                       "maxLength": _REASON_MAX}}},
    }
    return paths, schemas


OPENAPI_PATHS, OPENAPI_SCHEMAS = _openapi()
