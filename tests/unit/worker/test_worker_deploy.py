"""The deployer and reconciler paths that need no Docker engine, against a real Redis."""

from __future__ import annotations

import time

from worker import agents
from worker.deploy import Deployer
from worker.instances import ServiceLock, removal_order
from worker.reconcile import Reconciler
from worker.service_ops import DesiredState
from worker.settings import WorkerSettings

SPEC = {"image": "berth/hello:1.0.0", "instances": 2, "cpus": 0.5, "mem": 64,
        "ports": [{"name": "http", "hostPort": 0}]}


def add_agents(store, count=2, state="up"):
    for n in range(1, count + 1):
        agents.register_agent(store, f"tcp://127.0.0.1:{n}", {}, (20000, 20009),
                              {"cpus": 1, "mem": 128}, agent_id=f"agent-{n}")
        store.agents.update(f"agent-{n}", lambda a, s=state: {**a, "state": s})


def test_an_install_that_cannot_fit_fails_with_reasons_and_reserves_nothing(store):
    add_agents(store)
    deployment = DesiredState(store).install("web", {**SPEC, "instances": 5},
                                           actor="t")["deployment"]
    result = Deployer(store, settings=WorkerSettings()).run(deployment["id"])
    assert result["status"] == "failed" and "not enough capacity" in result["error"]
    assert {d["path"] for d in result["error_details"]} == {"agents/agent-1", "agents/agent-2"}
    assert store.services.get("web")["status"] == "failed"
    assert store.instances.for_service("web") == []
    assert all(a["allocated"] == {"cpus": 0.0, "mem": 0, "ports": []}
               for a in store.agents.list())
    assert not ServiceLock.held(store.state, "web")
    types = [e["type"] for e in store.state.read_events(count=1000)]
    assert "deployment.failed" in types


def test_a_refused_spec_fails_before_any_docker_call(store):
    add_agents(store)
    deployment = DesiredState(store).install("bad", {**SPEC, "privileged": True})["deployment"]
    result = Deployer(store).run(deployment["id"])
    assert result["status"] == "failed" and result["error_details"]
    assert store.instances.for_service("bad") == []


def test_a_locked_service_is_left_to_its_deployer(store):
    add_agents(store)
    deployment = DesiredState(store).install("web", SPEC)["deployment"]
    lock = ServiceLock(store.state, "web", 5)
    assert lock.acquire()
    assert Deployer(store).run(deployment["id"])["status"] == "queued"
    lock.release()
    assert not ServiceLock.held(store.state, "web")


def test_uninstall_of_a_service_without_instances_removes_it(store):
    add_agents(store, state="unreachable")
    ops = DesiredState(store)
    ops.install("web", SPEC)
    gone = Deployer(store).run(ops.uninstall("web")["id"])
    assert gone["status"] == "succeeded" and store.services.get("web") is None


def test_removal_order_is_unhealthy_first_then_newest_first():
    instances = [{"id": "a", "state": "running", "health": "healthy", "created_at": 1},
                 {"id": "b", "state": "running", "health": "healthy", "created_at": 3},
                 {"id": "c", "state": "starting", "health": "unknown", "created_at": 2}]
    assert [i["id"] for i in removal_order(instances)] == ["c", "b", "a"]


def test_recovery_backs_off_after_failed_deployments(store):
    settings = WorkerSettings(backoff_base=30, backoff_max=60)
    reconciler = Reconciler(store, settings=settings)
    ops = DesiredState(store)
    first = ops.install("web", SPEC)["deployment"]
    assert reconciler._backoff_over("web")
    now = time.time()
    store.state.transact(lambda tx: store.deployments.stage_put(
        tx, {**store.deployments.get(first["id"]), "status": "failed", "finished_at": now}))
    assert not reconciler._backoff_over("web")
    store.state.transact(lambda tx: store.deployments.stage_put(
        tx, {**store.deployments.get(first["id"]), "finished_at": now - 31}))
    assert reconciler._backoff_over("web")


def test_a_spec_with_named_volumes_goes_back_to_the_agent_it_left(store):
    from worker.instances import InstanceRunner

    add_agents(store, count=2)
    store.agents.update("agent-1", lambda a: {**a, "capacity": {"cpus": 1, "mem": 4096}})
    ops = InstanceRunner(store, agents.AgentPool(), WorkerSettings())
    service = {"name": "db", "generation": 1, "spec": {**SPEC, "volumes": [
        {"containerPath": "/data", "name": "db-data"}]}}
    (placed,) = ops.place(service, [], 1, "d-1", prefer=["agent-2"])
    assert placed["agent"] == "agent-2"
    plain = {**service, "name": "web", "spec": SPEC}
    (spread,) = ops.place(plain, [], 1, "d-2", prefer=["agent-2"])
    assert spread["agent"] == "agent-1"  # no volumes: most free memory wins
    assert store.agents.get("agent-2")["allocated"]["mem"] == 64
