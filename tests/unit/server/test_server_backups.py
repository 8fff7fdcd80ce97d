"""Backups through the API (real Redis, no worker): what is recorded, who may do what, the
refusals, and a download streamed from a directory store.

The copying itself is the worker's (``tests/integration/test_backups.py``); here the
records and the deployments the server writes are checked, and that no secret — clear
or sealed — ever lands in a backup record or a download.
"""

from __future__ import annotations

import gzip
import io
import json
import secrets
import tarfile
from pathlib import Path
from typing import Any

import pytest

from catalog.options import MASK

PASSWORD = secrets.token_urlsafe(16)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def backup_dir(tmp_path: Path) -> Path:
    return tmp_path / "backups"


@pytest.fixture
def app(make_app: Any, backup_dir: Path) -> Any:
    return make_app(BERTH_BACKUP_DIR=str(backup_dir))


@pytest.fixture
def admin(tokens: dict[str, str]) -> dict[str, str]:
    return bearer(tokens["admin"])


def _settle(app: Any, name: str, *, volume: bool = True) -> None:
    """The install's deployment done, and one healthy instance on agent-1."""
    store = app.extensions["berth"].store
    service = store.services.get(name)
    store.deployments.update(service["deployment"], lambda d: {**d, "status": "succeeded"})
    store.services.update(name, lambda s: {**s, "status": "running", "deployment": None})
    instance = {"id": f"{name}-1", "service": name, "generation": 1, "agent": "agent-1",
                "container": f"berth-{name}-1", "container_id": "c1", "ports": {},
                "port_list": [], "address": "127.0.0.2", "state": "running",
                "health": "healthy", "created_at": 1.0, "started_at": 1.0, "failures": 0,
                "error": None}
    store.state.transact(lambda tx: store.instances.stage_put(tx, instance))


def _install_testdb(app: Any, client: Any, admin: dict[str, str], name: str = "db") -> None:
    response = client.post("/api/v1/services", headers=admin, json={
        "package": "testdb", "version": "1.0.0", "name": name,
        "options": {"auth": {"password": PASSWORD}}})
    assert response.status_code == 202, response.json
    _settle(app, name)


def _take(client: Any, admin: dict[str, str], name: str = "db", **body: Any) -> Any:
    return client.post(f"/api/v1/services/{name}/backups", json=body or None, headers=admin)


def test_a_backup_records_the_service_and_never_a_secret(app, client, admin):
    _install_testdb(app, client, admin)
    response = _take(client, admin, keep=3)
    assert response.status_code == 202, response.json
    backup, deployment = response.json["backup"], response.json["deployment"]
    assert response.headers["Location"].endswith(f"/api/v1/backups/{backup['id']}")
    assert (deployment["kind"], deployment["backup"]) == ("backup", backup["id"])
    assert backup["deployment"] == deployment["id"]
    assert backup["package"] == {"name": "testdb", "version": "1.0.0", "repository": "universe"}
    assert (backup["generation"], backup["instance"], backup["agent"]) == (1, "db-1", "agent-1")
    assert backup["status"] == "queued" and backup["consistency"] == "hook"
    assert backup["keep"] == 3 and backup["reason"] == "manual"
    assert backup["volumes"] == [{"name": "db-data", "container_path": "/data", "size": None,
                                  "checksum": None}]
    assert backup["options"]["auth"]["password"] == MASK
    store = app.extensions["berth"].store
    raw = store.redis.get(store.backups.key(backup["id"]))
    text = raw if isinstance(raw, str) else raw.decode()
    assert PASSWORD not in text and "$sealed" not in text
    assert ("berth.deploy", [deployment["id"]]) in app.extensions["berth"]._enqueue.calls
    listed = client.get("/api/v1/services/db/backups", headers=admin).json["items"]
    assert [b["id"] for b in listed] == [backup["id"]]


