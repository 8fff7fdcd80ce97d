"""The service page shows a stateful service's volumes, and the uninstall form keeps
them unless its "delete its data" box is ticked (the flash says which)."""

from __future__ import annotations

from typing import Any

from .conftest import csrf_from


def _stateful(app: Any, name: str) -> None:
    """Write a ``hello`` service whose spec names volume ``<name>-data``, and nothing
    running (no worker here): the store front sees only records."""
    with app.app_context():
        berth = app.extensions["berth"]
        answer = berth.application.services.install("test", package="hello", name=name)
        store = berth.store
        volume = {"name": f"{name}-data", "containerPath": "/data", "readOnly": False}
        store.services.update(name, lambda s: {**s, "spec": {**s["spec"],
                                                            "volumes": [volume]}})
        berth.ops.cancel_deployment(answer["deployment"]["id"], actor="t")
        instance = {"id": f"{name}-1", "service": name, "generation": 1, "agent": "agent-2",
                    "container": f"berth-{name}-1", "container_id": None, "ports": {},
                    "port_list": [], "address": "127.0.0.3", "state": "stopped",
                    "health": "none", "created_at": 1.0, "started_at": 1.0, "failures": 0,
                    "error": None}
        store.state.transact(lambda tx: store.instances.stage_put(tx, instance))


def test_the_service_page_has_a_volumes_panel_and_a_delete_data_box(admin: Any,
                                                                    app: Any) -> None:
    _stateful(app, "db")
    html = admin.get("/services/db").get_data(as_text=True)
    assert 'id="vol-h"' in html and "No volume of db" in html
    assert 'name="delete_data"' in html


def test_a_service_without_named_volumes_has_no_volumes_panel(admin: Any, app: Any) -> None:
    with app.app_context():
        berth = app.extensions["berth"]
        answer = berth.application.services.install("test", package="hello", name="web")
        berth.ops.cancel_deployment(answer["deployment"]["id"], actor="t")
    assert 'id="vol-h"' not in admin.get("/services/web").get_data(as_text=True)


def test_uninstall_with_the_box_ticked_deletes_the_data_and_says_so(admin: Any,
                                                                    app: Any) -> None:
    _stateful(app, "db")
    token = csrf_from(admin.get("/services/db").get_data(as_text=True))
    gone = admin.post("/services/db/uninstall",
                      data={"csrf_token": token, "confirm_name": "db", "delete_data": "1"})
    assert gone.status_code == 302 and "/deployments/" in gone.headers["Location"]
    deployment_id = gone.headers["Location"].split("/deployments/")[1].split("?")[0]
    with app.app_context():
        assert app.extensions["berth"].store.deployments.get(deployment_id)["delete_data"]
    page = admin.get(gone.headers["Location"]).get_data(as_text=True)
    assert "deleting its volumes: db-data on agent-2" in page


def test_uninstall_without_the_box_keeps_the_data(admin: Any, app: Any) -> None:
    _stateful(app, "db")
    token = csrf_from(admin.get("/services/db").get_data(as_text=True))
    gone = admin.post("/services/db/uninstall", data={"csrf_token": token, "confirm_name": "db"})
    deployment_id = gone.headers["Location"].split("/deployments/")[1].split("?")[0]
    with app.app_context():
        record = app.extensions["berth"].store.deployments.get(deployment_id)
    assert "delete_data" not in record
    page = admin.get(gone.headers["Location"]).get_data(as_text=True)
    assert "These volumes stay (listed as left over): db-data on agent-2" in page
