"""Repositories: the list in priority order with stale or error state; add and remove.

The list shows every repository of the current catalog (builtin, hosted, directories
and remote ones) with the fetch state kept for remote ones, as the API shows them
(``server.api.repositories.repository_views``). Adding checks the URL against the
remote-fetching SSRF policy (``worker.repository_fetcher``), stores the repository and fetches it
once; the workers refresh it afterwards.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import render_template, request, url_for

from catalog.names import is_service_name

from . import bp, common

MAX_URL = 2000
RESERVED = ("universe", "hosted")


@bp.get("/repositories")
@common.needs("viewer")
def repositories() -> Any:
    """Repositories by priority (lower number wins a package name)."""
    from server.api.repositories import repository_views

    locations = {r.name: r.location for r in common.catalog().repositories}
    rows = [
        {
            **view,
            "location": view.get("url") or locations.get(view["name"]),
            "removable": view.get("kind") == "remote",
        }
        for view in repository_views()
    ]
    return render_template("storefront/repositories.html", repos=rows, formats=FORMATS)


FORMATS = {"berth": "Berth index (index.json)",
           "dcos": "DC/OS Universe index (repo-up-to-*.json)"}


def _check(name: str, url: str, priority: str) -> int:
    """The priority, once name and URL look right.

    :raises ValueError: saying which field is wrong.
    """
    if not is_service_name(name):
        raise ValueError("Name: 1-40 lower-case letters, digits and '-'.")
    if name in RESERVED:
        raise ValueError(f"Name: {name!r} is reserved.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("URL: an http or https address of a repository index.")
    try:
        value = int(priority or 200)
    except ValueError:
        raise ValueError("Priority: a whole number (lower wins).") from None
    if not 0 <= value <= 100000:
        raise ValueError("Priority: from 0 to 100000 (lower wins).")
    return value


@bp.post("/repositories")
@common.needs("admin")
def repository_add() -> Any:
    """Add a remote repository (URL checked by the SSRF guard); a worker fetches it."""
    from server.api.repositories import add_remote

    name = (request.form.get("name") or "").strip()[:100]
    url = (request.form.get("url") or "").strip()[:MAX_URL]

    def add() -> None:
        priority = _check(name, url, (request.form.get("priority") or "").strip()[:10])
        fmt = request.form.get("format") or "berth"
        if fmt not in FORMATS:
            raise ValueError("Format: a Berth index or a DC/OS Universe index.")
        add_remote({"name": name, "url": url, "priority": priority, "format": fmt},
                   common.identity().actor)

    return common.act(add, back_to=url_for("storefront.repositories"),
                      success=f"Repository {name} added; it is fetched in the background.")


@bp.post("/repositories/<name>/remove")
@common.needs("admin")
def repository_remove(name: str) -> Any:
    """Remove a remote repository (its packages leave the catalog)."""

    def remove() -> None:
        if not common.berth().store.repositories.remove(name, common.identity().actor):
            raise ValueError(f"No repository {name}.")

    return common.act(remove, back_to=url_for("storefront.repositories"),
                      success=f"Repository {name} removed.")