def test_backups_are_refused_with_the_reason(app, client, admin, make_app, tokens):
    _install_testdb(app, client, admin)
    busy = _take(client, admin)
    assert busy.status_code == 202
    again = _take(client, admin)    # the first backup's deployment is still queued
    assert again.status_code == 409 and again.json["error"] == "deployment_in_progress"

    hello = client.post("/api/v1/services", json={"package": "hello", "name": "web"},
                        headers=admin)
    assert hello.status_code == 202
    _settle(app, "web")
    none = _take(client, admin, "web")
    assert none.status_code == 422 and none.json["error"] == "backup_unavailable"
    assert "no named volume" in none.json["message"]

    bad = _take(client, admin, keep=0)
    assert bad.status_code == 422 and "keep" in str(bad.json["details"])
    missing = _take(client, admin, "nope")
    assert missing.status_code == 404


def test_no_backup_store_is_a_clear_refusal(make_app, tokens):
    app = make_app()
    client = app.test_client()
    from server.auth import create_token

    admin = bearer(create_token(app.extensions["berth"].store, name="a", role="admin")[1])
    _install_testdb(app, client, admin)
    response = _take(client, admin)
    assert response.status_code == 422 and response.json["error"] == "backup_unavailable"
    assert "BERTH_BACKUP_AGENT" in response.json["hint"]
    assert app.extensions["berth"].store.backups.list() == []


def test_a_viewer_may_read_but_not_take_restore_delete_or_download(app, client, admin,
                                                                   tokens, backup_dir):
    _install_testdb(app, client, admin)
    backup = _complete(app, backup_dir, _take(client, admin).json["backup"])
    viewer = bearer(tokens["viewer"])
    assert client.get(f"/api/v1/backups/{backup['id']}", headers=viewer).status_code == 200
    for method, path in (("post", "/api/v1/services/db/backups"),
                         ("post", f"/api/v1/backups/{backup['id']}/restore"),
                         ("delete", f"/api/v1/backups/{backup['id']}"),
                         ("get", f"/api/v1/backups/{backup['id']}/download")):
        response = getattr(client, method)(path, headers=viewer)
        assert response.status_code == 403, (method, path, response.status_code)
        assert response.mimetype == "application/json"
    anonymous = client.get(f"/api/v1/backups/{backup['id']}/download")
    assert anonymous.status_code in (401, 403)


def test_unknown_or_malformed_backup_ids_are_not_found(client, admin):
    for backup_id in ("b-000000000000", "..%2F..%2Fetc", "b-0000", "x" * 300):
        response = client.get(f"/api/v1/backups/{backup_id}", headers=admin)
        assert response.status_code == 404, backup_id
        assert response.json["error"] in ("backup_not_found", "not_found")


def _complete(app: Any, backup_dir: Path, backup: dict[str, Any]) -> dict[str, Any]:
    """Make a queued backup a finished one whose files are in the directory store."""
    store = app.extensions["berth"].store
    folder = backup_dir / backup["id"] / "db-data"
    folder.mkdir(parents=True)
    payload = b"appendonly\n" * 1000
    with tarfile.open(folder / "volume.tar", "w") as archive:
        info = tarfile.TarInfo("./appendonlydir/appendonly.aof.1.incr.aof")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    store.backups.update(backup["id"], lambda b: {**b, "status": "succeeded", "size": 10240})
    store.deployments.update(backup["deployment"], lambda d: {**d, "status": "succeeded"})
    store.services.update("db", lambda s: {**s, "deployment": None, "status": "running"})
    return store.backups.get(backup["id"])


def test_a_download_is_a_tar_gz_of_the_record_and_the_files(app, client, admin, backup_dir):
    _install_testdb(app, client, admin)
    backup = _complete(app, backup_dir, _take(client, admin).json["backup"])
    response = client.get(f"/api/v1/backups/{backup['id']}/download", headers=admin)
    assert response.status_code == 200 and response.mimetype == "application/gzip"
    assert response.is_streamed
    assert f"{backup['id']}.tar.gz" in response.headers["Content-Disposition"]
    body = response.get_data()
    assert PASSWORD.encode() not in gzip.decompress(body)
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        record = json.load(archive.extractfile("backup.json"))
        member = archive.extractfile("db-data/appendonlydir/appendonly.aof.1.incr.aof")
        assert member is not None and member.read() == b"appendonly\n" * 1000
    assert record["id"] == backup["id"] and record["options"]["auth"]["password"] == MASK


