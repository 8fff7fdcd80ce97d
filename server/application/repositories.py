"""Repositories: which ones the catalog draws from, their health, adding and removing.

A remote repository is checked (its fields by ``catalog.repository_fields``, its URL
by the SSRF policy of ``worker.repository_fetcher``), stored as ``pending`` and fetched by a
worker (``berth.refresh_repository``), so a slow remote never holds a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from catalog.repository_fields import RESERVED, check_remote_fields
from worker import repository_fetcher

from ..catalog_cache import parse_directory_setting
from ..errors import Invalid


class RepositoryRegistry:
    """List, add, remove and refresh the catalog's repositories."""

    def __init__(self, berth: Any) -> None:
        self.berth = berth

    def views(self) -> list[dict[str, Any]]:
        """The catalog's repositories merged with the remote records, by priority."""
        catalog = self.berth.catalog.get()
        records = {r["name"]: r for r in self.berth.store.repositories.list()}
        views = []
        for repo in catalog.repositories:
            view = {"name": repo.name, "kind": repo.kind, "priority": repo.priority,
                    "packages": len({p.name for p in repo.packages}),
                    "versions": len(repo.packages), "stale": bool(repo.stale),
                    "error": repo.error, "fetched_at": repo.fetched_at,
                    "format": "dcos" if any(p.format == "dcos" for p in repo.packages)
                    else "berth"}
            if repo.name in records:
                view.update(remote_view(records.pop(repo.name)))
            views.append(view)
        views.extend(remote_view(r) for r in records.values())  # never fetched successfully
        return sorted(views, key=lambda v: (v["priority"], v["name"]))

    def view(self, name: str) -> dict[str, Any]:
        """One repository as :meth:`views` shows it.

        :raises RepositoryNotFound: when there is none by that name.
        """
        for view in self.views():
            if view["name"] == name:
                return view
        self.berth.store.repositories.require(name)  # raises the 404
        return {}  # pragma: no cover - require() raised

    def locations(self) -> dict[str, Any]:
        """Where each of the catalog's repositories is read from, by name."""
        return {r.name: r.location for r in self.berth.catalog.get().repositories}

    def add(self, fields: Mapping[str, Any], actor: str) -> dict[str, Any]:
        """Check a remote repository (fields, reserved names, the SSRF guard), store it
        and enqueue its first fetch; its (pending) view.

        :raises Invalid: a field is wrong (every problem listed).
        :raises UnsafeURL: the guard refuses the address.
        :raises RepositoryExists: the name is taken.
        """
        clean, problems = check_remote_fields(fields, reserved=self._configured_names())
        if problems:
            raise Invalid("the request is invalid", details=problems)
        policy = repository_fetcher.RemotePolicy.of(self.berth.settings)
        repository_fetcher.check_url(clean["url"], policy)
        store = self.berth.store
        store.repositories.add({"name": clean["name"], "url": clean["url"],
                                "priority": clean["priority"], "format": clean["format"],
                                "interval": clean.get("interval")}, actor)
        self.berth.enqueue("berth.refresh_repository", [clean["name"]])
        return remote_view(store.repositories.require(clean["name"]))

    def remove(self, name: str, actor: str) -> bool:
        """Remove a remote repository and its copy; its packages leave the catalog.

        :returns: whether there was one to remove.
        """
        removed: bool = self.berth.store.repositories.remove(name, actor)
        return removed

    def remove_existing(self, name: str, actor: str) -> None:
        """:meth:`remove`, refusing a name that is not there.

        :raises RepositoryNotFound: when there is none by that name.
        """
        self.berth.store.repositories.require(name)
        self.remove(name, actor)

    def refresh(self, name: str) -> dict[str, Any]:
        """Fetch a remote repository now (conditional, so cheap when unchanged)."""
        store = self.berth.store
        policy = repository_fetcher.RemotePolicy.of(self.berth.settings)
        result = repository_fetcher.refresh(store, name, policy)
        return {**remote_view(store.repositories.require(name)), "refresh": result}

    def _configured_names(self) -> set[str]:
        """The names of the directory repositories this server is configured with."""
        try:
            return {n for n, _, _ in parse_directory_setting(
                self.berth.settings.repository_dirs)}
        except ValueError:
            return set()


def remote_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """A remote repository record as the API shows it."""
    return {"name": record["name"], "kind": "remote", "url": record.get("url"),
            "priority": record.get("priority"), "format": record.get("format", "berth"),
            "interval": record.get("interval"), "stale": bool(record.get("stale")),
            "pending": record.get("checked_at") is None,
            "error": record.get("error"), "error_status": record.get("error_status"),
            "fetched_at": record.get("fetched_at"), "checked_at": record.get("checked_at"),
            "packages": record.get("packages", 0)}


__all__ = ["RESERVED", "RepositoryRegistry", "remote_view"]
