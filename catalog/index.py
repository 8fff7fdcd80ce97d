"""The catalog: every repository merged, searchable, and resolvable to one version.

A name resolves to ONE repository, used alike by search, the package page, the
version list and resolution: among the repositories that own the name (``owners``,
recorded by the server when a repository first served the name or an admin shared
it), the one with the lowest ``priority`` number that holds it (ties: repository
name). A name with no owner record goes to the lowest priority number of all. There
is no fallback to another repository, even when every version of the chosen one is
yanked: another repository is only used when named (``repository=``), so nothing
switches repository behind an admin's back. :func:`catalog.owners.first_claims` says
which repository claims a name nobody owns yet.

Search shows one entry per name, the newest installable version (the newest at all
when none is installable, so such packages still show, marked). The search index is
built once, at construction: names sorted, and the lower-cased name, title, tags and
description of every entry joined into one string per field, so a query is a few
C-speed scans plus set operations, not a Python loop over every package.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import PackageNotFound, VersionNotFound
from .model import Package
from .repository import Repository
from .version import parse_range

__all__ = ["Catalog", "SearchPage"]

MAX_PER_PAGE = 100


@dataclass(frozen=True)
class SearchPage:
    """One page of search results."""

    items: tuple[Package, ...]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        """How many pages the whole result has (at least 1)."""
        return max(1, math.ceil(self.total / self.per_page))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"items": [summary...], "total", "page", "per_page", "pages"}``."""
        return {"items": [p.summary() for p in self.items], "total": self.total,
                "page": self.page, "per_page": self.per_page, "pages": self.pages}


def _newest_first(packages: Iterable[Package]) -> list[Package]:
    return sorted(packages, key=lambda p: p.sort_key, reverse=True)


def _display(versions: list[Package]) -> Package:
    """The version a search result shows: newest installable, else newest."""
    for package in versions:
        if package.installable and not (package.semver and package.semver.is_prerelease):
            return package
    for package in versions:
        if package.installable:
            return package
    live = [p for p in versions if not p.yanked]
    return (live or versions)[0]


