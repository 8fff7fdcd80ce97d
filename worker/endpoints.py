"""Endpoints and routes: where a service can be reached, computed from its records.

A service's *endpoints* are its healthy instances per port name — address, port,
agent, generation, instance — and nothing else: an instance that is starting,
unhealthy, stopping or gone is not listed. They are computed from the instance
records (no state of their own), with an ETag that changes exactly when the list
does, so a client can poll cheaply or long-poll for a change.

A service's *routes* are its spec's ``expose`` entries (host names and a path
prefix in front of one port name); the proxy sync (``worker/proxy_sync.py``) and
the documents for Traefik and Prometheus (``server/application/routing.py``) are
all built from :func:`service_endpoints` and :func:`routes_of`.

Route conflicts: two routes *claim the same requests* when they are in the same proxy
group, their path prefixes are equal once normalised (:func:`normal_prefix`) and a host
of one overlaps a host of the other (:func:`hosts_overlap`: equal ignoring case, or
``*.example.com`` and a name one label under it). A proxy would answer such a request
from either, whichever it met first, so Berth refuses a spec that claims what another
service's route claims (:func:`check_routes`, :class:`RouteConflict`); the write path
(``worker/service_ops.py``) runs that check inside the transaction that writes the
service. Records from before the check (or a service being uninstalled, which yields its
routes) may still clash: :func:`route_conflicts` then keeps the route of the service
installed first, and :func:`proxied_routes` (what the proxy sync carries) and the
Traefik document leave the other out.

Draining (:func:`drain`): before the deployer stops a serving instance in a scale
down or an upgrade, it marks it ``stopping`` (so it leaves the endpoints), publishes
``endpoints.changed`` (the proxy sync pushes the shorter list at once) and waits
``BERTH_DRAIN_DELAY`` for the proxies and their in-flight requests, then stops it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict, cast

from .errors import Conflict
from .records import Instance, Service, counts_healthy
from .store import Store

__all__ = ["Endpoint", "Route", "RouteClash", "RouteConflict", "ENDPOINTS_CHANGED",
           "ROUTE_EVENTS", "service_endpoints", "endpoints_etag", "routes_of",
           "read_endpoints", "read_all", "drain", "route_state", "normal_prefix",
           "hosts_overlap", "check_routes", "route_conflicts", "proxied_routes"]

ENDPOINTS_CHANGED = "endpoints.changed"
#: event types after which some service's endpoints or routes may differ
ROUTE_EVENTS = ("instance.", "instances.", "service.", "deployment.", "proxy.",
                ENDPOINTS_CHANGED)
DEFAULT_GROUP = "external"


class Endpoint(TypedDict):
    """One healthy instance behind one port name."""

    address: str
    port: int
    agent: str
    generation: int
    instance: str


class Route(TypedDict):
    """One ``expose`` entry of a service, with its id (``<service>-<index>``)."""

    id: str
    service: str
    portName: str
    hosts: list[str]
    pathPrefix: str
    tls: bool
    group: str


def _port_names(spec: Mapping[str, Any]) -> list[str]:
    """The spec's port names in order (``port<n>`` for an unnamed one, as instances do)."""
    return [str(p.get("name") or f"port{n}") for n, p in enumerate(spec.get("ports") or [])]


def endpoints_etag(ports: Mapping[str, list[Endpoint]]) -> str:
    """A strong ETag of an endpoint list: the same list (in any order) gives the same tag."""
    canonical = {name: sorted(eps, key=lambda e: (e["address"], e["port"], e["instance"]))
                 for name, eps in ports.items()}
    digest = hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()
    return f'"{digest[:20]}"'


def service_endpoints(service: Service, instances: Iterable[Instance]) -> dict[str, Any]:
    """``{"service", "generation", "ports": {name: [Endpoint…]}, "etag"}`` of a service.

    Every port name of the spec is a key (with ``[]`` when nothing serves it).
    """
    names = _port_names(service.get("spec") or {})
    ports: dict[str, list[Endpoint]] = {name: [] for name in names}
    serving = sorted((i for i in instances if counts_healthy(i)), key=lambda i: i["id"])
    for instance in serving:
        for name, port in (instance.get("ports") or {}).items():
            ports.setdefault(name, []).append(Endpoint(
                address=instance.get("address", ""), port=int(port), agent=instance["agent"],
                generation=int(instance["generation"]), instance=instance["id"]))
    return {"service": service["name"], "generation": int(service.get("generation") or 0),
            "ports": ports, "etag": endpoints_etag(ports)}


def routes_of(service: Mapping[str, Any]) -> list[Route]:
    """The routes of a service: its spec's ``expose`` entries, defaults filled."""
    found = []
    for index, entry in enumerate((service.get("spec") or {}).get("expose") or []):
        found.append(Route(
            id=f"{service['name']}-{index}", service=str(service["name"]),
            portName=str(entry.get("portName") or ""),
            hosts=[str(h).lower() for h in entry.get("hosts") or []],
            pathPrefix=str(entry.get("pathPrefix") or "/"), tls=bool(entry.get("tls")),
            group=str(entry.get("group") or DEFAULT_GROUP)))
    return found


