"""The server's own catalog as a static index: ``/repo/index.json`` and
``/repo/packages/<name>.json``.

Another Berth (or anything that reads the format of ``catalog.static_index``) can add
this server as a remote repository. The files are built from the current catalog —
for every name, the versions of the repository that wins it — once per catalog
generation and per process, and answered with a strong ETag (the content's digest),
``304`` to a matching ``If-None-Match`` and gzip when the client accepts it.
"""

from __future__ import annotations

import gzip
import threading
from typing import Any

from flask import Blueprint, Response, abort, request

from catalog.names import INDEX_NAME
from catalog.static_index import build_index, digest_of

from .api.common import allow
from .context import current_berth

bp = Blueprint("repo_index", __name__, url_prefix="/repo")
_lock = threading.Lock()
_cache: dict[str, Any] = {"catalog": None, "files": {}}


@bp.get("/index.json")
def listing() -> Response:
    """The compact listing with each package document's digest."""
    allow("viewer")
    return _answer(_files().get("index.json"))


@bp.get("/packages/<name>.json")
def package_document(name: str) -> Response:
    """Every version of one package."""
    allow("viewer")
    if not INDEX_NAME.fullmatch(name):
        abort(404)
    return _answer(_files().get(f"packages/{name}.json"))


def _files() -> dict[str, bytes]:
    """The index files of the current catalog (rebuilt when the catalog changed)."""
    catalog = current_berth().application.catalog.catalog()
    with _lock:
        if _cache["catalog"] is not catalog:
            _cache["files"] = _build(catalog)
            _cache["catalog"] = catalog
        return _cache["files"]


def _build(catalog: Any) -> dict[str, bytes]:
    # the names the catalog resolves (a name whose owner no longer has it is left out)
    packages = [p for name in catalog.names for p in catalog.versions(name)]
    listing_bytes, documents = build_index(packages)
    files = {f"packages/{n}.json": d for n, d in documents.items()}
    files["index.json"] = listing_bytes
    return files


def _answer(data: bytes | None) -> Response:
    """The bytes with a strong ETag, 304 when the client has them, gzip when accepted."""
    if data is None:
        abort(404)
    etag = digest_of(data).split(":", 1)[1][:32]
    if request.if_none_match.contains(etag):
        response = Response(status=304)
    elif "gzip" in (request.headers.get("Accept-Encoding") or ""):
        response = Response(_gzipped(data), mimetype="application/json")
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(data, mimetype="application/json")
    response.set_etag(etag)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Vary"] = "Accept-Encoding"
    return response


_gzip_cache: dict[str, bytes] = {}


def _gzipped(data: bytes) -> bytes:
    """gzip of ``data``, remembered by digest (the catalog changes rarely)."""
    key = digest_of(data)
    found = _gzip_cache.get(key)
    if found is None:
        if len(_gzip_cache) > 20000:
            _gzip_cache.clear()
        found = _gzip_cache[key] = gzip.compress(data, compresslevel=6, mtime=0)
    return found
