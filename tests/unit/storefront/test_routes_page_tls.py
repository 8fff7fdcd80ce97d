"""The Routes page's TLS parts: a proxy added with an HTTPS address and an issuer, and
a TLS route that a proxy without one does not serve shown with that problem."""

from __future__ import annotations

from typing import Any

from .conftest import csrf_from
from .test_routes_page import _routed


def test_a_proxy_with_an_https_address_is_added_and_shown(admin: Any) -> None:
    token = csrf_from(admin.get("/routes").get_data(as_text=True))
    added = admin.post("/proxies", data={"csrf_token": token, "name": "edge", "kind": "caddy",
                                         "admin_url": "http://127.0.0.1:2019",
                                         "listen": "127.0.0.1:8088",
                                         "listen_tls": "127.0.0.1:8443",
                                         "tls_issuer": "internal", "acme_email": ""},
                       follow_redirects=True).get_data(as_text=True)
    assert "Proxy edge added." in added
    assert "<code>127.0.0.1:8443</code>" in added and "(internal)" in added
    bad = admin.post("/proxies", data={"csrf_token": token, "name": "x", "kind": "caddy",
                                       "admin_url": "http://127.0.0.1:2019",
                                       "listen": "127.0.0.1:8088", "listen_tls": "8443"},
                     follow_redirects=True).get_data(as_text=True)
    assert "cannot be registered" in bad and "listen_tls" in bad


def test_a_tls_route_without_a_tls_listener_shows_the_problem(admin: Any, app: Any) -> None:
    _routed(app, "web", healthy=True)
    store = app.extensions["berth"].store
    service = store.services.get("web")
    service["spec"]["expose"][0]["tls"] = True
    store.state.transact(lambda tx: store.services.stage_put(tx, service))
    token = csrf_from(admin.get("/routes").get_data(as_text=True))
    admin.post("/proxies", data={"csrf_token": token, "name": "edge", "kind": "caddy",
                                 "admin_url": "http://127.0.0.1:2019",
                                 "listen": "127.0.0.1:8088"})
    html = admin.get("/routes").get_data(as_text=True)
    assert "no TLS listener on proxy edge" in html
