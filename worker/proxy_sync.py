"""The proxy sync: every registered Caddy carries the routes, with the healthy upstreams.

Berth owns one HTTP server in each Caddy it drives (``apps.http.servers.berth-<proxy>``,
``@id`` ``berth-server-<proxy>``), listening on the proxy's ``listen`` address. Each
route of the proxy's group becomes one Caddy route — host matchers, a path matcher,
and a ``reverse_proxy`` handler (``@id`` ``berth-upstreams-<proxy>-<route>``) with the
service's healthy endpoints as upstreams, round-robin, retries on a failed dial, and
Caddy's own passive health checks (and active ones when the spec's health check is
HTTP) on top of Berth's.

Routes with ``tls: true`` go to a second server when the proxy has a ``listen_tls``
address (``berth-<proxy>-tls``, ``@id`` ``berth-server-<proxy>-tls``): TLS connection
policies for exactly their hosts (by SNI), Caddy's automatic certificate management
on (its own HTTP→HTTPS redirects off: they would bind port 80), and one automation
policy of Berth's in ``apps.tls.automation.policies`` (``@id`` ``berth-tls-<proxy>``)
naming those hosts and the proxy's issuer — ``internal`` (Caddy's local CA) or
``acme``. On the plain-HTTP server, each such route is a 308 redirect to HTTPS. On a
proxy without ``listen_tls`` a TLS route is left out (the route listing says why).

How it stays in sync (run by the watcher's leader, :meth:`ProxySyncer.run`):

- it wakes on every event of the stream (an instance healthy, failed, stopping; a
  service installed; a proxy added) or after half a second, builds what each proxy
  should carry, and compares it with what it last pushed there;
- a change of upstreams only is one ``PATCH /id/<handler>/upstreams`` per changed
  route — no reload of everything; a change of the routes of one of Berth's servers
  only is one ``POST /config/apps/http/servers/<server>`` (that server, nothing else);
  a change of several of Berth's parts at once (a TLS route added: the TLS server, the
  redirect on the HTTP server and the automation policy) is one whole load, so Caddy
  never runs half of it (a host served before its policy would get Caddy's default
  issuer);
- every ``BERTH_PROXY_RESYNC_INTERVAL``, and after any error, it reads Caddy's
  configuration back (``GET /config/``) and compares Berth's parts; when they are
  missing (Caddy restarted with its own config) or differ, Berth's parts are set in
  that configuration and it is loaded (``POST /load``), keeping Caddy's admin, its
  other servers and its other automation policies.

``CaddyAdmin`` is the one funnel of requests to a Caddy admin API; its failures become
:class:`ProxyError`. The sync state of each proxy is written with
:func:`worker.proxies.record_sync` (the Routes page and ``GET /proxies`` show it).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypedDict

import requests

from .endpoints import Route, proxied_routes
from .errors import AgentError
from .proxies import Proxy, list_proxies, record_sync, sync_state
from .settings import WorkerSettings
from .store import Store

__all__ = ["CaddyAdmin", "ProxyError", "ProxySyncer", "caddy_server", "caddy_tls_server",
           "caddy_config", "tls_policy", "server_key", "tls_server_key", "policy_id"]

log = logging.getLogger(__name__)
WAKE_MS = 500
#: (route, upstreams as ``{"dial": "host:port"}``, the service's spec)
Routed = tuple[Route, list[dict[str, str]], Mapping[str, Any]]


class Desired(TypedDict):
    """What Berth owns in one Caddy: its servers (by key) and its TLS policy."""

    servers: dict[str, dict[str, Any]]
    policy: dict[str, Any] | None


class ProxyError(AgentError):
    """A proxy's admin API did not answer, or refused a change.

    An outside system Berth drives, like an agent's engine: the same family (503 were
    it ever answered; only the workers meet it).
    """

    code = "proxy_error"


def server_key(proxy: str) -> str:
    """The name of Berth's server in a Caddy's ``apps.http.servers``."""
    return f"berth-{proxy}"


def tls_server_key(proxy: str) -> str:
    """The name of Berth's HTTPS server in a Caddy's ``apps.http.servers``."""
    return f"berth-{proxy}-tls"


def policy_id(proxy: str) -> str:
    """The ``@id`` of Berth's automation policy in ``apps.tls.automation.policies``."""
    return f"berth-tls-{proxy}"


def handler_id(proxy: str, route: str) -> str:
    return f"berth-upstreams-{proxy}-{route}"


def _paths(prefix: str) -> list[str]:
    """Caddy path matchers for a path prefix (``/api`` → ``/api``, ``/api/*``)."""
    prefix = "/" + prefix.strip("/")
    return ["/*"] if prefix == "/" else [prefix, prefix + "/*"]


