"""Berth's server: the JSON API, the store front and auth; and, in ``server.client``,
the Python client and the CLI that talk to it.

``create_app`` is imported lazily so that importing ``server.client`` (the client and
the CLI) loads no Flask: this package imports nothing heavy when it is imported.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app(config: dict[str, Any] | None = None) -> Any:
    """Build the Flask application (see :mod:`server.app`)."""
    # Lazy: ``import server.client`` must not load Flask (see the module docstring).
    from .app import create_app as _create_app

    return _create_app(config)
