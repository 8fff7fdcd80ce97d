"""The hollow agent (``bench/hollow.py``) answers Berth's calls as a real engine does.

One real ``dockerd`` (started as the test bed starts its engines, on lane address
``127.0.(10+L).9``, folders under ``/tmp/berth-L/conform``) and one hollow agent
process are driven through :class:`worker.docker_agent.DockerAgent` — the one funnel
of every Docker call Berth makes — with the same calls in the same order. Each
scenario returns what Berth reads of the answers (ids, names, states, statuses,
labels, environment, host config, events, exec results, image labels), with values
that differ by nature (ids, times, process output) reduced to their shape; the two
observations must be equal. So the hollow agent used by the scale benchmark cannot
drift from what the engine answers.
"""

from __future__ import annotations

import re
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from bench.hollow import agent_address
from tests.fixtures.testbed import test_lane
from worker.docker_agent import DockerAgent, tarball_name
from worker.errors import ContainerError, ImageUnavailable
from worker.health import probe
from worker.testbed import processes as proc
from worker.testbed.images import build_images

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
HELLO = "berth/hello:1.0.0"
CASE = "berth-test.case"
HEALTH = {"protocol": "http", "portName": "http", "path": "/health", "timeoutSeconds": 2}
Observed = dict[str, Any]


def eventually(predicate: Callable[[], Any], timeout: float = 15) -> Any:
    """Poll until ``predicate()`` is truthy; return its value or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Engines:
    """The real engine and the hollow agent, each with its address and a free port."""

    def __init__(self, real: DockerAgent, hollow: DockerAgent, real_address: str,
                 hollow_address: str, ports: dict[str, int]) -> None:
        self.by_kind = {"real": real, "hollow": hollow}
        self.address = {"real": real_address, "hollow": hollow_address}
        self.port = ports


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engines]:
    """One real dockerd and one hollow agent holding the same hello image."""
    lane = test_lane()
    work = tmp_path_factory.mktemp("hollow")
    folder = Path(f"/tmp/berth-{lane}/conform")  # noqa: S108 - short paths for its sockets
    folder.mkdir(parents=True, exist_ok=True)
    real_address = f"127.0.{10 + lane}.9"
    hollow_net = f"127.{200 + lane}"
    hollow_address = agent_address(hollow_net, 0)
    proc.stop_pidfile(folder / "docker.pid", grace=30, program="dockerd")
    pids = []
    try:
        pids.append(proc.spawn([
            "dockerd", "--iptables=false", "--ip6tables=false", "--bridge=none",
            "--storage-driver=vfs", "--data-root", str(folder / "data"),
            "--exec-root", str(folder / "exec"), "--pidfile", str(folder / "docker.pid"),
            "--cgroup-parent", f"/berth-{lane}-conform", "-H", f"tcp://{real_address}:2375"],
            work / "dockerd.log"))
        control = _free_port()
        pids.append(proc.spawn([sys.executable, "-m", "bench.hollow", "--agents", "1",
                                "--net", hollow_net, "--control", str(control)],
                               work / "hollow.log", cwd=REPO))
        real = DockerAgent(f"tcp://{real_address}:2375", timeout=10)
        hollow = DockerAgent(f"tcp://{hollow_address}:2375", timeout=10)
        proc.wait_for(real.is_up, what="dockerd", pid=pids[0], log=work / "dockerd.log",
                      timeout=60)
        proc.wait_for(hollow.is_up, what="hollow agent", pid=pids[1], log=work / "hollow.log")
        for info in real.list_instances([CASE]):
            real.remove(info.id)
        build_images([real], REPO / "universe" / "images", work / "images")
        hollow.load_image(work / "images" / tarball_name(HELLO))   # as the bed spreads it
        base = 20000 + lane * 1000 + 950      # above every bed agent's port range
        yield Engines(real, hollow, real_address, hollow_address,
                      {"real": base, "hollow": base + 1})
        for info in real.list_instances([CASE]):
            real.remove(info.id)
    finally:
        for pid in reversed(pids):
            proc.terminate(pid, grace=30)


def both(engines: Engines, scenario: Callable[[DockerAgent, str, int], Observed]
         ) -> tuple[Observed, Observed]:
    """Run the same scenario on the real engine and on the hollow agent."""
    return (scenario(engines.by_kind["real"], engines.address["real"], engines.port["real"]),
            scenario(engines.by_kind["hollow"], engines.address["hollow"],
                     engines.port["hollow"]))


def is_id(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value) is not None


def status_kind(status: str) -> str:
    """``Up 3 seconds`` → ``Up``; ``Exited (137) 1 second ago`` → ``Exited (137)``."""
    match = re.match(r"(Up|Created|Exited \(\d+\))", status)
    return match.group(1) if match else status


def recent(stamp: float, window: float = 120) -> bool:
    return abs(time.time() - stamp) < window


def container_shape(agent: DockerAgent, name: str, address: str = "", port: int = 0
                    ) -> Observed:
    """What Berth reads of a container: its listing (``find``) and what docker-py
    itself reads of an inspect. The agent's own address and port read as placeholders."""
    info = agent.find(name)
    if info is None:
        return {"found": False}
    raw = agent.api.inspect_container(info.id)
    own = {address: "<address>", str(port): "<port>"}
    env = {k: own.get(v, v) for k, v in (item.split("=", 1) for item in raw["Config"]["Env"])}
    host = raw["HostConfig"]
    return {
        "found": True, "id": is_id(info.id), "name": info.name, "state": info.state,
        "running": info.running, "status": status_kind(info.status), "image": info.image,
        "labels": dict(info.labels), "created": recent(info.created),
        "inspect": {"Id": raw["Id"] == info.id, "Name": raw["Name"],
                    "State.Status": raw["State"]["Status"],
                    "State.Running": raw["State"]["Running"],
                    "State.ExitCode": raw["State"]["ExitCode"],
                    "Config.Labels": raw["Config"]["Labels"],
                    "Config.Tty": raw["Config"]["Tty"],
                    "Config.Image": raw["Config"]["Image"],
                    "Env": {k: env[k] for k in env if k.startswith(("PORT", "HOST", "BERTH"))},
                    "HostConfig.NetworkMode": host["NetworkMode"],
                    "HostConfig.Init": host.get("Init"),
                    "HostConfig.RestartPolicy": host["RestartPolicy"]["Name"],
                    "HostConfig.Memory": host.get("Memory"),
                    "HostConfig.NanoCpus": host.get("NanoCpus")},
    }


