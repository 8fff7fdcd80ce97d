"""Resident instances on the real test bed: an instance on a named volume waits for the
agent that holds it (its ``dockerd`` frozen with SIGSTOP) and runs there again, data and
all; one whose volume is ``replaceable`` moves elsewhere, as any other."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from cluster_support import Cluster, hello, serving, until

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(testbed):
    c = Cluster(testbed)
    yield c
    c.uninstall_all()


def install_with_volume(cluster: Cluster, name: str, volume: dict[str, Any]) -> dict[str, Any]:
    """Install one ``hello`` instance mounting ``volume`` at /data; wait for it."""
    package, spec = hello("1.0.0", name, 1)
    spec["volumes"] = [*spec.get("volumes", []), {"containerPath": "/data", **volume}]
    cluster.created.append(name)
    deployment = cluster.ops.install(name, spec, package=package, actor="test")["deployment"]
    finished = cluster.wait(deployment)
    assert finished["status"] == "succeeded", finished["error"]
    [instance] = cluster.instances(name)
    return instance


@contextmanager
def frozen(testbed: Any, agent_id: str) -> Iterator[None]:
    """The agent's dockerd stopped with SIGSTOP (it accepts connections, never answers;
    its containers keep running); SIGCONT on the way out, whatever happened."""
    pid = testbed.pids[agent_id]
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def volumes_named(cluster: Cluster, agent_id: str, name: str) -> list[str]:
    return [v.name for v in cluster.docker(agent_id).client.volumes.list()
            if v.name == name]


def test_a_resident_instance_waits_for_its_frozen_agent_and_runs_there_again(cluster, testbed):
    instance = install_with_volume(cluster, "ledger", {"name": "ledger-data"})
    home = instance["agent"]
    assert instance["resident"] is True
    assert instance["volumes"] == [{"name": "ledger-data", "agent": home}]
    engine = cluster.docker(home)
    wrote = engine.exec_check(instance["container"], "echo 'entry 42' > /data/ledger.txt")
    assert wrote.ok, wrote.output
    others = [a.id for a in testbed.agents if a.id != home]
    for agent_id in others:  # no volume of that name elsewhere before the test
        for info in cluster.docker(agent_id).client.volumes.list():
            if info.name == "ledger-data":
                info.remove(force=True)

    with frozen(testbed, home):
        until(lambda: cluster.store.agents.get(home)["state"] == "unreachable",
              testbed.unreachable_timeout + 30, f"{home} marked unreachable")
        waiting = f"waiting for {home} (holds volume ledger-data)"
        service = until(lambda: (lambda s: s["status"] == "degraded" and s)(
            cluster.store.services.get("ledger")), 30, "ledger degraded")
        assert service["status_reason"] == waiting
        [lost] = cluster.instances("ledger")
        assert (lost["id"], lost["state"], lost["error"]) == (instance["id"], "lost", waiting)
        # twice the unreachable timeout, the reconciler passing every second: nothing moves
        deadline = time.monotonic() + 2 * testbed.unreachable_timeout
        while time.monotonic() < deadline:
            assert [i["id"] for i in cluster.instances("ledger")] == [instance["id"]]
            time.sleep(0.5)
        for agent_id in others:
            assert cluster.containers("ledger", [agent_id]) == []
            assert volumes_named(cluster, agent_id, "ledger-data") == []
        events = [e for e in cluster.store.state.read_events(count=100000)
                  if e["subject"] == "ledger" and e["type"] == "service.waiting"]
        assert events and events[-1]["data"]["reason"] == waiting

    until(lambda: cluster.store.agents.get(home)["state"] == "up", 30, f"{home} up again")
    back = until(lambda: (lambda found: serving(found, 1) and found)(
        cluster.instances("ledger")), 60,
        lambda: f"ledger serving again: {cluster.instances('ledger')}")
    assert [(i["id"], i["agent"]) for i in back] == [(instance["id"], home)]
    read = engine.exec_check(back[0]["container"], "cat /data/ledger.txt")
    assert read.ok and read.output.strip() == "entry 42", read.output
    assert [c.name for c in cluster.containers("ledger")] == [instance["container"]]
    until(lambda: cluster.store.services.get("ledger")["status"] == "running", 30,
          "ledger running")
    assert cluster.store.services.get("ledger").get("status_reason") is None


def test_an_instance_on_a_replaceable_volume_moves_when_its_agent_freezes(cluster, testbed):
    instance = install_with_volume(cluster, "scratch",
                                   {"name": "scratch-cache", "replaceable": True})
    home = instance["agent"]
    assert instance["resident"] is False and instance["volumes"] == []
    with frozen(testbed, home):
        until(lambda: cluster.store.agents.get(home)["state"] == "unreachable",
              testbed.unreachable_timeout + 30, f"{home} marked unreachable")
        moved = until(lambda: (lambda found: serving(found, 1) and found)(
            cluster.instances("scratch")), 60, "scratch serving on another agent")
        assert moved[0]["agent"] != home and moved[0]["id"] != instance["id"]
    until(lambda: cluster.store.agents.get(home)["state"] == "up", 30, f"{home} up again")
    until(lambda: cluster.containers("scratch", [home]) == [], 30, f"{home} swept")


@contextmanager
def no_room_on(cluster: Cluster, agent_id: str) -> Iterator[None]:
    """The agent's memory all reserved (as if other placements took it), given back on
    the way out."""
    def take(extra: int) -> Any:
        return lambda a: {**a, "allocated": {**a["allocated"],
                                             "mem": a["allocated"]["mem"] + extra}}
    room = int(cluster.store.agents.get(agent_id)["capacity"]["mem"])
    cluster.store.agents.update(agent_id, take(room))
    try:
        yield
    finally:
        cluster.store.agents.update(agent_id, take(-room))


def test_a_failed_resident_instance_is_replaced_only_where_its_data_is(cluster, testbed):
    """Its container killed while its agent has no room: the replacement is not started
    on another agent with an empty volume; the recovery fails saying why, and once the
    agent has room again the replacement runs there, on the same data."""
    instance = install_with_volume(cluster, "vault", {"name": "vault-data"})
    home = instance["agent"]
    engine = cluster.docker(home)
    wrote = engine.exec_check(instance["container"], "echo 'kept 7' > /data/vault.txt")
    assert wrote.ok, wrote.output
    others = [a.id for a in testbed.agents if a.id != home]
    with no_room_on(cluster, home):
        engine.client.containers.get(instance["container"]).kill()

        def refused() -> dict[str, Any] | None:
            return next((d for d in cluster.store.deployments.list(service="vault")
                         if d["kind"] == "recover" and d["status"] == "failed"), None)
        failed = until(refused, 60, lambda: f"a failed recovery of vault: "
                       f"{cluster.store.deployments.list(service='vault')}")
        assert f"{home} holds the data of a failed instance of vault" in failed["error"]
        assert "not started elsewhere on an empty volume" in failed["error"]
        assert [i for i in cluster.instances("vault") if i["agent"] != home] == []
        for agent_id in others:
            assert cluster.containers("vault", [agent_id]) == []
            assert volumes_named(cluster, agent_id, "vault-data") == []
    cluster.app.send_task("berth.reconcile_service", args=["vault"])
    back = until(lambda: (lambda found: serving(found, 1) and found)(
        cluster.instances("vault")), 90, lambda: f"vault serving again: "
        f"{cluster.instances('vault')}; {cluster.store.deployments.list(service='vault')[:1]}")
    assert back[0]["agent"] == home
    read = engine.exec_check(back[0]["container"], "cat /data/vault.txt")
    assert read.ok and read.output.strip() == "kept 7", read.output
