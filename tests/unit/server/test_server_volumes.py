"""Volumes through the API (real Redis, no worker): uninstall names the volumes that
stay and records ``delete_data`` for the worker; ``/volumes`` reads the agents and
names those that do not answer instead of failing."""

from __future__ import annotations

from typing import Any

import pytest


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(tokens: dict[str, str]) -> dict[str, str]:
    return bearer(tokens["admin"])


def _install_with_volume(app: Any, client: Any, admin: dict[str, str], name: str) -> None:
    """Install ``hello``, give its spec a named volume and one instance on agent-1."""
    assert client.post("/api/v1/services", json={"package": "hello", "name": name},
                       headers=admin).status_code == 202
    store = app.extensions["berth"].store
    volume = {"name": f"{name}-data", "containerPath": "/data", "readOnly": False}
    store.services.update(name, lambda s: {**s, "status": "running", "spec": {
        **s["spec"], "volumes": [volume]}})
    service = store.services.get(name)
    store.deployments.update(service["deployment"], lambda d: {**d, "status": "succeeded"})
    instance = {"id": f"{name}-1", "service": name, "generation": 1, "agent": "agent-1",
                "container": f"berth-{name}-1", "container_id": None, "ports": {},
                "port_list": [], "address": "127.0.0.2", "state": "running",
                "health": "healthy", "created_at": 1.0, "started_at": 1.0, "failures": 0,
                "error": None}
    store.state.transact(lambda tx: store.instances.stage_put(tx, instance))


@pytest.mark.parametrize("body, kept", [(None, True), ({"delete_data": False}, True),
                                        ({"delete_data": True}, False)])
def test_uninstall_names_the_volumes_and_records_delete_data(
        app: Any, client: Any, admin: dict[str, str], body: Any, kept: bool) -> None:
    _install_with_volume(app, client, admin, "db")
    response = client.delete("/api/v1/services/db", json=body, headers=admin)
    assert response.status_code == 202, response.json
    assert response.json["volumes"] == [{"name": "db-data", "agent": "agent-1"}]
    assert response.json["delete_data"] is (not kept)
    record = app.extensions["berth"].store.deployments.get(response.json["deployment"]["id"])
    assert bool(record.get("delete_data")) is (not kept)


def test_uninstall_refuses_a_delete_data_that_is_not_a_boolean(
        app: Any, client: Any, admin: dict[str, str]) -> None:
    _install_with_volume(app, client, admin, "db")
    response = client.delete("/api/v1/services/db", json={"delete_data": "yes"},
                             headers=admin)
    assert response.status_code in (400, 422), response.json
    assert "delete_data" in str(response.json["details"])
    assert app.extensions["berth"].store.services.get("db")["status"] == "running"


def test_volumes_names_an_agent_that_does_not_answer(client: Any, admin: dict[str, str],
                                                     tmp_path: Any) -> None:
    url = f"unix://{tmp_path}/nothing.sock"
    body = {"url": url, "id": "agent-away", "capacity": {"cpus": 1, "mem": 512},
            "port_range": [30000, 30099]}
    assert client.post("/api/v1/agents", json=body, headers=admin).status_code == 201
    response = client.get("/api/v1/volumes", headers=admin)
    assert response.status_code == 200, response.json
    assert response.json == {"volumes": [], "unreachable": ["agent-away"]}


def test_volumes_refuses_a_bad_service_name(client: Any, admin: dict[str, str]) -> None:
    response = client.get("/api/v1/volumes?service=No%20Such!", headers=admin)
    assert response.status_code in (400, 422)
    assert response.json["details"][0]["path"] == "service"