def test_restore_and_delete_write_records_for_the_worker(app, client, admin, backup_dir):
    _install_testdb(app, client, admin)
    queued = _take(client, admin).json["backup"]
    not_yet = client.post(f"/api/v1/backups/{queued['id']}/restore", headers=admin)
    assert not_yet.status_code == 422 and "not complete" in not_yet.json["message"]
    assert client.delete(f"/api/v1/backups/{queued['id']}", headers=admin).status_code == 409

    backup = _complete(app, backup_dir, queued)
    restored = client.post(f"/api/v1/backups/{backup['id']}/restore", headers=admin)
    assert restored.status_code == 202, restored.json
    deployment = restored.json["deployment"]
    assert (deployment["kind"], deployment["restore"]) == ("restore", backup["id"])
    elsewhere = client.post(f"/api/v1/backups/{backup['id']}/restore", json={"to": "nope"},
                            headers=admin)
    assert elsewhere.status_code == 404

    app.extensions["berth"].store.deployments.update(deployment["id"],
                                                     lambda d: {**d, "status": "succeeded"})
    deleted = client.delete(f"/api/v1/backups/{backup['id']}", headers=admin)
    assert deleted.status_code == 202 and deleted.json["backup"]["status"] == "deleting"
    assert ("berth.delete_backup", [backup["id"]]) in app.extensions["berth"]._enqueue.calls


def test_upgrade_with_backup_and_rollback_with_data(app, client, admin, backup_dir):
    _install_testdb(app, client, admin)
    refused = client.post("/api/v1/services/db/rollback", json={"restore_data": True},
                          headers=admin)
    assert refused.status_code == 422 and refused.json["error"] == "backup_unavailable"

    upgrade = client.patch("/api/v1/services/db", json={"version": "1.1.0", "backup": True},
                           headers=admin)
    assert upgrade.status_code == 202, upgrade.json
    deployment = upgrade.json["deployment"]
    store = app.extensions["berth"].store
    backup = store.backups.get(deployment["backup"])
    assert (deployment["kind"], backup["reason"], backup["generation"]) == ("upgrade",
                                                                            "upgrade", 1)
    assert backup["package"]["version"] == "1.0.0"
    assert store.services.get("db")["generation"] == 2

    no_data = client.post("/api/v1/services/db/rollback", json={"restore_data": True},
                          headers=admin)
    assert no_data.status_code in (409, 422)   # the upgrade is still running, or no backup
    store.deployments.update(deployment["id"], lambda d: {**d, "status": "succeeded"})
    store.services.update("db", lambda s: {**s, "deployment": None})
    _complete_upgrade_backup(store, backup_dir, backup)
    rollback = client.post("/api/v1/services/db/rollback", json={"restore_data": True},
                           headers=admin)
    assert rollback.status_code == 202, rollback.json
    assert rollback.json["deployment"]["restore"] == backup["id"]
    assert rollback.json["deployment"]["rollback_to"] == 1


def _complete_upgrade_backup(store: Any, backup_dir: Path, backup: dict[str, Any]) -> None:
    store.backups.update(backup["id"], lambda b: {**b, "status": "succeeded"})


def test_a_spec_that_says_backup_before_upgrade_gets_one(app, client, admin):
    _install_testdb(app, client, admin)
    plain = client.patch("/api/v1/services/db", json={"version": "1.1.0"}, headers=admin)
    assert plain.status_code == 202 and "backup" not in plain.json["deployment"]
    store = app.extensions["berth"].store
    store.deployments.update(plain.json["deployment"]["id"],
                             lambda d: {**d, "status": "succeeded"})
    store.services.update("db", lambda s: {**s, "deployment": None, "spec": {
        **s["spec"], "backupBeforeUpgrade": True}})
    flagged = client.patch("/api/v1/services/db", json={"version": "1.0.0"}, headers=admin)
    assert flagged.status_code == 202, flagged.json
    backup = store.backups.get(flagged.json["deployment"]["backup"])
    assert backup["reason"] == "upgrade" and backup["status"] == "queued"
