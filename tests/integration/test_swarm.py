"""Docker Swarm as a cluster backend, against a real three-node Swarm made of the test
bed's engines (``worker/testbed/swarm.py``): install, spread, scale, upgrade start-first,
rollback, a killed task, a drained node, uninstall, refusals, and one journey over both
backends."""

from __future__ import annotations

import math
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import docker
import pytest
import requests

from tests.integration.cluster_support import (
    Cluster,
    answers,
    commit_variant,
    hello,
    serving,
    until,
)
from worker.store.crypto import DataKeys
from worker.swarm import SwarmBackend
from worker.swarm_deploy import blocks_of
from worker.swarm_spec import swarm_name
from worker.testbed.registry import USER, BedRegistry
from worker.testbed.swarm import CLUSTER, SwarmBed

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def swarm(testbed: Any) -> Iterator[SwarmBed]:
    bed = SwarmBed(testbed).start()
    try:
        yield bed
    finally:
        bed.stop()


@pytest.fixture(scope="module")
def cluster(testbed: Any, swarm: SwarmBed) -> Iterator[Cluster]:
    c = Cluster(testbed)
    try:
        yield c
    finally:
        c.uninstall_all()


@pytest.fixture(scope="module")
def backend(testbed: Any, swarm: SwarmBed) -> Iterator[SwarmBackend]:
    b = SwarmBackend(testbed.store().clusters.require(CLUSTER))
    yield b
    b.close()


def install(cluster: Cluster, name: str, instances: int, *, version: str = "1.0.0",
            constraints: list[list[str]] | None = None, on: str = CLUSTER) -> dict[str, Any]:
    """Install ``hello`` onto a cluster; returns the finished deployment."""
    package, spec = hello(version, name, instances, constraints or [])
    cluster.created.append(name)
    result = cluster.ops.install(name, spec, package=package, actor="test", cluster=on)
    return cluster.wait(result["deployment"], timeout=120)


def spread(cluster: Cluster, name: str) -> Counter[str]:
    return Counter(i["agent"] for i in cluster.instances(name) if i["state"] == "running")


def swarm_spec(swarm: SwarmBed, name: str) -> dict[str, Any]:
    return swarm.manager.services.get(swarm_name(name)).attrs["Spec"]


@pytest.fixture(scope="module")
def web(cluster: Cluster) -> str:
    """``hello`` with 6 instances, at most 2 per node, on the Swarm."""
    done = install(cluster, "sw-web", 6, constraints=[["hostname", "MAX_PER", "2"]])
    assert done["status"] == "succeeded", done
    return "sw-web"


def test_max_per_two_spreads_two_on_each_node_and_every_task_answers(
        cluster: Cluster, swarm: SwarmBed, web: str) -> None:
    assert sorted(spread(cluster, web).values()) == [2, 2, 2]
    assert serving(cluster.instances(web), 6, "1.0.0")
    spec = swarm_spec(swarm, web)
    assert spec["TaskTemplate"]["Placement"]["MaxReplicas"] == 2
    assert spec["Mode"]["Replicated"]["Replicas"] == 6
    assert cluster.store.services.get(web)["cluster"] == CLUSTER


def test_scale_to_three_and_back_to_six(cluster: Cluster, web: str) -> None:
    assert cluster.wait(cluster.ops.scale(web, 3, actor="test"))["status"] == "succeeded"
    assert len(cluster.instances(web)) == 3 and serving(cluster.instances(web), 3)
    assert cluster.wait(cluster.ops.scale(web, 6, actor="test"))["status"] == "succeeded"
    assert serving(cluster.instances(web), 6, "1.0.0")
    assert sorted(spread(cluster, web).values()) == [2, 2, 2]


def _watch_healthy(backend: SwarmBackend, name: str, spec: dict[str, Any],
                   blocks: list[tuple[int, int]], stop: threading.Event,
                   seen: list[int]) -> None:
    """Record how many tasks run healthy (any generation), as often as the manager
    answers (a running task of a service with a health check has passed it)."""
    while not stop.is_set():
        views = backend.observe(name, spec, blocks)
        seen.append(sum(1 for v in views if v.state == "running"))


