"""Repositories: the list in priority order with stale or error state; add and remove.

The list shows every repository of the current catalog (builtin, hosted, directories
and remote ones) with the fetch state kept for remote ones, as the API shows them
(``server.application.repositories``). Adding checks the fields (one rule, in
``catalog.repository_fields``) and the URL against the remote-fetching SSRF policy
(``worker.repository_fetcher``), stores the repository and queues its first fetch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import render_template, request, url_for

from catalog.repository_fields import MAX_URL

from . import common
from .blueprint import bp


@bp.get("/repositories")
@common.needs("viewer")
def repositories() -> Any:
    """Repositories by priority (lower number wins a package name)."""
    registry = common.application().repositories
    locations = registry.locations()
    rows = [
        {
            **view,
            "location": view.get("url") or locations.get(view["name"]),
            "removable": view.get("kind") == "remote",
        }
        for view in registry.views()
    ]
    return render_template("storefront/repositories.html", repos=rows, formats=FORMATS)


FORMATS = {"berth": "Berth index (index.json)",
           "dcos": "DC/OS Universe index (repo-up-to-*.json)"}


def _fields(form: Mapping[str, str]) -> dict[str, Any]:
    """The add form as repository fields (checked by ``catalog.repository_fields``).

    A priority that is not a whole number is passed on as typed, so the one rule
    reports it; an empty one takes the default.
    """
    fields: dict[str, Any] = {"name": (form.get("name") or "").strip()[:100],
                              "url": (form.get("url") or "").strip()[:MAX_URL],
                              "format": form.get("format") or "berth"}
    priority = (form.get("priority") or "").strip()[:10]
    if priority:
        fields["priority"] = int(priority) if priority.isdigit() else priority
    return fields


@bp.post("/repositories")
@common.needs("admin")
def repository_add() -> Any:
    """Add a remote repository (URL checked by the SSRF guard); a worker fetches it."""
    fields = _fields(request.form)
    return common.act(
        lambda: common.application().repositories.add(fields, common.identity().actor),
        back_to=url_for("storefront.repositories"),
        success=f"Repository {fields['name']} added; it is fetched in the background.")


@bp.post("/repositories/<name>/remove")
@common.needs("admin")
def repository_remove(name: str) -> Any:
    """Remove a remote repository (its packages leave the catalog)."""

    def remove() -> None:
        if not common.application().repositories.remove(name, common.identity().actor):
            raise ValueError(f"No repository {name}.")

    return common.act(remove, back_to=url_for("storefront.repositories"),
                      success=f"Repository {name} removed.")
