"""TLS routes in the proxy sync: the pure Caddy config (Berth's HTTPS server, its
automation policy, the plain-HTTP redirects), the registration's TLS fields, and the
sync's requests against the recording stand-in of Caddy's admin API (a real Caddy is
driven in ``tests/integration/test_routing_tls.py``)."""

from __future__ import annotations

from typing import Any

import pytest
from test_worker_routing import SPEC, FakeCaddy, put_instance, put_service

from worker.errors import InvalidRequest
from worker.proxies import add_proxy, get_proxy, tls_problem
from worker.proxy_sync import ProxySyncer, caddy_config, merged
from worker.settings import WorkerSettings
from worker.store import Store

TLS_SPEC = {**SPEC, "expose": [{"portName": "http", "hosts": ["web.test", "*.web.test"],
                                "pathPrefix": "/", "tls": True}]}
UPS = [{"dial": "127.0.0.2:20001"}]


def route(rid: str, hosts: list[str], *, tls: bool, prefix: str = "/") -> dict[str, Any]:
    return {"id": rid, "service": rid.rsplit("-", 1)[0], "portName": "http", "hosts": hosts,
            "pathPrefix": prefix, "tls": tls, "group": "external"}


def proxy(**fields: Any) -> dict[str, Any]:
    return {"name": "edge", "listen": "127.0.0.1:8088", "group": "external",
            "listen_tls": "127.0.0.1:8443", "tls_issuer": "internal", "acme_email": None,
            **fields}


def build(p: dict[str, Any], *routes: dict[str, Any]) -> Any:
    return caddy_config(p, [(r, UPS, SPEC) for r in routes])  # type: ignore[arg-type]


# the config Berth builds -------------------------------------------------------------
def test_tls_routes_go_to_berths_https_server_with_policies_for_exactly_their_hosts() -> None:
    built = build(proxy(), route("web-0", ["web.test"], tls=True),
                  route("api-0", ["api.test"], tls=False))
    assert set(built["servers"]) == {"berth-edge", "berth-edge-tls"}
    tls = built["servers"]["berth-edge-tls"]
    assert tls["@id"] == "berth-server-edge-tls" and tls["listen"] == ["127.0.0.1:8443"]
    assert tls["tls_connection_policies"] == [{"match": {"sni": ["web.test"]}}]
    assert tls["automatic_https"] == {"disable_redirects": True}   # certificates stay on
    [served] = tls["routes"]
    assert served["match"] == [{"host": ["web.test"], "path": ["/*"]}]
    assert served["handle"][0]["@id"] == "berth-upstreams-edge-web-0"
    assert served["handle"][0]["upstreams"] == UPS
    assert built["policy"] == {"@id": "berth-tls-edge", "subjects": ["web.test"],
                               "issuers": [{"module": "internal"}]}


def test_plain_http_to_a_tls_route_is_a_308_redirect_to_the_https_port() -> None:
    built = build(proxy(), route("web-0", ["web.test"], tls=True, prefix="/app"),
                  route("api-0", ["api.test"], tls=False))
    plain = built["servers"]["berth-edge"]
    assert plain["automatic_https"] == {"disable": True}
    by_id = {r["@id"]: r for r in plain["routes"]}
    assert set(by_id) == {"berth-redirect-edge-web-0", "berth-route-edge-api-0"}
    redirect = by_id["berth-redirect-edge-web-0"]
    assert redirect["match"] == [{"host": ["web.test"], "path": ["/app", "/app/*"]}]
    assert redirect["handle"] == [{
        "handler": "static_response", "status_code": 308,
        "headers": {"Location": ["https://{http.request.host}:8443{http.request.uri}"]}}]
    assert plain["routes"][0] is redirect   # the longer path prefix first
    on_443 = build(proxy(listen_tls=":443"), route("web-0", ["web.test"], tls=True))
    [moved] = on_443["servers"]["berth-edge"]["routes"]
    assert moved["handle"][0]["headers"]["Location"] == [
        "https://{http.request.host}{http.request.uri}"]


def test_the_acme_issuer_carries_the_email_when_given() -> None:
    tls_route = route("web-0", ["b.example.com", "a.example.com"], tls=True)
    with_mail = build(proxy(tls_issuer="acme", acme_email="ops@example.com"), tls_route)
    assert with_mail["policy"]["subjects"] == ["a.example.com", "b.example.com"]
    assert with_mail["policy"]["issuers"] == [{"module": "acme", "email": "ops@example.com"}]
    without = build(proxy(tls_issuer="acme"), tls_route)
    assert without["policy"]["issuers"] == [{"module": "acme"}]