def test_upgrade_rolls_start_first_above_minimum_health_then_rollback(
        cluster: Cluster, swarm: SwarmBed, backend: SwarmBackend, web: str) -> None:
    # 6 tasks at most 2 per node fill 3 nodes: nothing could start first. At most 3 per
    # node leaves room for 3 new tasks at a time.
    package, spec = hello("2.0.0", web, 6, [["hostname", "MAX_PER", "3"]])
    strategy = spec.get("upgradeStrategy") or {}
    minimum = math.ceil(6 * float(strategy.get("minimumHealthCapacity", 1.0)))
    seen: list[int] = []
    stop = threading.Event()
    blocks = blocks_of(cluster.store, cluster.store.services.get(web))
    watcher = threading.Thread(target=_watch_healthy,
                               args=(backend, web, spec, blocks, stop, seen), daemon=True)
    watcher.start()
    try:
        done = cluster.wait(cluster.ops.update(web, spec=spec, package=package, actor="test"),
                            timeout=180)
    finally:
        stop.set()
        watcher.join(10)
    assert done["status"] == "succeeded", done
    update = swarm_spec(swarm, web)["UpdateConfig"]
    assert update["Order"] == "start-first" and update["Parallelism"] == 3
    assert seen and min(seen) >= minimum, f"healthy tasks seen during the update: {seen}"
    assert serving(cluster.instances(web), 6, "2.0.0")
    back = cluster.wait(cluster.ops.rollback(web, None, actor="test"), timeout=180)
    assert back["status"] == "succeeded", back
    service = cluster.store.services.get(web)
    assert service["package"]["version"] == "1.0.0" and service["generation"] == 3
    assert serving(cluster.instances(web), 6, "1.0.0")


def test_a_killed_task_is_replaced_and_berth_shows_it(
        cluster: Cluster, testbed: Any, web: str) -> None:
    before = {i["id"]: i for i in cluster.instances(web)}
    victim = next(iter(before.values()))
    last = cluster.store.state.last_event_id()
    node = int(victim["agent"].rsplit("-", 1)[-1])
    engine = docker.DockerClient(base_url=testbed.agents[node - 1].url)
    engine.containers.get(victim["container_id"]).kill()
    engine.close()

    def replaced() -> bool:
        now = {i["id"]: i for i in cluster.instances(web)}
        return victim["id"] not in now and serving(list(now.values()), 6)

    until(replaced, 30, lambda: f"a replacement of {victim['id']}: {cluster.instances(web)}",
          every=0.5)
    events = cluster.store.state.read_events(last, count=500)
    kinds = {(e["type"], e["subject"]) for e in events}
    assert ("instance.removed", victim["id"]) in kinds
    assert any(t == "instance.started" and s not in before for t, s in kinds)


def test_a_drained_node_moves_its_tasks(cluster: Cluster, swarm: SwarmBed) -> None:
    name = "sw-drain"
    done = install(cluster, name, 3)
    assert done["status"] == "succeeded", done
    assert len(spread(cluster, name)) == 3
    swarm.drain(3)
    try:
        until(lambda: "swarm/agent-3" not in spread(cluster, name)
              and serving(cluster.instances(name), 3), 60,
              lambda: f"tasks to leave agent-3: {spread(cluster, name)}", every=0.5)
    finally:
        swarm.drain(3, drain=False)
    assert cluster.wait(cluster.ops.uninstall(name, actor="test"), timeout=90)[
        "status"] == "succeeded"


def test_uninstall_leaves_no_service_task_or_container(
        cluster: Cluster, testbed: Any, swarm: SwarmBed, backend: SwarmBackend) -> None:
    name = "sw-gone"
    done = install(cluster, name, 3)
    assert done["status"] == "succeeded", done
    done = cluster.wait(cluster.ops.uninstall(name, actor="test"), timeout=90)
    assert done["status"] == "succeeded", done
    assert cluster.store.services.get(name) is None and cluster.instances(name) == []
    assert not swarm.manager.services.list(filters={"name": swarm_name(name)})
    assert backend.tasks(name) == []

    def containers_left() -> list[str]:
        left = []
        for spec in testbed.agents:
            engine = docker.DockerClient(base_url=spec.url)
            # the low-level list: the high-level one inspects each container, which
            # may be going away at that moment
            left += [c["Names"][0] for c in engine.api.containers(all=True, filters={
                "label": f"berth.swarm.service={name}"})]
            engine.close()
        return left

    # each node removes its containers once the manager dropped the tasks
    until(lambda: not containers_left(), 30, lambda: f"containers {containers_left()}",
          every=0.5)


def test_a_constraint_swarm_cannot_express_is_refused_and_nothing_is_created(
        live_server: Any, swarm: SwarmBed) -> None:
    answer = requests.post(f"{live_server.api}/services", headers=live_server.headers(),
                           json={"package": "hello", "name": "sw-like", "instances": 2,
                                 "cluster": CLUSTER, "constraints": [["zone", "LIKE", "a|b"]]},
                           timeout=30)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "spec_refused"
    assert any("LIKE" in d["message"] and d["path"] == "constraints/0"
               for d in body["details"]), body
    assert live_server.store().services.get("sw-like") is None
    assert not swarm.manager.services.list(filters={"name": swarm_name("sw-like")})


