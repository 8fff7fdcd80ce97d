"""Read DC/OS Universe packages as they are: the folder layout and the built index.

Two forms of the same data:

- a folder ``<root>/packages/<LETTER>/<name>/<revision>/`` holding ``package.json``,
  ``config.json``, ``resource.json``, ``marathon.json.mustache`` and sometimes
  ``command.json`` (:func:`load_universe_dir`, :func:`load_version_dir`);
- the built index ``repo-up-to-<dcos>.json``: ``{"packages": [...]}`` where each entry
  is ``package.json`` plus ``releaseVersion``, ``config``, ``resource``, ``command`` and
  ``marathon.v2AppMustacheTemplate`` in base64 (:func:`parse_repo_json`).

packagingVersion 2.0, 3.0 and 4.0 are read. ``Package.version`` is the upstream
``version`` (what users see and type), ``order`` is ``releaseVersion`` (the revision),
so versions order as Universe ordered them even where ``version`` is not semver, and
``semver`` is set only where ``version`` parses. Where two revisions carry the same
``version``, the newest revision is the one a repository offers (Cosmos resolved a
version string to its newest revision too); the older one is listed as a problem.

Nothing raises for a broken package version: it becomes a problem entry
``{"path", "message"}`` and the rest loads.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from catalog.dcos.compat import static_reasons
from catalog.errors import VersionError
from catalog.model import Package
from catalog.reading import loads_json
from catalog.repository import Repository
from catalog.version import parse_version

__all__ = ["load_universe_dir", "load_version_dir", "parse_repo_json", "package_from_entry",
           "packages_from_universe_entries", "is_universe_dir", "PACKAGING_VERSIONS"]

PACKAGING_VERSIONS = ("2.0", "3.0", "4.0")
Problem = dict[str, str]


class _Broken(Exception):
    """A package version that cannot be loaded; carries its problems."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems[0]["message"] if problems else "broken")
        self.problems = problems


def is_universe_dir(path: str | Path) -> bool:
    """True when ``path`` holds the Universe layout (``packages/<LETTER>/<name>/<rev>/``)."""
    packages = Path(path) / "packages"
    if not packages.is_dir():
        return False
    return any(len(p.name) == 1 and p.is_dir() for p in packages.iterdir())


# the folder form ------------------------------------------------------------------------
def load_universe_dir(path: str | Path, *, name: str,
                      priority: int = 100) -> tuple[Repository, list[Problem]]:
    """Every package version under ``path/packages``; broken ones become problems."""
    root = Path(path)
    problems: list[Problem] = []
    packages: list[Package] = []
    base = root / "packages"
    if not base.is_dir():
        problems.append({"path": f"{name}/packages", "message": "no packages/ folder"})
    for version_dir in _version_dirs(base, name, problems):
        package, found = load_version_dir(version_dir, repository=name,
                                          display=f"{name}/{version_dir.relative_to(root)}")
        problems.extend(found)
        if package is not None:
            packages.append(package)
    kept = _newest_per_version(packages, problems, name)
    repo = Repository(name=name, priority=priority, kind="dcos", location=str(root),
                      packages=tuple(kept), problems=tuple(problems))
    return repo, problems


