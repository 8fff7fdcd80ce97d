"""``/agents``: register with given capacity, read, drain, remove; input errors."""

from __future__ import annotations

from typing import Any

import pytest

# Nothing listens on port 9 of loopback: the engine is "down", and the server's
# attempt to read its info fails at once.
URL = "tcp://127.0.0.1:9"


@pytest.fixture
def admin(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['admin']}"}


def test_register_read_drain_remove(client: Any, admin: dict[str, str]) -> None:
    body = {"url": URL, "id": "agent-x", "attributes": {"zone": "a"},
            "capacity": {"cpus": 2, "mem": 2048}, "port_range": [30000, 30099]}
    created = client.post("/api/v1/agents", json=body, headers=admin)
    assert created.status_code == 201, created.json
    assert created.headers["Location"] == "/api/v1/agents/agent-x"
    assert created.json["capacity"] == {"cpus": 2, "mem": 2048}
    assert [a["id"] for a in client.get("/api/v1/agents").json["items"]] == ["agent-x"]
    assert client.get("/api/v1/agents/agent-x").json["attributes"]["zone"] == "a"
    drained = client.post("/api/v1/agents/agent-x/drain", headers=admin)
    assert drained.status_code == 200 and drained.json["drain"] is True
    assert client.delete("/api/v1/agents/agent-x", headers=admin).status_code == 204
    assert client.get("/api/v1/agents/agent-x").status_code == 404


def test_agent_input_errors(client: Any, admin: dict[str, str],
                            tokens: dict[str, str]) -> None:
    bad = client.post("/api/v1/agents", json={"url": "ftp://x", "port_range": [1],
                                              "capacity": {"cpus": -1}}, headers=admin)
    assert bad.status_code == 422
    assert {p["path"] for p in bad.json["details"]} >= {"body/url", "body/port_range",
                                                        "body/capacity/cpus"}
    viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
    assert client.post("/api/v1/agents", json={"url": URL}, headers=viewer).status_code == 403
    assert client.post("/api/v1/agents/none/drain", headers=admin).status_code == 404
    body = {"url": URL, "id": "agent-a", "capacity": {"cpus": 1, "mem": 512}}
    assert client.post("/api/v1/agents", json=body, headers=admin).status_code == 201
    again = client.post("/api/v1/agents", json={**body, "id": "agent-b"}, headers=admin)
    assert again.status_code == 409 and again.json["error"] == "agent_exists"


def test_forced_removal_leaves_the_containers_to_a_worker(app: Any, client: Any,
                                                          admin: dict[str, str]) -> None:
    """The server drops the records and enqueues the container removal: it never
    changes anything on an agent itself."""
    body = {"url": URL, "id": "agent-f", "capacity": {"cpus": 1, "mem": 512}}
    assert client.post("/api/v1/agents", json=body, headers=admin).status_code == 201
    store = app.extensions["berth"].store
    instance = {"id": "web-1", "service": "web", "agent": "agent-f", "container": "berth-web-1"}
    store.state.transact(lambda tx: store.instances.stage_put(tx, instance))

    busy = client.delete("/api/v1/agents/agent-f", headers=admin)
    assert busy.status_code == 409
    assert busy.json["details"] == [{"path": "instances/web-1", "message": "web"}]
    assert client.delete("/api/v1/agents/agent-f?force=1", headers=admin).status_code == 204
    assert store.instances.get("web-1") is None
    assert client.get("/api/v1/agents/agent-f").status_code == 404
    calls = app.extensions["berth"]._enqueue.calls
    assert ("berth.remove_agent_containers",
            [{"id": "agent-f", "url": URL}, ["berth-web-1"]]) in calls
