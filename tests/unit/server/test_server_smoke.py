"""``POST /api/v1/services/{name}/smoke`` (real Redis, no worker): only the installed
package version's own ``tests.smoke`` runs, on every running instance; admins only.

The instances are records pointing at a real HTTP server on a loopback port, which
answers ``/version.json`` with 200 on one port and 404 on the other.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class _Page(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        self.send_response(self.status if self.path == "/version.json" else 500)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


class _Missing(_Page):
    status = 404


@pytest.fixture
def pages() -> Iterator[tuple[int, int]]:
    """Two loopback HTTP servers: (the one answering 200, the one answering 404)."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), handler) for handler in (_Page, _Missing)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    yield servers[0].server_address[1], servers[1].server_address[1]
    for server in servers:
        server.shutdown()
        server.server_close()


def _install(app: Any, client: Any, admin: dict[str, str], package: str, name: str,
             ports: list[int]) -> None:
    body = {"package": package, "name": name, **({"version": "1.0.0"} if package == "hello"
                                                 else {})}
    answer = client.post("/api/v1/services", json=body, headers=admin)
    assert answer.status_code == 202, answer.get_json()
    store = app.extensions["berth"].store
    for index, port in enumerate(ports):
        instance = {"id": f"{name}-{index}", "service": name, "generation": 1,
                    "agent": "agent-1", "container": f"berth-{name}-{index}",
                    "container_id": None, "ports": {"http": port}, "port_list": [port],
                    "address": "127.0.0.1", "state": "running", "health": "healthy",
                    "created_at": 1.0, "started_at": 1.0, "failures": 0, "error": None}
        store.state.transact(lambda tx, i=instance: store.instances.stage_put(tx, i))


def test_the_declared_http_smoke_test_runs_on_every_instance(
        app: Any, client: Any, tokens: dict[str, str], pages: tuple[int, int]) -> None:
    admin = bearer(tokens["admin"])
    _install(app, client, admin, "hello", "smoky", [pages[0]])
    answer = client.post("/api/v1/services/smoky/smoke", headers=admin)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["passed"] is True and body["smoke"]["path"] == "/version.json"
    assert body["results"][0]["message"].endswith(": 200 (expected 200)")


def test_one_failing_instance_fails_the_smoke_test(
        app: Any, client: Any, tokens: dict[str, str], pages: tuple[int, int]) -> None:
    admin = bearer(tokens["admin"])
    _install(app, client, admin, "hello", "smoky", list(pages))
    body = client.post("/api/v1/services/smoky/smoke", headers=admin).get_json()
    assert body["passed"] is False
    assert [r["ok"] for r in body["results"]] == [True, False]
    assert body["results"][1]["message"].endswith(": 404 (expected 200)")


def test_no_running_instance_is_no_pass(app: Any, client: Any,
                                        tokens: dict[str, str]) -> None:
    admin = bearer(tokens["admin"])
    _install(app, client, admin, "hello", "smoky", [])
    body = client.post("/api/v1/services/smoky/smoke", headers=admin).get_json()
    assert body["passed"] is False and body["results"] == []


def test_a_package_without_a_smoke_test_and_unknown_services_are_clear_errors(
        app: Any, client: Any, tokens: dict[str, str]) -> None:
    admin = bearer(tokens["admin"])
    _install(app, client, admin, "memcached", "cache", [])
    answer = client.post("/api/v1/services/cache/smoke", headers=admin)
    assert answer.status_code == 409
    assert answer.get_json()["error"] == "no_smoke_test"
    assert "declares no smoke test" in answer.get_json()["message"]
    missing = client.post("/api/v1/services/nothing-here/smoke", headers=admin)
    assert missing.status_code == 404


def test_only_admins_run_smoke_tests(app: Any, client: Any, tokens: dict[str, str]) -> None:
    _install(app, client, bearer(tokens["admin"]), "hello", "smoky", [])
    for role in ("viewer", "maintainer"):
        answer = client.post("/api/v1/services/smoky/smoke", headers=bearer(tokens[role]))
        assert answer.status_code == 403, role
    assert client.post("/api/v1/services/smoky/smoke").status_code == 401


def test_a_command_sent_with_the_request_never_runs(
        app: Any, client: Any, tokens: dict[str, str], pages: tuple[int, int]) -> None:
    """The attack: ask the endpoint to run a command of the caller's choosing inside the
    containers. Only the package's own declared check runs (hello's HTTP GET)."""
    admin = bearer(tokens["admin"])
    _install(app, client, admin, "hello", "smoky", [pages[0]])
    attack = {"protocol": "command", "command": "touch /tmp/pwned"}
    answer = client.post("/api/v1/services/smoky/smoke", headers=admin,
                         json={"smoke": attack, **attack})
    body = answer.get_json()
    assert answer.status_code == 200 and body["smoke"]["protocol"] == "http"
    assert body["results"][0]["message"].startswith(f"GET http://127.0.0.1:{pages[0]}/")
