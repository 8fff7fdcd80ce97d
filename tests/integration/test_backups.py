"""Backups and restores on the real test bed, with real data written and read back through
the database's own client (``redis-cli`` against ``testdb``, a real Redis).

Everything goes through the front door: the ``berth`` CLI against the live server, which
writes the records and leaves the copying to the bed's worker; the worker streams the
volumes from the instance's agent into the backup store, the named volume
``berth-backups`` on agent-3 (the bed sets ``BERTH_BACKUP_AGENT=agent-3``).

- stopped for the copy: backup, delete the data (FLUSHALL), restore: every key is back,
  and the download is a ``.tar.gz`` of the backup's record and files;
- with the package's hook (writes paused while the copy runs): a backup taken while a
  client writes pairs of keys in transactions restores to a state where every pair is
  whole and the writes form an unbroken prefix — nothing torn, nothing missing before
  the backup began — and the server stayed up (same container) through the backup;
- ``upgrade --backup`` then ``rollback --restore-data``: both the version and the data
  come back;
- the agent that held the data cannot take the service (its ``dockerd`` frozen: it is
  unreachable): the restore is refused, naming it; with ``--agent`` the data is written
  onto another agent and the service runs there with every key, the old copy kept and
  listed as left over.
"""

from __future__ import annotations

import gzip
import json
import os
import secrets
import signal
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from cluster_support import until
from stateful_support import RedisCliError, TestDb, checksum, remove_volumes, sample, unique

from catalog.options import MASK
from worker.volume_stream import volume_checksum

pytestmark = pytest.mark.integration

KEYS = 500
STORE_AGENT, STORE_VOLUME = "agent-3", "berth-backups"


def berth(live_server: Any, *args: str, stdin: str | None = None
          ) -> subprocess.CompletedProcess[str]:
    """Run the CLI against the live server (options on stdin keep the password off argv)."""
    command = "from server.client.cli import main; main()"
    return subprocess.run([sys.executable, "-c", command, *args], input=stdin,
                          env=live_server.cli_env(None), capture_output=True, text=True,
                          timeout=300, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}{result.stdout}"
    return result.stdout


def as_json(live_server: Any, *args: str) -> Any:
    return json.loads(ok(berth(live_server, *args, "--json")))


def healthy(live_server: Any, name: str) -> dict[str, Any] | None:
    """The service's one running healthy instance, as ``berth status`` shows it."""
    shown = as_json(live_server, "status", name)
    running = [i for i in shown["instances_list"]
               if i["state"] == "running" and i["health"] == "healthy"]
    return running[0] if len(running) == 1 and shown["deployment"] is None else None


@pytest.fixture
def installed(live_server, testbed):
    """Install testdb services by CLI; uninstall them and remove their volumes after."""
    names: list[str] = []

    def install(base: str, agent: str, version: str = "1.0.0",
                **options: Any) -> tuple[str, str, dict[str, Any]]:
        name, password = unique(base), secrets.token_urlsafe(16)
        names.append(name)
        body = json.dumps({**options, "auth": {"password": password}})
        ok(berth(live_server, "install", f"testdb@{version}", "--name", name, "--options",
                 "-", "--constraint", f"hostname:LIKE:{agent}", "--wait", stdin=body))
        return name, password, until(lambda: healthy(live_server, name), 60, f"{name} healthy")

    yield install
    for name in names:
        berth(live_server, "uninstall", name, "--yes", "--wait")
        for backup in as_json(live_server, "backup", "list", name):
            berth(live_server, "backup", "delete", backup["id"], "--yes")
    remove_volumes([testbed.agent(i) for i in range(1, len(testbed.agents) + 1)],
                   [f"{n}-data" for n in names])


def only_backup(live_server: Any, name: str) -> dict[str, Any]:
    backups = as_json(live_server, "backup", "list", name)
    assert len(backups) == 1, backups
    return backups[0]