def test_without_tls_routes_there_is_no_policy_that_would_catch_every_name() -> None:
    built = build(proxy(), route("api-0", ["api.test"], tls=False))
    assert built["policy"] is None
    assert built["servers"]["berth-edge-tls"]["routes"] == []


def test_a_proxy_without_listen_tls_leaves_tls_routes_out_and_says_so() -> None:
    plain_only = proxy(listen_tls=None)
    tls_route = route("web-0", ["web.test"], tls=True)
    built = build(plain_only, tls_route, route("api-0", ["api.test"], tls=False))
    assert set(built["servers"]) == {"berth-edge"} and built["policy"] is None
    assert [r["@id"] for r in built["servers"]["berth-edge"]["routes"]] == [
        "berth-route-edge-api-0"]                        # not served as plain HTTP
    assert tls_problem(tls_route, [plain_only]) == "no TLS listener on proxy edge"  # type: ignore
    assert tls_problem(tls_route, [proxy()]) is None                      # type: ignore
    assert tls_problem(route("api-0", ["a.test"], tls=False), [plain_only]) is None  # type: ignore
    other_group = proxy(listen_tls=None, group="internal")
    assert tls_problem(tls_route, [other_group]) is None                  # type: ignore


def test_merging_keeps_the_admins_servers_and_policies_with_berths_policy_first() -> None:
    theirs = {"admin": {"listen": "127.0.0.1:2999"},
              "apps": {"http": {"servers": {"mine": {"listen": [":9000"]}}},
                       "tls": {"automation": {"policies": [
                           {"issuers": [{"module": "acme"}]},                  # catch-all
                           {"@id": "berth-tls-edge", "subjects": ["old.test"]}]}}}}
    built = build(proxy(), route("web-0", ["web.test"], tls=True))
    whole = merged(theirs, "edge", built)
    assert whole["admin"] == theirs["admin"]
    assert set(whole["apps"]["http"]["servers"]) == {"mine", "berth-edge", "berth-edge-tls"}
    assert whole["apps"]["tls"]["automation"]["policies"] == [
        built["policy"], {"issuers": [{"module": "acme"}]}]
    gone = merged(whole, "edge", build(proxy(), route("api-0", ["a.test"], tls=False)))
    assert gone["apps"]["tls"]["automation"]["policies"] == [{"issuers": [{"module": "acme"}]}]
    assert "tls" not in merged({}, "edge", build(proxy(listen_tls=None)))["apps"]


# registration --------------------------------------------------------------------------
def register(store: Store, **fields: Any) -> Any:
    return add_proxy(store, "edge", kind="caddy", admin_url="http://127.0.0.1:2999",
                     listen="127.0.0.1:8088", **fields)


