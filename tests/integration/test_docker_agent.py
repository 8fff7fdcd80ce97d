"""The Docker funnel against the test bed's real engines.

Containers made here carry the label ``berth-test.case`` (not ``berth.service``,
except in the events test), so the worker's reconciler leaves them alone; ports come
from the top of each agent's range, far from what the worker assigns.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from worker.docker_agent import DockerAgent, tarball_name
from worker.errors import (
    AgentUnreachable,
    ContainerConflict,
    ContainerError,
    ContainerNotFound,
    ImageUnavailable,
    RemovalInProgress,
)
from worker.testbed.bed import Testbed

pytestmark = pytest.mark.integration

HELLO = "berth/hello:1.0.0"


def eventually(predicate: Callable[[], Any], timeout: float = 15) -> Any:
    """Poll until ``predicate()`` is truthy; return its value or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.05)


def http_text(url: str) -> str | None:
    try:
        return requests.get(url, timeout=1).text
    except requests.RequestException:
        return None


@pytest.fixture
def agent(testbed: Testbed) -> Iterator[DockerAgent]:
    """Agent 1, with every container this test made removed afterwards."""
    docker_agent = testbed.agent(1)
    yield docker_agent
    for info in docker_agent.list_instances(["berth-test.case"]):
        docker_agent.remove(info.id)


def name() -> str:
    return f"berth-test-{uuid.uuid4().hex[:8]}"


def test_ping_and_info_describe_the_engine(agent: DockerAgent) -> None:
    assert agent.ping() is True
    info = agent.info()
    assert info["cpus"] > 0 and info["mem"] > 0 and info["version"]


def test_an_engine_that_does_not_answer_is_unreachable(testbed: Testbed) -> None:
    nobody = DockerAgent(f"tcp://127.0.{10 + testbed.lane}.99:2375", timeout=2)
    assert nobody.is_up() is False
    with pytest.raises(AgentUnreachable) as caught:
        nobody.info()
    assert "127.0." in caught.value.message and caught.value.code == "agent_unreachable"


def test_run_instance_applies_spec_ports_limits_and_labels(testbed: Testbed,
                                                          agent: DockerAgent) -> None:
    port = testbed.agents[0].port_range[1]
    spec = {"image": HELLO, "env": {"HELLO_MESSAGE": "from-test"}, "mem": 48, "cpus": 0.25,
            "ports": [{"name": "web-ui", "containerPort": 0, "hostPort": 0}],
            "labels": {"berth-test.case": "spoofed", "team": "a"}}
    labels = {"berth-test.case": "run", "berth.generation": "7"}
    cid = agent.run_instance(name(), spec, labels=labels, env={"EXTRA": "1"},
                             ports={"web-ui": port}, address=testbed.agents[0].address)
    assert "from-test" in eventually(lambda: http_text(f"http://127.0.0.1:{port}/"))
    raw = agent.api.inspect_container(cid)
    host = raw["HostConfig"]
    assert host["Memory"] == 48 << 20 and host["NanoCpus"] == 250_000_000
    assert host["NetworkMode"] == "host" and host["RestartPolicy"]["Name"] in ("no", "")
    env = dict(item.split("=", 1) for item in raw["Config"]["Env"])
    assert env["PORT0"] == env["PORT_WEB_UI"] == str(port)
    assert env["HOST"] == env["BERTH_HOST"] == testbed.agents[0].address and env["EXTRA"] == "1"
    assert raw["Config"]["Labels"]["berth-test.case"] == "run"   # Berth's labels win
    assert raw["Config"]["Labels"]["berth.generation"] == "7"
    assert raw["Config"]["Labels"]["team"] == "a"


def test_run_instance_is_idempotent_and_starts_a_stopped_container(agent: DockerAgent) -> None:
    spec = {"image": HELLO, "command": "exec sleep 300"}
    container = name()
    first = agent.run_instance(container, spec, labels={"berth-test.case": "idem"})
    assert agent.run_instance(container, spec, labels={"berth-test.case": "idem"}) == first
    agent.kill(first)
    eventually(lambda: not agent.find(container).running)
    assert agent.run_instance(container, spec, labels={"berth-test.case": "idem"}) == first
    assert agent.find(container).running
    assert [c.id for c in agent.list_instances({"berth-test.case": "idem"})] == [first]


def test_command_runs_with_a_shell_and_logs_can_be_read(testbed: Testbed,
                                                        agent: DockerAgent) -> None:
    spec = {"image": HELLO, "command": "echo port=$PORT0 host=$HOST; exec sleep 300",
            "ports": [{"name": "p"}]}
    container = name()
    agent.run_instance(container, spec, labels={"berth-test.case": "cmd"}, ports=[23456],
                       address="10.1.2.3")
    assert eventually(lambda: "port=23456 host=10.1.2.3" in agent.logs(container, tail=10))


def test_remove_of_a_missing_container_is_fine(agent: DockerAgent) -> None:
    assert agent.remove(name()) is False


def test_a_missing_image_is_image_unavailable(agent: DockerAgent) -> None:
    with pytest.raises(ImageUnavailable):
        agent.run_instance(name(), {"image": "berth-test/absent:0.0.1"},
                           labels={"berth-test.case": "noimage"})


def test_an_engine_refusal_is_a_container_error(agent: DockerAgent) -> None:
    container = name()
    with pytest.raises(ContainerError) as caught:   # the image has no such user
        agent.run_instance(container, {"image": HELLO, "user": "nosuchuser"},
                           labels={"berth-test.case": "refused"})
    assert "nosuchuser" in caught.value.message
    assert agent.find(container) is None   # a failed start leaves nothing behind


