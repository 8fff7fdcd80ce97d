"""Reaching what was installed: endpoints, routes, proxies, and the documents that
Traefik (HTTP provider) and Prometheus (HTTP service discovery) poll.

Everything here is read from the records through ``worker/endpoints.py`` (the one
definition of "healthy instances per port name" and of a route); proxies are
registered with ``worker/proxies.py``. The workers keep the proxies in sync; the
server never talks to a proxy.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from worker import proxies
from worker.endpoints import (
    RouteClash,
    read_all,
    read_endpoints,
    route_conflicts,
    route_state,
    routes_of,
)
from worker.proxies import Proxy

from ..errors import Invalid

__all__ = ["Routing", "traefik_document", "prometheus_targets"]

_SD_LABELS = ("service", "package", "version", "agent", "instance", "port", "generation")


class Routing:
    """Endpoints (with long polls), routes, proxies, Traefik's and Prometheus' documents."""

    def __init__(self, berth: Any) -> None:
        self.berth = berth

    # endpoints ------------------------------------------------------------------------
    def endpoints(self, name: str, *, wait: float = 0.0,
                  known: str | None = None) -> dict[str, Any]:
        """The healthy instances of a service per port name, with their ``etag``.

        With ``wait`` (seconds, capped by ``BERTH_ENDPOINTS_WAIT_MAX``) the answer
        waits until the ETag differs from ``known`` (or from the one at the start when
        ``known`` is None), or until the wait is over; then it is what stands.

        :raises ServiceNotFound:
        """
        store = self.berth.store
        current = read_endpoints(store, name)
        wait = min(max(0.0, wait), float(self.berth.settings.endpoints_wait_max))
        baseline = known or current["etag"]
        if wait <= 0 or current["etag"] != baseline:
            return current
        events = self.berth.events_state
        deadline = time.monotonic() + wait
        last = events.last_event_id()
        current = read_endpoints(store, name)  # a change between the two reads counts
        while current["etag"] == baseline:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            seen = events.read_events(last, count=500, block_ms=max(1, int(min(left, 1.0)
                                                                            * 1000)))
            if seen:
                last = str(seen[-1]["id"])
            current = read_endpoints(store, name)
        return current

    # routes ---------------------------------------------------------------------------
    def routes(self) -> list[dict[str, Any]]:
        """Every route of every service, with its upstreams and state.

        A route left out because it clashes with an older service's route
        (``worker.endpoints.route_conflicts``: records from before installs were
        checked) has the state ``conflict`` and ``conflict`` naming that route.
        """
        services = read_all(self.berth.store)
        left_out = route_conflicts(s for s, _ in services)
        found = []
        registered = proxies.list_proxies(self.berth.store)
        for service, endpoints in services:
            for route in routes_of(service):
                eps = (endpoints["ports"] or {}).get(route["portName"]) or []
                entry: dict[str, Any] = {**route, "upstreams": [f"{e['address']}:{e['port']}"
                                                                for e in eps]}
                clash = left_out.get(route["id"])
                if clash is None:
                    state = route_state(route, endpoints, service.get("status", ""))
                    if state != "unknown port":
                        state = proxies.tls_problem(route, registered) or state
                    entry["state"] = state
                else:
                    entry.update(state="conflict", conflict=_conflict_view(clash))
                found.append(entry)
        return found

    # proxies --------------------------------------------------------------------------
    def proxies(self) -> list[Proxy]:
        """Every registered proxy with how it stands (``sync``)."""
        return proxies.list_proxies(self.berth.store)

    def proxy(self, name: str) -> Proxy:
        """One proxy. :raises ProxyNotFound:"""
        return proxies.get_proxy(self.berth.store, name)

    def add_proxy(self, actor: str, body: Mapping[str, Any]) -> Proxy:
        """Register a proxy. :raises InvalidRequest: :raises ProxyExists:"""
        added = proxies.add_proxy(
            self.berth.store, str(body.get("name") or ""), kind=str(body.get("kind") or ""),
            admin_url=str(body.get("admin_url") or ""), listen=str(body.get("listen") or ""),
            group=str(body.get("group") or "external"),
            listen_tls=str(body["listen_tls"]) if body.get("listen_tls") else None,
            tls_issuer=str(body.get("tls_issuer") or "internal"),
            acme_email=str(body["acme_email"]) if body.get("acme_email") else None, actor=actor)
        return self.proxy(added["name"])

    def remove_proxy(self, actor: str, name: str) -> None:
        """Forget a proxy. :raises ProxyNotFound:"""
        proxies.remove_proxy(self.berth.store, name, actor=actor)

    # documents other software polls -----------------------------------------------------
    def traefik(self, *, group: str | None = None) -> dict[str, Any]:
        """The routes as a Traefik dynamic configuration (its HTTP provider polls it)."""
        return traefik_document(read_all(self.berth.store), group=group)

    def prometheus(self, *, service: str | None = None,
                   labels: Mapping[str, str] | None = None,
                   port: str | None = None, wait: float = 0.0,
                   client: str | None = None) -> list[dict[str, Any]]:
        """Prometheus HTTP SD target groups, one per service and port name.

        With ``wait`` (seconds, at most :data:`SD_WAIT_MAX`) and ``client``
        (who asks: the same string each time), the answer is held while the groups are
        those this client was last given, until they change and then stay the same
        for a second (:data:`_SD_QUIET`), or the wait is over: a
        Prometheus that polls every minute then hears of a change at once. The first
        question of a client (or one not heard from for 15 minutes) and any question
        after a change are answered at once. One held question holds one server thread:
        one per Prometheus.
        """
        wanted = dict(labels or {})
        unknown = sorted(set(wanted) - set(_SD_LABELS))
        if unknown:
            raise Invalid("unknown label filter", details=[
                {"path": f"query/label/{k}", "message": f"one of {', '.join(_SD_LABELS)}"}
                for k in unknown])
        if service:
            wanted["service"] = service

        def groups() -> list[dict[str, Any]]:
            return [g for g in prometheus_targets(read_all(self.berth.store), port=port)
                    if all(g["labels"].get(k) == v for k, v in wanted.items())]

        wait = min(max(0.0, wait), SD_WAIT_MAX)
        if wait <= 0 or not client:
            return groups()
        state = self.berth.store.state
        key = state.key("sd", "given", hashlib.sha256(client.encode()).hexdigest()[:32])
        raw = state.redis.get(key)
        given = raw.decode() if isinstance(raw, bytes) else raw
        events = self.berth.events_state
        last = events.last_event_id()
        current = groups()
        deadline = time.monotonic() + wait
        tag = _tag(current)
        # a new client, a change, or every holding thread of this process taken: at once
        if given is not None and tag == given and _SD_HOLDERS.acquire(blocking=False):
            try:
                tag, current = self._hold(groups, given, tag, current, deadline, last)
            finally:
                _SD_HOLDERS.release()
        state.redis.set(key, tag, ex=_SD_CLIENT_TTL)
        return current

    def _hold(self, groups: Callable[[], list[dict[str, Any]]], given: str, tag: str,
              current: list[dict[str, Any]], deadline: float, last: str
              ) -> tuple[str, list[dict[str, Any]]]:
        """Wait for the groups to differ from ``given`` and then keep still for
        :data:`_SD_QUIET`, or for ``deadline``; their tag and the groups then."""
        events = self.berth.events_state
        changed_at: float | None = None   # when the groups last changed while held
        while True:
            now = time.monotonic()
            if now >= deadline or (changed_at is not None and now - changed_at >= _SD_QUIET):
                return tag, current
            until = deadline if changed_at is None else min(deadline, changed_at + _SD_QUIET)
            seen = events.read_events(last, count=500,
                                      block_ms=max(1, int(min(until - now, 1.0) * 1000)))
            if not seen:
                continue
            last = str(seen[-1]["id"])
            current = groups()
            now_tag = _tag(current)
            if now_tag != tag:
                tag = now_tag
                changed_at = None if tag == given else time.monotonic()


SD_WAIT_MAX = 600.0    # seconds an HTTP SD question may be held (a refresh interval)
# seconds a changed document must stay the same before a held question gets it: the
# instances of a scale become healthy a little apart, and Prometheus asks again only
# a refresh interval later
_SD_QUIET = 1.0
# held questions at once per server process (each holds a thread); more are answered
# at once, as if no wait was asked: a viewer cannot take every thread of the server
SD_HELD_MAX = 8
_SD_HOLDERS = threading.BoundedSemaphore(SD_HELD_MAX)
_SD_CLIENT_TTL = 900   # seconds a client's last answer is kept for a held question


def _tag(groups: list[dict[str, Any]]) -> str:
    """A short fingerprint of a document of target groups."""
    return hashlib.sha256(json.dumps(groups, sort_keys=True).encode()).hexdigest()[:32]


def _conflict_view(clash: RouteClash) -> dict[str, str]:
    """What a route in conflict shows: the other service and route, the host and path."""
    return {"service": clash["service"], "route": clash["other_route"],
            "host": clash["host"], "other_host": clash["other_host"],
            "pathPrefix": clash["pathPrefix"]}


def _rule(route: Mapping[str, Any]) -> str:
    """A Traefik v3 rule: any of the hosts, and the path prefix."""
    hosts = " || ".join(f"Host(`{h}`)" for h in route["hosts"])
    rule = f"({hosts})" if len(route["hosts"]) > 1 else hosts
    prefix = "/" + str(route["pathPrefix"]).strip("/")
    return rule if prefix == "/" else f"{rule} && PathPrefix(`{prefix}`)"


def traefik_document(services: list[tuple[Any, dict[str, Any]]], *,
                     group: str | None = None) -> dict[str, Any]:
    """``{"http": {"routers": …, "services": …}}``: one router and one load-balanced
    service per route that has healthy endpoints (Traefik wants at least one server)
    and is not left out by a clash with an older route."""
    routers: dict[str, Any] = {}
    backends: dict[str, Any] = {}
    left_out = route_conflicts(s for s, _ in services)
    for service, endpoints in services:
        hc = (service.get("spec") or {}).get("healthCheck") or {}
        for route in routes_of(service):
            eps = (endpoints["ports"] or {}).get(route["portName"]) or []
            if not eps or (group and route["group"] != group) or route["id"] in left_out:
                continue
            name = f"berth-{route['id']}"
            routers[name] = {"rule": _rule(route), "service": name}
            if route["tls"]:
                routers[name]["tls"] = {}
            balancer: dict[str, Any] = {"servers": [{"url": f"http://{e['address']}:{e['port']}"}
                                                    for e in eps], "passHostHeader": True}
            if hc.get("protocol") == "http":
                balancer["healthCheck"] = {
                    "path": str(hc.get("path") or "/"),
                    "interval": f"{int(hc.get('intervalSeconds') or 10)}s",
                    "timeout": f"{int(hc.get('timeoutSeconds') or 5)}s"}
            backends[name] = {"loadBalancer": balancer}
    return {"http": {"routers": routers, "services": backends}}


def prometheus_targets(services: list[tuple[Any, dict[str, Any]]], *,
                       port: str | None = None) -> list[dict[str, Any]]:
    """``[{"targets": ["host:port"], "labels": {…}}]``, one group per healthy instance and
    port (each instance has its own ``instance`` and ``agent`` labels)."""
    groups = []
    for service, endpoints in services:
        package = service.get("package") or {}
        for port_name, eps in sorted((endpoints["ports"] or {}).items()):
            if port and port_name != port:
                continue
            for e in eps:
                groups.append({"targets": [f"{e['address']}:{e['port']}"], "labels": {
                    "service": service["name"], "package": str(package.get("name") or ""),
                    "version": str(package.get("version") or ""), "agent": e["agent"],
                    "instance": e["instance"], "port": port_name,
                    "generation": str(e["generation"])}})
    return groups
