"""Resident instances: which volumes bind an instance to its agent, what it waits for,
and what the reconciler and the deployer decide about it (a real Redis, no engine)."""

from __future__ import annotations

import pytest

from catalog import SpecInvalid, validate_spec
from worker import agents
from worker.deploy import Deployer, _Run
from worker.instances import InstanceRunner, bound_volumes, revivable, wait_reason, waiting_for
from worker.reconcile import Reconciler
from worker.service_ops import DesiredState
from worker.settings import WorkerSettings

SPEC = {"image": "berth/hello:1.0.0", "instances": 1, "cpus": 0.5, "mem": 64,
        "ports": [{"name": "http", "hostPort": 0}],
        "volumes": [{"containerPath": "/data", "name": "web-data"},
                    {"containerPath": "/cache", "name": "web-cache", "replaceable": True},
                    {"containerPath": "/etc/x", "hostPath": "/srv/berth/x"}]}


def add_agents(store, count=2):
    for n in range(1, count + 1):
        agents.register_agent(store, f"tcp://127.0.0.1:{n}", {}, (20000, 20009),
                              {"cpus": 1, "mem": 128}, agent_id=f"agent-{n}")
        store.agents.update(f"agent-{n}", lambda a: {**a, "state": "up"})


def placed(store, spec=SPEC):
    """A service ``web`` installed (not deployed) and one instance placed for it."""
    DesiredState(store).install("web", spec, actor="t")
    service = store.services.get("web")
    runner = InstanceRunner(store, agents.AgentPool(), WorkerSettings())
    (instance,) = runner.place(service, [], 1, "d-1")
    return runner, service, instance


def test_only_named_volumes_that_are_not_replaceable_bind_an_instance():
    assert bound_volumes(SPEC) == ["web-data"]
    assert bound_volumes({"volumes": [{"name": "c", "replaceable": True}]}) == []
    assert bound_volumes({}) == []


def test_the_replaceable_flag_is_a_boolean_of_the_spec_schema():
    spec = validate_spec({"image": "x:1", "volumes": [
        {"containerPath": "/c", "name": "c", "replaceable": True}]})
    assert spec["volumes"][0]["replaceable"] is True
    with pytest.raises(SpecInvalid) as info:
        validate_spec({"image": "x:1", "volumes": [
            {"containerPath": "/c", "name": "c", "replaceable": "yes"}]})
    assert any("volumes/0/replaceable" in p["path"] for p in info.value.details)


def test_a_placed_instance_records_the_volumes_that_bind_it(store):
    add_agents(store)
    _runner, _service, instance = placed(store)
    assert instance["resident"] is True
    assert instance["volumes"] == [{"name": "web-data", "agent": instance["agent"]}]


def test_an_instance_with_only_replaceable_volumes_is_not_resident(store):
    add_agents(store)
    _runner, _service, instance = placed(store, {**SPEC, "volumes": SPEC["volumes"][1:]})
    assert instance["resident"] is False and instance["volumes"] == []


def test_a_lost_resident_instance_waits_only_while_its_agent_is_unreachable():
    instance = {"id": "web-1", "agent": "agent-2", "state": "lost", "resident": True,
                "volumes": [{"name": "web-data", "agent": "agent-2"}]}
    down = {"agent-2": {"id": "agent-2", "state": "unreachable"}}
    up = {"agent-2": {"id": "agent-2", "state": "up"}}
    draining = {"agent-2": {"id": "agent-2", "state": "draining"}}
    assert waiting_for(instance, down) == "waiting for agent-2 (holds volume web-data)"
    assert waiting_for(instance, up) is None and waiting_for(instance, {}) is None
    assert waiting_for({**instance, "resident": False}, down) is None
    assert waiting_for({**instance, "state": "failed"}, down) is None
    assert revivable(instance, up) and not revivable(instance, down)
    assert not revivable(instance, draining) and not revivable(instance, {})
    assert not revivable({**instance, "state": "running"}, up)
    two = {**instance, "volumes": [{"name": "a", "agent": "agent-2"},
                                   {"name": "b", "agent": "agent-2"}]}
    assert wait_reason(two, "agent-2") == "waiting for agent-2 (holds volumes a, b)"


