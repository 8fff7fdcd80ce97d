"""What every API view shares: strict JSON bodies, query parameters, responses.

Bodies are parsed strictly (no NaN or Infinity, bounded depth and number size) and
validated against the request schemas in ``openapi.json``, so the document and the
server cannot disagree; the problems are reported at once (422).

Each step costs no more than the body is allowed to be big: a JSON body over
``BERTH_MAX_JSON_BODY`` is refused (413) before it is read; sizes and counts
(``maxItems``, ``maxLength``, ``maxProperties``) are checked before the full
validation, which stops after 50 problems; echoed values are cut to 80 characters
(``catalog.schemas.bounds``). Anonymous callers of expensive views are held to a
per-address rate (:func:`limit_anonymous`, 429 with ``Retry-After``).
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import re
import time
from collections.abc import Iterator
from typing import Any

from flask import g, jsonify, request
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

from catalog.schemas.bounds import (
    first_problems,
    message_of,
    more_problems,
    short_pointer,
    size_problems,
)

from ..auth import check_role, current_identity
from ..context import current_berth
from ..errors import ApiError, Invalid
from .schema import openapi, validator

MAX_DEPTH = 32
MAX_VALUES = 20_000  # JSON values in one body: options and constraints need far fewer
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


class BadRequest(ApiError):
    code = "bad_request"
    status = 400


class UnsupportedMediaType(ApiError):
    code = "unsupported_media_type"
    status = 415


class TooLarge(ApiError):
    code = "too_large"
    status = 413


class TooManyRequests(ApiError):
    """Over a rate limit; ``retry_after`` seconds go in the ``Retry-After`` header."""

    code = "too_many_requests"
    status = 429

    def __init__(self, message: str, *, retry_after: int, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:20]}… is too large")
    return value


def parse_json(data: bytes) -> Any:
    """Parse a request body strictly.

    :raises BadRequest: for malformed JSON, NaN/Infinity, huge numbers or deep nesting.
    """
    return _parse(data)[0]


def _parse(data: bytes) -> tuple[Any, int]:
    """:func:`parse_json`, and about how many values the body holds (see :func:`_shape`).

    :raises BadRequest: as :func:`parse_json`.
    """
    try:
        text = data.decode("utf-8")
        with _gc_paused():
            value = json.loads(text, parse_constant=_reject_constant,
                               parse_float=_parse_float)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        message = str(exc) if not isinstance(exc, RecursionError) else "nested too deeply"
        raise BadRequest("the body is not valid JSON", details=[
            {"path": "body", "message": message[:200]}]) from None
    too_deep, values = _shape(data)
    if too_deep:
        raise BadRequest("the body is nested too deeply", details=[
            {"path": "body", "message": f"at most {MAX_DEPTH} levels of arrays and objects"}])
    return value, values


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection for the block: parsing makes up to ~100,000
    containers, none of them garbage, and each collection pass would walk them all
    (about a third of the parse time)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _shape(data: bytes) -> tuple[bool, int]:
    """Whether JSON text nests deeper than :data:`MAX_DEPTH`, and about how many values
    it holds — both on the text, in C-speed passes, never a Python walk over every node
    (a 256 KiB body holds ~100,000).

    Strings are dropped first. An array or object of ``n`` members has ``n - 1``
    commas, so commas plus opening brackets plus one is the count of values (an empty
    array or object counts one more). For the depth, everything but brackets goes, then
    each pass removes the innermost ``[]``/``{}`` pairs: a document ``d`` levels deep
    is empty after ``d`` passes. Only called on text that parsed as JSON.
    """
    bare = _STRING.sub(b"", data)
    values = bare.count(b",") + bare.count(b"[") + bare.count(b"{") + 1
    skeleton = bare.translate(None, _NOT_BRACKETS)
    for _ in range(MAX_DEPTH):
        if not skeleton:
            return False, values
        skeleton = skeleton.replace(b"[]", b"").replace(b"{}", b"")
    return bool(skeleton), values


def json_body(schema: str | None = None, *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object, validated against a request schema of openapi.json.

    :raises UnsupportedMediaType: when the body is not ``application/json``.
    :raises BadRequest: when it does not parse.
    :raises Invalid: listing every schema problem.
    """
    data = _json_bytes(current_berth().settings.max_json_body)
    values = 1
    if not data and optional:
        value: Any = {}
    else:
        if request.mimetype != "application/json":
            raise UnsupportedMediaType("send the body as application/json", details=[
                {"path": "Content-Type", "message": f"got {request.mimetype or 'nothing'}"}])
        value, values = _parse(data)
    if not isinstance(value, dict):
        raise Invalid("the body must be a JSON object",
                      details=[{"path": "body", "message": f"got {type(value).__name__}"}])
    if schema:
        problems = validate(schema, value, values)
        if problems:
            raise Invalid("the request is invalid", details=problems)
    return value


