"""The Routes page (routes with their state, proxies with their sync state; adding and
removing a proxy) and the service page's endpoints panel."""

from __future__ import annotations

from typing import Any

from .conftest import csrf_from


def _routed(app: Any, name: str, *, healthy: bool) -> None:
    """A ``hello`` service routed from ``<name>.test``, one instance (no worker here)."""
    with app.app_context():
        berth = app.extensions["berth"]
        answer = berth.application.services.install(
            "test", package="hello", name=name, options={"public_host": f"{name}.test"})
        berth.ops.cancel_deployment(answer["deployment"]["id"], actor="t")
        store = berth.store
        instance = {"id": f"{name}-1", "service": name, "generation": 1, "agent": "agent-2",
                    "container": f"berth-{name}-1", "container_id": "c",
                    "ports": {"http": 20011}, "port_list": [20011], "address": "127.0.0.3",
                    "state": "running" if healthy else "starting",
                    "health": "healthy" if healthy else "unknown", "created_at": 1.0,
                    "started_at": 1.0, "failures": 0, "error": None}
        store.state.transact(lambda tx: store.instances.stage_put(tx, instance))


def test_the_routes_page_lists_routes_with_their_state(admin: Any, app: Any) -> None:
    _routed(app, "web", healthy=True)
    _routed(app, "idle", healthy=False)
    html = admin.get("/routes").get_data(as_text=True)
    assert "web.test" in html and "idle.test" in html
    assert "serving" in html and "no healthy instances" in html


def test_a_proxy_is_added_shown_pending_and_removed_from_the_page(admin: Any) -> None:
    token = csrf_from(admin.get("/routes").get_data(as_text=True))
    added = admin.post("/proxies", data={"csrf_token": token, "name": "edge", "kind": "caddy",
                                         "admin_url": "http://127.0.0.1:2019",
                                         "listen": "127.0.0.1:8088"}, follow_redirects=True)
    html = added.get_data(as_text=True)
    assert "Proxy edge added." in html and "pending" in html and "never" in html
    bad = admin.post("/proxies", data={"csrf_token": token, "name": "x", "kind": "caddy",
                                       "admin_url": "nope", "listen": "1"},
                     follow_redirects=True).get_data(as_text=True)
    assert "cannot be registered" in bad
    gone = admin.post("/proxies/edge/remove", data={"csrf_token": token},
                      follow_redirects=True).get_data(as_text=True)
    assert "Proxy edge removed." in gone


def test_the_service_page_shows_its_healthy_endpoints(admin: Any, app: Any) -> None:
    _routed(app, "web", healthy=True)
    html = admin.get("/services/web").get_data(as_text=True)
    assert 'id="endpoints-h"' in html and "127.0.0.3:20011" in html and "web.test" in html
    _routed(app, "idle", healthy=False)
    assert "no healthy instance" in admin.get("/services/idle").get_data(as_text=True)


def test_the_endpoints_panel_refreshes_on_its_own(admin: Any, app: Any) -> None:
    _routed(app, "web", healthy=True)
    part = admin.get("/services/web?partial=endpoints").get_data(as_text=True)
    assert "127.0.0.3:20011" in part and "<html" not in part