def mark_unreachable(store, reconciler, agent_id):
    store.agents.update(agent_id, lambda a: {**a, "state": "unreachable"})
    reconciler._mark_lost()


def test_the_reconciler_waits_for_a_resident_instance_and_says_why(store):
    add_agents(store)
    _runner, _service, instance = placed(store)
    store.services.update("web", lambda s: {**s, "deployment": None, "status": "running"})
    reconciler = Reconciler(store, settings=WorkerSettings())
    mark_unreachable(store, reconciler, instance["agent"])
    lost = store.instances.get(instance["id"])
    reason = f"waiting for {instance['agent']} (holds volume web-data)"
    assert (lost["state"], lost["error"]) == ("lost", reason)
    service = store.services.get("web")
    assert reconciler._needs_recovery(service) is None  # no replacement elsewhere
    reconciler._settle_status(service)
    service = store.services.get("web")
    assert (service["status"], service["status_reason"]) == ("degraded", reason)
    events = [e for e in store.state.read_events(count=1000) if e["type"] == "service.waiting"]
    assert events[-1]["data"] == {"reason": reason}


def test_a_plain_lost_instance_is_still_recovered(store):
    add_agents(store)
    _runner, _service, instance = placed(store, {**SPEC, "volumes": SPEC["volumes"][1:]})
    store.services.update("web", lambda s: {**s, "deployment": None, "status": "running"})
    reconciler = Reconciler(store, settings=WorkerSettings())
    mark_unreachable(store, reconciler, instance["agent"])
    assert "lost" in (reconciler._needs_recovery(store.services.get("web")) or "")


def test_the_reconciler_revives_a_resident_instance_when_its_agent_answers(store, monkeypatch):
    add_agents(store)
    _runner, _service, instance = placed(store)
    store.services.update("web", lambda s: {**s, "deployment": None, "status": "running"})
    reconciler = Reconciler(store, settings=WorkerSettings())
    mark_unreachable(store, reconciler, instance["agent"])
    assert reconciler._revive() == []   # still away: nothing to start
    started = []
    monkeypatch.setattr(reconciler.ops, "start",
                        lambda service, batch: started.extend(batch) or [])
    store.agents.update(instance["agent"], lambda a: {**a, "state": "up"})
    assert reconciler._needs_recovery(store.services.get("web")) is None
    assert reconciler._revive() == [instance["id"]]
    assert [(i["id"], i["agent"], i["state"]) for i in started] == [
        (instance["id"], instance["agent"], "placed")]
    assert store.instances.get(instance["id"])["error"] is None


def test_the_deployer_keeps_a_waiting_resident_instance(store):
    add_agents(store)
    _runner, _service, instance = placed(store)
    reconciler = Reconciler(store, settings=WorkerSettings())
    mark_unreachable(store, reconciler, instance["agent"])
    deployment = store.deployments.get(store.services.get("web")["deployment"])
    run = _Run(Deployer(store, settings=WorkerSettings()), deployment)
    kept = run._drop_dead(store.instances.for_service("web"))
    assert [i["id"] for i in kept] == [instance["id"]]
    assert store.instances.get(instance["id"])["state"] == "lost"


def test_a_failed_resident_instance_is_replaced_on_the_agent_of_its_volumes(store):
    add_agents(store)
    runner, _service, instance = placed(store)
    runner.fail(instance, "container stopped (exited)")
    deployment = store.deployments.get(store.services.get("web")["deployment"])
    run = _Run(Deployer(store, settings=WorkerSettings(backoff_base=0)), deployment)
    assert run._drop_dead(store.instances.for_service("web")) == []
    assert run.bound == [instance["agent"]]          # its replacement goes there only
