"""Issue 3 on the real test bed: install, scale, upgrade, uninstall, and an install
that cannot fit — through ``DesiredState`` and a real worker, no fakes."""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest
from cluster_support import Cluster, answers, hello, serving, until

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(testbed):
    c = Cluster(testbed)
    yield c
    c.uninstall_all()


def per_agent(instances):
    return Counter(i["agent"] for i in instances)


def test_install_puts_two_per_agent_all_answering_on_their_ports(cluster):
    deployment = cluster.wait(cluster.install("spread", 6,
                                              constraints=[["hostname", "MAX_PER", "2"]]))
    assert deployment["status"] == "succeeded", deployment["error"]
    instances = cluster.instances("spread")
    assert per_agent(instances) == {"agent-1": 2, "agent-2": 2, "agent-3": 2}
    for instance in instances:
        body = json.loads(answers(instance, "/version.json"))
        assert body == {"version": "1.0.0", "port": instance["ports"]["http"]}  # PORT0
    containers = cluster.containers("spread")
    assert sorted(c.name for c in containers) == sorted(f"berth-{i['id']}" for i in instances)
    assert all(c.labels["berth.generation"] == "1" and c.running for c in containers)
    assert [s["name"] for s in deployment["steps"]][-1] == "finish"
    assert deployment["progress"]["healthy"] == 6
    events = cluster.store.state.read_events(count=100000)
    about = {e["type"] for e in events if e["subject"] == deployment["id"]
             or e["data"].get("service") == "spread" or e["subject"] == "spread"}
    assert {"service.created", "deployment.created", "instances.placed", "instance.started",
            "instance.healthy", "deployment.succeeded"} <= about


def test_scale_to_three_and_back_to_six(cluster):
    cluster.wait(cluster.install("scaled", 6, constraints=[["hostname", "MAX_PER", "2"]]))
    down = cluster.wait(cluster.ops.scale("scaled", 3, actor="test"))
    assert down["status"] == "succeeded", down["error"]
    assert len(cluster.containers("scaled")) == 3
    assert serving(cluster.instances("scaled"), 3)
    up = cluster.wait(cluster.ops.scale("scaled", 6, actor="test"))
    assert up["status"] == "succeeded", up["error"]
    assert per_agent(cluster.instances("scaled")) == {"agent-1": 2, "agent-2": 2, "agent-3": 2}
    assert serving(cluster.instances("scaled"), 6)


def test_upgrade_rolls_without_dropping_below_minimum_health_capacity(cluster):
    cluster.wait(cluster.install("rolled", 6, constraints=[["hostname", "MAX_PER", "2"]]))
    package, spec = hello(
        "2.0.0", "rolled", 6, [["hostname", "MAX_PER", "2"]])
    spec["upgradeStrategy"] = {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.0}
    samples, done = [], threading.Event()

    def sample():
        while not done.is_set():
            found = cluster.instances("rolled")
            samples.append(sum(1 for i in found if i["state"] == "running"
                               and i["health"] == "healthy"))
            done.wait(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        upgrade = cluster.wait(cluster.ops.update("rolled", spec=spec, package=package,
                                                  actor="test"))
    finally:
        done.set()
        sampler.join()
    assert upgrade["status"] == "succeeded", upgrade["error"]
    assert min(samples) >= 3  # ceil(6 × 0.5)
    assert max(samples) <= 6  # maximumOverCapacity 0: never more than 6
    instances = cluster.instances("rolled")
    assert {i["generation"] for i in instances} == {2}
    assert until(lambda: serving(cluster.instances("rolled"), 6, '"2.0.0"'), 10, "2.0.0")
    assert len(cluster.containers("rolled")) == 6


def test_uninstall_leaves_no_container_and_frees_resources(cluster):
    before = {a["id"]: a["allocated"] for a in cluster.store.agents.list()}
    cluster.wait(cluster.install("gone", 3))
    assert len(cluster.containers("gone")) == 3
    removal = cluster.wait(cluster.ops.uninstall("gone", actor="test"))
    assert removal["status"] == "succeeded", removal["error"]
    assert cluster.containers("gone") == []
    assert cluster.store.services.get("gone") is None and cluster.instances("gone") == []
    after = {a["id"]: a["allocated"] for a in cluster.store.agents.list()}
    assert after == before


@pytest.mark.parametrize("instances, constraints", [
    (7, [["hostname", "MAX_PER", "2"]]),
    (1, [["zone", "CLUSTER", "nowhere"]]),
])
def test_an_install_that_cannot_fit_fails_with_the_reason_and_reserves_nothing(
        cluster, instances, constraints):
    before = {a["id"]: a["allocated"] for a in cluster.store.agents.list()}
    result = cluster.wait(cluster.install("nofit", instances, constraints=constraints))
    assert result["status"] == "failed"
    assert "not enough capacity" in result["error"]
    reasons = {d["path"]: d["message"] for d in result["error_details"]}
    assert set(reasons) >= {"agents/agent-1", "agents/agent-2", "agents/agent-3"}
    assert cluster.store.services.get("nofit")["status"] == "failed"
    assert cluster.instances("nofit") == [] and cluster.containers("nofit") == []
    after = {a["id"]: a["allocated"] for a in cluster.store.agents.list()}
    assert after == before


def test_rollback_returns_to_the_earlier_version_and_restart_replaces_every_instance(cluster):
    cluster.wait(cluster.install("backtrack", 2))
    package, spec = hello("2.0.0", "backtrack", 2)
    upgraded = cluster.wait(cluster.ops.update("backtrack", spec=spec, package=package,
                                               actor="test"))
    assert upgraded["status"] == "succeeded", upgraded["error"]
    assert until(lambda: serving(cluster.instances("backtrack"), 2, '"2.0.0"'), 10, "2.0.0")
    back = cluster.wait(cluster.ops.rollback("backtrack", actor="test"))
    assert back["status"] == "succeeded", back["error"]
    assert cluster.store.services.get("backtrack")["package"]["version"] == "1.0.0"
    assert until(lambda: serving(cluster.instances("backtrack"), 2, '"1.0.0"'), 10, "1.0.0")
    before = {i["id"] for i in cluster.instances("backtrack")}
    restarted = cluster.wait(cluster.ops.restart("backtrack", actor="test"))
    assert restarted["status"] == "succeeded", restarted["error"]
    after = cluster.instances("backtrack")
    assert before.isdisjoint(i["id"] for i in after) and serving(after, 2, '"1.0.0"')
    assert [g["kind"] for g in cluster.ops.generations("backtrack")] == [
        "install", "upgrade", "rollback", "restart"]
    assert len(cluster.containers("backtrack")) == 2


def test_an_image_missing_on_an_agent_is_copied_from_another(cluster):
    ref = "berth/hello:2.0.0"
    docker = cluster.docker("agent-1")
    try:
        docker.api.remove_image(ref)
    except Exception as error:  # noqa: BLE001 - a container still uses it here
        pytest.fail(f"cannot remove {ref} from agent-1 (a container left by an earlier "
                    f"test still uses it?): {error}", pytrace=False)
    assert not docker.has_image(ref)
    result = cluster.wait(cluster.install("imported", 3, version="2.0.0"))
    assert result["status"] == "succeeded", result["error"]
    assert docker.has_image(ref)
    assert serving(cluster.instances("imported"), 3, '"2.0.0"')