def route_state(route: Route, endpoints: Mapping[str, Any], status: str) -> str:
    """How a route stands: ``serving``, ``no healthy instances`` or ``unknown port``."""
    ports = endpoints.get("ports") or {}
    if route["portName"] not in ports:
        return "unknown port"
    if not ports[route["portName"]]:
        return "no healthy instances" if status != "deleting" else "deleting"
    return "serving"


class RouteConflict(Conflict):
    """A spec's route claims requests another service's route claims already (409).

    ``details`` name each clashing host at its spec path (``spec/expose/0/hosts/1``);
    ``data["conflicts"]`` holds them as :class:`RouteClash` records.
    """

    code = "route_conflict"


class RouteClash(TypedDict):
    """One host of a route that overlaps a host of another route."""

    route: str          # the route's id (``<service>-<index>``)
    path: str           # where its host is in the spec: ``spec/expose/<i>/hosts/<j>``
    host: str
    pathPrefix: str     # normalised
    group: str
    service: str        # the other route's service, its id and its host
    other_route: str
    other_host: str


def normal_prefix(prefix: str) -> str:
    """A path prefix as proxies compare it: ``/api``, ``/api/`` and ``//API`` are ``/api``.

    Lower case because Caddy matches paths ignoring case; empty segments dropped
    because Caddy cleans ``//`` out of a request path before it matches.
    """
    parts = [part for part in str(prefix or "/").lower().split("/") if part]
    return "/" + "/".join(parts)


def _wildcard_over(host: str) -> str | None:
    """The one-label wildcard that matches ``host`` (``a.b.c`` → ``*.b.c``), if any."""
    if host.startswith("*.") or "." not in host:
        return None
    return "*." + host.split(".", 1)[1]


def hosts_overlap(a: str, b: str) -> bool:
    """True when some request host matches both: equal ignoring case, or one is
    ``*.example.com`` and the other a name exactly one label under ``example.com``
    (the spec's wildcard matches one label, as Caddy's host matcher does)."""
    a, b = a.lower(), b.lower()
    return a == b or _wildcard_over(a) == b or _wildcard_over(b) == a


_Claim = tuple[Route, str]   # a route and one of its hosts


class _Claims:
    """The hosts routes claim, indexed so that an overlapping claim is one lookup away
    (an exact host meets the same host and the wildcard over it; a wildcard meets the
    same wildcard and every exact host under it)."""

    def __init__(self) -> None:
        self.exact: dict[tuple[str, str, str], _Claim] = {}
        self.wild: dict[tuple[str, str, str], _Claim] = {}
        self.under: dict[tuple[str, str, str], _Claim] = {}   # wildcard → a host under it

    def add(self, route: Route) -> None:
        """Index every host of ``route`` (a host claimed already keeps its first claim)."""
        group, prefix = route["group"], normal_prefix(route["pathPrefix"])
        for host in route["hosts"]:
            host = host.lower()
            if host.startswith("*."):
                self.wild.setdefault((group, prefix, host), (route, host))
                continue
            self.exact.setdefault((group, prefix, host), (route, host))
            over = _wildcard_over(host)
            if over:
                self.under.setdefault((group, prefix, over), (route, host))

    def find(self, group: str, prefix: str, host: str) -> _Claim | None:
        """A claim overlapping ``host`` at that group and normalised prefix, or None."""
        host = host.lower()
        if host.startswith("*."):
            return self.wild.get((group, prefix, host)) or self.under.get((group, prefix, host))
        over = _wildcard_over(host)
        return self.exact.get((group, prefix, host)) or (
            self.wild.get((group, prefix, over)) if over else None)

    def clashes(self, route: Route) -> list[RouteClash]:
        """Every host of ``route`` that overlaps an indexed claim."""
        group, prefix = route["group"], normal_prefix(route["pathPrefix"])
        index = route["id"].rsplit("-", 1)[1]
        found = []
        for number, host in enumerate(route["hosts"]):
            claim = self.find(group, prefix, host)
            if claim is not None:
                found.append(RouteClash(
                    route=route["id"], path=f"spec/expose/{index}/hosts/{number}",
                    host=host.lower(), pathPrefix=prefix, group=group,
                    service=claim[0]["service"], other_route=claim[0]["id"],
                    other_host=claim[1]))
        return found


def _claimed(routes: Iterable[Route]) -> set[tuple[str, str, str]]:
    """(group, normalised prefix, host) of every host the routes claim."""
    return {(r["group"], normal_prefix(r["pathPrefix"]), h.lower())
            for r in routes for h in r["hosts"]}


