"""Read package folders and repositories from disk, reporting every problem at once.

Layout: ``<repository>/packages/<name>/<version>/`` holding ``package.json``,
``config.json`` (optional), ``resource.json``, ``service.json.j2`` and ``README.md``
(optional), plus the icon and screenshot files ``resource.json`` names.

Two levels of checking, chosen for what each caller needs:

- **load** (``load_package_dir``, ``load_repository_dir(strict=False)``: serving) —
  files present and within size limits, JSON well-formed, ``package.json`` and
  ``resource.json`` valid against their schemas, name and version equal to their
  folders, semver and ranges valid, the config schema a valid 2020-12 schema with
  local ``$ref`` s and RE2-compatible patterns, every ``x-generate`` usable
  (``catalog.generated_secrets``), image references pinned. Cheap: one
  compiled validator per schema, identical files parsed and checked once.
- **lint** (``lint_package_dir``, ``lint_paths``, ``strict=True``: publishing and
  ``berth lint``) — all of the above, plus every ``default`` valid against its own
  schema, icon/screenshot files present, the template compiled and rendered with the
  defaults to a service spec that validates and passes the policy. Rendering costs
  milliseconds per version, so a server loading 50,000 versions does not do it; a
  template fault that slipped past lint still fails safely at install time. Lint checks
  each file on its own: a version whose ``package.json`` has a problem still gets its
  defaults, files and template checked and rendered (``_lint_anyway``).

Problem paths name the file and the JSON path inside it, e.g.
``universe/packages/nginx/1.27.3/config.json#/properties/port/default``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .dcos import loader as dcos_loader
from .errors import PackageInvalid, Problem, RepositoryError, VersionError
from .generated_secrets import generate_problems
from .links import credential_problems, link_problems
from .lint import deep_problems
from .model import Package
from .reading import LIMITS, loads_json, read_ahead, read_folder
from .repository import Repository
from .schemas.validation import builtin, check_schema
from .version import parse_range, parse_version

__all__ = ["load_package_dir", "lint_package_dir", "load_repository_dir", "lint_paths",
           "package_from_files", "LIMITS"]


_EMPTY_CONFIG: dict[str, Any] = {"type": "object", "properties": {}}


class _Shared:
    """What the versions of one load share: identical options schemas are parsed and
    checked once and become one object; identical texts (templates, READMEs) one
    string. Per load, so nothing outlives the repository that uses it."""

    def __init__(self) -> None:
        self.parsed: dict[bytes, tuple[Any, list[Problem]]] = {}
        self.text: dict[str, str] = {}


def _problem(path: str, message: str) -> Problem:
    return {"path": path, "message": message}


def _parse_json(data: bytes, file: str) -> tuple[Any, list[Problem]]:
    try:
        return loads_json(data.decode("utf-8")), []
    except UnicodeDecodeError as exc:
        return None, [_problem(file, f"not UTF-8 text (byte {exc.start})")]
    except json.JSONDecodeError as exc:
        return None, [_problem(file, f"malformed JSON at line {exc.lineno}, column "
                                     f"{exc.colno}: {exc.msg}")]
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        return None, [_problem(file, f"malformed JSON: {reason}")]


def _checked(kind: str, data: bytes, file: str,
             shared: _Shared | None = None) -> tuple[Any, list[Problem]]:
    """Parse and check one JSON file. Identical options schemas (most versions of a
    package share one) are parsed and checked once and share one object."""
    cache = shared.parsed if shared is not None and kind == "config.json" else None
    hit = cache.get(data) if cache is not None else None
    if hit is None:
        doc, problems = _parse_json(data, "")
        if doc is not None:
            problems = _check_doc(kind, doc)
        hit = (doc, problems)
        if cache is not None:
            cache[data] = hit
    doc, problems = hit
    if not problems:
        return doc, []
    return doc, [_problem(file + p["path"], p["message"]) for p in problems]


def _check_doc(kind: str, doc: Any) -> list[Problem]:
    if kind == "config.json":
        problems = check_schema(doc)
        if isinstance(doc, dict) and doc.get("type", "object") != "object":
            problems.append(_problem("#/type", "the options schema must have type 'object'"))
        if not problems:
            problems.extend(_problem("#" + loc, why) for loc, why in generate_problems(doc))
            problems.extend(_problem("#" + loc, why) for loc, why in link_problems(doc))
        return problems
    problems = builtin(kind.removesuffix(".json")).problems(doc, "")
    if kind == "resource.json" and not problems:
        problems.extend(_image_problems(doc))
    return problems


def _image_problems(resource: dict[str, Any]) -> list[Problem]:
    """Image references must be pinned to a tag (not ``latest``) or a digest."""
    found = []
    for key, ref in resource["assets"]["container"]["docker"].items():
        last = ref.rsplit("/", 1)[-1]
        if "@" not in ref and (":" not in last or last.endswith(":latest")):
            found.append(_problem(f"#{'/assets/container/docker/'}{key}",
                                  f"{ref!r} is not pinned: name a version tag or a digest"))
    return found


def _text(data: bytes | None, file: str, problems: list[Problem],
          shared: _Shared | None = None) -> str:
    if data is None:
        return ""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(_problem(file, f"not UTF-8 text (byte {exc.start})"))
        return ""
    return shared.text.setdefault(text, text) if shared is not None else text


def _meta_problems(meta: dict[str, Any], shown: str, folder_version: str | None,
                   folder_name: str | None) -> list[Problem]:
    """Checks of ``package.json`` a schema cannot express."""
    file = f"{shown}/package.json"
    found: list[Problem] = []
    version = meta.get("version")
    if isinstance(version, str):
        try:
            parse_version(version)
        except VersionError as exc:
            found.append(_problem(f"{file}#/version", exc.message))
        if folder_version is not None and version != folder_version:
            found.append(_problem(f"{file}#/version", f"{version!r} does not equal its "
                                  f"folder name {folder_version!r}"))
    name = meta.get("name")
    if folder_name is not None and isinstance(name, str) and name != folder_name:
        found.append(_problem(f"{file}#/name", f"{name!r} does not equal its package "
                              f"folder name {folder_name!r}"))
    for key, parse in (("upgradesFrom", parse_range), ("minBerthVersion", parse_version)):
        if isinstance(meta.get(key), str):
            try:
                parse(meta[key])
            except VersionError as exc:
                found.append(_problem(f"{file}#/{key}", exc.message))
    return found


def package_from_files(meta: dict[str, Any], config: dict[str, Any],
                       resource: dict[str, Any], template: str, readme: str = "", *,
                       repository: str = "", path: Path | None = None,
                       files: dict[str, bytes] | None = None) -> Package:
    """Build a :class:`Package` from already checked file contents."""
    version = meta["version"]
    return Package(
        name=meta["name"], version=version, semver=parse_version(version),
        description=meta.get("description", ""), maintainer=meta.get("maintainer", ""),
        tags=tuple(meta.get("tags", ())), title=meta.get("title", ""),
        website=meta.get("website"), licenses=tuple(meta.get("licenses", ())),
        featured=bool(meta.get("featured", False)),
        pre_install_notes=meta.get("preInstallNotes"),
        post_install_notes=meta.get("postInstallNotes"),
        post_uninstall_notes=meta.get("postUninstallNotes"),
        upgrades_from=meta.get("upgradesFrom"), min_berth_version=meta.get("minBerthVersion"),
        upstream_version=meta.get("upstreamVersion"), config_schema=config,
        resource=resource, template=template, readme=readme, format="berth",
        repository=repository, path=path, files=files, tests=meta.get("tests"),
    )


def _load(folder: str, shown: str, *, repository: str, folder_name: str | None,
          strict: bool, base: Path | None = None,
          read: tuple[dict[str, bytes], list[Problem]] | None = None,
          shared: _Shared | None = None) -> tuple[Package | None, list[Problem]]:
    if read is None:
        problems: list[Problem] = []
        raw = read_folder(folder, shown, problems)
    else:
        raw, problems = read[0], list(read[1])
    docs: dict[str, Any] = {}
    for name in ("package.json", "config.json", "resource.json"):
        if name in raw:
            docs[name], found = _checked(name, raw[name], f"{shown}/{name}", shared)
            problems.extend(found)
    meta = docs.get("package.json")
    if isinstance(meta, dict):
        problems.extend(_meta_problems(meta, shown, os.path.basename(folder), folder_name))
    template = _text(raw.get("service.json.j2"), f"{shown}/service.json.j2", problems, shared)
    readme = _text(raw.get("README.md"), f"{shown}/README.md", problems, shared)
    path = base / os.path.basename(folder) if base else Path(folder)
    if problems or meta is None:
        if strict:
            problems.extend(_lint_anyway(docs, raw, template, shown, path, problems))
        return None, problems
    config = docs.get("config.json", _EMPTY_CONFIG)
    package = package_from_files(meta, config, docs["resource.json"], template, readme,
                                 repository=repository, path=path)
    if strict:
        problems.extend(deep_problems(package, shown))
    return (None if problems else package), problems


def _lint_anyway(docs: dict[str, Any], raw: dict[str, bytes], template: str, shown: str,
                 path: Path, problems: list[Problem]) -> list[Problem]:
    """Lint's own checks of a version whose files have problems already.

    Each file is checked on its own: a fault in ``package.json`` must not hide a bad
    default in ``config.json`` or an undefined name in the template. The package is
    built from what is usable (a stand-in name and version when ``package.json`` is
    not); the template is rendered unless the options schema or ``resource.json`` it
    needs is unusable, and then lint says which (``not rendered: …``).
    """
    reason = _why_not_rendered(docs, raw, shown, problems)
    meta = docs.get("package.json")
    meta = meta if isinstance(meta, dict) else {}
    name = meta.get("name") if isinstance(meta.get("name"), str) else path.parent.name
    version = meta.get("version") if isinstance(meta.get("version"), str) else ""
    try:
        parse_version(version)
    except VersionError:
        version = "0.0.0"
    config = docs.get("config.json", _EMPTY_CONFIG)
    usable = isinstance(config, dict) and not _faulty(problems, f"{shown}/config.json")
    resource = docs.get("resource.json")
    package = package_from_files({"name": name, "version": version},
                                 config if usable else _EMPTY_CONFIG,
                                 resource if isinstance(resource, dict) else {}, template,
                                 path=path)
    return deep_problems(package, shown, unrenderable=reason)


def _faulty(problems: list[Problem], file: str, *, but: str | None = None) -> bool:
    """Whether ``file`` has a problem (other than ones whose message has ``but``)."""
    return any(p["path"].split("#", 1)[0] == file
               and (but is None or but not in p["message"]) for p in problems)


def _why_not_rendered(docs: dict[str, Any], raw: dict[str, bytes], shown: str,
                      problems: list[Problem]) -> str | None:
    """Why lint cannot render this version's template, or None when it can."""
    if "service.json.j2" not in raw or _faulty(problems, f"{shown}/service.json.j2"):
        return "service.json.j2 is missing or could not be read"
    if _faulty(problems, f"{shown}/config.json") or not isinstance(
            docs.get("config.json", {}), dict):
        return "config.json is not a usable options schema (see its problems)"
    if not isinstance(docs.get("resource.json"), dict) or _faulty(
            problems, f"{shown}/resource.json", but="is not pinned"):
        return "resource.json is missing or not valid (see its problems)"
    return None


