"""The store front's blueprint, ``bp``: the views register their routes on it.

Kept apart from the package's ``__init__`` (which imports every view) so that a view
imports the blueprint without importing the package that imports it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from . import common
from .markdown import render_markdown

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
