"""What a placement and a reconcile pass cost in Redis, and that the cheaper reads stay
correct: one read of every agent per placement with only the chosen agents watched, and
a pass whose reads do not grow with the number of services times agents.

A real Redis (the worker unit tests' store), no engine: the agents are registered but
unreachable, so the pass lists no containers.
"""

from __future__ import annotations

import pytest

from catalog.placement import PlacementError
from worker import agents
from worker.instances import InstanceRunner
from worker.reconcile import Reconciler
from worker.service_ops import DesiredState
from worker.settings import WorkerSettings

SPEC = {"image": "berth/hello:1.0.0", "instances": 1, "cpus": 1, "mem": 64,
        "ports": [{"name": "http", "hostPort": 0}]}


def add_agents(store, count, state="up"):
    for n in range(1, count + 1):
        agents.register_agent(store, f"tcp://127.0.0.1:{n}", {}, (20000, 20009),
                              {"cpus": 1, "mem": 128}, agent_id=f"agent-{n}")
        store.agents.update(f"agent-{n}", lambda a, s=state: {**a, "state": s})


def runner(store):
    return InstanceRunner(store, agents.AgentPool(), WorkerSettings())


def commands(store, name):
    """How many times Redis ran ``name`` so far (INFO commandstats)."""
    stats = store.redis.info("commandstats")
    return int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))


def test_a_reservation_written_while_a_placement_decides_is_not_overbooked(store):
    """Between the placement's unwatched read of the agents and its commit, another
    placement takes the whole of the agent it chose: it must see that and go elsewhere
    (each agent has room for exactly one instance)."""
    add_agents(store, 2)
    DesiredState(store).install("web", SPEC, actor="t")
    DesiredState(store).install("db", SPEC, actor="t")
    service, other = store.services.get("web"), store.services.get("db")
    ops = runner(store)
    real_list = store.agents.list
    raced = []

    def list_then_race():
        seen = real_list()
        if not raced:  # the rival places first, on whichever agent it prefers
            raced.append("racing")
            raced[0] = ops.place(other, [], 1, "d-rival")[0]["agent"]
        return seen

    store.agents.list = list_then_race
    (mine,) = ops.place(service, [], 1, "d-1")
    store.agents.list = real_list
    assert mine["agent"] != raced[0]
    for agent in store.agents.list():
        assert agent["allocated"]["cpus"] <= agent["capacity"]["cpus"]


def test_a_placement_with_no_room_left_after_a_race_reserves_nothing(store):
    add_agents(store, 1)
    DesiredState(store).install("web", SPEC, actor="t")
    DesiredState(store).install("db", SPEC, actor="t")
    service, other = store.services.get("web"), store.services.get("db")
    ops = runner(store)
    real_list = store.agents.list
    calls = []

    def list_then_race():
        seen = real_list()
        if not calls:
            calls.append("racing")
            ops.place(other, [], 1, "d-rival")
        return seen

    store.agents.list = list_then_race
    with pytest.raises(PlacementError):
        ops.place(service, [], 1, "d-1")
    store.agents.list = real_list
    (agent,) = store.agents.list()
    assert agent["allocated"]["cpus"] == 1
    assert [i["service"] for i in store.instances.for_agent("agent-1")] == ["db"]


def test_a_write_to_an_agent_not_chosen_does_not_restart_the_placement(store):
    """Only the chosen agents are watched: a change elsewhere (another agent drained)
    does not make the placement read everything again."""
    add_agents(store, 2)
    store.agents.update("agent-2", lambda a: {**a, "drain": True})
    DesiredState(store).install("web", SPEC, actor="t")
    service = store.services.get("web")
    ops = runner(store)
    real_list = store.agents.list
    reads = []

    def list_then_touch_other():
        reads.append(1)
        seen = real_list()
        if len(reads) == 1:
            store.agents.update("agent-2", lambda a: {**a, "attributes": {"rack": "b"}})
        return seen

    store.agents.list = list_then_touch_other
    (mine,) = ops.place(service, [], 1, "d-1")
    store.agents.list = real_list
    assert mine["agent"] == "agent-1"
    assert len(reads) == 1


def test_a_placement_reads_the_agents_with_a_constant_number_of_commands(store):
    add_agents(store, 40)
    DesiredState(store).install("web", SPEC, actor="t")
    service = store.services.get("web")
    before = commands(store, "get")
    runner(store).place(service, [], 1, "d-1")
    # the chosen agent and the new instance id are watched and read, not all 40 agents
    assert commands(store, "get") - before <= 3


def test_a_reconcile_pass_reads_agents_once_not_once_per_service(store):
    """``mget`` calls of a pass do not grow with the number of services."""
    add_agents(store, 5, state="unreachable")
    reconciler = Reconciler(store, settings=WorkerSettings())

    def mgets_of_a_pass(services):
        for n in range(services):
            DesiredState(store).install(f"svc-{len(store.services.names())}-{n}", SPEC,
                                        actor="t")
        before = commands(store, "mget")
        reconciler.reconcile()
        return commands(store, "mget") - before

    few = mgets_of_a_pass(3)
    many = mgets_of_a_pass(30)
    assert many == few


def test_instances_of_many_services_and_agents_come_back_grouped(store):
    add_agents(store, 3)
    ops = runner(store)
    placed = {}
    for name in ("a", "b", "c"):
        DesiredState(store).install(name, SPEC, actor="t")
        placed[name] = ops.place(store.services.get(name), [], 1, f"d-{name}")[0]
    grouped = store.instances.for_services(["a", "b", "c", "none"])
    assert {k: [i["id"] for i in v] for k, v in grouped.items()} == {
        "a": [placed["a"]["id"]], "b": [placed["b"]["id"]], "c": [placed["c"]["id"]],
        "none": []}
    by_agent = store.instances.for_agents([f"agent-{n}" for n in (1, 2, 3)])
    assert sorted(i["id"] for v in by_agent.values() for i in v) == sorted(
        i["id"] for i in placed.values())
    for agent_id, instances in by_agent.items():
        assert all(i["agent"] == agent_id for i in instances)
