"""Browsing the catalog: search pages, packages, versions and tags.

Reads only: the current ``catalog.Catalog`` comes from the server's catalog source
(rebuilt when repositories change); search pages are cached per catalog.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, cast


class PageCache:
    """Search pages of the current catalog, least recently used dropped first.

    A catalog never changes once built (a new one replaces it when repositories
    change), so a page computed from it stays right as long as that catalog is
    current; the cache empties itself when it sees another catalog. Per process,
    and nothing another process needs.
    """

    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._catalog: Any = None
        self._pages: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

    def get(self, catalog: Any, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        """The page for ``key`` in ``catalog``, computed on a miss."""
        with self._lock:
            if catalog is not self._catalog:
                self._catalog, self._pages = catalog, OrderedDict()
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
                return page
        page = compute()
        with self._lock:
            if catalog is self._catalog:
                self._pages[key] = page
                while len(self._pages) > self.size:
                    self._pages.popitem(last=False)
        return page


class CatalogBrowser:
    """Search the catalog and show packages and versions."""

    def __init__(self, berth: Any) -> None:
        self.berth = berth
        self.pages = PageCache()

    def catalog(self) -> Any:
        """The current catalog (rebuilt by its source when repositories change)."""
        return self.berth.catalog.get()

    def search(self, query: str = "", *, tag: str | None = None, repository: str | None = None,
               page: int = 1, per_page: int = 24) -> dict[str, Any]:
        """One page of search results: ``{"items", "total", "page", "per_page"}``."""
        catalog = self.catalog()

        def compute() -> dict[str, Any]:
            result = catalog.search(query, tag=tag, repository=repository, page=page,
                                    per_page=per_page)
            return {"items": [p.summary() for p in result.items], "total": result.total,
                    "page": result.page, "per_page": result.per_page}

        cached = self.pages.get(catalog, (query, tag, repository, page, per_page), compute)
        return {**cached, "items": [dict(item) for item in cached["items"]]}

    def search_json(self, query: str = "", *, tag: str | None = None,
                    repository: str | None = None, page: int = 1, per_page: int = 24) -> bytes:
        """:meth:`search` as the API's JSON body, serialized once per catalog and page."""
        catalog = self.catalog()
        key = ("json", query, tag, repository, page, per_page)

        def compute() -> Any:
            found = self.search(query, tag=tag, repository=repository, page=page,
                                per_page=per_page)
            return json.dumps(found, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"

        return cast(bytes, self.pages.get(catalog, key, compute))

    def tags(self) -> list[dict[str, Any]]:
        """Every tag with how many packages carry it."""
        return [{"tag": t, "count": n} for t, n in self.catalog().tags()]

    def featured(self) -> list[dict[str, Any]]:
        """The featured packages' summaries."""
        return [p.summary() for p in self.catalog().featured()]

    def package(self, name: str) -> dict[str, Any]:
        """The newest version of a package in full, with its version list.

        :raises PackageNotFound: when no repository has it.
        """
        catalog = self.catalog()
        versions = catalog.versions(name)
        body = catalog.newest(name).to_dict()  # the same repository as ``versions``
        body["versions"] = [version_entry(p) for p in versions]
        body["also_in"] = catalog.also_in(name)
        return body

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of a package, newest first."""
        return [version_entry(p) for p in self.catalog().versions(name)]

    def package_version(self, name: str, version: str) -> dict[str, Any]:
        """One version in full (package.json fields, config schema, resource, README)."""
        package = self.catalog().resolve(name, version, include_yanked=True)
        return {**package.to_dict(), "also_in": self.catalog().also_in(name, package.repository)}

    def package_object(self, name: str, version: str | None = None) -> Any:
        """The ``catalog.Package`` a name and optional version or range resolve to."""
        return self.catalog().resolve(name, version or None)


def version_entry(package: Any) -> dict[str, Any]:
    """One line of a package's version list."""
    return {"version": package.version, "yanked": package.yanked,
            "unsupported": list(package.unsupported), "repository": package.repository}
