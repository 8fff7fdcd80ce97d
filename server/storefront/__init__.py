"""The store front: server-rendered HTML pages over the same core as the JSON API.

``bp`` is registered at ``/`` by ``server.create_app``. Views are split by area
(``catalog``, ``packages``, ``install``, ``services``, ``deployments``, ``agents``,
``repositories``, ``auth``); templates live in ``templates/storefront/`` and the one
stylesheet and small scripts in ``static/``. Every POST is a plain HTML form with a
CSRF token (Flask-WTF) that works without JavaScript; scripts only make pages better
(search as you type, the JSON view of options, live progress and logs) and are
static files, because the CSP allows no inline script or style.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from . import common
from .markdown import render_markdown

__all__ = ["bp"]

bp = Blueprint(
    "storefront",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/assets",
)


class _Nobody:
    """Stands in for the identity when it cannot be read (an error page, Redis down)."""

    kind = "anonymous"
    name = ""
    role = "none"
    actor = "anonymous"
    authenticated = False

    def allows(self, role: str) -> bool:
        return False


@bp.app_context_processor
def _template_context() -> dict[str, Any]:
    """What every page's layout needs: who is asking and the shared helpers."""
    try:
        who = common.identity()
    except Exception:  # noqa: BLE001 - the layout must render even when auth cannot
        who = _Nobody()
    return {"who": who, "can": common.can, "sf": common}


bp.register_error_handler(Exception, common.handle_error)
bp.add_app_template_filter(common.age, "age")
bp.add_app_template_filter(common.when, "when")
bp.add_app_template_filter(common.actor, "actor")
bp.add_app_template_filter(render_markdown, "markdown")

# The views register their routes on ``bp`` when imported.
from . import (  # noqa: E402, F401
    agents,
    auth,
    catalog,
    deployments,
    install,
    packages,
    repositories,
    services,
)
