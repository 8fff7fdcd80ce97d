"""The proxy sync with clashing records (from before installs were checked), on a real
Redis: only the route of the service installed first goes into Caddy (a recording
stand-in of its admin API here), and it takes over once that service is gone."""

from __future__ import annotations

from test_worker_routing import SPEC, FakeCaddy, put_instance, put_service

from worker.proxies import add_proxy
from worker.proxy_sync import ProxySyncer
from worker.settings import WorkerSettings
from worker.store import Store


def carried(caddy: FakeCaddy) -> list[str]:
    """The ids of the routes in Berth's server of the ``edge`` proxy."""
    routes = caddy.config["apps"]["http"]["servers"]["berth-edge"]["routes"]
    return [r["@id"] for r in routes]


def test_only_the_older_of_two_clashing_routes_is_carried(store: Store) -> None:
    caddy = FakeCaddy()
    add_proxy(store, "edge", kind="caddy", admin_url="http://127.0.0.1:2999",
              listen="127.0.0.1:8088")
    syncer = ProxySyncer(store, WorkerSettings(), admin=lambda proxy: caddy)  # type: ignore
    put_service(store, "web")                                   # created_at 1.0
    newer = {**SPEC, "expose": [{"portName": "http", "hosts": ["WEB.test"],
                                 "pathPrefix": "/"}]}
    put_service(store, "aaa", newer)
    store.services.update("aaa", lambda s: {**s, "created_at": 5.0})
    put_instance(store, "web", "a", 20001)
    put_instance(store, "aaa", "a", 20002)
    syncer.sync()
    assert carried(caddy) == ["berth-route-edge-web-0"]
    assert caddy.upstreams() == ["127.0.0.2:20001"]
    store.state.transact(lambda tx: store.services.stage_remove(tx, "web"))
    syncer.sync()
    assert carried(caddy) == ["berth-route-edge-aaa-0"]
