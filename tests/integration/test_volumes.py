"""Volumes in the open, on the real test bed: Berth's named volumes are labelled and
listed by service and agent, uninstall keeps them (left over) unless asked to delete
the data, and anonymous volumes an image declares go with their container."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from cluster_support import Cluster, hello, until

from worker.agents import AgentPool
from worker.docker_agent import DockerAgent
from worker.volumes import inventory

pytestmark = pytest.mark.integration

HELLO = "berth/hello:1.0.0"


@pytest.fixture
def cluster(testbed) -> Iterator[Cluster]:
    c = Cluster(testbed)
    yield c
    c.uninstall_all(delete_data=True)   # a later run must not find this run's volumes


@pytest.fixture
def agent(testbed) -> Iterator[DockerAgent]:
    """Agent 1; the containers and volumes a test made here are removed afterwards."""
    docker_agent = testbed.agent(1)
    yield docker_agent
    for info in docker_agent.list_instances(["berth-test.case"]):
        docker_agent.remove(info.id)
    for volume in docker_agent.list_volumes(["berth-test.case"]):
        docker_agent.remove_volume(volume.name)


def install_with_volume(cluster: Cluster, name: str) -> dict:
    """Install ``hello`` with one named volume ``<name>-data`` on /data; wait for it."""
    package, spec = hello("1.0.0", name, 1)
    spec["volumes"] = [{"name": f"{name}-data", "containerPath": "/data", "readOnly": False}]
    cluster.created.append(name)
    deployment = cluster.ops.install(name, spec, package=package, actor="test")["deployment"]
    done = cluster.wait(deployment)
    assert done["status"] == "succeeded", done["error"]
    return cluster.instances(name)[0]


def listed(cluster: Cluster, service: str) -> list[dict]:
    installed = [s["name"] for s in cluster.store.services.list()]
    return inventory(cluster.store.agents.list(), AgentPool(timeout=5), service=service,
                     installed=installed)["volumes"]


def on_agents(cluster: Cluster, volume: str) -> list[str]:
    """The agents whose engine has a volume of that name (labelled or not)."""
    return [a.id for a in cluster.bed.agents
            if any(v.name == volume for v in cluster.docker(a.id).list_volumes(()))]


def test_a_named_volume_is_labelled_and_listed_with_its_agent_and_in_use(cluster):
    instance = install_with_volume(cluster, "vkeep")
    [entry] = listed(cluster, "vkeep")
    assert entry["name"] == "vkeep-data" and entry["agent"] == instance["agent"]
    assert entry["in_use"] is True and entry["state"] == "in use"
    assert entry["service_installed"] is True
    engine = cluster.docker(instance["agent"])
    wrote = engine.exec_check(instance["container"], "head -c 100000 /dev/zero > /data/f")
    assert wrote.exit_code == 0, wrote.output
    [entry] = listed(cluster, "vkeep")
    assert entry["size"] >= 100000   # the test bed's engines report volume sizes
    [raw] = [v for v in cluster.docker(instance["agent"]).list_volumes(
        {"berth.service": "vkeep"})]
    assert raw.labels == {"berth.service": "vkeep", "berth.volume": "vkeep-data"}


def test_uninstall_without_delete_data_leaves_the_volume_listed_as_left_over(cluster):
    instance = install_with_volume(cluster, "vstay")
    removal = cluster.wait(cluster.ops.uninstall("vstay", actor="test"))
    assert removal["status"] == "succeeded", removal["error"]
    [entry] = listed(cluster, "vstay")
    assert entry["state"] == "left over" and entry["in_use"] is False
    assert entry["service_installed"] is False
    assert on_agents(cluster, "vstay-data") == [instance["agent"]]
    cluster.docker(instance["agent"]).remove_volume("vstay-data")


def test_uninstall_with_delete_data_leaves_nothing_on_any_agent(cluster):
    install_with_volume(cluster, "vgone")
    removal = cluster.wait(cluster.ops.uninstall("vgone", actor="test", delete_data=True))
    assert removal["status"] == "succeeded", removal["error"]
    assert "removed 1 volumes" in [s for s in removal["steps"]
                                   if s["name"] == "delete data"][0]["message"]
    assert listed(cluster, "vgone") == []
    assert on_agents(cluster, "vgone-data") == []


def _image_with_volume(agent: DockerAgent) -> str:
    """An image whose config declares ``VOLUME /cache`` (busybox from ``hello``)."""
    ref = f"berth-test/volume-image:{uuid.uuid4().hex[:8]}"
    holder = agent.client.containers.create(HELLO,
                                            labels={"berth-test.case": "image"})
    try:
        holder.commit(repository=ref.split(":")[0], tag=ref.split(":")[1],
                      changes=["VOLUME /cache"])
    finally:
        holder.remove(force=True)
    return ref


def _anonymous_volumes(agent: DockerAgent, container: str) -> list[str]:
    mounts = agent.api.inspect_container(container)["Mounts"]
    return [m["Name"] for m in mounts if m["Type"] == "volume" and m["Destination"] == "/cache"]


def test_removal_takes_the_anonymous_volume_and_keeps_the_named_one(agent):
    image = _image_with_volume(agent)
    named = f"berth-test-{uuid.uuid4().hex[:8]}"
    agent.ensure_volume(named, {"berth-test.case": "volumes"})
    spec = {"image": image, "command": "sleep 300", "network": "none",
            "volumes": [{"name": named, "containerPath": "/data", "readOnly": False}]}
    name = f"berth-test-{uuid.uuid4().hex[:8]}"
    try:
        agent.run_instance(name, spec, labels={"berth-test.case": "volumes"})
        [anonymous] = _anonymous_volumes(agent, name)
        assert anonymous in {v.name for v in agent.list_volumes(())}
        agent.remove(name)
        names = {v.name for v in agent.list_volumes(())}
        assert anonymous not in names
        assert named in names
    finally:
        agent.remove(name)
        agent.client.images.remove(image, force=True)


def test_a_replaced_instance_leaves_no_anonymous_volume(cluster, agent):
    image = _image_with_volume(agent)
    try:
        package, spec = hello("1.0.0", "vanon", 1, [["hostname", "LIKE", "agent-1"]])
        spec["image"] = image
        cluster.created.append("vanon")
        done = cluster.wait(cluster.ops.install("vanon", spec, package=package,
                                                actor="test")["deployment"])
        assert done["status"] == "succeeded", done["error"]
        first = cluster.instances("vanon")[0]
        [anonymous] = _anonymous_volumes(agent, first["container"])
        restart = cluster.wait(cluster.ops.restart("vanon", actor="test"))
        assert restart["status"] == "succeeded", restart["error"]
        until(lambda: anonymous not in {v.name for v in agent.list_volumes(())}, 30,
              "the replaced container's anonymous volume to go")
        cluster.wait(cluster.ops.uninstall("vanon", actor="test"))
    finally:
        agent.client.images.remove(image, force=True)


def _berth(live_server, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the `berth` CLI against the live server, as an admin's script would."""
    command = "from server.client.cli import main; main()"
    return subprocess.run([sys.executable, "-c", command, *args],
                          env=live_server.cli_env(), capture_output=True, text=True,
                          timeout=240, check=False)


def test_through_the_cli_volumes_are_listed_then_uninstall_delete_data_removes_them(
        cluster, live_server):
    instance = install_with_volume(cluster, "vcli")
    listed = _berth(live_server, "volumes", "--service", "vcli", "--json")
    assert listed.returncode == 0, listed.stderr
    [entry] = json.loads(listed.stdout)["volumes"]
    assert (entry["name"], entry["agent"], entry["state"]) == (
        "vcli-data", instance["agent"], "in use")
    table = _berth(live_server, "volumes")
    assert "vcli-data" in table.stdout and instance["agent"] in table.stdout
    gone = _berth(live_server, "uninstall", "vcli", "--delete-data", "--yes", "--wait")
    assert gone.returncode == 0, gone.stderr
    assert f"deleting volumes: vcli-data on {instance['agent']}" in gone.stdout
    assert on_agents(cluster, "vcli-data") == []
    after = _berth(live_server, "volumes", "--service", "vcli", "--json")
    assert json.loads(after.stdout)["volumes"] == []
