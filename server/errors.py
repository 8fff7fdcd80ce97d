"""The one error handler: every failure becomes ``{"error", "message", "details"}``.

``CatalogError`` and ``WorkerError`` know nothing of HTTP; this module decides their
status. Store-front paths get an HTML page instead of JSON. Redis or broker trouble
is 503, answered at once. Anything unexpected is logged and answered 500 without
internals.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, jsonify, render_template, request
from markupsafe import escape
from werkzeug.exceptions import HTTPException

from catalog import errors as ce

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the server itself raises (bad request, auth), with its status."""

    code = "bad_request"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 details: list[dict[str, str]] | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.status = status or self.status
        self.details = details or []
        self.hint = hint

    def to_dict(self) -> dict[str, Any]:
        """The JSON body."""
        body: dict[str, Any] = {"error": self.code, "message": self.message,
                                "details": self.details}
        if self.hint:
            body["hint"] = self.hint
        return body


class Invalid(ApiError):
    """A request field is wrong (422, every problem listed)."""

    code = "invalid"
    status = 422


class Unavailable(ApiError):
    """A backing service (Redis, the broker, an agent) cannot be reached."""

    code = "unavailable"
    status = 503


_CATALOG_STATUS: list[tuple[type[Exception], int]] = [
    (ce.NotFound, 404),
    (ce.InvalidInput, 422),
    (ce.Conflict, 409),
    (ce.PlacementError, 409),
    (ce.RepositoryError, 503),
]

# worker.errors codes → status; a code not listed falls back to its class family.
_WORKER_STATUS = {
    "service_not_found": 404, "agent_not_found": 404, "deployment_not_found": 404,
    "instance_not_found": 404, "service_exists": 409, "deployment_in_progress": 409,
    "concurrent_change": 409, "agent_busy": 409, "agent_exists": 409,
    "agent_unreachable": 503, "image_unavailable": 503, "container_error": 502,
    "agent_error": 503, "invalid_request": 422, "conflict": 409, "not_found": 404,
    "generation_not_found": 404,
}

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
               413: "too_large", 415: "unsupported_media_type", 422: "invalid",
               429: "too_many_requests", 500: "internal", 503: "unavailable"}


def status_for(error: BaseException) -> int:
    """The HTTP status of an error from any Berth part."""
    if isinstance(error, ApiError):
        return error.status
    if isinstance(error, HTTPException):
        return error.code or 500
    for cls, status in _CATALOG_STATUS:
        if isinstance(error, cls):
            return status
    code = str(getattr(error, "code", ""))
    if code in _WORKER_STATUS:
        return _WORKER_STATUS[code]
    explicit = getattr(error, "status", None) or getattr(error, "http_status", None)
    if isinstance(explicit, int):
        return explicit
    if code.endswith("not_found"):
        return 404
    if _is_backend_down(error):
        return 503
    return 409 if code else 500


def body_for(error: BaseException) -> dict[str, Any]:
    """The ``{"error", "message", "details"}`` body of any error."""
    if isinstance(error, HTTPException):
        status = error.code or 500
        return {"error": _HTTP_CODES.get(status, "http_error"),
                "message": error.description or error.name, "details": []}
    to_dict = getattr(error, "to_dict", None)
    if callable(to_dict):
        body = dict(to_dict())
        body.setdefault("details", [])
        return body
    if _is_backend_down(error):
        return {"error": "unavailable", "message": "the state store or broker cannot be reached",
                "details": [], "hint": "check that Redis is running (BERTH_REDIS_URL)"}
    return {"error": "internal", "message": "internal error (logged on the server)",
            "details": []}


def _is_backend_down(error: BaseException) -> bool:
    """True for Redis, broker and socket errors: answered 503."""
    import redis

    down: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError,
                                             ConnectionError, TimeoutError)
    try:
        from kombu.exceptions import OperationalError
    except ImportError:  # pragma: no cover - kombu comes with celery
        return isinstance(error, down)
    return isinstance(error, (*down, OperationalError))


def wants_html() -> bool:
    """Store-front requests (not ``/api``, not asking for JSON) get HTML."""
    if request.path.startswith("/api/") or request.path in ("/healthz", "/readyz", "/metrics"):
        return False
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return request.blueprint == "storefront" or best == "text/html"


def handle(error: BaseException) -> Response | tuple[Any, int]:
    """Answer any error raised by a view."""
    status = status_for(error)
    if status >= 500 and status != 503:
        log.exception("error answering %s %s", request.method, request.path, exc_info=error)
    if status == 503:
        g.backend_down = True
    body = body_for(error)
    if status == 401 and wants_html():
        from .auth import login_redirect

        redirect = login_redirect()
        if redirect is not None:
            return redirect
    response = _html(body, status) if wants_html() else jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="berth"'
    if status == 503:
        response.headers["Retry-After"] = "5"
    retry_after = getattr(error, "retry_after", None)  # e.g. a rate limit's (429)
    if isinstance(retry_after, int):
        response.headers["Retry-After"] = str(retry_after)
    return response


def _html(body: dict[str, Any], status: int) -> Response:
    """An HTML error page: the store front's template if it has one."""
    try:
        html = render_template("storefront/error.html", error=body, status=status)
    except Exception:  # noqa: BLE001 - no template (or it failed): a plain page
        details = "".join(f"<li>{escape(d.get('path', ''))}: {escape(d.get('message', ''))}</li>"
                          for d in body.get("details", []))
        html = (f"<!doctype html><title>{status}</title><h1>{status}</h1>"
                f"<p>{escape(body.get('message', ''))}</p><ul>{details}</ul>")
    return Response(html, mimetype="text/html")


def init_app(app: Flask) -> None:
    """Register :func:`handle` for every error."""
    app.register_error_handler(Exception, handle)