@dataclass
class _SearchIndex:
    """Entries sorted by name, with one joined lower-case string per field."""

    entries: list[Package]
    names: list[str] = field(default_factory=list)
    fields: dict[str, tuple[str, list[int]]] = field(default_factory=dict)
    by_tag: dict[str, set[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.entries.sort(key=lambda p: p.name)
        self.names = [p.name for p in self.entries]
        self.fields = {
            "name": self._join(p.name for p in self.entries),
            "title": self._join(p.title.lower() for p in self.entries),
            "tags": self._join(" ".join(p.tags) for p in self.entries),
            "description": self._join(p.description.lower() for p in self.entries),
            "all": self._join(" \x01 ".join((p.name, p.title.lower(), " ".join(p.tags),
                                              p.description.lower()))
                              for p in self.entries),
        }
        for i, package in enumerate(self.entries):
            for tag in package.tags:
                self.by_tag.setdefault(tag, set()).add(i)

    @staticmethod
    def _join(texts: Iterable[str]) -> tuple[str, list[int]]:
        starts, parts, at = [], [], 0
        for text in texts:
            clean = text.replace("\x00", " ")
            starts.append(at)
            parts.append(clean)
            at += len(clean) + 1
        return "\x00".join(parts), starts

    def find(self, field_name: str, needle: str) -> set[int]:
        """Indices of entries whose ``field_name`` contains ``needle``."""
        haystack, starts = self.fields[field_name]
        found: set[int] = set()
        pos = haystack.find(needle)
        while pos != -1:
            i = bisect.bisect_right(starts, pos) - 1
            found.add(i)
            nxt = starts[i + 1] if i + 1 < len(starts) else len(haystack)
            pos = haystack.find(needle, max(nxt, pos + 1))
        return found

    def prefix(self, text: str) -> set[int]:
        lo = bisect.bisect_left(self.names, text)
        hi = bisect.bisect_left(self.names, text + "\uffff")
        return set(range(lo, hi))

    def matching(self, query: str) -> set[int]:
        """Every entry the query finds: the phrase in any field, or (for several
        words) every word somewhere. One scan of the joined ``all`` field per word."""
        found = self.find("all", query)
        words = query.split()
        if len(words) > 1:
            every = self.find("all", words[0])
            for word in words[1:]:
                every &= self.find("all", word)
            found |= every
        return found

    def ranked(self, query: str, limit: int | None = None) -> tuple[list[int], int]:
        """``(indices in rank order, total)``: exact name, name prefix, name substring,
        title, tags, description, then entries holding every word somewhere.

        Tiers are computed only until ``limit`` indices are known (a first page of
        "web" should not rank two thousand descriptions); ``total`` is always exact.
        """
        if not query:
            everything = list(range(len(self.entries)))
            return everything, len(everything)
        matches = self.matching(query)
        order: list[int] = []
        seen: set[int] = set()
        exact = bisect.bisect_left(self.names, query)
        tiers: list[Callable[[], Iterable[int]]] = [
            lambda: [exact] if exact < len(self.names) and self.names[exact] == query else [],
            lambda: self.prefix(query)]
        tiers += [functools.partial(self.find, f, query)
                  for f in ("name", "title", "tags", "description")]
        tiers.append(lambda: matches)
        for tier in tiers:
            if limit is not None and len(order) >= limit:
                break
            fresh = sorted(set(tier()) - seen)
            order.extend(fresh)
            seen.update(fresh)
        return order, len(matches | seen)


Source = tuple[Repository, list[Package]]


class Catalog:
    """All packages of a set of repositories: search, browse, resolve.

    ``owners`` maps a name to the repositories allowed to serve it (see the module
    docstring); a name not in it is served by the lowest priority number.
    """

    def __init__(self, repositories: Iterable[Repository],
                 owners: Mapping[str, Sequence[str]] | None = None) -> None:
        self.repositories: tuple[Repository, ...] = tuple(
            sorted(repositories, key=lambda r: (r.priority, r.name)))
        self.owners: dict[str, tuple[str, ...]] = {
            name: tuple(repos) for name, repos in (owners or {}).items()}
        self._sources: dict[str, list[Source]] = {}
        for repo in self.repositories:
            grouped: dict[str, list[Package]] = {}
            for package in repo.packages:
                grouped.setdefault(package.name, []).append(package)
            for name, versions in grouped.items():
                self._sources.setdefault(name, []).append((repo, _newest_first(versions)))
        self._chosen: dict[str, Source] = {}
        for name, sources in self._sources.items():
            allowed = self.owners.get(name)
            chosen = [s for s in sources if allowed is None or s[0].name in allowed]
            if chosen:
                self._chosen[name] = chosen[0]
        self._index = _SearchIndex([_display(src[1]) for src in self._chosen.values()])
        self._repo_indexes: dict[str, _SearchIndex] = {}

    def __len__(self) -> int:
        return len(self._chosen)

    def __contains__(self, name: object) -> bool:
        return name in self._chosen

    @property
    def names(self) -> list[str]:
        """Every package name, sorted."""
        return list(self._index.names)

    def repository(self, name: str) -> Repository | None:
        """The repository called ``name``, if any."""
        return next((r for r in self.repositories if r.name == name), None)

    def _index_for(self, repository: str | None) -> _SearchIndex:
        if repository is None:
            return self._index
        if repository not in self._repo_indexes:
            entries = [_display(versions) for sources in self._sources.values()
                       for repo, versions in sources if repo.name == repository]
            self._repo_indexes[repository] = _SearchIndex(entries)
        return self._repo_indexes[repository]

    def search(self, query: str = "", *, tag: str | None = None,
               repository: str | None = None, page: int = 1,
               per_page: int = 24) -> SearchPage:
        """One page of packages matching ``query`` (and ``tag``), best first."""
        index = self._index_for(repository)
        per_page = max(1, min(int(per_page), MAX_PER_PAGE))
        page = max(1, int(page))
        text = " ".join((query or "").lower().split())[:200]
        order, total = index.ranked(text, None if tag else page * per_page)
        if tag:
            tagged = index.by_tag.get(tag.lower(), set())
            order = [i for i in order if i in tagged]
            total = len(order)
        chosen = order[(page - 1) * per_page: page * per_page]
        return SearchPage(tuple(index.entries[i] for i in chosen), total, page, per_page)

    def tags(self) -> list[tuple[str, int]]:
        """``(tag, number of packages)``, most used first."""
        counts = Counter(t for p in self._index.entries for t in p.tags)
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))

    def featured(self) -> list[Package]:
        """The featured packages (newest version of each), by name."""
        return [p for p in self._index.entries if p.featured]

    # one name ------------------------------------------------------------------
    def origin(self, name: str) -> str:
        """The repository ``name`` resolves to.

        :raises PackageNotFound: when no repository it belongs to holds ``name``.
        """
        return self._source(name)[0].name

    def also_in(self, name: str, repository: str | None = None) -> list[str]:
        """The other repositories holding ``name`` (besides ``repository``, by default
        the one it resolves to), by priority."""
        if repository is None:
            chosen = self._chosen.get(name)
            repository = chosen[0].name if chosen else None
        return [repo.name for repo, _ in self._sources.get(name, ())
                if repo.name != repository]

    def versions(self, name: str, repository: str | None = None) -> list[Package]:
        """Every version of ``name`` in one repository (by default the one the name
        resolves to), newest first.

        :raises PackageNotFound: when that repository does not hold ``name``.
        """
        return list(self._source(name, repository)[1])

    def newest(self, name: str, repository: str | None = None) -> Package:
        """The version a package page shows first: what :meth:`resolve` picks, or when
        every version is yanked the newest of them (marked) — always from the same
        repository as :meth:`versions`.

        :raises PackageNotFound: when that repository does not hold ``name``.
        """
        versions = self._source(name, repository)[1]
        return self._pick([p for p in versions if not p.yanked], "") or _display(versions)

    def _source(self, name: str, repository: str | None = None) -> Source:
        """The one repository (and its versions) a lookup of ``name`` uses.

        :raises PackageNotFound: with a hint naming where else the name is.
        """
        sources = self._sources.get(name, [])
        if repository is not None:
            found = [s for s in sources if s[0].name == repository]
            if found:
                return found[0]
            others = [s[0].name for s in sources]
            raise PackageNotFound(
                f"no package named {name!r} in repository {repository!r}", package=name,
                hint=f"it is in: {', '.join(others)}" if others else self._close(name))
        chosen = self._chosen.get(name)
        if chosen is not None:
            return chosen
        if sources:
            owners = ", ".join(repr(r) for r in self.owners.get(name, ()))
            holders = ", ".join(s[0].name for s in sources)
            raise PackageNotFound(
                f"package name {name!r} belongs to repository {owners}, which does not "
                f"have it now", package=name,
                hint=f"it is also in: {holders}; an admin can move the name: berth package "
                     f"owners transfer {name} --repository {sources[0][0].name}")
        raise PackageNotFound(f"no package named {name!r}", package=name,
                              hint=self._close(name))

    def _close(self, name: str) -> str | None:
        close = [n for n in self._index.names if n.startswith(name[:3])][:5]
        return f"did you mean: {', '.join(close)}?" if close else None

    def resolve(self, name: str, version_or_range: str | None = None, *,
                repository: str | None = None, include_yanked: bool = False) -> Package:
        """The version to install, from one repository (``repository``, by default the
        one the name resolves to): the exact version string if one has it, else the
        highest in the range (installable first).

        :raises PackageNotFound: when that repository does not hold ``name``.
        :raises VersionNotFound: when no version there matches.
        :raises VersionError: when ``version_or_range`` is not a version or range.
        """
        repo, versions = self._source(name, repository)
        wanted = (version_or_range or "").strip()
        candidates = [p for p in versions if include_yanked or not p.yanked]
        found = self._pick(candidates, wanted)
        if found is not None:
            return found
        shown = ", ".join(p.version + (" (yanked)" if p.yanked else "")
                          for p in versions[:10])
        raise VersionNotFound(
            f"no version of {name!r} in repository {repo.name!r} matches "
            f"{wanted or 'any'!r}", package=name, version=wanted or None,
            hint=f"available: {shown}" if shown else None)

    @staticmethod
    def _pick(candidates: list[Package], wanted: str) -> Package | None:
        exact = [p for p in candidates if p.version == wanted]
        if exact:
            return exact[0]
        if not wanted or wanted in ("*", "latest"):
            matching = [p for p in candidates
                        if not (p.semver and p.semver.is_prerelease)] or candidates
        else:
            rng = parse_range(wanted)
            matching = [p for p in candidates if p.semver is not None and rng.contains(p.semver)]
        if not matching:
            return None
        installable = [p for p in matching if p.installable]
        return (installable or matching)[0]