def _sorted_dirs(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def _version_dirs(base: Path, repo: str, problems: list[Problem]) -> Iterable[Path]:
    """``packages/<LETTER>/<name>/<revision>`` folders; misplaced ones are problems."""
    for letter in _sorted_dirs(base):
        for pkg in _sorted_dirs(letter):
            if pkg.name[:1].upper() != letter.name.upper():
                problems.append({"path": f"{repo}/packages/{letter.name}/{pkg.name}",
                                 "message": f"package {pkg.name!r} is filed under "
                                            f"{letter.name!r}"})
            yield from _sorted_dirs(pkg)


def _read_json(path: Path, display: str, *, required: bool) -> Any:
    """Parse one JSON file (None when absent and optional).

    :raises _Broken: unreadable, not JSON, or required and missing.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise _Broken([{"path": display, "message": "missing"}]) from None
        return None
    except OSError as exc:
        raise _Broken([{"path": display, "message": f"unreadable: {exc.strerror}"}]) from exc
    try:
        return loads_json(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Broken([{"path": display, "message": f"not valid JSON: {exc}"}]) from exc


def load_version_dir(path: str | Path, *, repository: str = "",
                     display: str | None = None) -> tuple[Package | None, list[Problem]]:
    """One revision folder as a :class:`Package` (None, with problems, when broken)."""
    folder = Path(path)
    where = display or str(folder)
    try:
        entry = _entry_from_dir(folder, where)
        return package_from_entry(entry, repository=repository, path=folder, display=where)
    except _Broken as exc:
        return None, exc.problems


def _entry_from_dir(folder: Path, where: str) -> dict[str, Any]:
    """The folder's files in the shape of a ``repo-up-to-*.json`` entry.

    :raises _Broken: when ``package.json`` cannot be read.
    """
    entry = _read_json(folder / "package.json", f"{where}/package.json", required=True)
    if not isinstance(entry, dict):
        raise _Broken([{"path": f"{where}/package.json", "message": "not a JSON object"}])
    entry = dict(entry)
    if folder.name.isdigit():
        entry.setdefault("releaseVersion", int(folder.name))
    else:
        entry.setdefault("releaseVersion", folder.name)
    problems: list[Problem] = []
    for key, file in (("config", "config.json"), ("resource", "resource.json")):
        try:
            value = _read_json(folder / file, f"{where}/{file}", required=False)
        except _Broken as exc:
            problems.extend(exc.problems)
            continue
        if value is not None:
            entry[key] = value
    template = folder / "marathon.json.mustache"
    if template.is_file():
        entry["marathon"] = {"template": template.read_text("utf-8", errors="replace")}
    if (folder / "command.json").is_file():
        entry.setdefault("command", {})
    entry["_problems"] = problems
    return entry


# the built index form ------------------------------------------------------------------
def parse_repo_json(data: Mapping[str, Any], *, name: str,
                    priority: int = 100, location: str = "") -> tuple[Repository, list[Problem]]:
    """A ``repo-up-to-*.json`` document (``{"packages": [...]}``) as a repository."""
    problems: list[Problem] = []
    entries = data.get("packages") if isinstance(data, Mapping) else None
    if not isinstance(entries, list):
        problems.append({"path": f"{name}#/packages", "message": "no packages list"})
        entries = []
    packages = []
    for i, entry in enumerate(entries):
        package, found = _package_from_index_entry(entry, repository=name,
                                                   display=f"{name}#/packages/{i}")
        problems.extend(found)
        if package is not None:
            packages.append(package)
    kept = _newest_per_version(packages, problems, name)
    repo = Repository(name=name, priority=priority, kind="dcos", location=location,
                      packages=tuple(kept), problems=tuple(problems))
    return repo, problems


def packages_from_universe_entries(document: Any, *, repository: str) -> list[Package]:
    """Packages of index entries: a whole index, a list of entries, or one entry."""
    if isinstance(document, Mapping) and "packages" in document:
        return list(parse_repo_json(document, name=repository)[0].packages)
    entries = document if isinstance(document, list) else [document]
    found = []
    for i, entry in enumerate(entries):
        package, _ = _package_from_index_entry(entry, repository=repository,
                                               display=f"{repository}#/{i}")
        if package is not None:
            found.append(package)
    return found


def _package_from_index_entry(entry: Any, *, repository: str,
                              display: str) -> tuple[Package | None, list[Problem]]:
    """One index entry: decode the base64 template, then build the package."""
    if not isinstance(entry, Mapping):
        return None, [{"path": display, "message": "a package entry must be an object"}]
    entry = dict(entry)
    marathon = entry.get("marathon")
    problems: list[Problem] = []
    if isinstance(marathon, Mapping) and "v2AppMustacheTemplate" in marathon:
        try:
            text = base64.b64decode(str(marathon["v2AppMustacheTemplate"]), validate=True)
            entry["marathon"] = {"template": text.decode("utf-8", errors="replace")}
        except (binascii.Error, ValueError):
            problems.append({"path": f"{display}/marathon/v2AppMustacheTemplate",
                             "message": "not valid base64"})
            entry.pop("marathon")
    entry["_problems"] = problems
    try:
        return package_from_entry(entry, repository=repository, path=None, display=display)
    except _Broken as exc:
        return None, exc.problems


# building the Package -----------------------------------------------------------------
def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _required(entry: Mapping[str, Any], display: str) -> tuple[str, str]:
    """``name`` and ``version``, both non-empty strings.

    :raises _Broken: when either is missing.
    """
    missing = [k for k in ("name", "version") if not _text(entry.get(k))]
    if missing:
        raise _Broken([{"path": f"{display}/package.json#/{k}", "message": "missing"}
                       for k in missing])
    return entry["name"], entry["version"]


def package_from_entry(entry: Mapping[str, Any], *, repository: str, path: Path | None,
                       display: str) -> tuple[Package, list[Problem]]:
    """A :class:`Package` from a normalized entry (template as text).

    :raises _Broken: when name or version is missing.
    """
    name, version = _required(entry, display)
    problems: list[Problem] = list(entry.get("_problems") or [])
    problems.extend(_check_entry(entry, display, path))
    config = _object(entry.get("config"))
    resource = _object(entry.get("resource"))
    template = _text(_object(entry.get("marathon")).get("template"))
    reasons = static_reasons(entry, template, "command" in entry or "cli" in resource)
    if any(p["path"].endswith(("config.json", "resource.json")) for p in problems):
        reasons = reasons + [f"{p['path'].rsplit('/', 1)[-1]}: {p['message']}"
                             for p in problems if p["path"].endswith(".json")]
    package = Package(
        name=name, version=version, semver=_semver(version),
        order=_order(entry.get("releaseVersion")),
        description=_text(entry.get("description")), maintainer=_text(entry.get("maintainer")),
        tags=tuple(t for t in _items(entry.get("tags")) if isinstance(t, str)),
        title=name, website=_text(entry.get("website")) or _text(entry.get("scm")) or None,
        licenses=tuple(lic for lic in _items(entry.get("licenses")) if isinstance(lic, dict)),
        featured=bool(entry.get("selected")),
        pre_install_notes=_text(entry.get("preInstallNotes")) or None,
        post_install_notes=_text(entry.get("postInstallNotes")) or None,
        post_uninstall_notes=_text(entry.get("postUninstallNotes")) or None,
        upgrades_from=_upgrades_from(entry.get("upgradesFrom")),
        config_schema=config, resource=_with_icon(resource), template=template,
        format="dcos", repository=repository, path=path, upstream_version=version,
        unsupported=tuple(reasons))
    return package, problems


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _check_entry(entry: Mapping[str, Any], display: str, path: Path | None) -> list[Problem]:
    """Problems worth telling a maintainer that do not stop loading."""
    problems = []
    pv = entry.get("packagingVersion")
    if pv not in PACKAGING_VERSIONS:
        problems.append({"path": f"{display}/package.json#/packagingVersion",
                         "message": f"packagingVersion {pv!r} is not one of "
                                    f"{', '.join(PACKAGING_VERSIONS)}"})
    if path is not None and path.parent.name != entry.get("name"):
        problems.append({"path": f"{display}/package.json#/name",
                         "message": f"name {entry.get('name')!r} differs from the folder "
                                    f"{path.parent.name!r}"})
    if not isinstance(entry.get("releaseVersion"), int):
        problems.append({"path": f"{display}#/releaseVersion",
                         "message": "the revision is not a whole number"})
    return problems


def _order(release: Any) -> Any:
    return release if isinstance(release, int) and not isinstance(release, bool) else -1


def _semver(version: str) -> Any:
    try:
        return parse_version(version)
    except (VersionError, ValueError, TypeError):
        return None


def _upgrades_from(value: Any) -> str | None:
    """DC/OS ``upgradesFrom`` (a list of versions, ``*`` for any) as a Berth range."""
    if not isinstance(value, list) or not value:
        return None
    if "*" in value:
        return "*"
    if all(_semver(str(v)) is not None for v in value):
        return " || ".join(str(v) for v in value)
    return None


def _with_icon(resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` with ``images.icon`` set from DC/OS's ``icon-medium`` and kin."""
    images = resource.get("images")
    if not isinstance(images, Mapping) or isinstance(images.get("icon"), str):
        return resource
    for key in ("icon-medium", "icon-large", "icon-small"):
        if isinstance(images.get(key), str):
            return {**resource, "images": {**images, "icon": images[key]}}
    return resource


def _newest_per_version(packages: list[Package], problems: list[Problem],
                        repo: str) -> list[Package]:
    """One package per (name, version): the newest revision; the others are problems."""
    best: dict[tuple[str, str], Package] = {}
    for package in packages:
        key = (package.name, package.version)
        old = best.get(key)
        if old is None or package.sort_key > old.sort_key:
            best[key] = package
    for package in packages:
        kept = best[(package.name, package.version)]
        if package is not kept:
            problems.append({"path": f"{repo}/{package.name}/{package.order}",
                             "message": f"revision {package.order} of {package.version} is "
                                        f"superseded by revision {kept.order}"})
    return sorted(best.values(), key=lambda p: (p.name, p.sort_key))
