"""One instance per agent for a service with a named volume, on the real test bed (three
agents): three instances land on three agents, a fourth is refused with the reason and
nothing reserved, and a move onto an agent holding another instance is refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cluster_support import Cluster, hello

from worker.errors import MoveRefused

pytestmark = pytest.mark.integration

NAME = "vspread"


@pytest.fixture(scope="module")
def cluster(testbed) -> Iterator[Cluster]:
    """The bed as a client; the service and its volumes are removed afterwards."""
    c = Cluster(testbed)
    yield c
    if c.store.services.get(NAME) is not None:
        c.wait(c.ops.uninstall(NAME, actor="test", delete_data=True), timeout=90)
    for agent in testbed.agents:
        left = [v.name for v in c.docker(agent.id).list_volumes({"berth.service": NAME})]
        assert left == [], f"volumes left on {agent.id}: {left}"


@pytest.fixture(scope="module")
def three(cluster: Cluster) -> list[dict]:
    """``hello`` with the named volume ``vspread-data``, three instances, deployed."""
    package, spec = hello("1.0.0", NAME, 3)
    spec["volumes"] = [{"name": f"{NAME}-data", "containerPath": "/data"}]
    cluster.created.append(NAME)
    deployment = cluster.ops.install(NAME, spec, package=package, actor="test")["deployment"]
    done = cluster.wait(deployment, timeout=120)
    assert done["status"] == "succeeded", done["error"]
    return cluster.instances(NAME)


def test_three_instances_with_a_named_volume_land_on_three_agents(cluster, three):
    assert len(three) == 3
    assert sorted(i["agent"] for i in three) == sorted(a.id for a in cluster.bed.agents)
    for instance in three:   # each agent holds one container on its own volume
        [container] = cluster.containers(NAME, [instance["agent"]])
        assert container.name == instance["container"]


def test_a_fourth_instance_fails_with_the_reason_and_reserves_nothing(cluster, three):
    before = {a["id"]: a["allocated"] for a in cluster.store.agents.list()}
    deployment = cluster.ops.scale(NAME, 4, actor="test")
    done = cluster.wait(deployment, timeout=60)
    assert done["status"] == "failed"
    assert done["error"].startswith(f"4 instances of {NAME} need 4 agents: each mounts "
                                    f"volume {NAME}-data; 3 agents can take one"), done["error"]
    assert sorted(i["id"] for i in cluster.instances(NAME)) == sorted(i["id"] for i in three)
    assert {a["id"]: a["allocated"] for a in cluster.store.agents.list()} == before
    # back to three, so the next test starts from a settled service
    back = cluster.wait(cluster.ops.scale(NAME, 3, actor="test"), timeout=60)
    assert back["status"] == "succeeded", back["error"]


def test_a_move_onto_an_agent_holding_another_instance_is_refused(cluster, three):
    first, second = three[0], three[1]
    with pytest.raises(MoveRefused) as caught:
        cluster.ops.move(NAME, first["id"], second["agent"], actor="test")
    assert caught.value.message.startswith(
        f"agent {second['agent']} already runs instance {second['id']} of {NAME}")
    assert cluster.store.instances.get(first["id"])["agent"] == first["agent"]
    assert cluster.store.services.get(NAME)["status"] != "deploying"


def test_an_upgrade_on_three_agents_replaces_in_place_never_beside(cluster):
    """Instances on a replaceable volume are not resident, yet two may not share an
    agent: a rolling upgrade on a full bed must replace each in place, not fail."""
    name = "vroll"
    volumes = [{"name": f"{name}-cache", "containerPath": "/data", "replaceable": True}]
    package, spec = hello("1.0.0", name, 3)
    cluster.created.append(name)
    try:
        done = cluster.wait(cluster.ops.install(name, {**spec, "volumes": volumes},
                                                package=package, actor="test")["deployment"],
                            timeout=120)
        assert done["status"] == "succeeded", done["error"]
        package, spec = hello("2.0.0", name, 3)
        done = cluster.wait(cluster.ops.update(name, spec={**spec, "volumes": volumes},
                                               package=package, actor="test"), timeout=180)
        assert done["status"] == "succeeded", done["error"]
        after = cluster.instances(name)
        assert sorted(i["generation"] for i in after) == [2, 2, 2]
        assert sorted(i["agent"] for i in after) == sorted(a.id for a in cluster.bed.agents)
        assert [s for s in done["steps"] if s["name"] == "move"], done["steps"]
    finally:
        if cluster.store.services.get(name) is not None:
            cluster.wait(cluster.ops.uninstall(name, actor="test", delete_data=True),
                         timeout=90)
    for agent in cluster.bed.agents:
        assert cluster.docker(agent.id).list_volumes({"berth.service": name}) == []
