"""``/services/<name>/endpoints``, ``/routes``, ``/proxies``, and the documents other
software polls: ``/providers/traefik`` (Traefik's HTTP provider) and
``/sd/prometheus`` (Prometheus' HTTP service discovery)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request, url_for

from ..application import Routing
from ..context import current_berth
from ..errors import Invalid
from .common import allow, json_body, query_str
from .openapi import _json, _op, _path, _query, _ref
from .schema import add_fragment


def register(bp: Blueprint) -> None:
    """Add the routing routes to the API blueprint."""
    bp.add_url_rule("/services/<name>/endpoints", view_func=service_endpoints,
                    methods=["GET"])
    bp.add_url_rule("/routes", view_func=list_routes, methods=["GET"])
    bp.add_url_rule("/proxies", view_func=list_proxies, methods=["GET"])
    bp.add_url_rule("/proxies", view_func=add_proxy, methods=["POST"])
    bp.add_url_rule("/proxies/<name>", view_func=show_proxy, methods=["GET"])
    bp.add_url_rule("/proxies/<name>", view_func=remove_proxy, methods=["DELETE"])
    bp.add_url_rule("/providers/traefik", view_func=traefik_provider, methods=["GET"])
    bp.add_url_rule("/sd/prometheus", view_func=prometheus_sd, methods=["GET"])


def _ops() -> Routing:
    return current_berth().application.routing


def _wait() -> float:
    """``?wait=SECONDS`` (0 when absent).

    :raises Invalid: when it is not a number of seconds from 0 on.
    """
    raw = request.args.get("wait", "")
    if raw == "":
        return 0.0
    try:
        value = float(raw) if len(raw) <= 12 else -1.0
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise Invalid("query parameter 'wait' is invalid", details=[
            {"path": "query/wait", "message": "seconds to wait for a change, from 0 on"}])
    return value


def service_endpoints(name: str) -> Any:
    """The healthy instances of a service per port name, with an ETag.

    ``If-None-Match`` with the current ETag answers 304; with ``?wait=S`` the answer
    waits (bounded) until the endpoints differ from that ETag (or from those at the
    start), then answers them — or 304 when nothing changed in that time.
    """
    allow("viewer")
    known = next(iter(request.if_none_match.as_set()), None) if request.if_none_match else None
    known_tag = f'"{known}"' if known else None
    found = _ops().endpoints(name, wait=_wait(), known=known_tag)
    if known_tag and found["etag"] == known_tag:
        response = _not_modified()
    else:
        response = jsonify(found)
    response.headers["ETag"] = found["etag"]
    response.headers["Cache-Control"] = "no-cache"
    return response


def _not_modified() -> Any:
    """An empty 304 answer (the caller adds the ETag)."""
    return current_app.response_class(status=304)


def list_routes() -> Any:
    """Every route (``expose`` entry) of every service, with its upstreams and state."""
    allow("viewer")
    return jsonify({"items": _ops().routes()})


def list_proxies() -> Any:
    """Every registered proxy with its sync state and last sync time."""
    allow("viewer")
    return jsonify({"items": _ops().proxies()})


def add_proxy() -> Any:
    """Register a proxy Berth keeps in sync with the routes."""
    actor = allow("admin")
    body = json_body("ProxyRequest")
    proxy = _ops().add_proxy(actor, body)
    response = jsonify(proxy)
    response.status_code = 201
    response.headers["Location"] = url_for("api.show_proxy", name=proxy["name"])
    return response


def show_proxy(name: str) -> Any:
    allow("viewer")
    return jsonify(_ops().proxy(name))


def remove_proxy(name: str) -> Any:
    """Forget a proxy (what Berth put in it stays until the proxy is reconfigured)."""
    actor = allow("admin")
    _ops().remove_proxy(actor, name)
    return "", 204


def traefik_provider() -> Any:
    """The routes as Traefik dynamic configuration (``providers.http.endpoint``)."""
    allow("viewer")
    return jsonify(_ops().traefik(group=query_str("group", max_length=63)))


def prometheus_sd() -> Any:
    """Prometheus HTTP SD target groups; ``?service=``, ``?port=``, ``?label=k=v`` filter.

    ``?wait=S`` holds the answer while nothing changed since this client's last one
    (:meth:`Routing.prometheus`), up to S seconds and never past one second before the
    refresh interval Prometheus names in ``X-Prometheus-Refresh-Interval-Seconds`` (its
    request times out then). The client is who asks: address, token, agent and query.
    """
    actor = allow("viewer")
    labels: dict[str, str] = {}
    for raw in request.args.getlist("label"):
        key, sep, value = raw.partition("=")
        if not sep or not key or len(raw) > 200:
            raise Invalid("query parameter 'label' is invalid", details=[
                {"path": "query/label", "message": "label=name=value, e.g. label=package=hello"}])
        labels[key] = value
    wait = _wait()
    interval = _refresh_interval()
    if interval is not None:
        wait = min(wait, max(0.0, interval - 1.0))
    client = "\n".join([request.remote_addr or "", str(actor), request.user_agent.string,
                        request.query_string.decode("latin-1")])
    return jsonify(_ops().prometheus(service=query_str("service", max_length=63),
                                     labels=labels, port=query_str("port", max_length=63),
                                     wait=wait, client=client))


def _refresh_interval() -> float | None:
    """The seconds Prometheus says it refreshes in (None when not said or not a number)."""
    raw = request.headers.get("X-Prometheus-Refresh-Interval-Seconds", "")
    try:
        value = float(raw) if 0 < len(raw) <= 12 else None
    except ValueError:
        return None
    return value if value is not None and 0 < value < float("inf") else None


def _openapi() -> tuple[dict[str, Any], dict[str, Any]]:
    """This module's paths and schemas for the API document."""
    svc = _path("name")
    obj: dict[str, Any] = {"type": "object"}
    proxy, route = _ref("Proxy"), _ref("Route")

    def items(ref: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "properties": {"items": {"type": "array", "items": ref}}}

    paths = {
        "/services/{name}/endpoints": {"get": _op(
            "serviceEndpoints", "Healthy instances per port name, with an ETag",
            {**_json("OK", _ref("Endpoints")),
             "304": {"description": "Unchanged since the ETag in If-None-Match"}},
            "401 403 404 422 503",
            params=[svc, _query("wait", {"type": "number", "minimum": 0, "maximum": 30})])},
        "/routes": {"get": _op("listRoutes", "Every route with its service and state",
                               _json("OK", items(route)))},
        "/proxies": {
            "get": _op("listProxies", "Registered proxies with their sync state",
                       _json("OK", items(proxy))),
            "post": _op("addProxy", "Register a proxy (admin)", _json("Added", proxy, "201"),
                        "400 401 403 409 413 415 422 503", body="ProxyRequest")},
        "/proxies/{name}": {
            "get": _op("showProxy", "One proxy", _json("OK", proxy), "401 403 404 503",
                       params=[svc]),
            "delete": _op("removeProxy", "Forget a proxy (admin)",
                          {"204": {"description": "Removed"}}, "401 403 404 503",
                          params=[svc])},
        "/providers/traefik": {"get": _op(
            "traefikProvider", "The routes as Traefik dynamic configuration",
            _json("OK", {"type": "object", "required": ["http"]}),
            params=[_query("group", {"type": "string", "maxLength": 63})])},
        "/sd/prometheus": {"get": _op(
            "prometheusSd", "Prometheus HTTP SD target groups",
            _json("OK", {"type": "array", "items": obj}), "401 403 422 503",
            params=[_query("service", {"type": "string", "maxLength": 63}),
                    _query("port", {"type": "string", "maxLength": 63}),
                    _query("label", {"type": "string", "maxLength": 200}),
                    _query("wait", {"type": "number", "minimum": 0, "maximum": 600})])},
    }
    schemas = {
        "Endpoints": {"type": "object", "required": ["service", "ports", "etag"],
                      "properties": {"service": {"type": "string"},
                                     "generation": {"type": "integer"},
                                     "ports": {"type": "object"}, "etag": {"type": "string"}}},
        "Route": {"type": "object", "required": ["id", "service", "portName", "hosts"],
                  "properties": {
                      "state": {"type": "string", "enum": [
                          "serving", "no healthy instances", "deleting", "unknown port",
                          "conflict"]},
                      "conflict": {
                          "type": "object", "description": (
                              "With state conflict: the older route the proxies carry "
                              "instead of this one"),
                          "properties": {k: {"type": "string"} for k in (
                              "service", "route", "host", "other_host", "pathPrefix")}}}},
        "Proxy": {"type": "object", "required": ["name", "kind", "admin_url", "listen"],
                  "properties": {"listen_tls": {"type": ["string", "null"]},
                                 "tls_issuer": {"type": "string",
                                                "enum": ["internal", "acme"]},
                                 "acme_email": {"type": ["string", "null"]},
                                 "sync": obj}},
        "ProxyRequest": {
            "type": "object", "additionalProperties": False,
            "required": ["name", "kind", "admin_url", "listen"],
            "properties": {"name": {"type": "string", "maxLength": 63},
                           "kind": {"type": "string", "enum": ["caddy"]},
                           "admin_url": {"type": "string", "maxLength": 500},
                           "listen": {"type": "string", "maxLength": 100},
                           "group": {"type": "string", "maxLength": 63},
                           "listen_tls": {"type": ["string", "null"], "maxLength": 100},
                           "tls_issuer": {"type": "string", "enum": ["internal", "acme"]},
                           "acme_email": {"type": ["string", "null"], "maxLength": 254}}},
    }
    return paths, schemas


add_fragment(*_openapi())