def check_routes(service: Mapping[str, Any], others: Iterable[Mapping[str, Any]], *,
                 before: Mapping[str, Any] | None = None) -> None:
    """Refuse a service whose (new) spec claims requests another route claims.

    ``service`` is the record as it would be written (``name``, ``spec``); ``others``
    the other services' records (its own name and services being uninstalled, which
    yield their routes, are skipped); ``before`` its spec now, for a change: a host
    the service routes already (same group and prefix) is not checked again, so an
    upgrade keeping its routes never conflicts, even with a clash from older records.
    Two routes of the spec itself that overlap are refused too.

    :raises RouteConflict: naming each host, its path prefix and the other service.
    """
    mine = routes_of(service)
    if not mine:
        return
    kept = _claimed(routes_of({"name": service["name"], "spec": before or {}}))
    claims = _Claims()
    for other in sorted(others, key=_seniority):   # a clash names the senior route
        if other.get("name") != service["name"] and other.get("status") != "deleting":
            for route in routes_of(other):
                claims.add(route)
    own = _Claims()
    found: list[RouteClash] = []
    for route in mine:
        new = [c for c in claims.clashes(route)
               if (c["group"], c["pathPrefix"], c["host"]) not in kept]
        found += new + own.clashes(route)
        own.add(route)
    if found:
        raise _conflict(str(service["name"]), found)


def _conflict(name: str, found: list[RouteClash]) -> RouteConflict:
    """The error of a service's clashing hosts, one detail per host."""
    def where(c: RouteClash) -> str:
        return f"{c['host']}{'' if c['pathPrefix'] == '/' else c['pathPrefix']}"

    def whose(c: RouteClash) -> str:
        if c["service"] == name:
            return f"{name}'s own route {c['other_route']}"
        return f"service {c['service']!r} (route {c['other_route']}, host {c['other_host']})"

    first = found[0]
    others = sorted({c["service"] for c in found if c["service"] != name})
    message = (f"{name!r} would route {where(first)} (path prefix {first['pathPrefix']}, "
               f"group {first['group']}), which {whose(first)} routes already")
    if len(found) > 1:
        message += f"; {len(found) - 1} more host(s) clash"
    return RouteConflict(
        message, service=name, conflicts=found,
        details=[{"path": c["path"], "message": f"host {c['host']} with path prefix "
                  f"{c['pathPrefix']} (group {c['group']}) is routed to {whose(c)}"}
                 for c in found],
        hint=("choose another host name or path prefix, or change or uninstall "
              + (", ".join(repr(o) for o in others) if others else "the other route")
              + " first"))


def _seniority(service: Mapping[str, Any]) -> tuple[bool, float, str]:
    """Which service keeps a clashing route: not being uninstalled, then installed
    first (``created_at``), then by name."""
    return (service.get("status") == "deleting", float(service.get("created_at") or 0),
            str(service.get("name") or ""))


def route_conflicts(services: Iterable[Mapping[str, Any]]) -> dict[str, RouteClash]:
    """The routes left out because they clash with a route that is carried, by id.

    Routes are taken in order of their service's seniority (:func:`_seniority`), then
    of their place in ``expose``; a route is carried unless one of its hosts overlaps a
    host of a route carried before it — that route is the one its clash names.
    """
    carried = _Claims()
    left_out: dict[str, RouteClash] = {}
    for service in sorted(services, key=_seniority):
        for route in routes_of(service):
            clashes = carried.clashes(route)
            if clashes:
                left_out[route["id"]] = clashes[0]
            else:
                carried.add(route)
    return left_out


def proxied_routes(store: Store) -> list[tuple[Service, dict[str, Any], Route]]:
    """What a proxy carries: every route that is not left out by a clash, with its
    service and that service's endpoints (:func:`read_all`, :func:`route_conflicts`)."""
    services = read_all(store)
    left_out = route_conflicts(s for s, _ in services)
    return [(service, endpoints, route) for service, endpoints in services
            for route in routes_of(service) if route["id"] not in left_out]


def read_endpoints(store: Store, name: str) -> dict[str, Any]:
    """The endpoints of one service, read now.

    :raises ServiceNotFound: when there is no such service.
    """
    service = store.services.require(name)
    return service_endpoints(service, store.instances.for_service(name))


def read_all(store: Store) -> list[tuple[Service, dict[str, Any]]]:
    """Every service with its endpoints, by name."""
    services = sorted(store.services.list(), key=lambda s: s["name"])
    return [(s, service_endpoints(s, store.instances.for_service(s["name"])))
            for s in services]


def drain(store: Store, instances: list[Instance], delay: float) -> list[str]:
    """Take serving instances out of their service's endpoints before they are stopped.

    Marks each ``stopping`` (health results no longer bring it back), publishes
    ``endpoints.changed`` per service and, when any of them was serving, waits
    ``delay`` seconds so that proxies drop them and finish their requests first.
    Returns the ids that were drained.
    """
    drained: dict[str, list[str]] = {}
    for instance in instances:
        if not counts_healthy(instance):
            continue

        def stopping(doc: Instance) -> Instance | None:
            return cast(Instance, {**doc, "state": "stopping"}) if counts_healthy(doc) else None

        written = store.instances.update(instance["id"], stopping)
        if written is not None and written.get("state") == "stopping":
            drained.setdefault(instance["service"], []).append(instance["id"])
    for service, ids in drained.items():
        store.state.publish_event(ENDPOINTS_CHANGED, service, "worker", {"draining": ids})
    if drained and delay > 0:
        time.sleep(delay)
    return [i for ids in drained.values() for i in ids]
