"""The server's catalog: every repository merged into one ``catalog.Catalog``.

Sources, by default priority (lower number wins a package name that no repository
owns yet; the repository that wins a name supplies all its versions):

- ``hosted``   (50)  — packages maintainers published to this Berth (Redis),
  ``BERTH_HOSTED_PRIORITY``,
- ``universe`` (100) — the builtin repository shipped with Berth
  (``settings.universe_dir``), ``BERTH_UNIVERSE_PRIORITY``,
- directory repositories named in ``BERTH_REPOSITORY_DIRS`` (150 unless given),
- remote repositories an admin added (their last good copy, kept in Redis; 200 unless
  given).

Several server processes share one Redis and must agree on the catalog, so nothing
here is state another process needs: every change to hosted packages or repository
settings bumps one generation counter in Redis, and :meth:`CatalogCache.get` rebuilds
when the counter it sees differs from the one it built from (one ``GET`` per call).
Parsed packages are cached per process by content digest, so a rebuild only parses
what changed; the builtin universe and configured directories are parsed once.

Every build also settles who each package name belongs to (``store.owners``): a name
no record claims yet is claimed for the repository that serves it first
(:func:`catalog.owners.first_claims`; a hosted-only name for the maintainer who first
published it), and the catalog resolves each name within its owners' repositories
only. Claims never overwrite a record, so every process agrees on them.

When Redis cannot be reached the last catalog built (or the builtin universe alone)
is served: a broken source never breaks the catalog.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from catalog import dcos
from catalog.bundle import package_from_bundle
from catalog.index import Catalog
from catalog.loader import load_repository_dir
from catalog.owners import HOSTED, first_claims, ownership
from catalog.repository import Repository
from catalog.static_index import packages_from_document

log = logging.getLogger(__name__)

DIRECTORY_PRIORITY = 150
RETRY_AFTER = 2.0  # seconds without Redis reads after a failed one


def parse_directory_setting(text: str) -> list[tuple[str, str, int]]:
    """Parse ``BERTH_REPOSITORY_DIRS``: ``name=path[@priority]`` items split by ``;``.

    :raises ValueError: naming the item that does not parse.
    """
    found: list[tuple[str, str, int]] = []
    for item in (part.strip() for part in text.split(";")):
        if not item:
            continue
        name, sep, rest = item.partition("=")
        if not sep or not name.strip() or not rest.strip():
            raise ValueError(f"BERTH_REPOSITORY_DIRS: {item!r} is not name=path[@priority]")
        path, _, prio = rest.rpartition("@") if "@" in rest else (rest, "", "")
        try:
            priority = int(prio) if prio else DIRECTORY_PRIORITY
        except ValueError as exc:
            raise ValueError(f"BERTH_REPOSITORY_DIRS: priority of {name!r} is not a number") \
                from exc
        found.append((name.strip(), path.strip(), priority))
    return found


class CatalogCache:
    """Builds and caches the merged catalog; ``get()`` is cheap and always answers."""

    def __init__(self, settings: Any, store: Any) -> None:
        self.settings = settings
        self.store = store
        self._lock = threading.Lock()
        self._catalog: Any = None
        self._generation: Any = object()  # matches nothing: the first get() builds
        self._static: list[Any] | None = None  # universe + configured directories
        self._hosted_cache: dict[tuple[str, str, str], Any] = {}
        self._remote_cache: dict[tuple[str, str, str], tuple[Any, ...]] = {}
        self._retry_at = 0.0
        self._remote_listings: dict[str, tuple[str, tuple[Any, ...]]] = {}
        self._first_publishers: dict[str, str] = {}  # hosted name → its first publisher

    # the one public call -------------------------------------------------------
    def get(self) -> Any:
        """The current catalog, rebuilt when the Redis generation counter moved."""
        generation = self._read_generation()
        catalog = self._catalog
        if catalog is not None and (generation is None or generation == self._generation):
            return catalog
        with self._lock:
            if self._catalog is not None and generation == self._generation:
                return self._catalog
            self._catalog = self._build(generation)
            if generation is not None:
                self._generation = generation
            return self._catalog

    def invalidate(self) -> None:
        """Forget the built catalog (the next ``get()`` rebuilds)."""
        with self._lock:
            self._generation = object()

    # building --------------------------------------------------------------------
    def _read_generation(self) -> Any:
        """The Redis generation counter, or None when Redis cannot be read.

        After a failure Redis is left alone for :data:`RETRY_AFTER` seconds, so a dead
        Redis does not add its connect timeout to every catalog read.
        """
        if time.monotonic() < self._retry_at:
            return None
        try:
            return self.store.repositories.generation()
        except Exception as exc:  # noqa: BLE001 - Redis down: serve what we have
            self._retry_at = time.monotonic() + RETRY_AFTER
            log.warning("catalog generation unreadable, serving the last catalog: %s", exc)
            return None

    def _build(self, generation: Any) -> Any:
        """A new :class:`catalog.index.Catalog` from every source."""
        repositories = list(self._static_repositories())
        owners = None
        if generation is not None:
            repositories.extend(self._dynamic_repositories())
            owners = self._owners(repositories)
        return Catalog(repositories, owners=owners)

    def _owners(self, repositories: list[Any]) -> dict[str, list[str]]:
        """Name → the repositories it belongs to, claiming names nobody owns yet.

        When the records cannot be read, the claims this build would make are used
        without storing them (never plain priority: hosted must not win a name another
        repository serves just because Redis hiccuped).
        """
        owners = self.store.owners
        try:
            known = owners.all()
            claims = first_claims(repositories, known)
            if claims:
                owners.claim({name: self._claim(name, repo) for name, repo in claims.items()})
                known = owners.all()
        except Exception as exc:  # noqa: BLE001 - the catalog must still answer
            log.error("package owners unreadable, using this build's claims: %s", exc)
            return {name: [repo] for name, repo in first_claims(repositories, ()).items()}
        return {name: list(record.get("repositories") or ()) for name, record in known.items()}

    def _claim(self, name: str, repository: str) -> dict[str, Any]:
        """The record claiming ``name`` for ``repository`` (for ``hosted``: owned by the
        maintainer who published its first version, before names had owners)."""
        first = self._first_publishers.get(name) if repository == HOSTED else None
        return ownership([repository], [first] if first else [], by="catalog", at=time.time())

    def _dynamic_repositories(self) -> Iterable[Any]:
        """Hosted and remote repositories from Redis; a failing one is skipped, logged."""
        try:
            yield self._hosted_repository()
        except Exception as exc:  # noqa: BLE001 - one source must not break the rest
            log.error("hosted packages unreadable: %s", exc)
        try:
            records = self.store.repositories.list()
        except Exception as exc:  # noqa: BLE001
            log.error("repository settings unreadable: %s", exc)
            return
        for record in records:
            try:
                yield self._remote_repository(record)
            except Exception as exc:  # noqa: BLE001
                log.error("repository %s unusable: %s", record.get("name"), exc)

    def _static_repositories(self) -> list[Any]:
        """The builtin universe and configured directories, parsed once per process."""
        if self._static is None:
            found = []
            universe = Path(self.settings.universe_dir)
            priority = self.settings.universe_priority
            repo, problems = load_repository_dir(universe, name="universe",
                                                 priority=priority, kind="builtin")
            _log_problems("universe", problems)
            found.append(repo)
            for name, path, priority in self._configured_directories():
                try:
                    repo = _load_directory(name, Path(path), priority)
                except Exception as exc:  # noqa: BLE001 - a bad folder must not stop us
                    log.error("directory repository %s (%s) unreadable: %s", name, path, exc)
                    continue
                found.append(repo)
            self._static = found
        return self._static

    def _configured_directories(self) -> list[tuple[str, str, int]]:
        try:
            return parse_directory_setting(self.settings.repository_dirs)
        except ValueError as exc:
            log.error("%s", exc)
            return []

    def _hosted_repository(self) -> Any:
        """The hosted repository: published bundles, parsed once per digest."""
        hosted = self.store.hosted
        packages = []
        first: dict[str, str] = {}
        for meta in hosted.list_versions():  # oldest first, per name
            first.setdefault(meta["name"], meta.get("published_by") or "")
            key = (meta["name"], meta["version"], meta["digest"])
            package = self._hosted_cache.get(key)
            if package is None:
                package = _hosted_package(hosted, meta)
                if package is None:
                    continue
                self._hosted_cache[key] = package
            packages.append(_yanked(package, meta.get("yanked")))
        self._first_publishers = first
        priority = self.settings.hosted_priority
        return Repository(name="hosted", priority=priority, kind="hosted",
                          location="redis", packages=tuple(packages))

    def _remote_repository(self, record: dict[str, Any]) -> Any:
        """A remote repository from its last good copy (stale flag and error kept)."""
        name = record["name"]
        packages = self._remote_packages(name, record.get("format", "berth"),
                                         record.get("listing_digest"))
        return Repository(name=name, priority=int(record.get("priority", 200)),
                          kind="remote", location=record.get("url", ""),
                          packages=packages, stale=bool(record.get("stale")),
                          error=record.get("error") or None,
                          fetched_at=record.get("fetched_at"))

    def _remote_packages(self, name: str, fmt: str, listing: str | None) -> tuple[Any, ...]:
        """The packages of a remote's stored copy; reused while its listing is the same."""
        known = self._remote_listings.get(name)
        if listing and known and known[0] == listing:
            return known[1]
        repos = self.store.repositories
        digests = repos.digests(name)
        missing = [p for p, d in digests.items() if (name, p, d) not in self._remote_cache]
        for pkg_name, document in repos.load_documents(name, missing).items():
            parsed = _document_packages(document, name, fmt)
            self._remote_cache[(name, pkg_name, digests[pkg_name])] = parsed
        self._prune(name, digests)
        packages: list[Any] = []
        for pkg_name, digest in sorted(digests.items()):
            packages.extend(self._remote_cache.get((name, pkg_name, digest), ()))
        if listing:
            self._remote_listings[name] = (listing, tuple(packages))
        return tuple(packages)


    def _prune(self, name: str, digests: dict[str, str]) -> None:
        """Drop cached packages of ``name`` whose documents are gone or changed."""
        for key in [k for k in self._remote_cache if k[0] == name]:
            if digests.get(key[1]) != key[2]:
                del self._remote_cache[key]


