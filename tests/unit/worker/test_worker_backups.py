"""The pure parts of backups: which instance is copied, where a restored volume goes,
what a record keeps of the options, and the shared-directory store's files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from catalog.options import MASK
from worker.backup_plan import combined_checksum, map_volumes, new_backup, pick_instance
from worker.backup_store import DirectoryBackupStore, check_backup_id
from worker.errors import BackupUnavailable, InvalidRequest


def instance(id_: str, created: float, state: str = "running",
             health: str = "healthy") -> dict[str, Any]:
    return {"id": id_, "service": "db", "generation": 1, "agent": "agent-1",
            "created_at": created, "state": state, "health": health}


def test_the_oldest_healthy_instance_is_copied_unless_one_is_named() -> None:
    found = [instance("db-c", 3), instance("db-a", 1, health="unknown", state="starting"),
             instance("db-b", 2), instance("db-x", 0, state="failed")]
    assert pick_instance(found)["id"] == "db-b"
    assert pick_instance(found, "db-a")["id"] == "db-a"
    with pytest.raises(BackupUnavailable, match="no running instance 'db-x'"):
        pick_instance(found, "db-x")
    with pytest.raises(BackupUnavailable, match="no instance to back up"):
        pick_instance([instance("db-x", 0, state="failed")])


def backup(*volumes: tuple[str, str]) -> dict[str, Any]:
    return {"volumes": [{"name": n, "container_path": p, "size": 1, "checksum": "c"}
                        for n, p in volumes]}


def test_a_restore_maps_volumes_by_mount_path_then_by_place() -> None:
    spec = {"volumes": [{"name": "copy-logs", "containerPath": "/logs"},
                        {"name": "copy-data", "containerPath": "/data"},
                        {"hostPath": "/srv/x", "containerPath": "/x"}]}
    assert map_volumes(backup(("db-data", "/data"), ("db-logs", "/logs")), spec) == {
        "db-data": "copy-data", "db-logs": "copy-logs"}
    assert map_volumes(backup(("db-data", "/var/lib/db")), spec) == {"db-data": "copy-logs"}
    with pytest.raises(BackupUnavailable, match="no named volume for db-3"):
        map_volumes(backup(("db-1", "/a"), ("db-2", "/b"), ("db-3", "/c")), spec)


def test_a_record_masks_secret_and_sealed_options() -> None:
    service = {"name": "db", "package": {"name": "testdb", "version": "1.0.0",
                                         "repository": "universe"},
               "options": {"auth": {"password": {"$sealed": "gAAAA"}}, "port": 1,
                           "other": {"$sealed": "gAAAA"}},
               "secret_paths": ["/auth/password"],
               "spec": {"volumes": [{"name": "db-data", "containerPath": "/data"}]}}
    record = new_backup(service, instance("db-1", 1), store={"kind": "directory",
                                                             "path": "/b"}, actor="t")
    assert record["options"] == {"auth": {"password": MASK}, "port": 1, "other": MASK}
    assert record["consistency"] == "stopped" and record["status"] == "queued"
    old = {**service, "options": {"a": "clear"}}
    del old["secret_paths"]   # a record from before paths were kept: every value masked
    assert new_backup(old, instance("db-1", 1), store={}, actor="t")["options"] == {"a": MASK}
    with pytest.raises(BackupUnavailable, match="no named volume"):
        new_backup({**service, "spec": {}}, instance("db-1", 1), store={}, actor="t")


def test_the_combined_checksum_needs_every_volume() -> None:
    one = {"name": "a", "container_path": "/a", "size": 1, "checksum": "x"}
    assert len(combined_checksum([one]) or "") == 64
    assert combined_checksum([one, {**one, "checksum": None}]) is None


def test_backup_ids_are_the_only_paths_a_store_uses(tmp_path: Path) -> None:
    store = DirectoryBackupStore(tmp_path)
    for bad in ("../etc", "b-12", "b-0123456789ab/..", ""):
        with pytest.raises(InvalidRequest):
            check_backup_id(bad)
    with pytest.raises(InvalidRequest):
        store.write("b-0123456789ab", "../x", [b""])
    store.write("b-0123456789ab", "db-data", iter([b"a" * 10, b"b" * 5]))
    assert b"".join(store.read("b-0123456789ab", "db-data")) == b"a" * 10 + b"b" * 5
    assert not list(tmp_path.rglob("*.part"))
    store.delete("b-0123456789ab")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(BackupUnavailable):
        store.read("b-0123456789ab", "db-data")


def test_retention_keeps_the_newest_complete_backups_and_deletes_their_files(
        fresh_redis_url: str, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from worker import deployments
    from worker.backups import DataSteps
    from worker.settings import WorkerSettings
    from worker.store import Store

    store = Store.from_url(fresh_redis_url)
    files = DirectoryBackupStore(tmp_path)
    service = {"name": "db", "package": {"name": "testdb", "version": "1.0.0",
                                         "repository": "universe"},
               "options": {}, "secret_paths": [],
               "spec": {"volumes": [{"name": "db-data", "containerPath": "/data"}]}}
    made = []
    for n, status in enumerate(("succeeded", "failed", "succeeded", "succeeded")):
        record = new_backup(service, instance("db-1", 1), store=files.describe(), actor="t")
        record.update(status=status, created_at=float(n))
        files.write(record["id"], "db-data", [b"data"])
        store.state.transact(lambda tx, r=record: store.backups.stage_put(tx, r))
        made.append(record["id"])
    deployment = deployments.new("db", "backup", 1, 1, "t")
    store.state.transact(lambda tx: store.deployments.stage_put(tx, deployment))
    steps: list[tuple[str, str]] = []
    run = SimpleNamespace(store=store, settings=WorkerSettings(), pool=None,
                          id=deployment["id"], name="db", kind="backup", vacated=[],
                          _update=lambda step=None, **_: steps.append(step))
    assert DataSteps(run).prune("db", 2) == [made[0]]
    left = [b["id"] for b in store.backups.list("db")]
    assert left == [made[3], made[2], made[1]]   # the failed one is not counted, nor deleted
    assert not (tmp_path / made[0]).exists() and (tmp_path / made[2]).exists()
    assert steps and "deleted " + made[0] in steps[-1][1]