def load_package_dir(path: str | os.PathLike[str], *, repository: str = "",
                     strict: bool = False) -> Package:
    """Load one package version folder.

    :raises PackageInvalid: with every problem found.
    """
    shown = os.fspath(path).rstrip("/") or "/"
    parent = os.path.basename(os.path.dirname(os.path.abspath(shown)))
    package, problems = _load(shown, shown, repository=repository, folder_name=None,
                              strict=strict)
    if package is None:
        raise PackageInvalid(f"{shown} is not a valid package ({len(problems)} problems)",
                             path=shown, details=problems,
                             package=parent or None, version=os.path.basename(shown))
    return package


def lint_package_dir(path: str | os.PathLike[str]) -> list[Problem]:
    """Every problem of one package version folder, rendering included."""
    shown = os.fspath(path).rstrip("/") or "/"
    return _load(shown, shown, repository="", folder_name=None, strict=True)[1]


def _subfolders(path: str) -> list[str]:
    """Sorted entries of ``path`` that may be folders (hidden ones skipped). Plain
    ``listdir``: a file among them fails to load with a clear problem anyway."""
    try:
        return sorted(n for n in os.listdir(path) if not n.startswith("."))
    except OSError:
        return []


def _packages_root(path: str) -> str:
    inner = os.path.join(path, "packages")
    return inner if os.path.isdir(inner) else path


