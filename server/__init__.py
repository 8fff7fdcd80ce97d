"""Berth's server: the JSON API, the store front, auth, the client and the CLI.

``create_app`` is imported lazily so that the CLI and the client do not pay for Flask
at start-up.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app(config: dict[str, Any] | None = None) -> Any:
    """Build the Flask application (see :mod:`server.app`)."""
    from .app import create_app as _create_app

    return _create_app(config)
