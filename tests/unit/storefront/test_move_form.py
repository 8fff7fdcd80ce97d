"""The service page's Move form: instances and the agents that take them; for an
instance whose agent does not answer, a box that names the volumes whose data stays
behind, without which the move is refused."""

from __future__ import annotations

from typing import Any

from worker import agents

from .conftest import csrf_from


def _stateful(app: Any, home_state: str) -> None:
    with app.app_context():
        berth = app.extensions["berth"]
        store = berth.store
        for agent_id, state in (("agent-1", home_state), ("agent-2", "up")):
            agents.register_agent(store, f"tcp://127.0.0.1:{agent_id[-1]}", {},
                                  (20000, 20009), {"cpus": 1, "mem": 512}, agent_id=agent_id)
            store.agents.update(agent_id, lambda a, s=state: {**a, "state": s})
        answer = berth.application.services.install("test", package="hello", name="db")
        berth.ops.cancel_deployment(answer["deployment"]["id"], actor="t")
        instance = {"id": "db-1", "service": "db", "generation": 1, "agent": "agent-1",
                    "container": "berth-db-1", "container_id": None, "ports": {},
                    "port_list": [], "address": "127.0.0.2", "state": "lost",
                    "health": "none", "created_at": 1.0, "started_at": 1.0, "failures": 0,
                    "error": None, "resident": True,
                    "volumes": [{"name": "db-data", "agent": "agent-1"}]}
        store.state.transact(lambda tx: store.instances.stage_put(tx, instance))


def test_the_form_names_the_volumes_lost_when_the_agent_does_not_answer(admin: Any,
                                                                       app: Any) -> None:
    _stateful(app, "unreachable")
    html = admin.get("/services/db").get_data(as_text=True)
    assert 'id="move"' in html and '<option value="agent-2">' in html
    assert "Agent agent-1 does not answer" in html
    assert "The data of db-data is lost to it" in html


def test_without_the_box_the_move_is_refused_and_with_it_a_deployment_opens(
        admin: Any, app: Any, enqueued: list) -> None:
    _stateful(app, "unreachable")
    token = csrf_from(admin.get("/services/db").get_data(as_text=True))
    before = list(enqueued)
    refused = admin.post("/services/db/move", data={"csrf_token": token, "instance": "db-1",
                                                    "to": "agent-2"})
    assert refused.status_code == 302 and refused.headers["Location"].endswith("#move")
    page = admin.get("/services/db").get_data(as_text=True)
    assert "without the data of volume db-data" in page
    assert enqueued == before   # nothing was asked of the workers

    moved = admin.post("/services/db/move", data={"csrf_token": token, "instance": "db-1",
                                                  "to": "agent-2", "accept_empty": "db-1"})
    assert moved.status_code == 302 and "/deployments/" in moved.headers["Location"]
    assert [name for name, _ in enqueued[len(before):]] == ["berth.deploy"]


def test_a_reachable_instance_has_no_accept_empty_box(admin: Any, app: Any) -> None:
    _stateful(app, "up")
    html = admin.get("/services/db").get_data(as_text=True)
    assert 'id="move"' in html and 'name="accept_empty"' not in html
