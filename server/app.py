"""The Flask application factory: settings, security headers, CSRF, blueprints.

``create_app(config=None)`` reads ``BERTH_*`` settings from the environment, with
``config`` overriding them (tests inject their own). ``config`` may also carry Flask
settings and, for tests, ``ENQUEUE`` (a ``(task_name, args)`` callable replacing
Celery), ``REDIS_CLIENT`` and ``CATALOG`` (an object whose ``get()`` returns a
``catalog.Catalog``).
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

from flask import Flask, Response
from flask_wtf.csrf import CSRFProtect

from . import errors
from .api import bp as api_bp
from .api import meta
from .context import Berth
from .served_index import bp as repo_index_bp
from .settings import Settings
from .storefront import bp as storefront_bp

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_INJECTED = ("ENQUEUE", "REDIS_CLIENT", "CATALOG")

csrf = CSRFProtect()


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the Berth server application."""
    config = dict(config or {})
    environ = {**os.environ, **{k: v for k, v in config.items() if k.startswith("BERTH_")}}
    settings = Settings.from_env(environ)
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # records keep their order
    berth = Berth(settings, enqueue=config.get("ENQUEUE"),
                  redis_client=config.get("REDIS_CLIENT"), catalog=config.get("CATALOG"))
    app.extensions["berth"] = berth
    _configure(app, settings, config)
    app.secret_key = app.config.get("SECRET_KEY") or berth.secret_key()
    errors.init_app(app)
    app.after_request(_security_headers)
    _register_blueprints(app)
    return app


def _configure(app: Flask, settings: Settings, config: dict[str, Any]) -> None:
    """Flask settings from Berth's, then anything else the caller passed."""
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        SESSION_COOKIE_NAME="berth_session",
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.session_lifetime),
        WTF_CSRF_TIME_LIMIT=None,  # tied to the session instead
    )
    if settings.secret_key:
        app.config["SECRET_KEY"] = settings.secret_key
    app.config.update({k: v for k, v in config.items()
                       if not k.startswith("BERTH_") and k not in _INJECTED})


def _security_headers(response: Response) -> Response:
    """A strict CSP and friends on every response."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _register_blueprints(app: Flask) -> None:
    """The API (CSRF-exempt: it authenticates by bearer token), the store front and
    the hosted repository's static index."""
    csrf.init_app(app)
    csrf.exempt(api_bp)
    app.register_blueprint(api_bp)
    meta.init_app(app)
    app.register_blueprint(storefront_bp)
    app.register_blueprint(repo_index_bp)
