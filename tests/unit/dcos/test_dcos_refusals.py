"""Universe packages Berth used to refuse although Docker hosts can run them."""

from __future__ import annotations

from typing import Any

import pytest

from catalog.dcos.compat import static_reasons
from catalog.dcos.convert import analyze_app, convert_app
from catalog.errors import SpecInvalid
from catalog.spec import validate_spec
from worker.containers import container_config

IMAGE = {"type": "DOCKER", "docker": {"image": "berth/hello:1.0.0"}}
PLAIN = """{"id": "{{service.name}}", "container": {"type": "DOCKER", "docker": {
  "image": "{{resource.assets.container.docker.cms}}", "network": "BRIDGE"}},
  "env": {"DB_HOST": "{{database.host}}"},
  "labels": {"DCOS_PACKAGE_FRAMEWORK_NAME": "{{service.name}}"}}"""


def app(**fields: Any) -> dict[str, Any]:
    return {"id": "/x", "container": IMAGE, **fields}


def test_the_framework_flag_alone_does_not_refuse_a_plain_docker_app() -> None:
    assert static_reasons({"name": "cms", "framework": True}, PLAIN, False) == []


@pytest.mark.parametrize("env", ['"ARGS": "--zk={{cms.zk}}"', '"MASTER": "{{mesos.master}}"',
                                 '"MESOS_ROLE_X": "y"', '"ZK_URL": "master.mesos:2181"',
                                 '"X": "https://x.org/cms-scheduler.zip"'])
def test_a_flagged_app_that_shows_a_scheduler_is_a_framework(env: str) -> None:
    template = PLAIN.replace('"env": {', '"env": {' + env + ", ")
    reasons = static_reasons({"name": "cms", "framework": True}, template, False)
    assert reasons and reasons[0].startswith("a Mesos framework"), reasons


def test_an_unflagged_app_may_use_zookeeper_as_a_plain_dependency() -> None:
    zk = PLAIN.replace('"env": {', '"env": {"ZK_URL": "master.mesos:2181", ')
    assert static_reasons({"name": "cms"}, zk, False) == []


def test_scheduler_artifacts_and_mesos_authentication_mark_a_rendered_framework() -> None:
    fetched = reasons_of(app(fetch=[{"uri": "https://x.org/artifacts/kafka-scheduler.zip"}]))
    assert fetched["marathon.json#/fetch/0"].startswith("a Mesos framework")
    uris = reasons_of(app(uris=["https://x.org/libmesos-bundle-1.11.tar.gz"]))
    assert uris["marathon.json#/uris/0"].startswith("a Mesos framework")
    auth = reasons_of(app(env={"MESOS_AUTHENTICATEE": "com_mesosphere_dcos_X"}))
    assert auth["marathon.json#/env/MESOS_AUTHENTICATEE"].startswith("a Mesos framework")


def reasons_of(marathon: dict[str, Any]) -> dict[str, str]:
    return {r["path"]: r["message"] for r in analyze_app(marathon).reasons}


def test_a_label_parameter_without_a_value_is_an_empty_label() -> None:
    params = [{"key": "label", "value": "com.example.flag"},
              {"key": "label", "value": "k=v"}]
    spec = convert_app(app(container={**IMAGE, "docker": {**IMAGE["docker"],
                                                          "parameters": params}}),
                       service_name="x")
    assert spec["labels"] == {"com.example.flag": "", "k": "v"}


def test_an_env_parameter_without_a_value_is_still_refused_with_the_reason() -> None:
    params = [{"key": "env", "value": "FROM_THE_CLIENT"}]
    found = reasons_of(app(container={**IMAGE, "docker": {**IMAGE["docker"],
                                                          "parameters": params}}))
    assert "NAME=VALUE" in found["marathon.json#/container/docker/parameters/0"]


def test_a_tcp_udp_port_is_one_port_with_both_protocols() -> None:
    spec = convert_app(app(portDefinitions=[{"port": 53, "protocol": "udp,tcp",
                                             "name": "dns"}]), service_name="x")
    assert spec["ports"] == [{"name": "dns", "hostPort": 0, "protocol": "tcp,udp"}]
    validate_spec(spec)
    bridge = convert_app(app(container={**IMAGE, "docker": {
        **IMAGE["docker"], "network": "BRIDGE", "portMappings": [
            {"containerPort": 53, "hostPort": 0, "protocol": "tcp,udp"}]}}),
        service_name="x")
    assert bridge["ports"][0]["protocol"] == "tcp,udp"
    assert "marathon.json#/portDefinitions/0" in reasons_of(
        app(portDefinitions=[{"port": 1, "protocol": "sctp"}]))


def test_a_tcp_udp_port_becomes_two_docker_bindings_on_one_host_port() -> None:
    spec = validate_spec({"image": "x:1", "network": "bridge", "ports": [
        {"name": "dns", "containerPort": 53, "protocol": "tcp,udp"}]})
    config = container_config("c", spec, labels={}, env={}, ports={"dns": 31053},
                              address="127.0.0.1")
    assert config["container"]["ports"] == [(53, "tcp"), (53, "udp")]
    assert config["host_config"]["port_bindings"] == {
        "53/tcp": ("127.0.0.1", 31053), "53/udp": ("127.0.0.1", 31053)}


def test_a_load_balancer_with_105_ports_converts() -> None:
    spec = convert_app(app(portDefinitions=[{"port": 0}] * 105), service_name="x")
    assert len(validate_spec(spec)["ports"]) == 105


def test_more_ports_than_an_agent_range_holds_are_refused_with_the_reason() -> None:
    found = reasons_of(app(portDefinitions=[{"port": 0}] * 1001))
    message = found["marathon.json#/portDefinitions"]
    assert "1001 ports" in message and "1000" in message and "31000-31999" in message


def test_a_fixed_tcp_udp_port_collides_with_the_same_port_in_tcp() -> None:
    with pytest.raises(SpecInvalid) as raised:
        validate_spec({"image": "x:1", "ports": [
            {"name": "dns", "hostPort": 5353, "protocol": "tcp,udp"},
            {"name": "web", "hostPort": 5353, "protocol": "tcp"}]})
    assert any("used twice" in e["message"] for e in raised.value.details)
