"""Routes: every service's ``expose`` entries with their state, and the proxies Berth
keeps in sync (whether each is in sync, and when it last was); add and remove proxies."""

from __future__ import annotations

from typing import Any

from flask import render_template, request, url_for

from . import common
from .blueprint import bp

MAX_FIELD = 500


@bp.get("/routes")
@common.needs("viewer")
def routes() -> Any:
    """The routes and the proxies."""
    routing = common.application().routing
    return render_template("storefront/routes.html", routes=routing.routes(),
                           proxies=routing.proxies())


@bp.post("/proxies")
@common.needs("admin")
def proxy_add() -> Any:
    """Register a proxy (its fields are checked where the API checks them)."""
    fields = {k: (request.form.get(k) or "").strip()[:MAX_FIELD]
              for k in ("name", "kind", "admin_url", "listen", "group", "listen_tls",
                        "tls_issuer", "acme_email")}
    return common.act(
        lambda: common.application().routing.add_proxy(common.identity().actor, fields),
        back_to=url_for("storefront.routes"),
        success=lambda proxy: f"Proxy {proxy['name']} added.")


@bp.post("/proxies/<name>/remove")
@common.needs("admin")
def proxy_remove(name: str) -> Any:
    """Forget a proxy."""
    return common.act(
        lambda: common.application().routing.remove_proxy(common.identity().actor, name),
        back_to=url_for("storefront.routes"), success=f"Proxy {name} removed.")
