"""A service's secret values on the store front: the "Reveal" button, admins only.

The service page shows admins a "Reveal secrets" button (a POST form with its CSRF
token: a showing is an action, written to the audit stream, and no other site can
make a browser do it). The answer page lists the values and is never cached. The
install answers with the values Berth generated once, on the same page
(:func:`generated_page`), before the deployment page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask import make_response, render_template

from . import common
from .blueprint import bp


@bp.post("/services/<name>/secrets")
@common.needs("admin")
def service_secrets(name: str) -> Any:
    """Reveal the service's secret values (audited as ``service.secrets_revealed``)."""
    answer = common.application().services.reveal_secrets(common.identity().actor, name)
    return _no_store(render_template("storefront/secrets.html", name=name,
                                     generation=answer.get("generation"),
                                     secrets=answer.get("secrets") or [], once=False))


def generated_page(name: str, deployment: Mapping[str, Any],
                   generated: Sequence[Mapping[str, Any]]) -> Any:
    """The install's answer when Berth generated secrets: them, once, and the way on."""
    return _no_store(render_template("storefront/secrets.html", name=name,
                                     deployment=deployment, once=True,
                                     secrets=[{**g, "generated": True} for g in generated]))


def _no_store(html: str) -> Any:
    response = make_response(html)
    response.headers["Cache-Control"] = "no-store"
    return response
