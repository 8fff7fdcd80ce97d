"""The one error handler: every failure becomes ``{"error", "message", "details"}``.

Every Berth error derives from ``catalog.errors.BerthError`` and knows nothing of HTTP
(``ApiError``, the server's own, carries its status): :data:`STATUS` maps each class
family to a status, in one table. Store-front paths get an HTML page instead of JSON
(the store front's own handler first turns a 401 into its login page). Redis or broker
trouble is 503, answered at once. Anything unexpected is logged and answered 500
without internals.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import redis
from flask import Flask, Response, g, jsonify, render_template, request
from kombu.exceptions import OperationalError
from markupsafe import escape
from werkzeug.exceptions import HTTPException

from catalog import errors as ce
from catalog.errors import BerthError
from worker import errors as we
from worker.store.crypto import DataKeyError

log = logging.getLogger(__name__)


class ApiError(BerthError):
    """An error the server itself raises (bad request, auth), with its status."""

    code = "bad_request"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 details: Iterable[Mapping[str, Any]] = (), hint: str | None = None) -> None:
        super().__init__(message, details=details, hint=hint)
        self.code = code or self.code
        self.status = status or self.status


class Invalid(ApiError):
    """A request field is wrong (422, every problem listed)."""

    code = "invalid"
    status = 422


class Unavailable(ApiError):
    """A backing service (Redis, the broker, an agent) cannot be reached."""

    code = "unavailable"
    status = 503


# The status of each family of Berth errors, most specific first: the first class an
# error is an instance of decides. ``ApiError`` carries its own status.
STATUS: tuple[tuple[type[BerthError], int], ...] = (
    (we.ContainerError, 502),   # the engine refused or failed a container call
    (we.HostPathUnsafe, 409),   # the agent's folder is a link: a conflict, not an outage
    (DataKeyError, 503),        # the data key is missing or not the one that sealed a value
    (we.NotDurable, 503),       # too few replicas took the write in time: not acknowledged
    (ce.NotFound, 404),
    (we.NotFound, 404),
    (ce.InvalidInput, 422),
    (we.InvalidRequest, 422),
    (ce.Conflict, 409),
    (we.Conflict, 409),
    (ce.PlacementError, 409),
    (ce.RepositoryError, 503),
    (we.AgentError, 503),
    (BerthError, 409),          # any other refusal of a well-formed request
)

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
               413: "too_large", 415: "unsupported_media_type", 422: "invalid",
               429: "too_many_requests", 500: "internal", 503: "unavailable"}
_BACKEND_DOWN: tuple[type[BaseException], ...] = (
    redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError, ConnectionError,
    TimeoutError, OperationalError)


def status_for(error: BaseException) -> int:
    """The HTTP status of an error from any Berth part."""
    if isinstance(error, ApiError):
        return error.status
    if isinstance(error, HTTPException):
        return error.code or 500
    for family, status in STATUS:
        if isinstance(error, family):
            return status
    return 503 if _is_backend_down(error) else 500


def body_for(error: BaseException) -> dict[str, Any]:
    """The ``{"error", "message", "details"}`` body of any error."""
    if isinstance(error, HTTPException):
        status = error.code or 500
        return {"error": _HTTP_CODES.get(status, "http_error"),
                "message": error.description or error.name, "details": []}
    if isinstance(error, BerthError):
        return error.to_dict()
    if _is_backend_down(error):
        return {"error": "unavailable", "message": "the state store or broker cannot be reached",
                "details": [], "hint": "check that Redis is running (BERTH_REDIS_URL)"}
    return {"error": "internal", "message": "internal error (logged on the server)",
            "details": []}


def _is_backend_down(error: BaseException) -> bool:
    """True for Redis, broker and socket errors: answered 503."""
    return isinstance(error, _BACKEND_DOWN)


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
