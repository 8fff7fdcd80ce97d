"""Health checks (http / tcp / command) against a real hello container."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from worker.health import check, probe
from worker.testbed.bed import Testbed

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def hello(testbed: Testbed) -> Iterator[dict[str, Any]]:
    """A running hello container on agent 2, as an instance record; removed after."""
    agent, spec = testbed.agent(2), testbed.agents[1]
    port = spec.port_range[1] - 1
    name = f"berth-test-{uuid.uuid4().hex[:8]}"
    container_id = agent.run_instance(
        name, {"image": "berth/hello:1.0.0", "ports": [{"name": "http"}]},
        labels={"berth-test.case": "health"}, ports={"http": port}, address=spec.address)
    instance = {"id": "h-1", "container": name, "container_id": container_id,
                "ports": {"http": port}, "port_list": [port], "address": spec.address}
    deadline = time.monotonic() + 15
    while not check(instance, spec.address, {"protocol": "tcp", "timeoutSeconds": 1}):
        assert time.monotonic() < deadline, "hello never listened"
        time.sleep(0.05)
    yield instance
    agent.remove(name)


def test_http_check_passes_on_200_and_fails_on_404_or_closed_port(
        testbed: Testbed, hello: dict[str, Any]) -> None:
    address = testbed.agents[1].address
    ok = {"protocol": "http", "portName": "http", "path": "/health", "timeoutSeconds": 2}
    assert check(hello, address, ok)
    assert not check(hello, address, {**ok, "path": "/no-such-page"})
    closed = {**hello, "ports": {"http": hello["port_list"][0] - 1}}
    result = probe(closed, address, ok)
    assert not result.ok and "GET http://" in result.message


def test_tcp_check_passes_when_listening(testbed: Testbed, hello: dict[str, Any]) -> None:
    address = testbed.agents[1].address
    assert check(hello, address, {"protocol": "tcp", "portIndex": 0, "timeoutSeconds": 1})
    closed = {**hello, "ports": {}, "port_list": [hello["port_list"][0] - 1]}
    assert not check(closed, address, {"protocol": "tcp", "timeoutSeconds": 1})


def test_command_check_uses_exit_code_and_timeout(testbed: Testbed,
                                                  hello: dict[str, Any]) -> None:
    address, agent = testbed.agents[1].address, testbed.agent(2)
    spec = {"protocol": "command", "command": "cat /www/health", "timeoutSeconds": 5}
    assert check(hello, address, spec, agent)
    assert not check(hello, address, {**spec, "command": "cat /no/such/file"}, agent)
    slow = probe(hello, address, {**spec, "command": "sleep 30", "timeoutSeconds": 0.5}, agent)
    assert not slow.ok and "None" in slow.message


def test_no_check_is_healthy_and_a_missing_port_is_not(hello: dict[str, Any]) -> None:
    assert check(hello, "127.0.0.1", None)
    missing = probe(hello, "127.0.0.1", {"protocol": "http", "portName": "admin"})
    assert not missing.ok and "admin" in missing.message
