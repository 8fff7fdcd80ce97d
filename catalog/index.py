"""The catalog: every repository merged, searchable, and resolvable to one version.

A name belongs to the repository with the lowest ``priority`` number that holds it
(ties: repository name). Search shows one entry per name, the newest installable
version (the newest at all when none is installable, so such packages still show,
marked). The search index is built once, at construction: names sorted, and the
lower-cased name, title, tags and description of every entry joined into one string
per field, so a query is a few C-speed scans plus set operations, not a Python loop
over every package.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections import Counter
from collections.abc import Callable, Iterable
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


class Catalog:
    """All packages of a set of repositories: search, browse, resolve."""

    def __init__(self, repositories: Iterable[Repository]) -> None:
        self.repositories: tuple[Repository, ...] = tuple(
            sorted(repositories, key=lambda r: (r.priority, r.name)))
        self._sources: dict[str, list[tuple[Repository, list[Package]]]] = {}
        for repo in self.repositories:
            grouped: dict[str, list[Package]] = {}
            for package in repo.packages:
                grouped.setdefault(package.name, []).append(package)
            for name, versions in grouped.items():
                self._sources.setdefault(name, []).append((repo, _newest_first(versions)))
        self._index = _SearchIndex([_display(src[0][1]) for src in self._sources.values()])
        self._repo_indexes: dict[str, _SearchIndex] = {}

    def __len__(self) -> int:
        return len(self._sources)

    def __contains__(self, name: object) -> bool:
        return name in self._sources

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

    def versions(self, name: str) -> list[Package]:
        """Every version of ``name`` from the repository that wins it, newest first.

        :raises PackageNotFound: when no repository holds ``name``.
        """
        return list(self._sources_of(name)[0][1])

    def _sources_of(self, name: str, repository: str | None = None,
                    ) -> list[tuple[Repository, list[Package]]]:
        sources = self._sources.get(name, [])
        if repository is not None:
            sources = [s for s in sources if s[0].name == repository]
        if not sources:
            where = f" in repository {repository!r}" if repository else ""
            close = [n for n in self._index.names if n.startswith(name[:3])][:5]
            raise PackageNotFound(f"no package named {name!r}{where}", package=name,
                                  hint=f"did you mean: {', '.join(close)}?" if close else None)
        return sources

    def resolve(self, name: str, version_or_range: str | None = None, *,
                repository: str | None = None, include_yanked: bool = False) -> Package:
        """The version to install: the exact version string if one has it, else the
        highest in the range (installable first); repositories by priority.

        :raises PackageNotFound: when no repository holds ``name``.
        :raises VersionNotFound: when no version matches.
        :raises VersionError: when ``version_or_range`` is not a version or range.
        """
        sources = self._sources_of(name, repository)
        wanted = (version_or_range or "").strip()
        for _, versions in sources:
            candidates = [p for p in versions if include_yanked or not p.yanked]
            found = self._pick(candidates, wanted)
            if found is not None:
                return found
        shown = ", ".join(p.version for p in sources[0][1][:10])
        raise VersionNotFound(f"no version of {name!r} matches {wanted or 'any'!r}",
                              package=name, version=wanted or None,
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
