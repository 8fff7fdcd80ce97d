"""Endpoints, draining and the proxy sync on a real Redis; Caddy's admin API is a
recording stand-in here (the integration tests drive a real Caddy)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from worker.endpoints import ENDPOINTS_CHANGED, drain, read_endpoints, routes_of
from worker.proxies import add_proxy, get_proxy, remove_proxy
from worker.proxy_sync import ProxyError, ProxySyncer, caddy_server
from worker.settings import WorkerSettings
from worker.store import Store

SPEC = {"image": "berth/hello:1.0.0", "ports": [{"name": "http"}],
        "healthCheck": {"protocol": "http", "portName": "http", "path": "/health",
                        "intervalSeconds": 2, "timeoutSeconds": 2},
        "expose": [{"portName": "http", "hosts": ["web.test"], "pathPrefix": "/"}]}


def put_service(store: Store, name: str, spec: dict[str, Any] = SPEC) -> None:
    service = {"name": name, "package": {"name": "hello", "version": "1.0.0",
                                         "repository": "universe"},
               "options": {}, "spec": copy.deepcopy(spec), "instances": 2, "generation": 1,
               "status": "running", "deployment": None, "created_at": 1.0,
               "updated_at": 1.0, "created_by": "t", "updated_by": "t"}
    store.state.transact(lambda tx: store.services.stage_put(tx, service))


def put_instance(store: Store, service: str, suffix: str, port: int, *,
                 state: str = "running", health: str = "healthy") -> str:
    instance = {"id": f"{service}-{suffix}", "service": service, "generation": 1,
                "agent": "agent-1", "container": f"berth-{service}-{suffix}",
                "container_id": "c", "ports": {"http": port}, "port_list": [port],
                "address": "127.0.0.2", "state": state, "health": health, "created_at": 1.0,
                "started_at": 1.0, "failures": 0, "error": None}
    store.state.transact(lambda tx: store.instances.stage_put(tx, instance))
    return instance["id"]


class FakeCaddy:
    """Caddy's admin API as far as the sync uses it: a config tree addressed by @id."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {"admin": {"listen": "127.0.0.1:2999"}}
        self.calls: list[tuple[str, str]] = []
        self.down = False

    def _by_id(self, node: Any, wanted: str) -> Any:
        if isinstance(node, dict):
            if node.get("@id") == wanted:
                return node
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            return None
        for child in children:
            found = self._by_id(child, wanted)
            if found is not None:
                return found
        return None

    def _check(self) -> None:
        if self.down:
            raise ProxyError("the proxy did not answer")

    def get(self, path: str) -> Any:
        self._check()
        self.calls.append(("GET", path))
        if path == "/config/":
            return copy.deepcopy(self.config)
        return copy.deepcopy(self._by_id(self.config, path.removeprefix("/id/")))

    def load(self, config: dict[str, Any]) -> None:
        self._check()
        self.calls.append(("POST", "/load"))
        self.config = copy.deepcopy(config)

    def set(self, path: str, value: Any) -> None:
        self._check()
        self.calls.append(("POST", path))
        key = path.rsplit("/", 1)[1]
        self.config["apps"]["http"]["servers"][key] = copy.deepcopy(value)

    def patch(self, path: str, value: Any) -> None:
        self._check()
        self.calls.append(("PATCH", path))
        hid, field = path.removeprefix("/id/").split("/")
        self._by_id(self.config, hid)[field] = copy.deepcopy(value)

    def upstreams(self) -> list[str]:
        handler = self._by_id(self.config, "berth-upstreams-edge-web-0")
        return [u["dial"] for u in handler["upstreams"]]


@pytest.fixture
def caddy() -> FakeCaddy:
    return FakeCaddy()


@pytest.fixture
def syncer(store: Store, caddy: FakeCaddy) -> ProxySyncer:
    add_proxy(store, "edge", kind="caddy", admin_url="http://127.0.0.1:2999",
              listen="127.0.0.1:8088")
    return ProxySyncer(store, WorkerSettings(), admin=lambda proxy: caddy)  # type: ignore


def test_endpoints_leave_out_instances_that_do_not_serve(store: Store) -> None:
    put_service(store, "web")
    put_instance(store, "web", "a", 20001)
    put_instance(store, "web", "b", 20002, state="starting", health="unknown")
    put_instance(store, "web", "c", 20003, state="stopping")
    found = read_endpoints(store, "web")
    assert [e["instance"] for e in found["ports"]["http"]] == ["web-a"]
    before = found["etag"]
    put_instance(store, "web", "b", 20002)
    assert read_endpoints(store, "web")["etag"] != before


def test_routes_fill_their_defaults(store: Store) -> None:
    [route] = routes_of({"name": "web", "spec": {"expose": [{"portName": "http",
                                                             "hosts": ["Web.Test"]}]}})
    assert route == {"id": "web-0", "service": "web", "portName": "http",
                     "hosts": ["web.test"], "pathPrefix": "/", "tls": False,
                     "group": "external"}


def test_drain_takes_serving_instances_out_before_the_stop(store: Store) -> None:
    put_service(store, "web")
    serving = put_instance(store, "web", "a", 20001)
    starting = put_instance(store, "web", "b", 20002, state="starting", health="unknown")
    last = store.state.last_event_id()
    drained = drain(store, store.instances.for_service("web"), delay=0)
    assert drained == [serving]
    assert store.instances.get(serving)["state"] == "stopping"
    assert store.instances.get(starting)["state"] == "starting"
    assert read_endpoints(store, "web")["ports"]["http"] == []
    events = store.state.read_events(last)
    assert [(e["type"], e["subject"]) for e in events][-1] == (ENDPOINTS_CHANGED, "web")


