"""Berth's test database on the real test bed: a real Redis, installed from the universe,
keeps data written through its own client across a restart of the service.

Once through ``DesiredState`` (what the API calls) and once through the ``berth`` CLI
against the live server (``berth install`` / ``berth restart``). A restart replaces the
container; the data comes back only if the named volume and the
append-only file in it (RDB snapshots are off in ``testdb``) outlive the container.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from typing import Any

import pytest
from cluster_support import Cluster, until
from stateful_support import (
    TestDb,
    checksum,
    dbsize_in_container,
    remove_volumes,
    sample,
    testdb,
    unique,
)

pytestmark = pytest.mark.integration

KEYS = 1000


@pytest.fixture
def cluster(testbed):
    c = Cluster(testbed)
    yield c
    c.uninstall_all()
    remove_volumes([c.docker(a.id) for a in testbed.agents], [f"{n}-data" for n in c.created])


def install_testdb(cluster: Cluster, name: str, password: str, agent: str) -> dict:
    """Install testdb 1.0.0 pinned to ``agent``; the finished deployment."""
    package, spec = testdb("1.0.0", name, password,
                           constraints=[["hostname", "LIKE", agent]])
    cluster.created.append(name)
    deployment = cluster.ops.install(name, spec, package=package, actor="test")["deployment"]
    return cluster.wait(deployment, timeout=90)


def healthy(cluster: Cluster, name: str) -> dict | None:
    """The service's one instance once it runs healthy, else None."""
    found = [i for i in cluster.instances(name)
             if i["state"] == "running" and i["health"] == "healthy"]
    return found[0] if len(found) == 1 else None


def test_testdb_keeps_a_thousand_keys_across_a_restart(cluster):
    name, password = unique("keeper"), secrets.token_urlsafe(16)
    installed = install_testdb(cluster, name, password, "agent-2")
    assert installed["status"] == "succeeded", installed["error"]
    first = until(lambda: healthy(cluster, name), 30, f"{name} healthy")
    assert first["agent"] == "agent-2"
    db = TestDb.of(first, password)
    assert db.ping() and db.keys() == []   # a new volume: nothing there before

    data = sample(KEYS, seed=secrets.token_hex(4))
    db.write(data)
    assert db.checksum() == checksum(data)
    assert dbsize_in_container(cluster.docker("agent-2"), first["container"]) == KEYS

    restarted = cluster.wait(cluster.ops.restart(name, actor="test"), timeout=90)
    assert restarted["status"] == "succeeded", restarted["error"]
    second = until(lambda: healthy(cluster, name), 30, f"{name} healthy again")
    assert second["id"] != first["id"] and second["agent"] == "agent-2"
    containers = cluster.containers(name)
    assert [c.name for c in containers] == [second["container"]]

    after = TestDb.of(second, password)
    assert after.checksum() == checksum(data)
    assert dbsize_in_container(cluster.docker("agent-2"), second["container"]) == KEYS


def test_testdb_refuses_a_wrong_password(cluster):
    """The health check and the helper both need the real password (no open server)."""
    name, password = unique("guarded"), secrets.token_urlsafe(16)
    installed = install_testdb(cluster, name, password, "agent-3")
    assert installed["status"] == "succeeded", installed["error"]
    instance = until(lambda: healthy(cluster, name), 30, f"{name} healthy")
    assert TestDb.of(instance, password).ping()
    assert not TestDb.of(instance, "not-the-password").ping()


def berth(live_server: Any, *args: str, stdin: str | None = None
          ) -> subprocess.CompletedProcess[str]:
    """Run the CLI against the live server (options on stdin keep the password off argv)."""
    command = "from server.client.cli import main; main()"
    return subprocess.run([sys.executable, "-c", command, *args], input=stdin,
                          env=live_server.cli_env(None), capture_output=True, text=True,
                          timeout=240, check=False)


def cli_instance(live_server: Any, name: str) -> dict[str, Any]:
    """The service's one running instance, as ``berth status --json`` shows it."""
    shown = berth(live_server, "status", name, "--json")
    assert shown.returncode == 0, shown.stderr
    running = [i for i in json.loads(shown.stdout)["instances_list"]
               if i["state"] == "running" and i["health"] == "healthy"]
    assert len(running) == 1, running
    return running[0]


def test_testdb_keeps_its_data_across_berth_restart(live_server, testbed):
    name, password = unique("cli-testdb"), secrets.token_urlsafe(16)
    options = json.dumps({"auth": {"password": password}})
    installed = berth(live_server, "install", "testdb@1.0.0", "--name", name,
                      "--options", "-", "--constraint", "hostname:LIKE:agent-1", "--wait",
                      stdin=options)
    try:
        assert installed.returncode == 0, installed.stderr
        first = cli_instance(live_server, name)
        data = sample(KEYS, prefix="cli", seed=secrets.token_hex(4))
        assert TestDb.of(first, password).keys() == []
        TestDb.of(first, password).write(data)

        restarted = berth(live_server, "restart", name, "--wait")
        assert restarted.returncode == 0, restarted.stderr
        second = cli_instance(live_server, name)
        assert second["id"] != first["id"] and second["agent"] == first["agent"] == "agent-1"
        assert TestDb.of(second, password).checksum() == checksum(data)
    finally:
        removed = berth(live_server, "uninstall", name, "--yes", "--wait")
        remove_volumes([testbed.agent(i) for i in range(1, len(testbed.agents) + 1)],
                       [f"{name}-data"])
    assert removed.returncode == 0, removed.stderr
