"""One instance per agent for a spec with named volumes, on every path that places
instances: install, scale up, upgrade, move (a real Redis, agents with unreachable URLs,
no engine)."""

from __future__ import annotations

from typing import Any

import pytest

from catalog.errors import PlacementError
from worker import agents
from worker.deploy import Deployer, _Run
from worker.errors import MoveRefused
from worker.instances import InstanceRunner, ServiceLock
from worker.move import Mover, crowding
from worker.service_ops import DesiredState
from worker.settings import WorkerSettings

SPEC = {"image": "berth/hello:1.0.0", "instances": 2, "cpus": 0.1, "mem": 16,
        "ports": [{"name": "http", "hostPort": 0}],
        "volumes": [{"containerPath": "/data", "name": "db-data"}]}


def add_agents(store, count=3):
    for n in range(1, count + 1):
        agents.register_agent(store, f"tcp://127.0.0.1:{n}", {}, (20000, 20009),
                              {"cpus": 4, "mem": 4096}, agent_id=f"agent-{n}")
        store.agents.update(f"agent-{n}", lambda a: {**a, "state": "up"})


def runner(store) -> InstanceRunner:
    return InstanceRunner(store, agents.AgentPool(), WorkerSettings())


def installed(store, spec: dict[str, Any] = SPEC, count: int = 0) -> tuple[dict, list]:
    """Service ``db`` installed (not deployed) with ``count`` instances placed."""
    DesiredState(store).install("db", spec, actor="t")
    service = store.services.get("db")
    placed = runner(store).place(service, [], count, "d-1") if count else []
    return service, placed


def test_an_install_that_needs_more_agents_fails_with_the_reason_and_reserves_nothing(store):
    add_agents(store, count=2)
    deployment = DesiredState(store).install("db", {**SPEC, "instances": 3},
                                           actor="t")["deployment"]
    result = Deployer(store, settings=WorkerSettings()).run(deployment["id"])
    assert result["status"] == "failed"
    assert result["error"].startswith("3 instances of db need 3 agents: each mounts volume "
                                      "db-data; 2 agents can take one")
    assert store.instances.for_service("db") == []
    assert all(a["allocated"] == {"cpus": 0.0, "mem": 0, "ports": []}
               for a in store.agents.list())
    assert not ServiceLock.held(store.state, "db")


def test_placed_instances_each_get_an_agent_and_a_scale_up_takes_the_free_one(store):
    add_agents(store)
    service, placed = installed(store, count=2)
    assert len({i["agent"] for i in placed}) == 2
    (third,) = runner(store).place(service, placed, 1, "d-2")
    assert third["agent"] not in {i["agent"] for i in placed}
    with pytest.raises(PlacementError, match="4 instances of db need 4 agents"):
        runner(store).place(service, [*placed, third], 1, "d-3")
    assert len(store.instances.for_service("db")) == 3


def test_an_older_generations_instance_keeps_new_ones_off_its_agent(store):
    add_agents(store, count=2)
    service, (old,) = installed(store, count=1)
    newer = {**service, "generation": 2}
    # the old generation is not "current", but its container mounts db-data there
    (new,) = runner(store).place(newer, [], 1, "d-2")
    assert new["agent"] != old["agent"]


def test_shared_volumes_may_be_placed_together(store):
    add_agents(store, count=1)
    spec = {**SPEC, "volumes": [{**SPEC["volumes"][0], "shared": True}]}
    _service, placed = installed(store, spec, count=3)
    assert {i["agent"] for i in placed} == {"agent-1"}


def test_a_move_to_an_agent_running_another_instance_is_refused_up_front(store):
    add_agents(store)
    _service, (first, second) = installed(store, count=2)
    with pytest.raises(MoveRefused) as caught:
        DesiredState(store).move("db", first["id"], second["agent"], actor="t")
    assert caught.value.message == (
        f"agent {second['agent']} already runs instance {second['id']} of db: each "
        f"instance mounts volume db-data, so only one may run on an agent")
    assert caught.value.details == [{"path": "to", "message": caught.value.message}]
    free = ({"agent-1", "agent-2", "agent-3"} - {first["agent"], second["agent"]}).pop()
    assert crowding(first, free, store.instances.for_service("db"), SPEC) is None


def test_the_mover_refuses_it_too_before_stopping_anything(store):
    add_agents(store)
    service, (first, second) = installed(store, count=2)
    mover = Mover(store, runner(store), WorkerSettings(), lambda step, message: None)
    with pytest.raises(MoveRefused, match=f"agent {second['agent']} already runs"):
        mover.move(service, first, "d-2", target=second["agent"])
    assert store.instances.get(first["id"])["state"] == "placed"   # untouched


def test_an_upgrade_replaces_instances_with_replaceable_volumes_in_place(store, monkeypatch):
    """Not bound to their agent, but still one per agent: the upgrade stops an old
    instance before its successor starts (the mover), instead of starting beside it."""
    add_agents(store, count=2)
    spec = {**SPEC, "volumes": [{**SPEC["volumes"][0], "replaceable": True}]}
    service, placed = installed(store, spec, count=2)
    for instance in placed:
        store.instances.update(instance["id"], lambda i: {**i, "state": "running",
                                                          "health": "healthy"})
    moved: list[str] = []
    monkeypatch.setattr(Mover, "move", lambda self, svc, victim, *a, **k: moved.append(
        victim["id"]))
    deployment = store.deployments.get(service["deployment"])
    run = _Run(Deployer(store, settings=WorkerSettings()), deployment)
    newer = {**service, "generation": 2}
    found = {a["id"]: a for a in store.agents.list()}
    assert run._move_resident(newer, store.instances.for_service("db"), found)
    assert len(moved) == 1 and moved[0] in {i["id"] for i in placed}   # one at a time
    plain = {**service, "spec": {k: v for k, v in SPEC.items() if k != "volumes"},
             "generation": 2}
    assert not run._move_resident(plain, store.instances.for_service("db"), found)
