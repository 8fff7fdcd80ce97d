"""The deployer and reconciler paths that need no Docker engine, against a real Redis."""

from __future__ import annotations

import time

from worker import agents
from worker.containers import ContainerInfo
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


class _Listing:
    """An agent client that only lists containers (the reconciler's one call here)."""

    def __init__(self, containers: list[ContainerInfo]) -> None:
        self.containers = containers

    def list_instances(self, labels: object = ()) -> list[ContainerInfo]:
        return self.containers


class _Pool:
    def __init__(self, containers: list[ContainerInfo]) -> None:
        self.client = _Listing(containers)

    def get(self, agent: object) -> _Listing:
        return self.client


def _serving(store, service: str, suffix: str) -> dict:
    instance = {"id": f"{service}-{suffix}", "service": service, "generation": 1,
                "agent": "agent-1", "container": f"berth-{service}-{suffix}",
                "container_id": f"c-{suffix}", "ports": {"http": 20001},
                "port_list": [20001], "address": "127.0.0.1", "state": "running",
                "health": "healthy", "created_at": 1.0, "started_at": 1.0,
                "healthy_at": 1.0, "failures": 0, "error": None}
    store.state.transact(lambda tx: store.instances.stage_put(tx, instance))
    return instance


def test_a_serving_instance_dying_during_a_deployment_is_failed_for_that_deployment(store):
    """The fast path leaves a busy service to its deployment, but marks a serving
    instance whose container died, so the deployment's next round replaces it (it
    watches only the instances it starts), not the next periodic pass."""
    add_agents(store)
    deployment = DesiredState(store).install("web", SPEC, actor="t")["deployment"]
    _serving(store, "web", "a")
    _serving(store, "web", "b")
    listed = [ContainerInfo(id="c-a", name="berth-web-a", state="running", status="Up",
                            image=SPEC["image"]),
              ContainerInfo(id="c-b", name="berth-web-b", state="exited",
                            status="Exited (137)", image=SPEC["image"])]
    reconciler = Reconciler(store, _Pool(listed), WorkerSettings())  # type: ignore[arg-type]
    assert reconciler.reconcile_service("web") is None          # no second deployment
    assert store.services.get("web")["deployment"] == deployment["id"]
    states = {i["id"]: (i["state"], i["error"]) for i in store.instances.for_service("web")}
    assert states == {"web-a": ("running", None),
                      "web-b": ("failed", "container stopped (Exited (137))")}