def test_engine_calls_answer_alike(engines: Engines) -> None:
    def scenario(agent: DockerAgent, address: str, port: int) -> Observed:
        info = agent.info()
        return {"ping": agent.ping(), "up": agent.is_up(),
                "info": {k: type(v).__name__ for k, v in info.items()},
                "capacity": info["cpus"] > 0 and info["mem"] > 0,
                "api version": agent.api.api_version}

    real, hollow = both(engines, scenario)
    assert hollow == real


def test_image_calls_answer_alike(engines: Engines) -> None:
    def scenario(agent: DockerAgent, address: str, port: int) -> Observed:
        listed = agent.api.images()
        try:
            agent.api.inspect_image("berth-test/absent:0.0.1")
            absent = "found"
        except Exception as exc:  # noqa: BLE001 - which error docker-py raises is observed
            absent = type(exc).__name__
        return {"has": agent.has_image(HELLO), "labels": agent.image_labels(HELLO),
                "missing": agent.image_labels("berth-test/absent:0.0.1"),
                "ensure": agent.ensure_image(HELLO), "absent error": absent,
                "listed": any(HELLO in (i.get("RepoTags") or []) for i in listed),
                "list fields": sorted({"Id", "RepoTags", "Created", "Size"} & set(listed[0]))}

    real, hollow = both(engines, scenario)
    assert hollow == real
    assert real["labels"] and real["has"]


