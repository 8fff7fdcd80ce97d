"""Placement (pure): a spec with named volumes gets at most one instance per agent,
unless every named volume is ``shared``."""

from __future__ import annotations

from collections import Counter

import pytest

from catalog.errors import PlacementError, SpecInvalid
from catalog.placement import AgentView, PlacementRequest, exclusive_volumes, place
from catalog.spec import validate_spec

VOLUME = {"containerPath": "/data", "name": "db-data"}
SPEC = {"image": "berth/hello:1.0.0", "cpus": 0.1, "mem": 32, "volumes": [VOLUME]}


def agent(i: int, *, mem: int = 4096, schedulable: bool = True) -> AgentView:
    base = 20000 + i * 100
    return AgentView(id=f"agent-{i}", attributes={"hostname": f"h{i}"}, cpus_free=4,
                     mem_free=mem, ports_free=tuple(range(base, base + 10)),
                     schedulable=schedulable, port_range=(base, base + 99))


THREE = [agent(1), agent(2), agent(3)]


def request(count: int, spec: dict | None = None) -> PlacementRequest:
    return PlacementRequest.from_spec(spec or SPEC, count, service="db")


def test_three_instances_with_a_named_volume_go_to_three_agents():
    placed = place(request(3), THREE)
    assert sorted(p.agent_id for p in placed) == ["agent-1", "agent-2", "agent-3"]


def test_the_rule_wins_over_free_memory():
    # spreading alone would put the second instance on the roomy agent again
    placed = place(request(2), [agent(1, mem=100000), agent(2, mem=64)])
    assert Counter(p.agent_id for p in placed) == {"agent-1": 1, "agent-2": 1}


def test_four_on_three_agents_fail_with_the_reason_naming_the_volume():
    with pytest.raises(PlacementError) as caught:
        place(request(4), THREE)
    error = caught.value
    assert error.message == ("4 instances of db need 4 agents: each mounts volume db-data; "
                             "3 agents can take one")
    assert {d["path"] for d in error.details} == {"agents/agent-1", "agents/agent-2",
                                                   "agents/agent-3"}
    assert all("already runs an instance of db (each mounts volume db-data)" in d["message"]
               for d in error.details)
    assert "shared" in (error.hint or "")


def test_the_count_includes_instances_that_stay_and_agents_turned_down_otherwise():
    existing = [("agent-1", {"hostname": "h1"})]
    agents = [*THREE, agent(4, schedulable=False)]
    with pytest.raises(PlacementError) as caught:
        place(request(3), agents, existing)
    assert caught.value.message.startswith("4 instances of db need 4 agents: ")
    assert caught.value.message.endswith("; 3 agents can take one")
    placed = place(request(2), agents, existing)
    assert sorted(p.agent_id for p in placed) == ["agent-2", "agent-3"]


def test_a_scale_up_avoids_the_agents_of_existing_instances():
    existing = [("agent-2", {"hostname": "h2"})]
    (placed,) = place(request(1), [agent(1, mem=64), agent(2, mem=100000)], existing)
    assert placed.agent_id == "agent-1"


def test_mounted_agents_of_an_older_generation_are_avoided_too():
    placed = place(request(2), THREE, mounted=["agent-1"])
    assert sorted(p.agent_id for p in placed) == ["agent-2", "agent-3"]
    with pytest.raises(PlacementError) as caught:
        place(request(3), THREE, mounted=["agent-1"])
    assert caught.value.message == ("3 instances of db need 3 agents: each mounts volume "
                                    "db-data; 2 agents can take one (1 more agent still "
                                    "runs an instance on its way out)")
    with pytest.raises(PlacementError, match="^1 instance of db needs 1 agent: each mounts "
                                             "volume db-data; 0 agents can take one"):
        place(request(1), [agent(1)], mounted=["agent-1"])


def test_shared_volumes_allow_several_instances_per_agent():
    spec = {**SPEC, "volumes": [{**VOLUME, "shared": True},
                                {"containerPath": "/cache", "name": "db-cache",
                                 "shared": True}]}
    assert exclusive_volumes(spec) == ()
    placed = place(request(4, spec), [agent(1)], mounted=["agent-1"])
    assert [p.agent_id for p in placed] == ["agent-1"] * 4


def test_one_volume_not_shared_keeps_the_rule_and_is_the_one_named():
    spec = {**SPEC, "volumes": [{**VOLUME, "shared": True},
                                {"containerPath": "/wal", "name": "db-wal"}]}
    assert exclusive_volumes(spec) == ("db-wal",)
    with pytest.raises(PlacementError, match="each mounts volume db-wal; 1 agent can"):
        place(request(2, spec), [agent(1)])


def test_replaceable_volumes_are_still_one_per_agent():
    spec = {**SPEC, "volumes": [{**VOLUME, "replaceable": True}]}
    assert exclusive_volumes(spec) == ("db-data",)


def test_host_folders_and_specs_without_volumes_are_not_constrained():
    spec = {**SPEC, "volumes": [{"containerPath": "/data", "hostPath": "/srv/db"}]}
    assert exclusive_volumes(spec) == ()
    assert len(place(request(3, spec), [agent(1)])) == 3
    plain = {k: v for k, v in SPEC.items() if k != "volumes"}
    assert len(place(request(3, plain), [agent(1)])) == 3


def test_a_failure_for_another_reason_keeps_the_capacity_message():
    # the rule turns no agent down: memory is what fails
    with pytest.raises(PlacementError, match="not enough capacity: 0 of 2"):
        place(request(2), [agent(1, mem=1), agent(2, mem=1), agent(3, mem=1)])


def test_agents_turned_down_for_memory_do_not_count_as_able():
    with pytest.raises(PlacementError) as caught:
        place(request(2), [agent(1), agent(2, mem=1)])
    assert caught.value.message.endswith("; 1 agent can take one")
    assert {d["path"]: d["message"] for d in caught.value.details}["agents/agent-2"] == (
        "needs 32 MiB memory, 1 free")


def test_the_schema_takes_shared_on_named_volumes_only():
    validate_spec({**SPEC, "volumes": [{**VOLUME, "shared": True}]})
    for bad in ({**VOLUME, "shared": "yes"},
                {"containerPath": "/data", "hostPath": "/srv/db", "shared": True}):
        with pytest.raises(SpecInvalid) as caught:
            validate_spec({**SPEC, "volumes": [bad]})
        assert any(str(d["path"]).startswith("spec/volumes/0") for d in caught.value.details)
