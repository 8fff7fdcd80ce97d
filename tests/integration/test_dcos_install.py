"""A package in the DC/OS Universe format installs on the real test bed and is healthy.

``tests/data/dcos-hello`` (the Universe folder layout) is built into the
``repo-up-to-*.json`` index that DC/OS repositories serve, served on loopback, and
added through the server's repository mechanism as a repository of format ``dcos``.
The package is then installed through the API; the worker deploys it on the agents and
the instance answers the HTTP health check its Marathon app declares.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from catalog.dcos.build import build_repo_json
from server.client import BerthClient

pytestmark = pytest.mark.integration

HELLO_REPO = Path(__file__).resolve().parents[1] / "data" / "dcos-hello"
INDEX = "/repo-up-to-2.0.json"


class _IndexHandler(BaseHTTPRequestHandler):
    """Serves the one index document; anything else is 404."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = self.server.body if self.path == INDEX else b""
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def universe_url() -> Iterator[str]:
    """The test repository's index, served on a loopback port."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _IndexHandler)
    httpd.body = json.dumps(build_repo_json(HELLO_REPO)).encode()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}{INDEX}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def _api(server: Any, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, server.api + path, timeout=60, headers=server.headers(),
                            **kwargs)


def test_a_universe_package_installs_and_answers_its_health_check(
        live_server: Any, universe_url: str) -> None:
    repo = f"dcos-{uuid.uuid4().hex[:6]}"
    added = _api(live_server, "POST", "/repositories",
                 json={"name": repo, "url": universe_url, "format": "dcos", "priority": 400})
    assert added.status_code == 202, added.text
    try:
        first = live_server.fetched(repo)
        assert not first["pending"] and first["error"] is None, first
        _check_listed(live_server, repo)
        _install_and_probe(live_server, f"dh-{uuid.uuid4().hex[:6]}")
    finally:
        assert _api(live_server, "DELETE", f"/repositories/{repo}").status_code == 204



def _check_listed(server: Any, repo: str) -> None:
    """The package is shown like a native one: format, upstream version, icon, installable."""
    shown = _api(server, "GET", "/packages/dcos-hello")
    assert shown.status_code == 200, shown.text
    package = shown.json()
    assert (package["repository"], package["format"]) == (repo, "dcos")
    assert package["version"] == "1.0.0-dcos" and package["unsupported"] == []
    assert package["icon"] == "https://example.org/dcos-hello-medium.png"


def _install_and_probe(server: Any, service: str) -> None:
    client = BerthClient(server.url, server.admin_token)
    answer = client.install("dcos-hello", name=service,
                            options={"hello": {"message": "from Universe"}})
    spec = answer["service"]["spec"]
    assert spec["image"] == "berth/hello:1.0.0" and spec["healthCheck"]["path"] == "/health"
    try:
        final = client.wait_for_deployment(answer["deployment"]["id"], timeout=180)
        assert final["status"] == "succeeded", final
        instance = _healthy_instance(client, service)
        base = f"http://{instance['address']}:{instance['ports']['http']}"
        assert requests.get(base + "/health", timeout=5).text.strip() == "ok"
        assert "from Universe" in requests.get(base + "/", timeout=5).text
    finally:
        removal = client.uninstall(service)
        client.wait_for_deployment(removal["deployment"]["id"], timeout=120)


def _healthy_instance(client: BerthClient, service: str, timeout: float = 60) -> dict:
    """The service's one instance once its health check passes (polled, with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        instances = client.service(service).get("instances_list") or []
        healthy = [i for i in instances if i.get("health") == "healthy"]
        if healthy:
            return healthy[0]
        assert time.monotonic() < deadline, f"no healthy instance: {instances}"
        time.sleep(0.5)
