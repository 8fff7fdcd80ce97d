"""The Backups section of a service's page: listed for everyone who may see the service,
and for an admin: back up now, restore only after typing the service's name, delete,
and a download link (the API's streamed ``.tar.gz``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from worker.store.crypto import generate_key

from .conftest import StaticSource, csrf_from


@pytest.fixture
def app(storefront_redis: str, storefront_catalog: Any, enqueued: list,
        tmp_path: Path) -> Any:
    """The store front with a directory backup store."""
    from server.app import create_app

    return create_app({
        "BERTH_REDIS_URL": storefront_redis, "BERTH_SECRET_KEY": "storefront-tests",
        "BERTH_ALLOW_HOST_NETWORK": "true", "BERTH_DATA_KEY": generate_key(),
        "BERTH_BACKUP_DIR": str(tmp_path / "backups"),
        "CATALOG": StaticSource(storefront_catalog),
        "ENQUEUE": lambda name, args: enqueued.append((name, list(args))), "TESTING": True})


def _stateful(app: Any, name: str) -> None:
    """A ``hello`` service whose spec names volume ``<name>-data``, one running instance."""
    with app.app_context():
        berth = app.extensions["berth"]
        answer = berth.application.services.install("test", package="hello", name=name)
        store = berth.store
        volume = {"name": f"{name}-data", "containerPath": "/data", "readOnly": False}
        store.services.update(name, lambda s: {**s, "spec": {**s["spec"],
                                                            "volumes": [volume]}})
        berth.ops.cancel_deployment(answer["deployment"]["id"], actor="t")
        instance = {"id": f"{name}-1", "service": name, "generation": 1, "agent": "agent-2",
                    "container": f"berth-{name}-1", "container_id": "c", "ports": {},
                    "port_list": [], "address": "127.0.0.3", "state": "running",
                    "health": "healthy", "created_at": 1.0, "started_at": 1.0,
                    "failures": 0, "error": None}
        store.state.transact(lambda tx: store.instances.stage_put(tx, instance))


def _finish(app: Any, backup_id: str) -> None:
    """The backup's deployment done (no worker here): the backup is complete."""
    with app.app_context():
        store = app.extensions["berth"].store
        backup = store.backups.update(backup_id, lambda b: {**b, "status": "succeeded",
                                                           "size": 4096})
        store.deployments.update(backup["deployment"], lambda d: {**d, "status": "succeeded"})
        store.services.update(backup["service"], lambda s: {**s, "deployment": None})


def test_an_admin_backs_up_and_restores_only_after_typing_the_name(admin: Any, app: Any,
                                                                   enqueued: list) -> None:
    _stateful(app, "db")
    html = admin.get("/services/db").get_data(as_text=True)
    assert 'id="backups-h"' in html and "No backup of db yet." in html
    assert "is stopped for the copy" in html
    taken = admin.post("/services/db/backups", data={"csrf_token": csrf_from(html),
                                                     "keep": "2"})
    assert taken.status_code == 302 and "/deployments/" in taken.headers["Location"]
    with app.app_context():
        (backup,) = app.extensions["berth"].store.backups.list("db")
    assert backup["keep"] == 2 and enqueued[-1][0] == "berth.deploy"
    _finish(app, backup["id"])

    html = admin.get("/services/db").get_data(as_text=True)
    assert backup["id"] in html and f"/api/v1/backups/{backup['id']}/download" in html
    token = csrf_from(html)
    refused = admin.post(f"/services/db/backups/{backup['id']}/restore",
                         data={"csrf_token": token, "confirm_name": "d"})
    assert refused.status_code == 302 and refused.headers["Location"].endswith("#backups")
    with app.app_context():
        assert app.extensions["berth"].store.services.get("db")["deployment"] is None
    restored = admin.post(f"/services/db/backups/{backup['id']}/restore",
                          data={"csrf_token": token, "confirm_name": "db"})
    assert restored.status_code == 302 and "/deployments/" in restored.headers["Location"]
    deployment_id = restored.headers["Location"].split("/deployments/")[1].split("?")[0]
    with app.app_context():
        record = app.extensions["berth"].store.deployments.get(deployment_id)
    assert (record["kind"], record["restore"]) == ("restore", backup["id"])


def test_a_viewer_sees_the_backups_but_no_buttons(viewer: Any, app: Any) -> None:
    _stateful(app, "db")
    with app.app_context():
        answer = app.extensions["berth"].application.backups.create("t", "db")
    _finish(app, answer["backup"]["id"])
    html = viewer.get("/services/db").get_data(as_text=True)
    assert answer["backup"]["id"] in html
    assert "Back up now" not in html and "/download" not in html and "Restore" not in html
    assert viewer.post("/services/db/backups").status_code in (302, 400, 403)
    with app.app_context():
        assert len(app.extensions["berth"].store.backups.list("db")) == 1


def test_no_backups_section_without_named_volumes(admin: Any, app: Any) -> None:
    with app.app_context():
        berth = app.extensions["berth"]
        answer = berth.application.services.install("test", package="hello", name="web")
        berth.ops.cancel_deployment(answer["deployment"]["id"], actor="t")
    assert 'id="backups-h"' not in admin.get("/services/web").get_data(as_text=True)