def test_container_lifecycle_answers_alike(engines: Engines) -> None:
    """run_instance (create + start), find, list by label, run again (idempotent),
    kill, start again, exec, logs, remove twice — the calls of deploy and reconcile."""
    def scenario(agent: DockerAgent, address: str, port: int) -> Observed:
        name = "berth-test-conform"
        labels = {CASE: "lifecycle", "berth.generation": "3"}
        spec = {"image": HELLO, "env": {"HELLO_MESSAGE": "same"}, "mem": 40, "cpus": 0.2,
                "ports": [{"name": "http"}], "network": "host",
                "labels": {"app": "hello", CASE: "spoofed"}}
        run = lambda: agent.run_instance(  # noqa: E731
            name, spec, labels=labels, env={"BERTH_SERVICE": "conform"}, ports={"http": port},
            address=address)
        seen: Observed = {}
        first = run()
        seen["started"] = container_shape(agent, name, address, port)
        seen["listed"] = [(c.name, c.state, is_id(c.id)) for c in
                          agent.list_instances({CASE: "lifecycle"})]
        seen["listed by name"] = [c.name for c in agent.list_instances([CASE])
                                  if c.name == name]
        seen["list none"] = agent.list_instances({CASE: "nobody"})
        seen["found by id"] = agent.find(first) is not None
        seen["again same id"] = run() == first
        instance = {"ports": {"http": port}, "port_list": [port], "container_id": first}
        seen["healthy"] = eventually(lambda: probe(instance, address, HEALTH).ok)
        seen["exec"] = tuple(vars(agent.exec_check(first, "exit 0")).values())
        seen["logs"] = type(agent.logs(first, tail=5)).__name__
        agent.kill(first)
        seen["killed"] = eventually(lambda: (lambda s: s if not s["running"] else None)(
            container_shape(agent, name, address, port)))
        seen["health after kill"] = eventually(
            lambda: not probe(instance, address, HEALTH).ok)
        try:
            agent.kill(first)
            seen["kill again"] = "ok"
        except ContainerError:
            seen["kill again"] = "ContainerError"
        seen["restarted same id"] = run() == first
        seen["restarted"] = container_shape(agent, name, address, port)["state"]
        seen["removed"] = agent.remove(first)
        seen["removed again"] = agent.remove(first)
        seen["gone"] = container_shape(agent, name, address, port)
        return seen

    real, hollow = both(engines, scenario)
    assert hollow == real
    assert real["started"]["state"] == "running" and real["killed"]["status"] == "Exited (137)"


def test_refusals_answer_alike(engines: Engines) -> None:
    """A missing image, a name conflict (reused), a missing container, a bad name."""
    def scenario(agent: DockerAgent, address: str, port: int) -> Observed:
        seen: Observed = {}
        try:
            agent.run_instance("berth-test-noimage", {"image": "berth-test/absent:1"},
                               labels={CASE: "refusals"})
        except ImageUnavailable as exc:
            seen["no image"] = ("ImageUnavailable", "berth-test/absent" in exc.message)
        name = "berth-test-conflict"
        config = {"container": {"image": HELLO, "name": name, "command": ["sleep", "300"],
                                "labels": {CASE: "refusals"}},
                  "host_config": {"network_mode": "host"}}
        first = agent._create(name, config)
        seen["conflict reuses"] = agent._create(name, config) == first
        try:
            agent.api.create_container(HELLO, name=name, labels={CASE: "refusals"})
        except Exception as exc:  # noqa: BLE001 - the status code is observed
            seen["conflict status"] = getattr(exc, "status_code", None)
        try:
            agent.api.create_container(HELLO, name="-bad name", labels={CASE: "refusals"})
        except Exception as exc:  # noqa: BLE001 - the status code is observed
            seen["bad name status"] = getattr(exc, "status_code", None)
        try:
            agent.logs(f"berth-test-missing-{port}")
        except ContainerError as exc:
            seen["missing"] = ("ContainerError", "no such container" in exc.message.lower())
        seen["remove created"] = agent.remove(first)
        return seen

    real, hollow = both(engines, scenario)
    assert hollow == real
    assert real["conflict status"] == 409 and real["bad name status"] == 400


def test_events_answer_alike(engines: Engines) -> None:
    """The lifecycle events of a Berth-labelled container, replayed with since/until."""
    def scenario(agent: DockerAgent, address: str, port: int) -> Observed:
        name = "berth-test-events"
        labels = {CASE: "events", "berth.service": "t-conform", "berth.instance": "t-c-1"}
        since = time.time() - 1
        cid = agent.run_instance(name, {"image": HELLO, "command": "exec sleep 300"},
                                 labels=labels)
        agent.kill(cid)
        agent.remove(cid)
        until = time.time() + 1
        events = [e for e in agent.events(since=int(since), until=int(until) + 1)
                  if e.container_id == cid]
        return {"events": [(e.action, e.name, e.service, e.instance, e.exit_code,
                            e.attributes.get("image"), recent(e.time))
                           for e in events]}

    real, hollow = both(engines, scenario)
    assert hollow == real
    assert [e[0] for e in real["events"]] == ["create", "start", "kill", "die", "destroy"]


def test_health_endpoints_answer_only_while_the_container_runs(engines: Engines) -> None:
    """The hollow agent binds an instance's port on start and closes it on removal."""
    agent, address, port = (engines.by_kind["hollow"], engines.address["hollow"],
                            engines.port["hollow"])
    cid = agent.run_instance(f"berth-test-health-{port}", {"image": HELLO,
                             "ports": [{"name": "http"}]}, labels={CASE: "health"},
                             ports=[port], address=address)
    url = f"http://{address}:{port}/health"
    assert requests.get(url, timeout=2).status_code == 200
    agent.remove(cid)
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=2)
