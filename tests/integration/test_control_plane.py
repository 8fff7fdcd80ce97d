"""Containers cannot reach Berth's own control plane on the local system.

An installed package runs on the host network of its agent (the local bed has no
bridge), so it reaches every loopback port. From inside such a container these tests
try what an attacker would: talk to the bed's Redis, and to every agent's Docker API
on the ports a plain-TCP engine listens on. Neither may answer anything useful: Redis
asks for a password, and the engines listen on unix sockets only.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
from cluster_support import Cluster

from worker.testbed.bed import redis_port

pytestmark = pytest.mark.integration

ENGINE_PORTS = (2375, 2376)


@pytest.fixture(scope="module")
def inside(testbed: Any) -> Any:
    """Run a shell command inside an installed ``hello`` container; return its output."""
    cluster = Cluster(testbed)
    deployment = cluster.wait(cluster.install("intruder", 1))
    assert deployment["status"] == "succeeded", deployment["error"]
    instance = cluster.instances("intruder")[0]
    agent = cluster.docker(instance["agent"])

    def run(command: str) -> str:
        result = agent.exec_check(instance["container"], command, timeout=15)
        assert result.exit_code is not None, f"{command!r} hung"
        return result.output

    yield run
    cluster.uninstall_all()


def test_redis_answers_a_container_only_with_noauth(testbed: Any, inside: Any) -> None:
    port = redis_port(testbed.lane)
    output = inside(f"printf 'PING\\r\\nKEYS *\\r\\nCONFIG GET dir\\r\\n' "
                    f"| nc -w 3 127.0.0.1 {port}; echo exit=$?")
    assert "+PONG" not in output
    assert "berth:" not in output   # no key name leaks
    assert output.count("-NOAUTH") == 3, output


def test_redis_itself_has_berth_state_behind_the_password(testbed: Any) -> None:
    anonymous = redis.Redis(host="127.0.0.1", port=redis_port(testbed.lane))
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    assert redis.Redis.from_url(testbed.redis_url).ping()   # the bed's URL carries it


@pytest.mark.parametrize("port", ENGINE_PORTS)
def test_no_agent_engine_answers_a_container_on_tcp(testbed: Any, inside: Any,
                                                    port: int) -> None:
    for agent in testbed.agents:
        # busybox's static wget cannot resolve even a literal address; nc can
        output = inside(f"printf 'GET /version HTTP/1.0\\r\\n\\r\\n' "
                        f"| nc -w 3 {agent.address} {port}; echo exit=$?")
        assert "ApiVersion" not in output, f"{agent.id} answered on {port}: {output}"
        assert "exit=0" not in output, output


def test_the_engine_sockets_are_not_in_a_container(testbed: Any, inside: Any) -> None:
    output = inside(f"ls {testbed.root}/agent1 2>&1; echo exit=$?")
    assert "docker.sock" not in output
    assert "exit=0" not in output


def test_the_worker_still_reaches_every_engine_over_its_socket(testbed: Any) -> None:
    for agent in testbed.agents:
        assert agent.url.startswith("unix://"), agent.url
        assert testbed.agent(agent.id).ping()
