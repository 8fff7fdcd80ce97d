"""Static repository indexes: a repository as plain files any web server can host.

An index is a compact listing plus one small document per package, never one
monolithic file that grows with every version ever published::

    index.json              {"indexVersion": 1, "packages": [{"name", "version",
                             "title", "description", "tags", "icon", "featured",
                             "versions", "digest"}]}
    packages/<name>.json    {"indexVersion": 1, "name", "versions": [{...}, ...]}

``digest`` is ``sha256:<hex>`` of the package document's bytes, so a client that
already holds a document fetches it again only when its digest changed. Documents
are canonical JSON (sorted keys, no spaces): the same catalog always gives the same
bytes, which keeps ETags stable and compresses well. Both shapes are validated
against ``schemas/index.schema.json`` when read.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from . import schemas
from .errors import RepositoryError, VersionError
from .loader import load_repository_dir
from .model import Package
from .names import INDEX_NAME
from .reading import loads_json
from .schemas.validation import Re2Draft202012Validator
from .version import parse_version

__all__ = ["INDEX_VERSION", "build_index", "write_index", "parse_listing",
           "parse_package_document", "packages_from_document", "package_document", "loads_bounded",
           "canonical", "digest_of"]

INDEX_VERSION = 1
MAX_DEPTH = 64
_NOTES = (("preInstallNotes", "pre_install_notes"), ("postInstallNotes", "post_install_notes"),
          ("postUninstallNotes", "post_uninstall_notes"), ("upgradesFrom", "upgrades_from"),
          ("minBerthVersion", "min_berth_version"), ("upstreamVersion", "upstream_version"))


def canonical(value: Any) -> bytes:
    """Canonical compact JSON bytes (same value, same bytes)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def digest_of(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


# writing -------------------------------------------------------------------------------
def _entry(package: Package) -> dict[str, Any]:
    """One version of a package as the document stores it."""
    entry: dict[str, Any] = {
        "version": package.version, "format": package.format, "title": package.title,
        "description": package.description, "maintainer": package.maintainer,
        "tags": list(package.tags), "website": package.website,
        "licenses": [dict(lic) for lic in package.licenses], "featured": package.featured,
        "config": package.config_schema, "resource": package.resource,
        "template": package.template, "readme": package.readme,
        "unsupported": list(package.unsupported), "yanked": package.yanked,
    }
    for key, attr in _NOTES:
        entry[key] = getattr(package, attr)
    if isinstance(package.order, int) and not isinstance(package.order, bool):
        entry["order"] = package.order
    return entry


def package_document(versions: Iterable[Package]) -> dict[str, Any]:
    """The document of one package: every version, newest first."""
    ordered = sorted(versions, key=lambda p: p.sort_key, reverse=True)
    return {"indexVersion": INDEX_VERSION, "name": ordered[0].name,
            "versions": [_entry(p) for p in ordered]}


def _listing_item(document: dict[str, Any], data: bytes,
                  newest: Package) -> dict[str, Any]:
    icon = newest.icon if newest.icon and newest.icon.startswith(("https://", "http://")) \
        else None
    return {"name": newest.name, "version": newest.version, "title": newest.title,
            "description": newest.description[:2000], "tags": list(newest.tags),
            "icon": icon, "featured": newest.featured,
            "versions": len(document["versions"]), "digest": digest_of(data)}


def build_index(packages: Iterable[Package]) -> tuple[bytes, dict[str, bytes]]:
    """``(listing bytes, {name: document bytes})`` for a set of package versions.

    Where two packages share a name and version, the first one given wins.
    """
    by_name: dict[str, dict[str, Package]] = {}
    for package in packages:
        by_name.setdefault(package.name, {}).setdefault(package.version, package)
    documents: dict[str, bytes] = {}
    items = []
    for name in sorted(by_name):
        versions = list(by_name[name].values())
        document = package_document(versions)
        data = canonical(document)
        documents[name] = data
        installable = [p for p in versions if p.installable] or versions
        newest = max(installable, key=lambda p: p.sort_key)
        items.append(_listing_item(document, data, newest))
    listing = canonical({"indexVersion": INDEX_VERSION, "packages": items})
    return listing, documents


def write_index(source: str | os.PathLike[str] | Iterable[Package] | Any,
                out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Write ``index.json`` and ``packages/<name>.json`` for a repository.

    ``source`` is a repository folder, a ``Repository``/``Catalog`` (anything with
    ``packages``) or an iterable of ``Package``. Unchanged files are left untouched
    (their mtime too, which keeps web servers' ETags stable); documents of packages
    no longer present are removed. Returns ``{"packages", "written", "removed",
    "problems"}``.
    """
    packages, problems = _packages_of(source)
    listing, documents = build_index(packages)
    out = Path(out_dir)
    (out / "packages").mkdir(parents=True, exist_ok=True)
    written = sum(_write_if_changed(out / "packages" / f"{n}.json", d)
                  for n, d in documents.items())
    removed = 0
    for old in (out / "packages").glob("*.json"):
        if old.stem not in documents:
            old.unlink()
            removed += 1
    written += _write_if_changed(out / "index.json", listing)
    return {"packages": len(documents), "written": written, "removed": removed,
            "problems": problems}


def _packages_of(source: Any) -> tuple[list[Package], list[dict[str, str]]]:
    """The packages of a folder, a repository-like object or an iterable."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        repo, problems = load_repository_dir(path, name=path.name or "repository", priority=0)
        return list(repo.packages), [dict(p) for p in problems]
    if hasattr(source, "packages"):
        return list(source.packages), []
    return list(source), []


def _write_if_changed(path: Path, data: bytes) -> int:
    """Write ``data`` atomically unless the file already holds it; 1 if written."""
    try:
        if path.read_bytes() == data:
            return 0
    except OSError:
        pass
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return 1


# reading -------------------------------------------------------------------------------
def loads_bounded(data: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that refuses nesting deeper than ``max_depth``.

    The C parser stops very deep input with ``RecursionError``; what it accepts is then
    measured by walking its containers only (fast even for large listings).

    :raises ValueError: for invalid JSON or nesting that is too deep.
    """
    try:
        value = loads_json(data)
    except RecursionError:
        raise ValueError(f"nested more than {max_depth} levels deep") from None
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > max_depth:
            raise ValueError(f"nested more than {max_depth} levels deep")
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, level + 1) for c in children if isinstance(c, dict | list))
    return value


@functools.cache
def _validator(part: str) -> Draft202012Validator:
    schema = schemas.load("index")
    # RE2 runs the patterns, as for package files: its ``$`` is the end of the text.
    return Re2Draft202012Validator(
        {"$ref": f"#/$defs/{part}", "$defs": schema["$defs"]})


def _parse(data: bytes, part: str, where: str) -> dict[str, Any]:
    """Parse and validate one index file, reporting every problem.

    :raises RepositoryError: naming ``where`` and each JSON path that is wrong.
    """
    try:
        value: dict[str, Any] = loads_bounded(data, MAX_DEPTH)
    except ValueError as exc:
        raise RepositoryError(f"{where} is not valid JSON", path=where,
                              details=[{"path": where, "message": str(exc)[:300]}]) from None
    problems = [{"path": f"{where}#/" + "/".join(str(p) for p in e.absolute_path),
                 "message": e.message[:300]}
                for e in _validator(part).iter_errors(value)]
    if problems:
        raise RepositoryError(f"{where} does not match the index schema", path=where,
                              details=problems[:50])
    return value


_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_ITEM_TEXT = {"version": 128, "title": 200, "description": 2000, "icon": 2000}


def _item_problems(i: int, item: Any) -> list[dict[str, str]]:
    """Problems of one listing entry: the schema's ``listing`` items, checked by hand.

    A listing may hold 100,000 entries; a generic validator takes seconds on that, this
    takes milliseconds. ``schemas/index.schema.json`` stays the documented contract.
    """
    where = f"index.json#/packages/{i}"
    if not isinstance(item, dict):
        return [{"path": where, "message": "must be an object"}]
    found = [{"path": f"{where}/{key}", "message": "is required"}
             for key in ("name", "version", "digest") if key not in item]
    checks = (("name", lambda v: isinstance(v, str) and INDEX_NAME.fullmatch(v), "a package name"),
              ("digest", lambda v: isinstance(v, str) and _DIGEST_RE.fullmatch(v),
               "sha256:<64 hex digits>"),
              ("tags", lambda v: isinstance(v, list) and len(v) <= 50 and all(
                  isinstance(t, str) and len(t) <= 64 for t in v), "a list of short strings"),
              ("featured", lambda v: isinstance(v, bool), "true or false"),
              ("versions", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
               "a positive integer"))
    for key, ok, what in checks:
        if key in item and not ok(item[key]):
            found.append({"path": f"{where}/{key}", "message": f"must be {what}"})
    for key, longest in _ITEM_TEXT.items():
        value = item.get(key)
        if key in item and not (isinstance(value, str) and len(value) <= longest
                                or (key == "icon" and value is None)):
            found.append({"path": f"{where}/{key}",
                          "message": f"must be a string of at most {longest} characters"})
    if isinstance(item.get("version"), str) and not item["version"]:
        found.append({"path": f"{where}/version", "message": "must not be empty"})
    return found


def parse_listing(data: bytes) -> dict[str, Any]:
    """Parse and validate ``index.json``; names must be unique.

    :raises RepositoryError: with every problem.
    """
    listing = _parse(data, "listing_head", "index.json")
    problems = [p for i, item in enumerate(listing["packages"]) for p in _item_problems(i, item)]
    if problems:
        raise RepositoryError("index.json does not match the index schema", path="index.json",
                              details=problems[:50])
    seen: set[str] = set()
    for i, item in enumerate(listing["packages"]):
        if item["name"] in seen:
            raise RepositoryError("index.json lists a package twice", path="index.json",
                                  details=[{"path": f"index.json#/packages/{i}/name",
                                           "message": f"{item['name']!r} appears twice"}])
        seen.add(item["name"])
    return listing


def parse_package_document(data: bytes, *, name: str | None = None,
                           digest: str | None = None) -> dict[str, Any]:
    """Parse and validate ``packages/<name>.json`` (its name and digest checked if given).

    :raises RepositoryError: with every problem.
    """
    where = f"packages/{name}.json" if name else "package document"
    if digest is not None and digest_of(data) != digest:
        raise RepositoryError(f"{where} does not match the digest in index.json", path=where,
                              hint="the repository changed while it was read; refresh again")
    document = _parse(data, "document", where)
    if name is not None and document["name"] != name:
        raise RepositoryError(f"{where} names another package ({document['name']!r})",
                              path=where)
    return document


def packages_from_document(document: Mapping[str, Any], *, repository: str = ""
                           ) -> list[Package]:
    """The ``Package`` of every usable version in a (validated) document."""
    found = []
    for entry in document.get("versions", ()):
        package = _package(document["name"], entry, repository)
        if package is not None:
            found.append(package)
    return found


def _package(name: str, entry: Mapping[str, Any], repository: str) -> Package | None:
    """One version entry as a Package (None when its native version is not semver)."""
    fmt = entry.get("format", "berth")
    try:
        semver = parse_version(entry["version"])
    except VersionError:
        if fmt == "berth":
            return None
        semver = None
    fields: dict[str, Any] = {attr: entry.get(key) for key, attr in _NOTES}
    return Package(
        name=name, version=entry["version"], semver=semver, order=entry.get("order"),
        description=entry.get("description", ""), maintainer=entry.get("maintainer", ""),
        tags=tuple(entry.get("tags") or ()), title=entry.get("title") or "",
        website=entry.get("website"), licenses=tuple(entry.get("licenses") or ()),
        featured=bool(entry.get("featured")), config_schema=dict(entry.get("config") or {}),
        resource=dict(entry.get("resource") or {}), template=entry.get("template", ""),
        readme=entry.get("readme") or "", format=fmt, repository=repository,
        unsupported=tuple(entry.get("unsupported") or ()), yanked=entry.get("yanked"),
        **fields)
