"""Issue 3's failure behaviour on the real test bed: a killed container, a stopped
engine, a SIGKILLed worker, a Redis restart."""

from __future__ import annotations

import pytest
from cluster_support import Cluster, answers, serving, until

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(testbed):
    c = Cluster(testbed)
    yield c
    c.uninstall_all()


def test_a_killed_container_is_replaced_by_one_that_answers(cluster):
    cluster.wait(cluster.install("phoenix", 3))
    victim = cluster.instances("phoenix")[0]
    cluster.docker(victim["agent"]).kill(victim["container"])

    def replaced():
        fresh = [i for i in cluster.instances("phoenix") if i["id"] != victim["id"]]
        return serving(fresh, 3) and fresh

    fresh = until(replaced, 15, "a replacement answering HTTP", every=0.05)
    assert victim["id"] not in {i["id"] for i in fresh}
    assert len(cluster.containers("phoenix")) == 3  # the dead container is gone too
    kinds = [d["kind"] for d in cluster.store.deployments.list("phoenix")]
    assert kinds[0] == "recover"


def test_instances_of_a_stopped_engine_run_on_the_others(cluster, testbed):
    cluster.wait(cluster.install("nomad", 3))
    assert {i["agent"] for i in cluster.instances("nomad")} == {"agent-1", "agent-2", "agent-3"}
    testbed.stop_agent(3)
    try:
        until(lambda: cluster.store.agents.get("agent-3")["state"] == "unreachable",
              testbed.unreachable_timeout + 30, "agent-3 marked unreachable")
        moved = until(lambda: (lambda found: serving(found, 3) and found)(
            cluster.instances("nomad")), 60, "3 instances serving on agents 1 and 2")
        assert {i["agent"] for i in moved} <= {"agent-1", "agent-2"}
    finally:
        testbed.start_agent(3)
    until(lambda: cluster.store.agents.get("agent-3")["state"] == "up", 30, "agent-3 up again")
    # the containers it had when it stopped are orphans now: the reconciler removes them
    until(lambda: cluster.containers("nomad", ["agent-3"]) == [], 30, "agent-3 swept")
    assert serving(cluster.instances("nomad"), 3)


def test_a_worker_killed_mid_deployment_is_finished_by_the_next(cluster, testbed):
    deployment = cluster.install("crash", 12)

    def mid_way():
        found = cluster.store.deployments.get(deployment["id"])
        return found["progress"]["placed"] > 0 and found["status"] == "running"

    until(mid_way, 30, "the deployment to be under way", every=0.005)
    testbed.kill_worker()
    testbed.worker_env["BERTH_DEPLOY_LOCK_TTL"] = "2"
    testbed.start_worker()
    finished = cluster.wait(deployment, timeout=90)
    assert finished["status"] == "succeeded", finished["error"]
    instances = cluster.instances("crash")
    containers = cluster.containers("crash")
    assert len(instances) == 12
    assert sorted(c.name for c in containers) == sorted(i["container"] for i in instances)
    assert serving(instances, 12)


def test_a_redis_restart_loses_nothing_acknowledged_and_workers_resume(cluster, testbed):
    cluster.wait(cluster.install("durable", 2))
    pending = cluster.install("durable2", 2)  # acknowledged, maybe not yet deployed
    testbed.restart_redis()
    store = cluster.store
    assert store.services.get("durable")["status"] == "running"
    assert store.deployments.get(pending["id"]) is not None
    finished = cluster.wait(pending, timeout=90)
    assert finished["status"] == "succeeded", finished["error"]
    resumed = cluster.wait(cluster.ops.scale("durable", 3, actor="test"), timeout=90)
    assert resumed["status"] == "succeeded", resumed["error"]
    assert until(lambda: serving(cluster.instances("durable"), 3), 20, "3 serving")
    assert all(answers(i) for i in cluster.instances("durable2"))


def test_an_instance_failing_its_health_check_is_replaced(cluster):
    cluster.wait(cluster.install("sickly", 2))
    victim = cluster.instances("sickly")[0]
    result = cluster.docker(victim["agent"]).exec_check(victim["container"], "rm /www/health")
    assert result.ok, result.output

    def replaced():
        found = cluster.instances("sickly")
        return victim["id"] not in {i["id"] for i in found} and serving(found, 2)

    until(replaced, 40, "the unhealthy instance to be replaced")
    events = [e for e in cluster.store.state.read_events(count=100000)
              if e["subject"] == victim["id"]]
    assert "instance.unhealthy" in {e["type"] for e in events}


def test_draining_an_agent_moves_its_instances_away(cluster):
    from worker import agents

    cluster.wait(cluster.install("drained", 3))
    try:
        agents.drain(cluster.store, "agent-1", actor="test",
                     enqueue=lambda n, a: cluster.app.send_task(n, args=list(a)))
        moved = until(lambda: (lambda found: serving(found, 3) and all(
            i["agent"] != "agent-1" for i in found) and found)(cluster.instances("drained")),
            40, "3 instances serving away from agent-1")
        assert len(moved) == 3
        assert cluster.containers("drained", ["agent-1"]) == []
    finally:
        agents.activate(cluster.store, "agent-1", actor="test")


def test_a_forcibly_removed_agent_loses_its_containers_and_its_work_moves(cluster, testbed):
    """Forced removal as the server does it: records go at once, a worker removes the
    containers from the engine, the reconciler places replacements elsewhere."""
    from worker import agents

    cluster.wait(cluster.install("evicted", 3))
    assert cluster.containers("evicted", ["agent-3"])
    try:
        agents.remove(cluster.store, "agent-3", force=True, actor="test",
                      enqueue=lambda n, a: cluster.app.send_task(n, args=list(a)))
        assert "agent-3" not in cluster.store.agents.ids()
        engine = testbed.agent(3)  # the store no longer knows it
        until(lambda: engine.list_instances({"berth.service": "evicted"}) == [], 30,
              "the worker to remove the containers of agent-3")
        cluster.app.send_task("berth.reconcile_service", args=["evicted"])
        moved = until(lambda: (lambda found: serving(found, 3) and all(
            i["agent"] != "agent-3" for i in found) and found)(cluster.instances("evicted")),
            40, "3 instances serving away from agent-3")
        assert len(moved) == 3
    finally:
        testbed.register_agents()