def test_clusters_api_lists_the_swarm_and_its_nodes(live_server: Any, swarm: SwarmBed) -> None:
    items = requests.get(f"{live_server.api}/clusters", headers=live_server.headers(),
                         timeout=10).json()["items"]
    assert [c["name"] for c in items][:1] == ["default"]
    assert any(c["name"] == CLUSTER and c["kind"] == "swarm" for c in items)
    nodes = requests.get(f"{live_server.api}/clusters/nodes", headers=live_server.headers(),
                         timeout=10).json()["items"]
    assert sorted(n["id"] for n in nodes) == ["agent-1", "agent-2", "agent-3"]
    assert {n["attributes"]["zone"] for n in nodes} == {"a", "b", "c"}
    assert all(n["availability"] == "active" and n["capacity"]["cpus"] > 0 for n in nodes)


@pytest.mark.parametrize("on", ["default", CLUSTER])
def test_the_same_journey_on_both_backends(cluster: Cluster, on: str) -> None:
    name = f"journey-{'sw' if on == CLUSTER else 'ag'}"
    done = install(cluster, name, 2, on=on)
    assert done["status"] == "succeeded", done
    assert serving(cluster.instances(name), 2, "1.0.0")
    assert cluster.wait(cluster.ops.scale(name, 3, actor="test"))["status"] == "succeeded"
    assert serving(cluster.instances(name), 3, "1.0.0")
    assert all(answers(i) for i in cluster.instances(name))
    done = cluster.wait(cluster.ops.uninstall(name, actor="test"), timeout=90)
    assert done["status"] == "succeeded" and cluster.instances(name) == []


@pytest.fixture(scope="module")
def registry_image(testbed: Any, swarm: SwarmBed) -> Iterator[tuple[BedRegistry, str]]:
    """Debian's registry with htpasswd auth, Berth's credentials for it, and a variant
    of hello 2.0.0 there that no node has (every node must pull it)."""
    registry = BedRegistry(testbed.var_dir, testbed.lane).start()
    store = testbed.store()
    local = commit_variant(testbed.agent(1), f"berth/hello:2.0.0-s{uuid.uuid4().hex[:8]}")
    ref = registry.ref(local)
    try:
        registry.push(testbed.agent(1), local)
        yield registry, ref
    finally:
        store.registries.remove(registry.host)
        for i in range(1, len(testbed.agents) + 1):
            for tag in (local, ref):
                if testbed.agent(i).has_image(tag):
                    testbed.agent(i).api.remove_image(tag, force=True)
        registry.stop()


def _credentials(testbed: Any, registry: BedRegistry, password: str) -> None:
    keys = DataKeys.from_setting(testbed.data_key())
    assert keys is not None
    testbed.store().registries.put(registry.host, username=USER,
                                   password=keys.seal(password), actor="test")


def _install_image(cluster: Cluster, name: str, image: str) -> dict[str, Any]:
    package, spec = hello("2.0.0", name, 3, [["hostname", "MAX_PER", "1"]])
    cluster.created.append(name)
    result = cluster.ops.install(name, {**spec, "image": image}, package=package,
                                 actor="test", cluster=CLUSTER)
    return cluster.wait(result["deployment"], timeout=180)


def test_tasks_pull_from_a_registry_with_berths_credentials(
        cluster: Cluster, testbed: Any, swarm: SwarmBed,
        registry_image: tuple[BedRegistry, str]) -> None:
    """As with --with-registry-auth: the credentials go with the create, every node pulls
    the image it never had, and each task answers."""
    registry, image = registry_image
    _credentials(testbed, registry, registry.password)
    done = _install_image(cluster, "sw-reg", image)
    assert done["status"] == "succeeded", done
    assert sorted(spread(cluster, "sw-reg").values()) == [1, 1, 1]
    assert serving(cluster.instances("sw-reg"), 3, "2.0.0")
    for i in range(1, len(testbed.agents) + 1):   # pulled by the nodes themselves
        assert testbed.agent(i).has_image(image)


def test_wrong_registry_credentials_fail_clearly_and_create_nothing(
        cluster: Cluster, testbed: Any, swarm: SwarmBed,
        registry_image: tuple[BedRegistry, str]) -> None:
    registry, image = registry_image
    wrong = "not-the-password-" + uuid.uuid4().hex
    _credentials(testbed, registry, wrong)
    done = _install_image(cluster, "sw-badreg", image)
    assert done["status"] == "failed"
    assert "log in to" in done["error"] and registry.host in done["error"], done["error"]
    assert wrong not in str(done)
    with pytest.raises(docker.errors.NotFound):
        swarm.manager.services.get(swarm_name("sw-badreg"))
