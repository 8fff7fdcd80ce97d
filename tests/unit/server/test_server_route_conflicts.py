"""Route conflicts through the API and the CLI, on a real Redis (no worker): an install,
upgrade or option change that routes another service's host and path prefix is refused
with 409 ``route_conflict``; two installs racing for one host leave exactly one; clashes
in older records show as ``conflict`` and only the older route is given to proxies."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest
from click.testing import CliRunner
from test_server_client_cli import serving

from server.client.cli import cli
from worker.endpoints import RouteConflict


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(tokens: dict[str, str]) -> dict[str, str]:
    return bearer(tokens["admin"])


def install(client: Any, admin: dict[str, str], name: str, **options: Any) -> Any:
    body = {"package": "hello", "name": name, "instances": 1, "options": options}
    return client.post("/api/v1/services", json=body, headers=admin)


def finish_deployment(app: Any, name: str) -> None:
    """Cancel the service's queued deployment (no worker runs here) so it can change."""
    berth = app.extensions["berth"]
    service = berth.store.services.get(name)
    berth.ops.cancel_deployment(service["deployment"], actor="t")


def put_old_record(app: Any, name: str, host: str, created_at: float) -> None:
    """A service record as written before installs were checked for clashes."""
    store = app.extensions["berth"].store
    template = store.services.get("web")
    record = {**copy.deepcopy(template), "name": name, "created_at": created_at,
              "deployment": None, "status": "running"}
    record["spec"]["expose"] = [{"portName": "http", "hosts": [host], "pathPrefix": "/"}]
    store.state.transact(lambda tx: store.services.stage_put(tx, record))


def test_an_install_routing_a_taken_host_is_refused_with_409_naming_it(app, client, admin):
    assert install(client, admin, "web", public_host="web.test").status_code == 202
    refused = install(client, admin, "copy", public_host="web.test")
    assert refused.status_code == 409, refused.json
    body = refused.json
    assert body["error"] == "route_conflict"
    assert "web.test" in body["message"] and "'web'" in body["message"]
    assert "path prefix /" in body["message"]
    assert body["details"] == [{"path": "spec/expose/0/hosts/0", "message":
                                "host web.test with path prefix / (group external) is "
                                "routed to service 'web' (route web-0, host web.test)"}]
    assert "hint" in body
    assert client.get("/api/v1/services/copy", headers=admin).status_code == 404
    assert install(client, admin, "other", public_host="other.test").status_code == 202


def test_an_upgrade_keeping_its_routes_is_not_a_conflict_but_taking_a_host_is(app, client,
                                                                             admin):
    assert install(client, admin, "web", public_host="web.test").status_code == 202
    assert install(client, admin, "api", public_host="api.test").status_code == 202
    finish_deployment(app, "web")
    finish_deployment(app, "api")
    kept = client.patch("/api/v1/services/web", headers=admin,
                       json={"version": "2.0.0", "options": {"message": "hi"}})
    assert kept.status_code == 202, kept.json
    taken = client.patch("/api/v1/services/api", headers=admin,
                        json={"options": {"public_host": "web.test"}})
    assert taken.status_code == 409, taken.json
    assert taken.json["error"] == "route_conflict"
    assert taken.json["details"][0]["path"] == "spec/expose/0/hosts/0"
    store = app.extensions["berth"].store
    assert store.services.get("api")["spec"]["expose"][0]["hosts"] == ["api.test"]
    assert store.services.get("api")["generation"] == 1


def test_a_rollback_to_a_host_taken_since_is_refused(app, client, admin):
    berth = app.extensions["berth"]
    assert install(client, admin, "web", public_host="web.test").status_code == 202
    finish_deployment(app, "web")
    moved = client.patch("/api/v1/services/web", headers=admin,
                        json={"options": {"public_host": "www.test"}})
    assert moved.status_code == 202, moved.json
    finish_deployment(app, "web")
    assert install(client, admin, "new", public_host="web.test").status_code == 202
    with pytest.raises(RouteConflict):
        berth.ops.rollback("web", 1, actor="t")