def test_the_deployer_drains_before_it_stops(store: Store, monkeypatch) -> None:
    """A scale-down's victims are out of the endpoints when their containers go."""
    from worker import deploy

    order: list[str] = []
    monkeypatch.setattr(deploy, "drain", lambda st, inst, delay: order.append("drain"))

    class Ops:
        def stop(self, instances: list[Any]) -> None:
            order.append("stop")

    run = deploy._Run.__new__(deploy._Run)
    run.store, run.settings, run.ops = store, WorkerSettings(), Ops()
    run._drain_and_stop([])
    assert order == ["drain", "stop"]


def test_caddy_server_routes_hosts_paths_and_health_checks() -> None:
    proxy = {"name": "edge", "listen": "127.0.0.1:8088"}
    route = {"id": "web-0", "service": "web", "portName": "http", "hosts": ["web.test"],
             "pathPrefix": "/api", "tls": False, "group": "external"}
    server = caddy_server(proxy, [(route, [{"dial": "127.0.0.2:20001"}], SPEC)])  # type: ignore
    assert server["listen"] == ["127.0.0.1:8088"]
    [caddy_route] = server["routes"]
    assert caddy_route["match"] == [{"host": ["web.test"], "path": ["/api", "/api/*"]}]
    [handler] = caddy_route["handle"]
    assert handler["handler"] == "reverse_proxy"
    assert handler["upstreams"] == [{"dial": "127.0.0.2:20001"}]
    assert handler["health_checks"]["active"]["uri"] == "/health"
    assert "passive" in handler["health_checks"]


def test_a_changed_upstream_list_is_one_patch_not_a_reload(store, syncer, caddy) -> None:
    put_service(store, "web")
    put_instance(store, "web", "a", 20001)
    assert syncer.sync() == {"edge": "loaded"}
    assert caddy.upstreams() == ["127.0.0.2:20001"]
    assert caddy.config["admin"] == {"listen": "127.0.0.1:2999"}   # kept
    caddy.calls.clear()
    put_instance(store, "web", "b", 20002)
    assert syncer.sync() == {"edge": "updated"}
    assert caddy.calls == [("PATCH", "/id/berth-upstreams-edge-web-0/upstreams")]
    assert caddy.upstreams() == ["127.0.0.2:20001", "127.0.0.2:20002"]
    caddy.calls.clear()
    assert syncer.sync() == {"edge": "unchanged"} and caddy.calls == []
    sync = get_proxy(store, "edge")["sync"]
    assert sync["state"] == "in sync" and sync["upstreams"] == 2 and sync["last_sync_at"]
    assert (sync["full_loads"], sync["updates"]) == (1, 1)


def test_a_new_route_replaces_only_berths_server(store, syncer, caddy) -> None:
    put_service(store, "web")
    syncer.sync()
    caddy.calls.clear()
    put_service(store, "api", {**SPEC, "expose": [{"portName": "http", "hosts": ["api.test"]}]})
    assert syncer.sync() == {"edge": "replaced"}
    assert caddy.calls == [("POST", "/config/apps/http/servers/berth-edge")]
    assert len(caddy.config["apps"]["http"]["servers"]["berth-edge"]["routes"]) == 2


def test_a_restarted_caddy_gets_its_routes_back_on_the_check(store, syncer, caddy) -> None:
    put_service(store, "web")
    put_instance(store, "web", "a", 20001)
    syncer.sync()
    caddy.config = {"admin": {"listen": "127.0.0.1:2999"}}   # restarted with its own config
    assert syncer.sync() == {"edge": "unchanged"}            # no event: nothing to push
    assert syncer.sync(check=True) == {"edge": "loaded"}
    assert caddy.upstreams() == ["127.0.0.2:20001"]


def test_a_proxy_that_does_not_answer_is_shown_in_error_then_recovers(store, syncer,
                                                                        caddy) -> None:
    put_service(store, "web")
    caddy.down = True
    assert syncer.sync()["edge"].startswith("error")
    sync = get_proxy(store, "edge")["sync"]
    assert sync["state"] == "error" and "did not answer" in sync["error"]
    caddy.down = False
    assert syncer.sync() == {"edge": "loaded"}
    assert get_proxy(store, "edge")["sync"]["state"] == "in sync"


def test_routes_go_only_to_proxies_of_their_group(store, syncer, caddy) -> None:
    put_service(store, "web", {**SPEC, "expose": [{**SPEC["expose"][0], "group": "internal"}]})
    syncer.sync()
    assert caddy.config["apps"]["http"]["servers"]["berth-edge"]["routes"] == []
    remove_proxy(store, "edge")
    assert syncer.sync() == {}


def test_the_caddy_funnel_turns_refusals_and_silence_into_proxy_errors() -> None:
    """A loopback stand-in answers 400 with Caddy's kind of message, or 404."""
    import http.server
    import threading

    from worker.proxy_sync import CaddyAdmin

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            status = 404 if self.path.startswith("/id/") else 400
            body = b'{"error":"loading config: listen tcp: address already in use"}'
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PATCH = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        admin = CaddyAdmin(f"http://127.0.0.1:{server.server_port}", timeout=2)
        assert admin.get("/id/berth-server-edge") is None        # missing, not an error
        with pytest.raises(ProxyError) as refused:
            admin.load({})
        assert "address already in use" in refused.value.message
        with pytest.raises(ProxyError):
            admin.patch("/id/nope/upstreams", [])
    finally:
        server.shutdown()
        thread.join(5)
    with pytest.raises(ProxyError) as silent:
        CaddyAdmin(f"http://127.0.0.1:{server.server_port}", timeout=1).get("/config/")
    assert "did not answer" in silent.value.message
