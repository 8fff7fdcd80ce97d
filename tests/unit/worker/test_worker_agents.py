"""Agents against a real Redis (engines that do not answer: nothing listens on port 1)."""

from __future__ import annotations

import time

import pytest

from worker import agents
from worker.errors import AgentBusy, AgentExists, InvalidRequest
from worker.reconcile import start_recovery
from worker.service_ops import DesiredState

DOWN = "tcp://127.0.0.1:1"
CAPACITY = {"cpus": 2, "mem": 1024}


def register(store, agent_id="agent-1", url=DOWN, **kwargs):
    return agents.register_agent(store, url, {"zone": "a"}, (20000, 20009), CAPACITY,
                                 agent_id=agent_id, **kwargs)


def test_register_with_given_capacity_needs_no_engine(store):
    agent = register(store, address="127.0.0.9", actor="token:x")
    assert agent["capacity"] == {"cpus": 2.0, "mem": 1024}
    assert agent["attributes"] == {"zone": "a", "hostname": "agent-1"}
    assert agent["state"] == "unreachable" and agent["address"] == "127.0.0.9"
    assert agent["port_range"] == [20000, 20009] and agent["registered_by"] == "token:x"
    assert store.agents.ids() == ["agent-1"]


def test_re_registering_keeps_reservations_and_a_url_has_one_agent(store):
    register(store)
    store.agents.update("agent-1", lambda a: {**a, "allocated": {"cpus": 0.5, "mem": 64,
                                                                 "ports": [20000]}})
    again = register(store)
    assert again["allocated"]["ports"] == [20000]
    with pytest.raises(AgentExists):
        register(store, agent_id="agent-2")


@pytest.mark.parametrize("kwargs, path", [
    ({"url": "http//nope"}, "url"),
    ({"port_range": (5, 1)}, "port_range"),
    ({"attributes": {"bad key": "x"}}, "attributes/bad key"),
    ({"capacity": {"cpus": 0, "mem": 1}}, "capacity"),
])
def test_bad_registrations_name_the_field(store, kwargs, path):
    args = {"url": DOWN, "attributes": {}, "port_range": (1, 2), "capacity": CAPACITY, **kwargs}
    with pytest.raises(InvalidRequest) as caught:
        agents.register_agent(store, args["url"], args["attributes"], args["port_range"],
                              args["capacity"], agent_id="a")
    assert caught.value.details[0]["path"] == path


def test_an_unreachable_engine_without_capacity_is_refused(store):
    from worker.errors import AgentUnreachable

    with pytest.raises(AgentUnreachable):
        agents.register_agent(store, DOWN, {}, (1, 2), agent_id="a")


def test_drain_and_activate(store, monkeypatch):
    register(store)
    store.agents.update("agent-1", lambda a: {**a, "state": "up"})
    sent = []
    drained = agents.drain(store, "agent-1", actor="u", enqueue=lambda n, a: sent.append(n))
    assert drained["drain"] is True and drained["state"] == "draining"
    assert sent == ["berth.reconcile"] and not agents.schedulable(drained)
    active = agents.activate(store, "agent-1")
    assert active["drain"] is False and active["state"] == "up" and agents.schedulable(active)


def test_removal_is_refused_while_instances_remain_unless_forced(store):
    register(store)
    instance = {"id": "web-1", "service": "web", "agent": "agent-1", "container": "berth-web-1"}
    store.state.transact(lambda tx: store.instances.stage_put(tx, instance))
    with pytest.raises(AgentBusy) as caught:
        agents.remove(store, "agent-1")
    assert caught.value.details == [{"path": "instances/web-1", "message": "web"}]
    agents.remove(store, "agent-1", force=True, pool=agents.AgentPool(timeout=1))
    assert store.agents.ids() == [] and store.instances.get("web-1") is None


def test_heartbeat_marks_a_silent_agent_unreachable_after_the_timeout(store):
    register(store)
    store.agents.update("agent-1", lambda a: {**a, "state": "up"})
    store.agents.seen("agent-1", time.time())
    pool = agents.AgentPool(timeout=1, heartbeat_timeout=1)
    assert agents.heartbeat(store, pool, unreachable_timeout=60)["unreachable"] == []
    assert store.agents.get("agent-1")["state"] == "up"
    changed = agents.heartbeat(store, pool, unreachable_timeout=0.0)
    assert changed["unreachable"] == ["agent-1"]
    assert store.agents.get("agent-1")["state"] == "unreachable"


def test_reservations_and_the_placement_view():
    agent = {"id": "a", "attributes": {"hostname": "a"}, "capacity": {"cpus": 1, "mem": 100},
             "port_range": [10, 14], "state": "up"}
    agents.reserve(agent, 0.3, 40, [10, 11])
    agents.reserve(agent, 0.3, 40, [80])
    view = agents.agent_view(agent)
    assert view.cpus_free == pytest.approx(0.4) and view.mem_free == 20
    assert view.ports_free == (12, 13, 14) and view.ports_taken == frozenset({80})
    agents.release(agent, {"cpus": 0.3, "mem": 40, "port_list": [10, 11]})
    assert agent["allocated"] == {"cpus": 0.3, "mem": 40, "ports": [80]}


def test_recovery_opens_only_for_an_idle_running_service(store):
    ops = DesiredState(store)
    deployment = ops.install("web", {"image": "x", "instances": 1})["deployment"]
    assert start_recovery(store, "web", "why") is None  # the install is still queued
    store.state.transact(lambda tx: store.deployments.stage_put(
        tx, {**store.deployments.get(deployment["id"]), "status": "succeeded"}))
    store.services.update("web", lambda s: {**s, "status": "running"})
    recovery = start_recovery(store, "web", "1 instance failed")
    assert recovery["kind"] == "recover" and recovery["reason"] == "1 instance failed"
    assert store.services.get("web")["deployment"] == recovery["id"]
    assert start_recovery(store, "nope", "why") is None