def test_a_missing_container_is_container_not_found(agent: DockerAgent) -> None:
    """The engine's 404 arrives as a type: no caller reads the SDK's exception."""
    missing = name()
    with pytest.raises(ContainerNotFound) as caught:
        agent.logs(missing)
    assert missing in caught.value.message
    with pytest.raises(ContainerNotFound):
        agent.kill(missing)


def test_a_state_conflict_is_container_conflict(agent: DockerAgent) -> None:
    """Killing a container that is not running is a 409: a conflict, not a removal."""
    container = name()
    agent.run_instance(container, {"image": HELLO, "command": "exec sleep 300"},
                       labels={"berth-test.case": "conflict"})
    agent.kill(container)

    def stopped() -> bool:
        info = agent.find(container)
        assert info is not None, "the killed container is kept until removed"
        return not info.running

    eventually(stopped)
    with pytest.raises(ContainerConflict) as caught:
        agent.kill(container)
    assert not isinstance(caught.value, RemovalInProgress)


def test_exec_check_reports_exit_code_output_and_timeout(agent: DockerAgent) -> None:
    container = name()
    agent.run_instance(container, {"image": HELLO, "command": "exec sleep 300"},
                       labels={"berth-test.case": "exec"})
    ok = agent.exec_check(container, "echo hi; exit 3", timeout=5)
    assert (ok.exit_code, ok.output, ok.ok) == (3, "hi\n", False)
    assert agent.exec_check(container, ["/bin/sh", "-c", "exit 0"], timeout=5).ok
    assert agent.exec_check(container, "sleep 30", timeout=0.5).exit_code is None


def test_events_report_lifecycle_of_berth_containers(agent: DockerAgent) -> None:
    container = name()
    stream = agent.events(since=time.time() - 1)
    seen: list[Any] = []
    reader = threading.Thread(target=lambda: seen.extend(stream), daemon=True)
    reader.start()
    cid = agent.run_instance(container, {"image": HELLO, "command": "exec sleep 300"},
                             labels={"berth-test.case": "events", "berth.service": "t-events",
                                     "berth.instance": "t-events-1"})
    agent.kill(cid)
    dies = lambda: [e for e in seen if e.container_id == cid and e.action == "die"]  # noqa: E731
    die = eventually(dies)[0]
    assert die.exit_code == 137 and die.instance == "t-events-1" and die.name == container
    assert any(e.container_id == cid and e.action == "start" for e in seen)
    stream.close()
    reader.join(5)
    assert not reader.is_alive()


@pytest.fixture
def spare_image(testbed: Testbed) -> Iterator[str]:
    """A tag that only agent 1 holds (removed from every agent afterwards)."""
    ref = f"berth-test/spare:{uuid.uuid4().hex[:8]}"
    repo, tag = ref.split(":")
    testbed.agent(1).api.tag(HELLO, repo, tag)
    yield ref
    for i in (1, 2, 3):
        if testbed.agent(i).has_image(ref):
            testbed.agent(i).api.remove_image(ref)


def test_ensure_image_copies_from_a_peer(testbed: Testbed, spare_image: str) -> None:
    target = testbed.agent(2)
    assert not target.has_image(spare_image)
    source = target.ensure_image(spare_image, peers=[testbed.agent(3), testbed.agent(1)])
    assert source == f"peer:{testbed.agents[0].url}" and target.has_image(spare_image)
    assert target.ensure_image(spare_image) == "present"


def test_ensure_image_loads_a_tarball(testbed: Testbed, spare_image: str, tmp_path: Any) -> None:
    testbed.agent(1).save_image(spare_image, tmp_path / tarball_name(spare_image))
    target = testbed.agent(3)
    assert target.ensure_image(spare_image, tarball_dir=tmp_path) == "tarball"
    assert target.has_image(spare_image)


def test_ensure_image_lists_every_failed_source(testbed: Testbed, tmp_path: Any) -> None:
    with pytest.raises(ImageUnavailable) as caught:
        testbed.agent(2).ensure_image("berth-test/nowhere:1", peers=[testbed.agent(1)],
                                      tarball_dir=tmp_path)
    paths = [d["path"] for d in caught.value.details]
    assert paths == ["pull", f"peer:{testbed.agents[0].url}"]


def _remove_twice_at_once(agent: DockerAgent, container: str) -> list[Any]:
    """Two threads remove ``container`` at the same moment; what each got."""
    results: list[Any] = []
    barrier = threading.Barrier(2)

    def remove() -> None:
        barrier.wait()
        try:
            results.append(agent.remove(container))
        except Exception as error:  # noqa: BLE001 - the caller's assertion names it
            results.append(error)

    threads = [threading.Thread(target=remove) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_concurrent_removals_of_one_container_both_succeed(agent: DockerAgent) -> None:
    """The reconciler and a deployer may remove the same container at once; the engine
    answers the second 'removal already in progress', which is success once it is gone."""
    spec = {"image": HELLO, "command": "exec sleep 300"}
    for round_ in range(5):
        container = name()
        agent.run_instance(container, spec, labels={"berth-test.case": "race"})
        results = _remove_twice_at_once(agent, container)
        assert len(results) == 2 and all(isinstance(r, bool) for r in results), (round_, results)
        assert True in results
        assert agent.find(container) is None
