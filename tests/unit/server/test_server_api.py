"""The API's happy paths through the Flask test client (real Redis, no worker)."""

from __future__ import annotations

import json
from typing import Any

import pytest


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(tokens: dict[str, str]) -> dict[str, str]:
    return bearer(tokens["admin"])


def enqueued(app: Any) -> list[tuple[str, list[Any]]]:
    """The tasks the app sent (recorded instead of reaching Celery)."""
    return app.extensions["berth"]._enqueue.calls


def test_search_and_package_pages(client: Any) -> None:
    page = client.get("/api/v1/packages?q=hello").json
    assert page["items"][0]["name"] == "hello" and page["page"] == 1
    pkg = client.get("/api/v1/packages/hello").json
    assert pkg["name"] == "hello" and pkg["versions"]
    versions = client.get("/api/v1/packages/hello/versions").json["items"]
    assert [v["version"] for v in versions] == [v["version"] for v in pkg["versions"]]
    one = client.get(f"/api/v1/packages/hello/versions/{versions[-1]['version']}").json
    assert one["version"] == versions[-1]["version"] and "config" in one


def test_render_installs_nothing(client: Any) -> None:
    response = client.post("/api/v1/packages/hello/render", json={"instances": 2})
    assert response.status_code == 200, response.json
    assert response.json["spec"]["instances"] == 2
    assert client.get("/api/v1/services").json["items"] == []


def test_install_writes_service_and_deployment_then_enqueues(app: Any, client: Any,
                                                             admin: dict[str, str]) -> None:
    body = {"package": "hello", "name": "web", "instances": 3,
            "constraints": [["hostname", "MAX_PER", "2"]]}
    response = client.post("/api/v1/services", json=body, headers=admin)
    assert response.status_code == 202, response.json
    deployment = response.json["deployment"]
    assert deployment["status"] == "queued" and deployment["kind"] == "install"
    assert response.headers["Location"] == f"/api/v1/deployments/{deployment['id']}"
    assert enqueued(app) == [("berth.deploy", [deployment["id"]])]
    service = client.get("/api/v1/services/web").json
    assert service["instances"] == 3 and service["instances"] == service["counts"]["desired"]
    assert ["hostname", "MAX_PER", "2"] in service["spec"]["constraints"]
    assert client.get(f"/api/v1/deployments/{deployment['id']}").json["id"] == deployment["id"]
    listed = client.get("/api/v1/deployments?service=web").json["items"]
    assert [d["id"] for d in listed] == [deployment["id"]]


def _finish(app: Any, name: str) -> None:
    """Mark the service's current deployment succeeded (what a worker would do)."""
    store = app.extensions["berth"].store
    service = store.services.get(name)
    store.deployments.update(service["deployment"], lambda d: {**d, "status": "succeeded"})
    store.services.update(name, lambda s: {**s, "status": "running"})


def test_scale_upgrade_rollback_restart_uninstall(app: Any, client: Any,
                                                  admin: dict[str, str]) -> None:
    assert client.post("/api/v1/services", json={"package": "hello", "name": "web"},
                       headers=admin).status_code == 202
    steps = [("PATCH", "/api/v1/services/web", {"instances": 2}, "scale"),
             ("PATCH", "/api/v1/services/web", {"version": "*"}, "upgrade"),
             ("POST", "/api/v1/services/web/rollback", None, "rollback"),
             ("POST", "/api/v1/services/web/restart", None, "restart"),
             ("DELETE", "/api/v1/services/web", None, "uninstall")]
    for method, path, body, kind in steps:
        _finish(app, "web")
        response = client.open(path, method=method, json=body, headers=admin)
        assert response.status_code == 202, (kind, response.json)
        assert response.json["deployment"]["kind"] == kind
    history = client.get("/api/v1/services/web/history").json["items"]
    assert len(history) >= 3


def test_events_stream_resumes_with_last_event_id(client: Any, admin: dict[str, str]) -> None:
    assert client.post("/api/v1/services", json={"package": "hello", "name": "ev"},
                       headers=admin).status_code == 202
    first = client.get("/api/v1/events?since=0&limit=1&timeout=2")
    assert first.mimetype == "text/event-stream"
    events = _parse_sse(first.get_data(as_text=True))
    assert len(events) == 1 and events[0]["data"]["actor"].startswith("token:")
    rest = client.get("/api/v1/events?limit=5&timeout=1",
                      headers={"Last-Event-ID": events[0]["id"]})
    later = _parse_sse(rest.get_data(as_text=True))
    assert later and all(e["id"] > events[0]["id"] for e in later)
    assert events[0]["id"] not in [e["id"] for e in later]


def _parse_sse(text: str) -> list[dict[str, Any]]:
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines()
                      if ": " in line and not line.startswith(":"))
        if "data" in fields:
            events.append({"id": fields["id"], "data": json.loads(fields["data"])})
    return events


def test_meta_endpoints(client: Any) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").json["status"] == "ready"
    client.get("/api/v1/packages")
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'berth_http_requests_total{method="GET",endpoint="api.search_packages",' \
           'status="200"}' in metrics
    assert "berth_http_request_duration_seconds_bucket" in metrics
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.1") and "/services" in doc["paths"]


def test_anonymous_whoami(client: Any) -> None:
    assert client.get("/api/v1/whoami").json == {"kind": "anonymous", "name": "",
                                                 "role": "viewer", "actor": "anonymous"}


def test_secrets_are_masked_in_render_and_service_views(client: Any,
                                                        admin: dict[str, str]) -> None:
    secret = "s3cret-value-never-shown"  # noqa: S105 - a test value
    options = {"auth": {"token": secret}}
    rendered = client.post("/api/v1/packages/hello/render", json={"options": options})
    assert rendered.status_code == 200, rendered.json
    assert secret not in rendered.get_data(as_text=True)
    installed = client.post("/api/v1/services", json={"package": "hello", "name": "sec",
                                                      "options": options}, headers=admin)
    assert installed.status_code == 202, installed.json
    for path in ("/api/v1/services", "/api/v1/services/sec", "/api/v1/services/sec/history"):
        assert secret not in client.get(path).get_data(as_text=True), path
    assert secret not in installed.get_data(as_text=True)