def _version_folders(root: str, names: list[str], problems: list[Problem]) -> list[str]:
    folders: list[str] = []
    for name in names:
        package_folder = f"{root}/{name}"
        versions = _subfolders(package_folder)
        if not versions:
            problems.append(_problem(package_folder, "a package folder holds version "
                                                     "folders; none found"))
        folders.extend(f"{package_folder}/{v}" for v in versions)
    return folders


def _load_folders(folders: list[str], *, repository: str, strict: bool,
                  into: list[Package], problems: list[Problem]) -> None:
    bases: dict[str, Path] = {}
    shared = _Shared()
    for folder, read in zip(folders, read_ahead(folders), strict=True):
        parent = os.path.dirname(folder)
        base = bases.get(parent) or bases.setdefault(parent, Path(parent))
        package, found = _load(folder, folder, repository=repository,
                               folder_name=os.path.basename(parent), strict=strict,
                               base=base, read=read, shared=shared)
        problems.extend(found)
        if package is not None:
            into.append(package)


def load_repository_dir(path: str | os.PathLike[str], *, name: str, priority: int = 100,
                        kind: str = "directory", strict: bool = False,
                        ) -> tuple[Repository, list[Problem]]:
    """Load every package of a repository folder; faulty versions are left out.

    :raises RepositoryError: when ``path`` is not a readable folder.
    """
    shown = os.fspath(path).rstrip("/") or "/"
    if not os.path.isdir(shown):
        raise RepositoryError(f"{shown} is not a folder", path=shown)
    root = _packages_root(shown)
    packages: list[Package] = []
    problems: list[Problem] = []
    folders = _version_folders(root, _subfolders(root), problems)
    _load_folders(folders, repository=name, strict=strict, into=packages, problems=problems)
    if strict:
        problems.extend(_handover_problems(packages))
    repo = Repository(name=name, priority=priority, kind=kind,  # type: ignore[arg-type]
                      location=os.path.abspath(shown), packages=tuple(packages),
                      problems=tuple(problems))
    return repo, problems


