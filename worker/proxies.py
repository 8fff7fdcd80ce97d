"""Proxies: real load balancers Berth keeps in sync with the routes, registered like agents.

A proxy record (``proxy:<name>``, in the set ``proxies``) says what kind of proxy it
is (``caddy``: driven through its admin API), where its admin API is, which address
the server Berth manages on it listens on (``listen``, plain HTTP) and, optionally,
the address its HTTPS server listens on (``listen_tls``) with who issues the
certificates there (``tls_issuer``: ``internal``, Caddy's local CA, or ``acme``, with
an optional ``acme_email``), and which route group it serves
(``external`` unless told; a route's ``group`` says which proxies carry it, like
marathon-lb's ``HAPROXY_GROUP``). The proxy sync (``worker/proxy_sync.py``) writes
how each proxy stands at ``proxy:<name>:sync``, apart from the record, so a sync
never races an admin's change:

    {"state": "in sync|pending|error", "last_sync_at": 1764…, "last_attempt_at": …,
     "error": null, "routes": 2, "upstreams": 5, "full_loads": 1, "updates": 7}
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from typing import Any, NotRequired, TypedDict, cast
from urllib.parse import urlsplit

from catalog.errors import BerthError
from catalog.names import require_service_name

from .errors import Conflict, InvalidRequest, NotFound
from .records import Document
from .store import Store
from .store.base import Tx, dumps

__all__ = ["Proxy", "ProxySync", "ProxyNotFound", "ProxyExists", "KINDS", "add_proxy",
           "list_proxies", "get_proxy", "remove_proxy", "record_sync", "sync_state",
           "check_listen", "TLS_ISSUERS", "tls_problem"]

KINDS = ("caddy",)
TLS_ISSUERS = ("internal", "acme")
_EMAIL = re.compile(r"[^@\s\"'<>]+@[^@\s\"'<>]+\.[A-Za-z0-9-]{2,}")
_LISTEN = re.compile(r"(?P<host>[0-9A-Za-z.\-]*|\[[0-9A-Fa-f:]+\]):(?P<port>[0-9]{1,5})")


class ProxyNotFound(NotFound):
    code = "proxy_not_found"


class ProxyExists(Conflict):
    code = "proxy_exists"


class ProxySync(TypedDict):
    """How one proxy stands with the routes (written by the proxy sync)."""

    state: str
    last_sync_at: float | None
    last_attempt_at: float | None
    error: str | None
    routes: int
    upstreams: int
    full_loads: int
    updates: int


class Proxy(TypedDict):
    """A registered proxy (``proxy:<name>``); ``sync`` only in what is read."""

    name: str
    kind: str
    admin_url: str
    listen: str
    group: str
    listen_tls: NotRequired[str | None]
    tls_issuer: NotRequired[str]
    acme_email: NotRequired[str | None]
    created_at: float
    created_by: str
    sync: NotRequired[ProxySync]
    rev: NotRequired[int]


def _key(store: Store, *parts: str) -> str:
    return store.state.key("proxy", *parts)


def check_admin_url(url: str) -> str:
    """An admin URL as kept (no trailing slash).

    :raises InvalidRequest: naming ``admin_url`` when it is not ``http(s)://host:port``.
    """
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment or parts.username or parts.password:
        raise InvalidRequest("the proxy's admin URL is not usable", details=[
            {"path": "admin_url", "message": "like http://127.0.0.1:2019 (http or https, "
                                             "a host, no credentials, query or fragment)"}])
    return url.rstrip("/")


def check_listen(listen: str, field: str = "listen") -> str:
    """A listen address ``host:port``.

    :raises InvalidRequest: naming ``field`` (``listen`` or ``listen_tls``).
    """
    match = _LISTEN.fullmatch(listen or "")
    if match is None or not 0 < int(match["port"]) < 65536:
        example = "127.0.0.1:8443 or :443" if field == "listen_tls" else "127.0.0.1:8088 or :80"
        raise InvalidRequest(f"the proxy's {field} address is not host:port", details=[
            {"path": field, "message": f"like {example}"}])
    return listen


def _tls_problems(listen: str, listen_tls: str | None, tls_issuer: str,
                  acme_email: str | None) -> list[dict[str, str]]:
    """What is wrong with the TLS fields of a registration (each naming its field)."""
    problems: list[dict[str, str]] = []
    if listen_tls is not None:
        try:
            check_listen(listen_tls, "listen_tls")
        except InvalidRequest as error:
            problems += error.details or []
        else:
            if listen_tls == listen:
                problems.append({"path": "listen_tls",
                                 "message": "must differ from listen (HTTPS needs its own "
                                            "address)"})
    if tls_issuer not in TLS_ISSUERS:
        problems.append({"path": "tls_issuer", "message": f"one of {', '.join(TLS_ISSUERS)}"})
    elif tls_issuer == "acme" and listen_tls is None:
        problems.append({"path": "tls_issuer",
                         "message": "acme needs listen_tls (the address HTTPS is served on)"})
    if acme_email is not None:
        if tls_issuer != "acme":
            problems.append({"path": "acme_email", "message": "only with tls_issuer acme"})
        elif len(acme_email) > 254 or not _EMAIL.fullmatch(acme_email):
            problems.append({"path": "acme_email",
                             "message": "an e-mail address like admin@example.com"})
    return problems


def add_proxy(store: Store, name: str, *, kind: str, admin_url: str, listen: str,
              group: str = "external", listen_tls: str | None = None,
              tls_issuer: str = "internal", acme_email: str | None = None,
              actor: str = "") -> Proxy:
    """Register a proxy; every problem with the fields is reported at once.

    ``listen_tls`` (optional) is where the proxy serves the routes that want TLS;
    ``tls_issuer`` says who signs their certificates there.

    :raises InvalidRequest: a field is wrong. :raises ProxyExists: the name is taken.
    """
    problems: list[dict[str, str]] = []
    for field, check in (("name", lambda: require_service_name(name, "name")),
                         ("group", lambda: require_service_name(group, "group")),
                         ("admin_url", lambda: check_admin_url(admin_url)),
                         ("listen", lambda: check_listen(listen))):
        try:
            check()
        except BerthError as error:
            problems += getattr(error, "details", None) or [{"path": field,
                                                              "message": str(error)}]
    if kind not in KINDS:
        problems.append({"path": "kind", "message": f"one of {', '.join(KINDS)}"})
    problems += _tls_problems(listen, listen_tls, tls_issuer, acme_email)
    if problems:
        raise InvalidRequest("the proxy cannot be registered", details=problems)
    record = Proxy(name=name, kind=kind, admin_url=check_admin_url(admin_url), listen=listen,
                   group=group, listen_tls=listen_tls, tls_issuer=tls_issuer,
                   acme_email=acme_email, created_at=time.time(), created_by=actor)

    def change(tx: Tx) -> Proxy:
        if tx.get(_key(store, name)) is not None:
            raise ProxyExists(f"a proxy named {name} is registered already",
                              details=[{"path": "name", "message": "taken"}])
        tx.put(_key(store, name), cast(Document, dict(record)))
        tx.call("sadd", store.state.key("proxies"), name)
        tx.event("proxy.added", name, actor, {"kind": kind})
        return record

    return store.state.transact(change)


def get_proxy(store: Store, name: str) -> Proxy:
    """One proxy with its sync state.

    :raises ProxyNotFound:
    """
    doc = store.state.get_doc(_key(store, name))
    if doc is None:
        raise ProxyNotFound(f"no proxy named {name}", details=[{"path": "name",
                                                                "message": "not registered"}])
    proxy = _with_defaults(cast(Proxy, doc))
    proxy["sync"] = sync_state(store, name)
    return proxy


def _with_defaults(proxy: Proxy) -> Proxy:
    """A record as answered: the TLS fields filled for records that predate them."""
    proxy.setdefault("listen_tls", None)
    proxy.setdefault("tls_issuer", "internal")
    proxy.setdefault("acme_email", None)
    return proxy


def list_proxies(store: Store) -> list[Proxy]:
    """Every proxy with its sync state, by name."""
    names = sorted(str(n) for n in store.redis.smembers(store.state.key("proxies")))
    docs = store.state.get_docs(_key(store, n) for n in names)
    found = []
    for name, doc in zip(names, docs, strict=True):
        if doc is not None:
            proxy = _with_defaults(cast(Proxy, doc))
            proxy["sync"] = sync_state(store, name)
            found.append(proxy)
    return found


def remove_proxy(store: Store, name: str, *, actor: str = "") -> None:
    """Forget a proxy (the routes Berth put there stay until it is told otherwise).

    :raises ProxyNotFound:
    """
    def change(tx: Tx) -> None:
        if tx.get(_key(store, name)) is None:
            raise ProxyNotFound(f"no proxy named {name}",
                                details=[{"path": "name", "message": "not registered"}])
        tx.delete(_key(store, name))
        tx.call("delete", _key(store, name, "sync"))
        tx.call("srem", store.state.key("proxies"), name)
        tx.event("proxy.removed", name, actor, {})

    store.state.transact(change)


def sync_state(store: Store, name: str) -> ProxySync:
    """How a proxy stands (``pending`` before its first sync)."""
    doc = store.state.get_doc(_key(store, name, "sync"))
    if doc is None:
        return ProxySync(state="pending", last_sync_at=None, last_attempt_at=None, error=None,
                         routes=0, upstreams=0, full_loads=0, updates=0)
    return cast(ProxySync, doc)


def record_sync(store: Store, name: str, **changes: Any) -> None:
    """Write part of a proxy's sync state (only while the proxy is registered)."""
    if not store.redis.sismember(store.state.key("proxies"), name):
        return
    current = dict(sync_state(store, name))
    current.update(changes)
    store.redis.set(_key(store, name, "sync"), dumps(current))


def tls_problem(route: Mapping[str, Any], registered: Iterable[Proxy]) -> str | None:
    """Why a route that wants TLS is not served by some proxy of its group, or None.

    A ``tls: true`` route is carried only by proxies with a ``listen_tls`` address; on
    the others it is left out (never served as plain HTTP), and this says so.
    """
    if not route.get("tls"):
        return None
    lacking = sorted(p["name"] for p in registered
                     if p.get("group") == route.get("group") and not p.get("listen_tls"))
    if not lacking:
        return None
    return f"no TLS listener on proxy {', '.join(lacking)}"
