"""Moving stateful instances on the real test bed, with Berth's test database (a real
Redis) and data written and read back through ``redis-cli``:

- ``berth move`` (CLI → live server → worker) keeps every key, the volume checksums on
  both agents are equal, the old copy is listed left over and ``berth volumes prune``
  removes it (and only it);
- a move of an instance whose agent does not answer is refused, naming the volume whose
  data would be lost, unless ``acceptEmpty``;
- draining an agent that holds two stateful services moves both, with their data.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from cluster_support import Cluster, until
from stateful_support import TestDb, checksum, remove_volumes, sample, testdb, unique

from worker import agents as agent_records
from worker.errors import MoveRefused
from worker.testbed.processes import stat_fields, tree_pids
from worker.volume_stream import volume_checksum, write_volume_archive
from worker.volumes import left_over_marks

pytestmark = pytest.mark.integration

KEYS = 1000


@pytest.fixture
def cluster(testbed) -> Iterator[Cluster]:
    c = Cluster(testbed)
    yield c
    c.uninstall_all()
    remove_volumes([c.docker(a.id) for a in testbed.agents], [f"{n}-data" for n in c.created])


def install(cluster: Cluster, name: str, password: str, **kwargs: Any) -> dict[str, Any]:
    """Install testdb 1.0.0 and wait until its one instance is healthy; that instance."""
    package, spec = testdb("1.0.0", name, password, **kwargs)
    cluster.created.append(name)
    deployment = cluster.ops.install(name, spec, package=package, actor="test")["deployment"]
    done = cluster.wait(deployment, timeout=90)
    assert done["status"] == "succeeded", done["error"]
    return until(lambda: healthy(cluster, name), 30, f"{name} healthy")


def healthy(cluster: Cluster, name: str) -> dict[str, Any] | None:
    found = [i for i in cluster.instances(name)
             if i["state"] == "running" and i["health"] == "healthy"]
    return found[0] if len(found) == 1 else None


def berth(live_server: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI against the live server."""
    command = "from server.client.cli import main; main()"
    return subprocess.run([sys.executable, "-c", command, *args],
                          env=live_server.cli_env(None), capture_output=True, text=True,
                          timeout=240, check=False)