def _json_bytes(cap: int) -> bytes:
    """The body, refused (413) past ``cap`` bytes before it is read when it says its
    length, and after reading at most ``BERTH_MAX_BODY`` when it does not.

    :raises TooLarge: naming the limit.
    """
    declared = request.content_length
    if declared is None or declared <= cap:
        data = request.get_data(cache=True)
        if len(data) <= cap:
            return data
    raise TooLarge(f"the body is larger than {cap} bytes", details=[
        {"path": "body", "message": f"at most {cap} bytes of JSON"}])


def validate(schema: str, value: Any, values: int = 0) -> list[dict[str, str]]:
    """The problems of ``value`` (holding about ``values`` JSON values) against a
    component schema, as ``{path, message}``: sizes and counts first, then at most 50
    of the rest."""
    root = {"components": openapi()["components"], "$ref": f"#/components/schemas/{schema}"}
    sized = size_problems(root, value, _body_path)
    if sized:
        return sized
    if values > MAX_VALUES:
        return [{"path": "body", "message": f"at most {MAX_VALUES} values in all (arrays, "
                                            "objects, strings, numbers)"}]
    errors, more = first_problems(validator(schema).iter_errors(value))
    problems = [{"path": _body_path(error.absolute_path), "message": message_of(error)}
                for error in sorted(errors, key=lambda e: [str(p) for p in e.path])]
    return problems + [more_problems("body")] if more else problems


def _body_path(parts: Any) -> str:
    path = short_pointer(parts)
    return f"body{path}" if path else "body"


def limit_anonymous(action: str) -> None:
    """Hold an anonymous caller to ``BERTH_RENDER_BURST`` calls of ``action`` per
    ``BURST / RATE`` seconds, per client address, across every server process.

    A fixed-window counter in Redis (one ``INCR`` per call): simple and shared by all
    processes; at a window's edge a client may get up to two bursts in a row.
    Authenticated callers are not limited here.

    :raises TooManyRequests: with the seconds until the window ends.
    """
    berth = current_berth()
    rate, burst = berth.settings.render_rate, berth.settings.render_burst
    if rate <= 0 or current_identity().authenticated:
        return
    window = burst / rate
    now = time.time()
    slot = int(now // window)
    key = berth.store.state.key("rate", action, request.remote_addr or "-", slot)
    pipe = berth.redis.pipeline()
    pipe.incr(key)
    pipe.expire(key, math.ceil(window) + 1)
    count = pipe.execute()[0]
    if count > burst:
        retry = max(1, math.ceil((slot + 1) * window - now))
        raise TooManyRequests(
            f"too many anonymous {action} requests from this address; retry in {retry} s",
            retry_after=retry, details=[{"path": "client", "message": f"at most {burst} "
                                         f"per {window:g} s without a token"}],
            hint="authenticate with a token to lift the limit")


def query_int(name: str, default: int, *, low: int, high: int) -> int:
    """An integer query parameter within bounds.

    :raises Invalid: naming the parameter.
    """
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 9 or not low <= int(raw) <= high:
        raise Invalid(f"query parameter {name!r} is invalid", details=[
            {"path": f"query/{name}", "message": f"an integer from {low} to {high}"}])
    return int(raw)


def query_str(name: str, *, max_length: int = 200) -> str | None:
    """A string query parameter (None when absent).

    :raises Invalid: when it is too long.
    """
    raw = request.args.get(name)
    if raw is not None and len(raw) > max_length:
        raise Invalid(f"query parameter {name!r} is too long", details=[
            {"path": f"query/{name}", "message": f"at most {max_length} characters"}])
    return raw or None


def query_bool(name: str) -> bool:
    return (request.args.get(name) or "").lower() in ("1", "true", "yes", "on")


def allow(role: str) -> str:
    """Check the caller has ``role`` (and CSRF for session callers); returns the actor.

    API clients authenticate with bearer tokens; a browser session calling an unsafe
    method must also send the CSRF token in ``X-CSRFToken``.
    """
    identity = check_role(role)
    by_session = identity.authenticated and identity.by_session
    if request.method in UNSAFE and by_session:
        try:
            validate_csrf(request.headers.get("X-CSRFToken", ""))
        except ValidationError as exc:
            raise ApiError("missing or stale CSRF token", code="csrf_failed", status=403,
                           details=[{"path": "X-CSRFToken", "message": str(exc)}]) from None
    return identity.actor


def actor() -> str:
    return current_identity().actor


def accepted(body: dict[str, Any], location: str | None = None) -> Any:
    """A 202 answer with a Location header."""
    response = jsonify(body)
    response.status_code = 202
    if location:
        response.headers["Location"] = location
    g.setdefault("answered", True)
    return response
