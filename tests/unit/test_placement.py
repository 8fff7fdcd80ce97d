"""Placement (pure): examples, and hypothesis properties — never over-commits, always
honours constraints, all-or-nothing."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.errors import PlacementError
from catalog.placement import AgentView, Placement, PlacementRequest, place


def agent(i: int, *, zone: str = "a", cpus: float = 4, mem: int = 4096, ports: int = 10,
          schedulable: bool = True, **attrs: str) -> AgentView:
    base = 20000 + i * 100
    return AgentView(id=f"agent-{i}", attributes={"hostname": f"h{i}", "zone": zone, **attrs},
                     cpus_free=cpus, mem_free=mem, ports_free=tuple(range(base, base + ports)),
                     schedulable=schedulable, port_range=(base, base + 99))


THREE = [agent(1, zone="a"), agent(2, zone="b"), agent(3, zone="c")]


def by_agent(placements):
    return Counter(p.agent_id for p in placements)


def test_spread_by_default():
    result = place(PlacementRequest(count=6, cpus=0.1, mem=32, ports=1), THREE)
    assert by_agent(result) == {"agent-1": 2, "agent-2": 2, "agent-3": 2}


def test_max_per_hostname_two_puts_two_on_each_of_three():
    request = PlacementRequest(count=6, cpus=0.1, mem=32, ports=1,
                               constraints=(("hostname", "MAX_PER", "2"),))
    assert set(by_agent(place(request, THREE)).values()) == {2}
    with pytest.raises(PlacementError) as caught:
        place(PlacementRequest(count=7, cpus=0.1, mem=32, ports=1,
                               constraints=(("hostname", "MAX_PER", "2"),)), THREE)
    assert {d["path"] for d in caught.value.details} == {"agents/agent-1", "agents/agent-2",
                                                         "agents/agent-3"}
    assert "MAX_PER 2" in caught.value.details[0]["message"]


def test_existing_instances_count_for_spread_and_constraints():
    existing = [("agent-1", THREE[0].attributes), ("agent-1", THREE[0].attributes)]
    request = PlacementRequest(count=2, cpus=0.1, mem=32, ports=1,
                               constraints=(("hostname", "MAX_PER", "2"),))
    assert by_agent(place(request, THREE, existing)) == {"agent-2": 1, "agent-3": 1}


def test_ports_are_the_lowest_free_and_never_shared():
    result = place(PlacementRequest(count=3, cpus=0.1, mem=1, ports=2), [agent(1)])
    assert [p.ports for p in result] == [(20100, 20101), (20102, 20103), (20104, 20105)]


def test_port_layout_keeps_spec_order_with_fixed_ports():
    request = PlacementRequest.from_spec(
        {"cpus": 0.1, "mem": 8, "ports": [{"hostPort": 0}, {"hostPort": 8080},
                                          {"hostPort": 0}]}, 1)
    assert request.ports == 2 and request.fixed_ports == (8080,)
    (only,) = place(request, [agent(1)])
    assert only.ports == (20100, 8080, 20101)


def test_a_fixed_port_allows_one_instance_per_agent():
    request = PlacementRequest(count=2, cpus=0.1, mem=8, fixed_ports=(8080,))
    assert by_agent(place(request, THREE[:2])) == {"agent-1": 1, "agent-2": 1}
    with pytest.raises(PlacementError) as caught:
        place(PlacementRequest(count=3, cpus=0.1, mem=8, fixed_ports=(8080,)), THREE[:2])
    assert "8080" in caught.value.details[0]["message"]


def test_unique_cluster_like_unlike_group_by():
    agents = [agent(1, zone="a"), agent(2, zone="a"), agent(3, zone="b"), agent(4, zone="c")]
    unique = place(PlacementRequest(3, 0.1, 8, constraints=(("zone", "UNIQUE"),)), agents)
    assert len({a.attributes["zone"] for a in agents if a.id in by_agent(unique)}) == 3
    cluster = place(PlacementRequest(3, 0.1, 8, constraints=(("zone", "CLUSTER", "a"),)), agents)
    assert set(by_agent(cluster)) <= {"agent-1", "agent-2"}
    free_cluster = place(PlacementRequest(4, 0.1, 8, constraints=(("zone", "CLUSTER"),)), agents)
    zones = {a.attributes["zone"] for a in agents if a.id in by_agent(free_cluster)}
    assert len(zones) == 1
    like = place(PlacementRequest(4, 0.1, 8, constraints=(("zone", "LIKE", "b|c"),)), agents)
    assert set(by_agent(like)) == {"agent-3", "agent-4"}
    unlike = place(PlacementRequest(4, 0.1, 8, constraints=(("zone", "UNLIKE", "a"),)), agents)
    assert set(by_agent(unlike)) == {"agent-3", "agent-4"}
    grouped = place(PlacementRequest(6, 0.1, 8, constraints=(("zone", "GROUP_BY"),)), agents)
    zone_of = {a.id: a.attributes["zone"] for a in agents}
    assert Counter(zone_of[p.agent_id] for p in grouped) == {"a": 2, "b": 2, "c": 2}


def test_unschedulable_and_small_agents_are_rejected_with_reasons():
    agents = [agent(1, schedulable=False), agent(2, cpus=0.05), agent(3, mem=10),
              agent(4, ports=0), agent(5, rack="r1")]
    with pytest.raises(PlacementError) as caught:
        place(PlacementRequest(1, 0.1, 32, ports=1, constraints=(("rack", "LIKE", "r2"),)),
              agents)
    reasons = {d["path"]: d["message"] for d in caught.value.details}
    assert "schedulable" in reasons["agents/agent-1"]
    assert "has no attribute 'rack'" in reasons["agents/agent-2"]
    assert "does not match" in reasons["agents/agent-5"]
    assert caught.value.code == "placement_failed"
    with pytest.raises(PlacementError) as caught:
        place(PlacementRequest(1, 0.1, 32, ports=1), agents[1:4])
    reasons = {d["path"]: d["message"] for d in caught.value.details}
    assert "cpus" in reasons["agents/agent-2"] and "MiB" in reasons["agents/agent-3"]
    assert "ports" in reasons["agents/agent-4"]


def test_repeated_cluster_constraints_combine():
    agents = [agent(1, zone="a"), agent(2, zone="b")]
    for constraints in ((("zone", "CLUSTER", "a"), ("zone", "CLUSTER")),
                        (("zone", "CLUSTER"), ("zone", "CLUSTER", "a"))):
        result = place(PlacementRequest(2, 0.1, 8, constraints=constraints), agents)
        assert set(by_agent(result)) == {"agent-1"}
    with pytest.raises(PlacementError):
        place(PlacementRequest(1, 0.1, 8, constraints=(("zone", "CLUSTER", "a"),
                                                       ("zone", "CLUSTER", "b"))), agents)


def test_no_agents_and_bad_constraints_are_clear_errors():
    with pytest.raises(PlacementError) as caught:
        place(PlacementRequest(1, 0.1, 8), [])
    assert caught.value.details == [{"path": "agents", "message": "no agents are registered"}]
    for bad in (("zone", "NEAR"), ("zone", "MAX_PER", "x"), ("zone", "LIKE"),
                ("zone", "LIKE", "(")):
        with pytest.raises(PlacementError) as caught:
            place(PlacementRequest(1, 0.1, 8, constraints=(bad,)), THREE)
        assert caught.value.details[0]["path"] == "constraints/0"


def test_zero_instances_place_nothing():
    assert place(PlacementRequest(0, 1, 1), []) == ()
    assert Placement("a") == Placement("a", ())


# properties ---------------------------------------------------------------------------

ZONES = ["a", "b", "c"]


@st.composite
def clusters(draw):
    count = draw(st.integers(1, 8))
    agents = []
    for i in range(count):
        ports = draw(st.integers(0, 6))
        agents.append(AgentView(
            id=f"agent-{i}",
            attributes={"hostname": f"h{i}", "zone": draw(st.sampled_from(ZONES)),
                        **({"rack": draw(st.sampled_from(["r1", "r2"]))}
                           if draw(st.booleans()) else {})},
            cpus_free=draw(st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0])),
            mem_free=draw(st.integers(0, 512)),
            ports_free=tuple(range(30000 + i * 10, 30000 + i * 10 + ports)),
            schedulable=draw(st.booleans()) or draw(st.booleans())))
    return agents


CONSTRAINTS = st.one_of(
    st.tuples(st.sampled_from(["hostname", "zone", "rack"]), st.just("UNIQUE")),
    st.tuples(st.sampled_from(["hostname", "zone", "rack"]), st.just("MAX_PER"),
              st.sampled_from(["1", "2", "3"])),
    st.tuples(st.sampled_from(["zone", "rack"]), st.just("CLUSTER"), st.sampled_from(ZONES)),
    st.tuples(st.sampled_from(["zone", "rack"]), st.just("CLUSTER")),
    st.tuples(st.sampled_from(["zone", "rack"]), st.just("GROUP_BY")),
    st.tuples(st.just("zone"), st.sampled_from(["LIKE", "UNLIKE"]),
              st.sampled_from(["a", "a|b", "[bc]", ".*"])),
)

REQUESTS = st.builds(PlacementRequest, count=st.integers(0, 12),
                     cpus=st.sampled_from([0.0, 0.1, 0.25, 0.5]),
                     mem=st.integers(0, 128), ports=st.integers(0, 2),
                     constraints=st.lists(CONSTRAINTS, max_size=3).map(tuple))


def check_constraints(request, agents, placements):
    attrs = {a.id: a.attributes for a in agents}
    for attr, op, *rest in request.constraints:
        values = [attrs[p.agent_id].get(attr) for p in placements]
        if op in ("UNIQUE", "MAX_PER", "GROUP_BY", "LIKE", "CLUSTER"):
            assert None not in values, (attr, op)
        if op == "UNIQUE":
            assert len(values) == len(set(values))
        elif op == "MAX_PER":
            assert max(Counter(values).values(), default=0) <= int(rest[0])
        elif op == "CLUSTER":
            assert len(set(values)) <= 1 and (not rest or set(values) <= {rest[0]})
        elif op == "LIKE":
            assert all(re.fullmatch(rest[0], v) for v in values)
        elif op == "UNLIKE":
            assert not any(v is not None and re.fullmatch(rest[0], v) for v in values)


@settings(max_examples=300, deadline=None)
@given(clusters(), REQUESTS)
def test_never_over_commits_and_always_honours_constraints(agents, request):
    try:
        placements = place(request, agents)
    except PlacementError as error:
        assert error.details  # a refusal always says why
        return
    assert len(placements) == request.count
    views = {a.id: a for a in agents}
    used = Counter(p.agent_id for p in placements)
    for agent_id, n in used.items():
        view = views[agent_id]
        assert view.schedulable
        assert n * request.cpus <= view.cpus_free + 1e-6
        assert n * request.mem <= view.mem_free
    for agent_id in used:
        ports = [port for p in placements if p.agent_id == agent_id for port in p.ports]
        assert len(ports) == len(set(ports))
        assert set(ports) <= set(views[agent_id].ports_free)
    assert all(len(p.ports) == request.ports for p in placements)
    check_constraints(request, agents, placements)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30), st.integers(2, 6))
def test_group_by_is_even_when_room_is_plenty(count, zones):
    agents = [agent(i, zone=f"z{i % zones}", ports=50) for i in range(zones * 2)]
    placements = place(PlacementRequest(count, 0.01, 1, ports=1,
                                        constraints=(("zone", "GROUP_BY"),)), agents)
    zone_of = {a.id: a.attributes["zone"] for a in agents}
    per_zone = Counter(zone_of[p.agent_id] for p in placements)
    assert max(per_zone.values()) - min(per_zone.get(f"z{z}", 0) for z in range(zones)) <= 1


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 40))
def test_spread_keeps_agents_within_one_of_each_other(count):
    agents = [agent(i, ports=50) for i in range(5)]
    per_agent = by_agent(place(PlacementRequest(count, 0.01, 1, ports=1), agents))
    assert max(per_agent.values()) - min(per_agent.get(a.id, 0) for a in agents) <= 1