@contextmanager
def frozen(testbed: Any, agent_id: str) -> Iterator[None]:
    """The agent's dockerd stopped with SIGSTOP; SIGCONT on the way out, whatever happened."""
    os.kill(testbed.pids[agent_id], signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(testbed.pids[agent_id], signal.SIGCONT)


def test_berth_move_keeps_every_key_and_prune_removes_the_old_copy(cluster, testbed,
                                                                     live_server):
    name, password = unique("moved"), secrets.token_urlsafe(16)
    first = install(cluster, name, password)
    source = first["agent"]
    target = next(a.id for a in testbed.agents if a.id != source)
    data = sample(KEYS, seed=secrets.token_hex(4))
    TestDb.of(first, password).write(data)

    moved = berth(live_server, "move", name, first["id"], "--to", target, "--wait")
    assert moved.returncode == 0, moved.stderr + moved.stdout

    second = until(lambda: healthy(cluster, name), 30, f"{name} healthy on {target}")
    assert second["agent"] == target and second["id"] != first["id"]
    assert second["volumes"] == [{"name": f"{name}-data", "agent": target}]
    assert TestDb.of(second, password).checksum() == checksum(data)
    assert [c.name for c in cluster.containers(name)] == [second["container"]]
    # the old copy is untouched since the copy: its checksum is the one of the stream
    [deployment] = [d for d in cluster.store.deployments.list(service=name)
                    if d["kind"] == "move"]
    [copied] = [s["message"] for s in deployment["steps"] if s["name"] == "copy"]
    old_sum = volume_checksum(cluster.docker(source), f"{name}-data")
    assert f"checksum {old_sum[:16]}, listings equal on both" in copied
    assert deployment["move"]["phase"] == "done"

    listed = berth(live_server, "volumes", "--service", name, "--json")
    assert listed.returncode == 0, listed.stderr
    states = {(v["agent"], v["state"], v.get("moved_to"))
              for v in json.loads(listed.stdout)["volumes"]}
    assert states == {(source, "left over", target), (target, "in use", None)}

    pruned = berth(live_server, "volumes", "prune", "--service", name, "--yes", "--json")
    assert pruned.returncode == 0, pruned.stderr
    assert json.loads(pruned.stdout)["removed"] == [f"{source}/{name}-data"]
    assert cluster.docker(source).volume_labels(f"{name}-data") is None
    assert cluster.docker(target).volume_labels(f"{name}-data") is not None
    assert f"{source}/{name}-data" not in left_over_marks(cluster.store)
    assert TestDb.of(second, password).checksum() == checksum(data)


def test_moving_an_unreachable_agents_instance_needs_accept_empty(cluster, testbed,
                                                                  live_server):
    name, password = unique("stranded"), secrets.token_urlsafe(16)
    first = install(cluster, name, password)
    TestDb.of(first, password).write(sample(10))
    home = first["agent"]
    target = next(a.id for a in testbed.agents if a.id != home)
    url = f"{live_server.api}/services/{name}/instances/{first['id']}/move"
    headers = {"Authorization": f"Bearer {live_server.admin_token}"}
    with frozen(testbed, home):
        until(lambda: cluster.store.agents.get(home)["state"] == "unreachable",
              testbed.unreachable_timeout + 30, f"{home} marked unreachable")
        with pytest.raises(MoveRefused, match=f"without the data of volume {name}-data"):
            cluster.ops.move(name, first["id"], target, actor="test")
        answer = requests.post(url, json={"to": target}, headers=headers, timeout=10)
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"] == "move_refused"
        assert f"{name}-data" in answer.json()["message"]
        assert [i["id"] for i in cluster.instances(name)] == [first["id"]]

        answer = requests.post(url, json={"to": target, "acceptEmpty": True},
                               headers=headers, timeout=10)
        assert answer.status_code == 202, answer.text
        done = cluster.wait(answer.json()["deployment"], timeout=90)
        assert done["status"] == "succeeded", done["error"]
        second = until(lambda: healthy(cluster, name), 30, f"{name} healthy on {target}")
        assert second["agent"] == target
        assert TestDb.of(second, password).keys() == []   # it was told: empty
        assert left_over_marks(cluster.store)[f"{home}/{name}-data"]["moved_to"] == target
    until(lambda: cluster.containers(name, [home]) == [], 60, f"{home} swept")
    assert cluster.docker(home).volume_labels(f"{name}-data") is not None   # data kept


def test_draining_an_agent_moves_both_stateful_services_with_their_data(cluster, testbed):
    store = cluster.store
    home, others = "agent-1", [a.id for a in testbed.agents if a.id != "agent-1"]
    names = [unique("drained"), unique("drained")]
    password = secrets.token_urlsafe(16)
    datasets = {n: sample(300, prefix=n.replace("-", "_"), seed=n) for n in names}
    try:
        for other in others:   # both land on agent-1
            agent_records.drain(store, other, actor="test")
        for name in names:
            instance = install(cluster, name, password)
            assert instance["agent"] == home
            TestDb.of(instance, password).write(datasets[name])
        for other in others:
            agent_records.activate(store, other, actor="test")
        agent_records.drain(store, home, actor="test",
                            enqueue=lambda task, args: cluster.app.send_task(task, args=args))

        def moved() -> list[dict[str, Any]] | None:
            found = [healthy(cluster, n) for n in names]
            return found if all(i and i["agent"] != home for i in found) else None

        after = until(moved, 180, lambda: f"both moved: {[cluster.instances(n) for n in names]}")
        for name, instance in zip(names, after, strict=True):
            assert TestDb.of(instance, password).checksum() == checksum(datasets[name])
            mark = until(lambda n=name: left_over_marks(store).get(f"{home}/{n}-data"), 30,
                         f"the old copy of {name} marked left over")   # once healthy
            assert mark["moved_to"] == instance["agent"]
            kinds = [d["kind"] for d in store.deployments.list(service=name)]
            steps = [s["name"] for d in store.deployments.list(service=name)
                     for s in d["steps"]]
            assert "recover" in kinds and "copy" in steps
    finally:
        for agent_id in [home, *others]:
            agent_records.activate(store, agent_id, actor="test")


def test_a_move_that_fails_midway_runs_the_instance_on_its_old_volumes_again(cluster,
                                                                            testbed):
    name, password = unique("homing"), secrets.token_urlsafe(16)
    first = install(cluster, name, password)
    source = first["agent"]
    target = next(a.id for a in testbed.agents if a.id != source)
    data = sample(200, seed=secrets.token_hex(4))
    TestDb.of(first, password).write(data)
    # the target holds a volume of that name already (say, a copy an old move left)
    squatter = cluster.docker(target)
    squatter.ensure_volume(f"{name}-data", {"berth-test.case": "1"})
    before = volume_checksum(squatter, f"{name}-data")

    deployment = cluster.ops.move(name, first["id"], target, actor="test")
    done = cluster.wait(deployment, timeout=120)
    assert done["status"] == "failed"
    assert f"{target} already holds a volume {name}-data" in done["error"]
    assert f"runs on {source} again" in done["error"]
    back = until(lambda: healthy(cluster, name), 60, f"{name} healthy on {source} again")
    assert back["agent"] == source
    assert TestDb.of(back, password).checksum() == checksum(data)
    assert volume_checksum(squatter, f"{name}-data") == before   # not ours: untouched
    assert f"{source}/{name}-data" not in left_over_marks(cluster.store)


def upgrade(cluster: Cluster, name: str, password: str, **kwargs: Any) -> dict[str, Any]:
    """Upgrade ``name`` to testdb 1.1.0 (options and constraints given); the deployment."""
    package, spec = testdb("1.1.0", name, password, **kwargs)
    deployment = cluster.ops.update(name, spec=spec, package=package, actor="test")
    return cluster.wait(deployment, timeout=120)


def test_an_upgrade_keeps_a_stateful_instance_on_its_agent_or_moves_its_data(cluster,
                                                                            testbed):
    name, password = unique("upgraded"), secrets.token_urlsafe(16)
    first = install(cluster, name, password)
    home = first["agent"]
    data = sample(300, seed=secrets.token_hex(4))
    TestDb.of(first, password).write(data)

    done = upgrade(cluster, name, password)
    assert done["status"] == "succeeded", done["error"]
    second = until(lambda: healthy(cluster, name), 30, f"{name} healthy after the upgrade")
    assert second["agent"] == home and second["generation"] == 2   # it may stay: it stays
    assert "copy" not in [s["name"] for s in done["steps"]]
    assert TestDb.of(second, password).checksum() == checksum(data)

    # the new generation may no longer run there: placement moves it, and its data
    elsewhere = next(a.id for a in testbed.agents if a.id != home)
    done = upgrade(cluster, name, password, constraints=[["hostname", "LIKE", elsewhere]])
    assert done["status"] == "succeeded", done["error"]
    third = until(lambda: healthy(cluster, name), 30, f"{name} healthy on {elsewhere}")
    assert third["agent"] == elsewhere and third["generation"] == 3
    assert "copy" in [s["name"] for s in done["steps"]]
    assert TestDb.of(third, password).checksum() == checksum(data)
    assert left_over_marks(cluster.store)[f"{home}/{name}-data"]["moved_to"] == elsewhere


BULK_MIB = 256


def _bulk_tar(mib: int) -> Iterator[bytes]:
    """A tar of one file of ``mib`` distinct 1 MiB blocks."""
    info = tarfile.TarInfo("./bulk.bin")
    info.size = mib << 20
    yield info.tobuf(format=tarfile.PAX_FORMAT)
    for n in range(mib):
        yield hashlib.sha256(str(n).encode()).digest() * (1 << 15)
    yield b"\0" * 1024


def _faults(pid: int) -> int:
    """Minor page faults of ``pid`` and every process below it, so far."""
    return sum(int(f[7]) for p in tree_pids(pid) if (f := stat_fields(p)))


def test_the_worker_relays_a_volume_without_a_page_fault_per_page(cluster, testbed):
    """The pool process that copies keeps reusing the memory of the chunks it relays
    (``worker.celery_app.keep_stream_buffers``): without it, every 4 KiB relayed cost a
    page fault, a second of CPU per GiB."""
    name, password = unique("relayed"), secrets.token_urlsafe(16)
    first = install(cluster, name, password)
    source = cluster.docker(first["agent"])
    write_volume_archive(source, f"{name}-data", _bulk_tar(BULK_MIB))
    target = next(a.id for a in testbed.agents if a.id != first["agent"])
    before = _faults(testbed.pids["worker"])
    done = cluster.wait(cluster.ops.move(name, first["id"], target, actor="test"), timeout=120)
    faults = _faults(testbed.pids["worker"]) - before
    assert done["status"] == "succeeded", done["error"]
    pages = (BULK_MIB << 20) // 4096
    assert faults < pages // 4, f"{faults} page faults to relay {pages} pages"
    second = until(lambda: healthy(cluster, name), 30, f"{name} healthy on {target}")
    assert volume_checksum(cluster.docker(target), f"{name}-data") == \
        volume_checksum(source, f"{name}-data")
    assert second["agent"] == target