def test_two_installs_racing_for_one_host_leave_exactly_one(app):
    """Both read the other services before either commits (a barrier holds the first
    read of each): the check must still let only one of them write."""
    berth = app.extensions["berth"]
    services = berth.store.services
    original = services.list
    barrier = threading.Barrier(2, timeout=10)
    first_read: set[int] = set()

    def list_after_both_read() -> list[Any]:
        found = original()
        if threading.get_ident() not in first_read:
            first_read.add(threading.get_ident())
            barrier.wait()
        return found

    services.list = list_after_both_read
    spec = {"image": "berth/hello:1.0.0", "ports": [{"name": "http"}],
            "expose": [{"portName": "http", "hosts": ["race.test"]}]}
    outcomes: dict[str, str] = {}

    def race(name: str) -> None:
        try:
            berth.ops.install(name, spec, package={"name": "hello"}, actor="t")
            outcomes[name] = "installed"
        except RouteConflict as error:
            outcomes[name] = error.code

    threads = [threading.Thread(target=race, args=(n,)) for n in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    del services.list
    assert sorted(outcomes.values()) == ["installed", "route_conflict"], outcomes
    assert len(first_read) == 2       # both did read before either wrote
    assert sorted(s["name"] for s in services.list()) == [
        n for n, o in sorted(outcomes.items()) if o == "installed"]


def test_clashing_old_records_show_a_conflict_and_only_the_older_route_is_served(
        app, client, admin):
    assert install(client, admin, "web", public_host="web.test").status_code == 202
    put_old_record(app, "aaa-newer", "web.test", created_at=9e9)
    items = client.get("/api/v1/routes", headers=admin).json["items"]
    by_service = {r["service"]: r for r in items}
    assert by_service["web"]["state"] != "conflict" and "conflict" not in by_service["web"]
    newer = by_service["aaa-newer"]
    assert newer["state"] == "conflict"
    assert newer["conflict"] == {"service": "web", "route": "web-0", "host": "web.test",
                                 "other_host": "web.test", "pathPrefix": "/"}
    store = app.extensions["berth"].store
    for name, port in (("web", 20001), ("aaa-newer", 20002)):
        instance = {"id": f"{name}-a", "service": name, "generation": 1, "agent": "agent-1",
                    "container": f"berth-{name}-a", "container_id": "c",
                    "ports": {"http": port}, "port_list": [port], "address": "127.0.0.2",
                    "state": "running", "health": "healthy", "created_at": 1.0,
                    "started_at": 1.0, "failures": 0, "error": None}
        store.state.transact(lambda tx, i=instance: store.instances.stage_put(tx, i))
    traefik = client.get("/api/v1/providers/traefik", headers=admin).json
    assert list(traefik["http"]["routers"]) == ["berth-web-0"]


def test_the_cli_prints_the_conflict_and_routes_shows_it(app, client, admin, tokens,
                                                         monkeypatch, tmp_path):
    assert install(client, admin, "web", public_host="web.test").status_code == 202
    put_old_record(app, "late", "web.test", created_at=9e9)
    with serving(app) as url:
        monkeypatch.setenv("BERTH_URL", url)
        monkeypatch.setenv("BERTH_TOKEN", tokens["admin"])
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
        runner = CliRunner()
        refused = runner.invoke(cli, ["install", "hello", "--name", "copy",
                                      "--set", "public_host=web.test"])
        assert refused.exit_code != 0 and "Traceback" not in refused.output
        assert "web.test" in refused.output and "'web'" in refused.output
        assert "spec/expose/0/hosts/0" in refused.output
        routes = runner.invoke(cli, ["routes"])
        assert routes.exit_code == 0, routes.output
        [late] = [line for line in routes.output.splitlines() if " late " in line]
        assert "conflict with web" in late