@pytest.mark.parametrize(("fields", "path", "says"), [
    ({"listen_tls": "nowhere"}, "listen_tls", "like 127.0.0.1:8443"),
    ({"listen_tls": "127.0.0.1:70000"}, "listen_tls", "like"),
    ({"listen_tls": "127.0.0.1:8088"}, "listen_tls", "must differ from listen"),
    ({"listen_tls": "127.0.0.1:8443", "tls_issuer": "letsencrypt"}, "tls_issuer", "one of"),
    ({"tls_issuer": "acme"}, "tls_issuer", "needs listen_tls"),
    ({"listen_tls": ":8443", "acme_email": "ops@example.com"}, "acme_email", "only with"),
    ({"listen_tls": ":8443", "tls_issuer": "acme", "acme_email": "ops"}, "acme_email",
     "e-mail address"),
])
def test_bad_tls_fields_are_refused_naming_the_field(store: Store, fields: dict[str, Any],
                                                     path: str, says: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        register(store, **fields)
    [problem] = refused.value.details
    assert problem["path"] == path and says in problem["message"]


def test_the_tls_fields_are_kept_and_default_for_older_records(store: Store) -> None:
    register(store, listen_tls="127.0.0.1:8443", tls_issuer="acme",
             acme_email="ops@example.com")
    found = get_proxy(store, "edge")
    assert (found["listen_tls"], found["tls_issuer"], found["acme_email"]) == (
        "127.0.0.1:8443", "acme", "ops@example.com")
    old = {"name": "old", "kind": "caddy", "admin_url": "http://127.0.0.1:2998",
           "listen": ":80", "group": "external", "created_at": 1.0, "created_by": "t"}
    store.state.transact(lambda tx: (tx.put(store.state.key("proxy", "old"), old),
                                     tx.call("sadd", store.state.key("proxies"), "old")))
    older = get_proxy(store, "old")
    assert (older["listen_tls"], older["tls_issuer"], older["acme_email"]) == (
        None, "internal", None)


# the sync ----------------------------------------------------------------------------
@pytest.fixture
def caddy() -> FakeCaddy:
    return FakeCaddy()


@pytest.fixture
def syncer(store: Store, caddy: FakeCaddy) -> ProxySyncer:
    register(store, listen_tls="127.0.0.1:8443")
    return ProxySyncer(store, WorkerSettings(), admin=lambda p: caddy)  # type: ignore


def policies(caddy: FakeCaddy) -> list[Any]:
    return caddy.config["apps"]["tls"]["automation"]["policies"]


def test_a_tls_routes_upstreams_change_is_one_patch(store, syncer, caddy) -> None:
    put_service(store, "web", TLS_SPEC)
    put_instance(store, "web", "a", 20001)
    assert syncer.sync() == {"edge": "loaded"}
    assert [p["@id"] for p in policies(caddy)] == ["berth-tls-edge"]
    caddy.calls.clear()
    put_instance(store, "web", "b", 20002)
    assert syncer.sync() == {"edge": "updated"}
    assert caddy.calls == [("PATCH", "/id/berth-upstreams-edge-web-0/upstreams")]
    assert caddy.upstreams() == ["127.0.0.2:20001", "127.0.0.2:20002"]
    sync = get_proxy(store, "edge")["sync"]
    assert sync["routes"] == 1 and sync["upstreams"] == 2   # redirects are not routes


def test_a_new_tls_route_is_one_whole_load_keeping_the_admins_policies(store, syncer,
                                                                        caddy) -> None:
    put_service(store, "api", {**SPEC, "expose": [{"portName": "http", "hosts": ["api.test"]}]})
    caddy.config["apps"] = {"tls": {"automation": {"policies": [{"subjects": ["x.test"]}]}}}
    assert syncer.sync() == {"edge": "loaded"}
    assert policies(caddy) == [{"subjects": ["x.test"]}]      # no TLS route: no policy
    put_service(store, "api", {**SPEC, "expose": [{"portName": "http", "hosts": ["api.test"],
                                                   "pathPrefix": "/v2"}]})
    caddy.calls.clear()
    assert syncer.sync() == {"edge": "replaced"}               # one server changed: one POST
    assert caddy.calls == [("POST", "/config/apps/http/servers/berth-edge")]
    caddy.calls.clear()
    put_service(store, "web", TLS_SPEC)
    assert syncer.sync() == {"edge": "loaded"}   # TLS server, redirect and policy together
    assert caddy.calls == [("GET", "/config/"), ("POST", "/load")]
    assert [p.get("@id") for p in policies(caddy)] == ["berth-tls-edge", None]
    assert policies(caddy)[0]["subjects"] == ["*.web.test", "web.test"]
    servers = caddy.config["apps"]["http"]["servers"]
    assert servers["berth-edge-tls"]["tls_connection_policies"] == [
        {"match": {"sni": ["*.web.test", "web.test"]}}]


def test_a_restarted_caddy_gets_the_tls_parts_back_on_the_check(store, syncer,
                                                                caddy) -> None:
    put_service(store, "web", TLS_SPEC)
    syncer.sync()
    assert syncer.sync(check=True) == {"edge": "checked"}
    caddy.config = {"admin": {"listen": "127.0.0.1:2999"}}
    assert syncer.sync(check=True) == {"edge": "loaded"}
    assert set(caddy.config["apps"]["http"]["servers"]) == {"berth-edge", "berth-edge-tls"}
    assert [p["@id"] for p in policies(caddy)] == ["berth-tls-edge"]
    del caddy.config["apps"]["tls"]             # the policy alone went missing
    assert syncer.sync(check=True) == {"edge": "loaded"}
    assert [p["@id"] for p in policies(caddy)] == ["berth-tls-edge"]


def test_an_all_interfaces_address_is_accepted_as_documented(store: Store) -> None:
    """``--listen :80`` (every interface, as Caddy writes it) was refused before."""
    added = add_proxy(store, "edge", kind="caddy", admin_url="http://127.0.0.1:2999",
                      listen=":80", listen_tls=":443")
    assert (added["listen"], added["listen_tls"]) == (":80", ":443")