def _health_checks(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Caddy's passive checks always; active ones when the spec checks over HTTP."""
    checks: dict[str, Any] = {"passive": {"fail_duration": "2s", "max_fails": 1}}
    hc = spec.get("healthCheck") or {}
    if hc.get("protocol") == "http":
        checks["active"] = {"uri": str(hc.get("path") or "/"),
                            "interval": f"{max(1, int(hc.get('intervalSeconds') or 10))}s",
                            "timeout": f"{max(1, int(hc.get('timeoutSeconds') or 5))}s"}
    return checks


def _caddy_route(proxy: str, route: Route, upstreams: list[dict[str, str]],
                 spec: Mapping[str, Any]) -> dict[str, Any]:
    handler = {"@id": handler_id(proxy, route["id"]), "handler": "reverse_proxy",
               "upstreams": upstreams,
               "load_balancing": {"selection_policy": {"policy": "round_robin"},
                                  "try_duration": "3s", "try_interval": "100ms"},
               "health_checks": _health_checks(spec)}
    return {"@id": f"berth-route-{proxy}-{route['id']}",
            "match": [{"host": route["hosts"], "path": _paths(route["pathPrefix"])}],
            "handle": [handler], "terminal": True}


def _redirect_route(proxy: str, route: Route, https_port: int) -> dict[str, Any]:
    """A plain-HTTP route answering a TLS route's requests with a 308 to HTTPS."""
    port = "" if https_port == 443 else f":{https_port}"
    return {"@id": f"berth-redirect-{proxy}-{route['id']}",
            "match": [{"host": route["hosts"], "path": _paths(route["pathPrefix"])}],
            "handle": [{"handler": "static_response", "status_code": 308,
                        "headers": {"Location": [
                            f"https://{{http.request.host}}{port}{{http.request.uri}}"]}}],
            "terminal": True}


def _specific_first(routed: Iterable[Routed]) -> list[Routed]:
    """Routes with a longer path prefix first (Caddy tries routes in order)."""
    return sorted(routed, key=lambda r: (-len(r[0]["pathPrefix"].strip("/")), r[0]["id"]))


def _port_of(listen: str) -> int:
    return int(listen.rsplit(":", 1)[1])


def caddy_server(proxy: Proxy, routed: Iterable[Routed]) -> dict[str, Any]:
    """Berth's plain-HTTP server in one Caddy: its routes, most specific path first.

    ``routed``: (route, upstreams as ``{"dial": "host:port"}``, the service's spec).
    TLS routes become redirects to ``listen_tls`` — or nothing when the proxy has no
    TLS listener (they are never served as plain HTTP).
    """
    listen_tls = proxy.get("listen_tls")
    routes = []
    for route, ups, spec in _specific_first(routed):
        if not route["tls"]:
            routes.append(_caddy_route(proxy["name"], route, ups, spec))
        elif listen_tls:
            routes.append(_redirect_route(proxy["name"], route, _port_of(listen_tls)))
    return {"@id": f"berth-server-{proxy['name']}", "listen": [proxy["listen"]],
            "automatic_https": {"disable": True}, "routes": routes}


def tls_hosts(routed: Iterable[Routed]) -> list[str]:
    """The host names of the TLS routes, sorted, each once."""
    return sorted({h for route, _, _ in routed if route["tls"] for h in route["hosts"]})


def caddy_tls_server(proxy: Proxy, routed: Iterable[Routed]) -> dict[str, Any] | None:
    """Berth's HTTPS server in one Caddy (None without ``listen_tls``): the TLS routes.

    Connection policies match exactly the routes' hosts by SNI; Caddy's automatic
    HTTPS stays on for certificates (issued per :func:`tls_policy`), without its own
    redirects (Berth's HTTP server has them, on ``listen``).
    """
    listen_tls = proxy.get("listen_tls")
    if not listen_tls:
        return None
    tls = [r for r in routed if r[0]["tls"]]
    hosts = tls_hosts(tls)
    return {"@id": f"berth-server-{proxy['name']}-tls", "listen": [listen_tls],
            "automatic_https": {"disable_redirects": True},
            "tls_connection_policies": [{"match": {"sni": hosts}}] if hosts else [{}],
            "routes": [_caddy_route(proxy["name"], route, ups, spec)
                       for route, ups, spec in _specific_first(tls)]}


def tls_policy(proxy: Proxy, hosts: list[str]) -> dict[str, Any] | None:
    """Berth's automation policy for a proxy's TLS hosts (None when there are none:
    a policy without subjects would catch every name of that Caddy)."""
    if not hosts or not proxy.get("listen_tls"):
        return None
    issuer: dict[str, Any] = {"module": "internal"}
    if proxy.get("tls_issuer") == "acme":
        issuer = {"module": "acme"}
        if proxy.get("acme_email"):
            issuer["email"] = proxy["acme_email"]
    return {"@id": policy_id(proxy["name"]), "subjects": hosts, "issuers": [issuer]}


def caddy_config(proxy: Proxy, routed: Iterable[Routed]) -> Desired:
    """Everything Berth owns in one Caddy: its servers by key, and its TLS policy."""
    routed = list(routed)
    servers = {server_key(proxy["name"]): caddy_server(proxy, routed)}
    tls_server = caddy_tls_server(proxy, routed)
    if tls_server is not None:
        servers[tls_server_key(proxy["name"])] = tls_server
    return {"servers": servers, "policy": tls_policy(proxy, tls_hosts(routed))}


def desired_configs(store: Store, proxies: list[Proxy]) -> dict[str, Desired]:
    """What each proxy should carry now, by proxy name."""
    routed = []
    for service, endpoints, route in proxied_routes(store):   # clashing routes left out
        eps = (endpoints["ports"] or {}).get(route["portName"]) or []
        upstreams = [{"dial": f"{e['address']}:{e['port']}"} for e in eps]
        routed.append((route, upstreams, service.get("spec") or {}))
    return {p["name"]: caddy_config(p, [r for r in routed if r[0]["group"] == p["group"]])
            for p in proxies}


class CaddyAdmin:
    """One Caddy admin API: the one funnel of requests to it."""

    def __init__(self, url: str, timeout: float = 5.0,
                 session: requests.Session | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()

    def _call(self, method: str, path: str, body: Any = None) -> requests.Response:
        """One request; 404 is answered, other failures raise.

        :raises ProxyError: no answer, or Caddy refused the change (its message kept).
        """
        try:
            response = self.session.request(method, self.url + path, json=body,
                                            timeout=self.timeout)
        except requests.RequestException as error:
            raise ProxyError(f"the proxy at {self.url} did not answer: "
                             f"{type(error).__name__}") from None
        if response.status_code >= 400 and response.status_code != 404:
            raise ProxyError(f"the proxy at {self.url} refused {method} {path}: "
                             f"{response.status_code} {response.text[:300].strip()}")
        return response

    def get(self, path: str) -> Any:
        """The config value at ``path`` (``/config/…`` or ``/id/…``), None when missing."""
        response = self._call("GET", path)
        return None if response.status_code == 404 else response.json()

    def load(self, config: Mapping[str, Any]) -> None:
        """Replace Caddy's whole configuration (``POST /load``)."""
        self._call("POST", "/load", config)

    def set(self, path: str, value: Any) -> None:
        """Set the value at an existing config path (``POST``)."""
        if self._call("POST", path, value).status_code == 404:
            raise ProxyError(f"the proxy at {self.url} has no {path}")

    def patch(self, path: str, value: Any) -> None:
        """Replace the existing value at ``path`` (``PATCH``)."""
        if self._call("PATCH", path, value).status_code == 404:
            raise ProxyError(f"the proxy at {self.url} has no {path}")


def _bare(server: Mapping[str, Any]) -> dict[str, Any]:
    """A server without its upstream lists (what a PATCH of upstreams cannot change)."""
    bare = copy.deepcopy(dict(server))
    for route in bare.get("routes") or []:
        for handler in route.get("handle") or []:
            handler.pop("upstreams", None)
    return bare


def _changed_parts(last: Desired, desired: Desired) -> list[str]:
    """Berth's parts that differ beyond upstream lists: server keys, and ``policy``."""
    keys = sorted(set(last["servers"]) | set(desired["servers"]))
    changed = [k for k in keys if k not in last["servers"] or k not in desired["servers"]
               or _bare(last["servers"][k]) != _bare(desired["servers"][k])]
    return changed + (["policy"] if last["policy"] != desired["policy"] else [])


def _upstreams(desired: Desired) -> dict[str, list[Any]]:
    """Every reverse_proxy handler of Berth's servers: its ``@id`` → its upstreams."""
    return {h["@id"]: h.get("upstreams") or [] for server in desired["servers"].values()
            for r in server.get("routes") or [] for h in r.get("handle") or []
            if h.get("handler") == "reverse_proxy" and "@id" in h}


def _policies(config: Mapping[str, Any]) -> list[Any]:
    apps = config.get("apps") or {}
    return list(((apps.get("tls") or {}).get("automation") or {}).get("policies") or [])


def live_parts(config: Mapping[str, Any], name: str, desired: Desired) -> Desired:
    """Berth's parts as found in a Caddy's whole configuration (missing ones left out)."""
    servers = ((config.get("apps") or {}).get("http") or {}).get("servers") or {}
    ours = [p for p in _policies(config) if isinstance(p, dict) and p.get("@id") == policy_id(name)]
    return {"servers": {k: servers[k] for k in desired["servers"] if k in servers},
            "policy": ours[0] if ours else None}


def merged(config: Mapping[str, Any], name: str, desired: Desired) -> dict[str, Any]:
    """A Caddy configuration with Berth's parts set in it and everything else kept.

    Berth's automation policy goes first: Caddy applies the first policy that matches a
    name, and one of the admin's without subjects would catch them all.
    """
    whole = copy.deepcopy(dict(config))
    apps = whole.setdefault("apps", {})
    apps.setdefault("http", {}).setdefault("servers", {}).update(
        copy.deepcopy(desired["servers"]))
    others = [p for p in _policies(whole)
              if not (isinstance(p, dict) and p.get("@id") == policy_id(name))]
    policies = ([copy.deepcopy(desired["policy"])] if desired["policy"] else []) + others
    if policies or "tls" in apps:
        automation = apps.setdefault("tls", {}).setdefault("automation", {})
        if policies:
            automation["policies"] = policies
        else:
            automation.pop("policies", None)
    return whole


class ProxySyncer:
    """Keeps every registered proxy carrying the routes (one per watcher leader)."""

    def __init__(self, store: Store, settings: WorkerSettings,
                 admin: Callable[[Proxy], CaddyAdmin] | None = None) -> None:
        self.store = store
        self.settings = settings
        self.admin = admin or (lambda p: CaddyAdmin(p["admin_url"], settings.proxy_timeout))
        self.pushed: dict[str, Desired] = {}

    def run(self, stop: threading.Event, leads: Callable[[], bool]) -> None:
        """Sync on every event (or every half second), check everything on a period."""
        last_id = self.store.state.last_event_id()
        next_check = 0.0
        while not stop.is_set():
            if not leads():
                self.pushed.clear()
                stop.wait(WAKE_MS / 1000)
                continue
            now = time.monotonic()
            check = now >= next_check
            if check:
                next_check = now + self.settings.proxy_resync_interval
            self.sync(check=check)
            events = self.store.state.read_events(last_id, count=1000, block_ms=WAKE_MS)
            if events:
                last_id = str(events[-1]["id"])

    def sync(self, *, check: bool = False) -> dict[str, str]:
        """Bring every proxy in line; per proxy what was done (``unchanged``, ``updated``,
        ``replaced``, ``loaded``, ``checked`` or the error)."""
        proxies = list_proxies(self.store)
        for gone in set(self.pushed) - {p["name"] for p in proxies}:
            del self.pushed[gone]
        if not proxies:
            return {}   # nothing to keep in sync: the records are not even read
        desired = desired_configs(self.store, proxies)
        return {p["name"]: self._sync_one(p, desired[p["name"]], check) for p in proxies}

    def _sync_one(self, proxy: Proxy, server: Desired, check: bool) -> str:
        name = proxy["name"]
        last = self.pushed.get(name)
        if last == server and not check:
            return "unchanged"
        now = time.time()
        try:
            outcome = self._push(proxy, server, last, check)
        except ProxyError as error:
            self.pushed.pop(name, None)
            record_sync(self.store, name, state="error", error=error.message,
                        last_attempt_at=now)
            log.warning("proxy %s: %s", name, error.message)
            return f"error: {error.message}"
        self.pushed[name] = copy.deepcopy(server)
        counts = _upstreams(server)
        sync: dict[str, Any] = {"state": "in sync", "error": None, "last_attempt_at": now,
                                "last_sync_at": now, "routes": len(counts),
                                "upstreams": sum(len(u) for u in counts.values())}
        if outcome in ("loaded", "updated", "replaced"):
            key = "full_loads" if outcome == "loaded" else "updates"
            previous = sync_state(self.store, name)
            sync[key] = int(previous[key]) + 1  # type: ignore[literal-required]
            self.store.state.publish_event("proxy.synced", name, "worker", {"how": outcome})
        record_sync(self.store, name, **sync)
        return outcome

    def _push(self, proxy: Proxy, desired: Desired, last: Desired | None,
              check: bool) -> str:
        """Send what differs; how (see :meth:`sync`).

        :raises ProxyError:
        """
        admin = self.admin(proxy)
        name = proxy["name"]
        if last is None or check:
            config = admin.get("/config/") or {}
            live = live_parts(config, name, desired)
            if live == desired:
                return "checked"
            if not live["servers"] and live["policy"] is None:
                admin.load(merged(config, name, desired))
                return "loaded"
            last = live
        changed = _changed_parts(last, desired)
        if not changed:
            before = _upstreams(last)
            for hid, ups in _upstreams(desired).items():
                if before.get(hid) != ups:
                    admin.patch(f"/id/{hid}/upstreams", ups)
            return "updated"
        if len(changed) == 1 and changed[0] in last["servers"]:
            key = changed[0]
            admin.set(f"/config/apps/http/servers/{key}", desired["servers"][key])
            return "replaced"
        admin.load(merged(admin.get("/config/") or {}, name, desired))
        return "loaded"