def test_backup_then_delete_then_restore_brings_the_data_back(live_server, testbed,
                                                              installed, tmp_path):
    name, password, first = installed("keep", "agent-1", backup={"pauseWrites": False})
    data = sample(KEYS, seed=secrets.token_hex(4))
    TestDb.of(first, password).write(data)

    ok(berth(live_server, "backup", "create", name, "--wait"))
    backup = only_backup(live_server, name)
    assert backup["status"] == "succeeded", backup["error"]
    assert backup["consistency"] == "stopped"
    assert backup["package"] == {"name": "testdb", "version": "1.0.0",
                                 "repository": "universe"}
    assert backup["generation"] == 1 and backup["agent"] == "agent-1"
    assert backup["options"]["auth"]["password"] == MASK
    assert password not in json.dumps(backup)
    assert backup["size"] > 0 and len(backup["checksum"]) == 64
    volume = backup["volumes"][0]
    assert volume["name"] == f"{name}-data" and volume["container_path"] == "/data"
    # the copy on the backup agent equals the volume, file for file
    stored = volume_checksum(testbed.agent(3), STORE_VOLUME, f"/{backup['id']}/{name}-data")
    assert stored == volume["checksum"]

    # stopped for the copy, then started again on its own volume with all its data
    after_backup = until(lambda: healthy(live_server, name), 60, f"{name} healthy")
    assert after_backup["agent"] == "agent-1"
    db = TestDb.of(after_backup, password)
    assert db.checksum() == checksum(data)

    db.cli("FLUSHALL")
    assert db.keys() == []

    ok(berth(live_server, "backup", "restore", backup["id"], "--yes", "--wait"))
    restored = until(lambda: healthy(live_server, name), 60, f"{name} healthy after restore")
    assert restored["agent"] == "agent-1"
    assert TestDb.of(restored, password).checksum() == checksum(data)

    target = tmp_path / "backup.tar.gz"
    ok(berth(live_server, "backup", "download", backup["id"], "-o", str(target)))
    with tarfile.open(target, "r:gz") as archive:
        names = archive.getnames()
        record = json.load(archive.extractfile("backup.json"))  # type: ignore[arg-type]
    assert record["id"] == backup["id"] and password not in json.dumps(record)
    assert any(n.startswith(f"./{name}-data/") for n in names), names[:10]
    assert gzip.open(target).read(2)  # a real gzip stream

    ok(berth(live_server, "backup", "delete", backup["id"], "--yes"))
    until(lambda: as_json(live_server, "backup", "list", name) == [], 60,
          f"backup {backup['id']} deleted")
    gone = testbed.agent(3).run_toolbox(
        "berth/toolbox:1.0.0", ["/bin/sh", "-c", f"test ! -e /v/{backup['id']}"],
        binds={STORE_VOLUME: {"bind": "/v", "mode": "ro"}})
    assert gone.exit_code == 0, gone.output


class PairWriter(threading.Thread):
    """Writes ``a:n`` and ``b:n`` in one MULTI/EXEC each, n = 0, 1, 2, … until stopped;
    ``acked`` is how many transactions the server confirmed."""

    def __init__(self, db: TestDb) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.acked = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                n = self.acked
                self.db.cli(commands=f"MULTI\nSET a:{n:06d} {n}\nSET b:{n:06d} {n}\nEXEC\n")
                self.acked = n + 1
        except (RedisCliError, subprocess.TimeoutExpired) as error:
            self.error = error


def test_a_hook_backup_while_writing_restores_a_consistent_state(live_server, installed):
    name, password, first = installed("busy", "agent-2")
    db = TestDb.of(first, password)
    writer = PairWriter(db)
    writer.start()
    until(lambda: writer.acked >= 50 or writer.error, 30, "the first writes")
    acked_before = writer.acked
    try:
        ok(berth(live_server, "backup", "create", name, "--wait"))
        until(lambda: writer.acked >= acked_before + 50 or writer.error, 30,
              "writes after the backup")
    finally:
        writer.stop.set()
        writer.join(60)
    assert writer.error is None, writer.error
    backup = only_backup(live_server, name)
    assert backup["status"] == "succeeded", backup["error"]
    assert backup["consistency"] == "hook"
    # the server stayed up: the same instance and container served through the backup
    during = until(lambda: healthy(live_server, name), 30, f"{name} healthy")
    assert (during["id"], during["container_id"]) == (first["id"], first["container_id"])
    total = writer.acked

    db.cli("FLUSHALL")
    ok(berth(live_server, "backup", "restore", backup["id"], "--yes", "--wait"))
    restored = TestDb.of(until(lambda: healthy(live_server, name), 60, "restored"), password)
    a = {k.split(":")[1] for k in restored.keys("a:*")}
    b = {k.split(":")[1] for k in restored.keys("b:*")}
    assert a == b, f"torn transactions: {sorted(a ^ b)[:5]}"
    count = len(a)
    assert a == {f"{n:06d}" for n in range(count)}, "the writes restored are not a prefix"
    assert acked_before <= count < total, (acked_before, count, total)
    values = restored.dump("a:*")
    assert all(int(v) == int(k.split(":")[1]) for k, v in values.items())