def _handover_problems(packages: list[Package]) -> list[Problem]:
    """Credentials a link asks for that are no secret of the linked package, where that
    package is in the same repository (``catalog.links.credential_problems``)."""
    schemas: dict[str, list[Any]] = {}
    for package in packages:
        schemas.setdefault(package.name, []).append(package.config_schema)
    found: list[Problem] = []
    for package in packages:
        file = os.path.join(os.fspath(package.path or package.name), "config.json")
        found.extend(_problem(f"{file}#{loc}", why) for loc, why in credential_problems(
            package.config_schema, lambda name: schemas.get(name, [])))
    return found


def _kind_of(path: str) -> str:
    if os.path.isfile(os.path.join(path, "package.json")):
        return "version"
    if os.path.isdir(os.path.join(path, "packages")):
        return "repository"
    subs = _subfolders(path)
    if subs and any(os.path.isfile(os.path.join(path, s, "package.json")) for s in subs):
        return "package"
    if subs and any(_kind_of(os.path.join(path, s)) == "package" for s in subs[:50]):
        return "repository"
    return "unknown"


def _lint_repository(path: str) -> list[Problem]:
    """Lint a native repository, or a DC/OS Universe one with ``catalog.dcos``."""
    if dcos_loader.is_universe_dir(path):
        return list(dcos_loader.load_universe_dir(path, name=os.path.basename(path))[1])
    return load_repository_dir(path, name="lint", strict=True)[1]


def lint_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Problem]:
    """Every problem under ``paths``; each a version folder, a package folder or a
    repository."""
    problems: list[Problem] = []
    for raw in paths:
        path = os.fspath(raw).rstrip("/") or "/"
        if not os.path.isdir(path):
            problems.append(_problem(path, "no such folder"))
            continue
        kind = _kind_of(path)
        if kind == "version":
            parent = os.path.dirname(os.path.abspath(path))
            in_repo = os.path.basename(os.path.dirname(parent)) == "packages"
            problems.extend(_load(path, path, repository="", strict=True,
                                  folder_name=os.path.basename(parent) if in_repo else None)[1])
        elif kind == "package":
            folders = _version_folders(os.path.dirname(path) or ".",
                                       [os.path.basename(path)], problems)
            _load_folders(folders, repository="", strict=True, into=[], problems=problems)
        elif kind == "repository":
            problems.extend(_lint_repository(path))
        else:
            problems.append(_problem(path, "not a package version folder, a package folder "
                                           "or a repository (nothing with a package.json)"))
    return problems
