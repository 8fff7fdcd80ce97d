"""Moves and prunes through the API (real Redis, no worker): a move is refused before
anything changes when it would lose data or cannot be, else it becomes a ``move``
deployment handed to the workers; a prune is a request a worker runs."""

from __future__ import annotations

from typing import Any

import pytest

from worker import agents

MOVE = "/api/v1/services/db/instances/db-1/move"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(tokens: dict[str, str]) -> dict[str, str]:
    return bearer(tokens["admin"])


def enqueued(app: Any) -> list[tuple[str, list[Any]]]:
    return app.extensions["berth"]._enqueue.calls


def _agent(store: Any, agent_id: str, state: str = "up", drain: bool = False) -> None:
    agents.register_agent(store, f"tcp://127.0.0.1:{agent_id[-1]}", {}, (20000, 20009),
                          {"cpus": 1, "mem": 512}, agent_id=agent_id)
    store.agents.update(agent_id, lambda a: {**a, "state": state, "drain": drain})


def _stateful(app: Any, client: Any, admin: dict[str, str], home_state: str = "up") -> Any:
    """``db``: one resident instance db-1 on agent-1 (in ``home_state``), volume db-data;
    agent-2 up, agent-3 draining."""
    assert client.post("/api/v1/services", json={"package": "hello", "name": "db"},
                       headers=admin).status_code == 202
    store = app.extensions["berth"].store
    _agent(store, "agent-1", home_state)
    _agent(store, "agent-2")
    _agent(store, "agent-3", drain=True)
    volume = {"name": "db-data", "containerPath": "/data", "readOnly": False}
    store.services.update("db", lambda s: {**s, "status": "running", "spec": {
        **s["spec"], "volumes": [volume]}})
    service = store.services.get("db")
    store.deployments.update(service["deployment"], lambda d: {**d, "status": "succeeded"})
    store.services.update("db", lambda s: {**s, "deployment": None})
    instance = {"id": "db-1", "service": "db", "generation": 1, "agent": "agent-1",
                "container": "berth-db-1", "container_id": None, "ports": {},
                "port_list": [], "address": "127.0.0.2",
                "state": "lost" if home_state == "unreachable" else "running",
                "health": "healthy", "created_at": 1.0, "started_at": 1.0, "failures": 0,
                "error": None, "resident": True,
                "volumes": [{"name": "db-data", "agent": "agent-1"}]}
    store.state.transact(lambda tx: store.instances.stage_put(tx, instance))
    enqueued(app).clear()
    return store


def test_a_move_becomes_a_move_deployment_for_the_workers(app: Any, client: Any,
                                                          admin: dict[str, str]) -> None:
    store = _stateful(app, client, admin)
    response = client.post(MOVE, json={"to": "agent-2"}, headers=admin)
    assert response.status_code == 202, response.json
    deployment = response.json["deployment"]
    assert response.headers["Location"].endswith(f"/deployments/{deployment['id']}")
    assert deployment["kind"] == "move"
    assert deployment["move"] == {"instance": "db-1", "source": "agent-1",
                                  "target": "agent-2", "accept_empty": False,
                                  "phase": "requested"}
    assert enqueued(app) == [("berth.deploy", [deployment["id"]])]
    assert store.services.get("db")["deployment"] == deployment["id"]


def test_a_move_from_an_agent_that_does_not_answer_is_refused_naming_the_volume(
        app: Any, client: Any, admin: dict[str, str]) -> None:
    store = _stateful(app, client, admin, home_state="unreachable")
    response = client.post(MOVE, json={"to": "agent-2"}, headers=admin)
    assert response.status_code == 409, response.json
    assert response.json["error"] == "move_refused"
    assert "without the data of volume db-data" in response.json["message"]
    assert enqueued(app) == []
    assert store.services.get("db")["deployment"] is None

    accepted = client.post(MOVE, json={"to": "agent-2", "acceptEmpty": True}, headers=admin)
    assert accepted.status_code == 202, accepted.json
    assert accepted.json["deployment"]["move"]["accept_empty"] is True


@pytest.mark.parametrize("body, status, error", [
    ({"to": "agent-1"}, 409, "move_refused"),      # already there
    ({"to": "agent-3"}, 409, "move_refused"),      # draining
    ({"to": "agent-9"}, 404, "agent_not_found"),
    ({}, 422, None),                               # no target
    ({"to": "agent-2", "acceptEmpty": "yes"}, 422, None),
])
def test_impossible_moves_are_refused_before_anything_changes(
        app: Any, client: Any, admin: dict[str, str], body: Any, status: int,
        error: str | None) -> None:
    store = _stateful(app, client, admin)
    response = client.post(MOVE, json=body, headers=admin)
    assert response.status_code == status, response.json
    if error:
        assert response.json["error"] == error
    assert enqueued(app) == [] and store.services.get("db")["deployment"] is None


def test_moving_an_unknown_instance_is_404(app: Any, client: Any,
                                           admin: dict[str, str]) -> None:
    _stateful(app, client, admin)
    response = client.post("/api/v1/services/db/instances/db-9/move", json={"to": "agent-2"},
                           headers=admin)
    assert response.status_code == 404 and response.json["error"] == "instance_not_found"


def test_a_viewer_cannot_move(app: Any, client: Any, admin: dict[str, str],
                              tokens: dict[str, str]) -> None:
    _stateful(app, client, admin)
    response = client.post(MOVE, json={"to": "agent-2"}, headers=bearer(tokens["viewer"]))
    assert response.status_code == 403


def test_a_prune_is_a_request_a_worker_runs(app: Any, client: Any,
                                            admin: dict[str, str]) -> None:
    _stateful(app, client, admin)
    response = client.post("/api/v1/volumes/prune", json={"service": "db"}, headers=admin)
    assert response.status_code == 202, response.json
    prune = response.json["prune"]
    assert prune["status"] == "queued" and prune["service"] == "db"
    assert enqueued(app) == [("berth.prune_volumes", [prune["id"]])]
    shown = client.get(response.headers["Location"], headers=admin)
    assert shown.status_code == 200 and shown.json["id"] == prune["id"]
    assert client.get("/api/v1/volumes/prune/p-0", headers=admin).status_code == 404
    assert client.post("/api/v1/volumes/prune", json={"agent": "agent-9"},
                       headers=admin).status_code == 404
