"""The store front: server-rendered HTML pages over the same core as the JSON API.

``bp`` is registered at ``/`` by ``server.create_app``. Views are split by area
(``catalog``, ``packages``, ``install``, ``services``, ``backups``, ``deployments``,
``agents``, ``repositories``, ``routes``, ``auth``); templates live in
``templates/storefront/`` and the one stylesheet and small scripts in ``static/``.
Every POST is a plain HTML form with a CSRF token (Flask-WTF) that works without
JavaScript; scripts only make pages better (search as you type, the JSON view of
options, live progress and logs) and are static files, because the CSP allows no
inline script or style.
"""

from __future__ import annotations

from .blueprint import bp

__all__ = ["bp"]

# The views register their routes on ``bp`` when imported.
from . import (  # noqa: E402, F401
    agents,
    auth,
    backups,
    catalog,
    deployments,
    install,
    moves,
    packages,
    repositories,
    routes,
    secrets,
    services,
)