def test_upgrade_with_backup_then_rollback_with_data(live_server, installed):
    name, password, first = installed("roll", "agent-1")
    before = sample(KEYS, prefix="v1", seed=secrets.token_hex(4))
    TestDb.of(first, password).write(before)

    ok(berth(live_server, "upgrade", name, "@1.1.0", "--backup", "--wait"))
    upgraded = as_json(live_server, "status", name)
    assert upgraded["package"]["version"] == "1.1.0" and upgraded["generation"] == 2
    backup = only_backup(live_server, name)
    assert (backup["status"], backup["reason"], backup["generation"]) == (
        "succeeded", "upgrade", 1)
    assert backup["package"]["version"] == "1.0.0"
    steps = [s["name"] for s in as_json(live_server, "deployments", "--id",
                                        backup["deployment"])["steps"]]
    assert steps.index("backup") < steps.index("place"), steps

    second = until(lambda: healthy(live_server, name), 60, f"{name} healthy on 1.1.0")
    db = TestDb.of(second, password)
    assert db.checksum() == checksum(before)
    db.write(sample(100, prefix="v2"))
    db.cli("DEL", "v1:000000", "v1:000001")

    ok(berth(live_server, "rollback", name, "--restore-data", "--wait"))
    back = as_json(live_server, "status", name)
    assert back["package"]["version"] == "1.0.0" and back["generation"] == 3
    third = until(lambda: healthy(live_server, name), 60, f"{name} healthy on 1.0.0")
    assert third["agent"] == "agent-1"
    assert TestDb.of(third, password).checksum() == checksum(before)


def test_refusals_are_clear(live_server, installed):
    """No backup to restore with: a rollback with its data is refused before anything
    changes; an unknown backup id is not found."""
    name, _password, _first = installed("refuse", "agent-3")
    refused = berth(live_server, "rollback", name, "--restore-data")
    assert refused.returncode != 0
    assert "no backup of generation" in refused.stderr + refused.stdout
    assert as_json(live_server, "status", name)["generation"] == 1
    missing = berth(live_server, "backup", "show", "b-000000000000")
    assert missing.returncode != 0 and "no backup" in missing.stderr + missing.stdout




@contextmanager
def frozen(testbed: Any, agent_id: str) -> Iterator[None]:
    """The agent's dockerd stopped with SIGSTOP; SIGCONT on the way out, whatever happened."""
    os.kill(testbed.pids[agent_id], signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(testbed.pids[agent_id], signal.SIGCONT)


def agent_state(live_server: Any, agent_id: str) -> str:
    return next(a["state"] for a in as_json(live_server, "agents") if a["id"] == agent_id)


def settled_waiting(live_server: Any, name: str) -> dict[str, Any] | None:
    """The service once its one instance is lost (waiting for its agent) and no
    deployment runs."""
    shown = as_json(live_server, "status", name)
    states = [i["state"] for i in shown["instances_list"]]
    return shown if states == ["lost"] and shown["deployment"] is None else None


def test_a_restore_never_lands_on_an_empty_volume_elsewhere(live_server, testbed, installed):
    name, password, first = installed("away", "agent-[12]")
    home = first["agent"]
    other = "agent-2" if home == "agent-1" else "agent-1"
    data = sample(KEYS, seed=secrets.token_hex(4))
    TestDb.of(first, password).write(data)
    ok(berth(live_server, "backup", "create", name, "--wait"))
    backup = only_backup(live_server, name)
    assert backup["status"] == "succeeded" and backup["agent"] == home, backup["error"]

    with frozen(testbed, home):
        until(lambda: agent_state(live_server, home) == "unreachable",
              testbed.unreachable_timeout + 30, f"{home} marked unreachable")
        until(lambda: settled_waiting(live_server, name), 60, f"{name} waiting for {home}")
        refused = berth(live_server, "backup", "restore", backup["id"], "--yes", "--wait")
        assert refused.returncode != 0
        said = refused.stderr + refused.stdout
        assert f"cannot restore {name!r}: agent {home}, which holds its data, is " \
               f"unreachable" in said, said
        assert "--agent AGENT" in said
        # nothing changed: the instance still waits for its agent
        assert [i["id"] for i in settled_waiting(live_server, name)["instances_list"]] == [
            first["id"]]

        ok(berth(live_server, "backup", "restore", backup["id"], "--agent", other, "--yes",
                 "--wait"))
        restored = until(lambda: healthy(live_server, name), 60, f"{name} on {other}")
        assert restored["agent"] == other
        assert restored["volumes"] == [{"name": f"{name}-data", "agent": other}]
        assert TestDb.of(restored, password).checksum() == checksum(data)

    # the old copy stays on its agent, listed as left over, pointing where the data went
    def listed() -> set[tuple[str, str, Any]] | None:
        volumes = as_json(live_server, "volumes", "--service", name)["volumes"]
        found = {(v["agent"], v["state"], v.get("moved_to")) for v in volumes}
        return found if len(found) == 2 else None
    assert until(listed, 60, f"{name}'s volumes on both agents") == {
        (home, "left over", other), (other, "in use", None)}
    old = testbed.agent(home)
    assert old.volume_labels(f"{name}-data") is not None
    assert TestDb.of(until(lambda: healthy(live_server, name), 30, "still healthy"),
                     password).checksum() == checksum(data)