def _hosted_package(hosted: Any, meta: dict[str, Any]) -> Any:
    """Parse one published bundle into a Package (None, logged, when unreadable)."""
    data = hosted.get_bundle(meta["name"], meta["version"])
    if data is None:
        return None
    try:
        return package_from_bundle(data, repository="hosted")
    except Exception as exc:  # noqa: BLE001 - a stored bundle that no longer loads
        log.error("hosted %s %s unloadable: %s", meta["name"], meta["version"], exc)
        return None


def _document_packages(document: Any, repository: str, fmt: str) -> tuple[Any, ...]:
    """Packages of one remote package document (empty, logged, when unusable)."""
    try:
        return _parse_document(document, repository, fmt)
    except Exception as exc:  # noqa: BLE001 - one bad document must not hide the rest
        log.error("repository %s: a package document is unusable: %s", repository, exc)
        return ()


def _parse_document(document: Any, repository: str, fmt: str) -> tuple[Any, ...]:
    """Packages of one remote package document (Berth or DC/OS format)."""
    if fmt == "dcos":
        return tuple(dcos.packages_from_universe_entries(document, repository=repository))
    return tuple(packages_from_document(document, repository=repository))


def _yanked(package: Any, yanked: Any) -> Any:
    """The package with its yank reason set (or cleared)."""
    reason = (yanked or {}).get("reason") if isinstance(yanked, dict) else yanked
    if getattr(package, "yanked", None) == (reason or None):
        return package
    return dataclasses.replace(package, yanked=reason or None)


def _load_directory(name: str, path: Path, priority: int) -> Any:
    """A configured folder: native Berth layout, or a DC/OS Universe checkout."""
    if dcos.is_universe_dir(path):
        repo, problems = dcos.load_universe_dir(path, name=name, priority=priority)
    else:
        repo, problems = load_repository_dir(path, name=name, priority=priority,
                                             kind="directory")
    _log_problems(name, problems)
    return repo


def _log_problems(name: str, problems: Any) -> None:
    for problem in list(problems or [])[:20]:
        log.warning("repository %s: %s: %s", name, problem.get("path"), problem.get("message"))
