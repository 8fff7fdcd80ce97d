"""Marathon app → Berth spec, field by field (catalog.dcos.convert and fields)."""

from __future__ import annotations

from typing import Any

import pytest

from catalog.dcos.convert import analyze_app, convert_app
from catalog.errors import SpecRefused
from catalog.spec import validate_spec

IMAGE = {"container": {"type": "DOCKER", "docker": {"image": "berth/hello:1.0.0"}}}


def app(**fields: Any) -> dict[str, Any]:
    return {"id": "/x", **IMAGE, **fields}


def reasons(marathon: dict[str, Any]) -> dict[str, str]:
    return {r["path"]: r["message"] for r in analyze_app(marathon).reasons}


def test_marathon_defaults_apply_when_fields_are_absent() -> None:
    spec = convert_app(app(), service_name="x")
    assert (spec["instances"], spec["cpus"], spec["mem"]) == (1, 1.0, 128)
    # Marathon gives an app without port definitions one assigned port
    assert spec["ports"] == [{"name": "port0", "hostPort": 0, "protocol": "tcp"}]
    assert spec["network"] == "host"
    validate_spec(spec)


def test_resources_command_user_and_mem_rounding() -> None:
    spec = convert_app(app(instances=3, cpus=0.25, mem=100.5, cmd="run it", user="nobody"),
                       service_name="x")
    assert spec["instances"] == 3 and spec["cpus"] == 0.25 and spec["mem"] == 101
    assert spec["command"] == "run it" and spec["user"] == "nobody"


def test_args_map_and_cmd_with_args_is_refused() -> None:
    assert convert_app(app(args=["-p", 80]), service_name="x")["args"] == ["-p", "80"]
    assert "marathon.json#/cmd" in reasons(app(cmd="a", args=["b"]))


def test_port_definitions_without_require_ports_are_assigned() -> None:
    spec = convert_app(app(portDefinitions=[{"port": 8080, "name": "Web_UI"},
                                            {"port": 0, "protocol": "udp"}]), service_name="x")
    assert spec["ports"] == [{"name": "web-ui", "hostPort": 0, "protocol": "tcp"},
                             {"name": "port1", "hostPort": 0, "protocol": "udp"}]


def test_require_ports_fixes_host_ports_and_legacy_ports_work() -> None:
    spec = convert_app(app(ports=[8080, 8081], requirePorts=True), service_name="x")
    assert [p["hostPort"] for p in spec["ports"]] == [8080, 8081]


def test_bridge_port_mappings_keep_container_ports() -> None:
    marathon = app(container={"type": "DOCKER", "docker": {
        "image": "nginx", "network": "BRIDGE",
        "portMappings": [{"containerPort": 80, "hostPort": 0, "servicePort": 10000},
                         {"containerPort": 443, "hostPort": 8443, "name": "https"}]}})
    spec = convert_app(marathon, service_name="x")
    assert spec["network"] == "bridge"
    assert spec["ports"] == [
        {"name": "port0", "containerPort": 80, "hostPort": 0, "protocol": "tcp"},
        {"name": "https", "containerPort": 443, "hostPort": 8443, "protocol": "tcp"}]


def test_networks_field_modes() -> None:
    assert convert_app(app(networks=[{"mode": "container/bridge"}]),
                       service_name="x")["network"] == "bridge"
    assert convert_app(app(networks=[{"mode": "host"}]), service_name="x")["network"] == "host"
    refused = reasons(app(networks=[{"mode": "container", "name": "dcos"}]))
    assert "virtual network 'dcos'" in refused["marathon.json#/networks/0"]


def test_health_checks_keep_marathon_defaults_and_map_protocols() -> None:
    spec = convert_app(app(healthChecks=[{"protocol": "MESOS_HTTP", "path": "/health"}]),
                       service_name="x")
    assert spec["healthCheck"] == {"protocol": "http", "path": "/health", "portName": "port0",
                                   "gracePeriodSeconds": 300, "intervalSeconds": 60,
                                   "timeoutSeconds": 20, "maxConsecutiveFailures": 3}
    tcp = convert_app(app(healthChecks=[{"protocol": "TCP", "portIndex": 0}]), service_name="x")
    assert tcp["healthCheck"]["protocol"] == "tcp"
    cmd = convert_app(app(healthChecks=[{"protocol": "COMMAND",
                                         "command": {"value": "test -f /ok"}}]),
                      service_name="x")
    assert cmd["healthCheck"]["command"] == "test -f /ok"
    assert "portName" not in cmd["healthCheck"]


def test_unsupported_health_checks_are_named() -> None:
    assert "HTTPS" in reasons(app(healthChecks=[{"protocol": "HTTPS"}]))[
        "marathon.json#/healthChecks/0"]
    assert "portIndex 3" in reasons(app(healthChecks=[{"protocol": "HTTP", "portIndex": 3}]))[
        "marathon.json#/healthChecks/0"]
    two = reasons(app(healthChecks=[{"protocol": "HTTP"}, {"protocol": "TCP"}]))
    assert "Berth runs one" in two["marathon.json#/healthChecks"]


def test_constraints_keep_marathon_operators() -> None:
    spec = convert_app(app(constraints=[["hostname", "UNIQUE"], ["rack", "GROUP_BY", "2"],
                                        ["zone", "IS", "a"], "hostname:MAX_PER:2",
                                        ["hostname", "LIKE", "agent-[12]"]]), service_name="x")
    assert spec["constraints"] == [["hostname", "UNIQUE"], ["rack", "GROUP_BY", "2"],
                                   ["zone", "CLUSTER", "a"], ["hostname", "MAX_PER", "2"],
                                   ["hostname", "LIKE", "agent-[12]"]]
    refused = reasons(app(constraints=[["hostname", "CLUSTER", ""], ["a", "NEAR", "b"]]))
    assert set(refused) == {"marathon.json#/constraints/0", "marathon.json#/constraints/1"}


def test_accepted_roles_become_a_role_constraint() -> None:
    spec = convert_app(app(acceptedResourceRoles=["slave_public"]), service_name="x")
    assert spec["constraints"] == [["role", "LIKE", "slave_public"]]
    assert "constraints" not in convert_app(app(acceptedResourceRoles=["*"]), service_name="x")


def test_env_labels_and_upgrade_strategy() -> None:
    spec = convert_app(app(env={"A": "1", "B": 2, "C": True}, labels={"HAPROXY_GROUP": "x"},
                           upgradeStrategy={"minimumHealthCapacity": 0.5,
                                            "maximumOverCapacity": 0}), service_name="x")
    assert spec["env"] == {"A": "1", "B": "2", "C": "true"}
    assert spec["labels"] == {"HAPROXY_GROUP": "x"}
    assert spec["upgradeStrategy"] == {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0}


def test_secrets_are_refused_with_their_names() -> None:
    refused = reasons(app(env={"PW": {"secret": "pw"}}, secrets={"pw": {"source": "db/pw"}}))
    assert "DC/OS secret 'pw'" in refused["marathon.json#/env/PW"]
    assert "(pw)" in refused["marathon.json#/secrets"]


def test_fetch_and_uris_are_refused_listing_them() -> None:
    refused = reasons(app(fetch=[{"uri": "https://x/a.tgz"}], uris=["https://x/b.tgz"]))
    assert "2 artifact(s)" in refused["marathon.json#/fetch"]
    assert "https://x/a.tgz" in refused["marathon.json#/fetch"]


def test_volumes_host_paths_map_and_the_rest_is_refused() -> None:
    marathon = app(container={"type": "DOCKER", "docker": {"image": "x"}, "volumes": [
        {"containerPath": "/data", "hostPath": "/srv/berth/data", "mode": "RO"},
        {"containerPath": "data", "persistent": {"size": 100}, "mode": "RW"},
        {"containerPath": "/ext", "external": {"name": "v"}, "mode": "RW"},
        {"containerPath": "/s", "secret": "s"},
        {"containerPath": "/rel", "hostPath": "relative", "mode": "RW"}]})
    conv = analyze_app(marathon)
    assert conv.spec["volumes"] == [{"containerPath": "/data", "hostPath": "/srv/berth/data",
                                     "readOnly": True}]
    assert sorted(r["path"][-1] for r in conv.reasons) == ["1", "2", "3", "4"]


def test_docker_parameters_map_where_berth_has_the_field() -> None:
    marathon = app(env={"A": "app"}, container={"type": "DOCKER", "docker": {
        "image": "x", "parameters": [{"key": "env", "value": "A=param"},
                                     {"key": "label", "value": "l=v"},
                                     {"key": "user", "value": "daemon"},
                                     {"key": "name", "value": "fixed"}]}})
    spec = convert_app(marathon, service_name="x")
    assert spec["env"] == {"A": "param"} and spec["labels"] == {"l": "v"}
    assert spec["user"] == "daemon"
    refused = reasons(app(container={"type": "DOCKER", "docker": {
        "image": "x", "parameters": [{"key": "pid", "value": "host"}]}}))
    assert "--pid host" in refused["marathon.json#/container/docker/parameters/0"]


def test_privileged_is_carried_for_the_policy_to_refuse() -> None:
    marathon = app(container={"type": "DOCKER", "docker": {"image": "x", "privileged": True}})
    assert convert_app(marathon, service_name="x")["privileged"] is True


@pytest.mark.parametrize(("field", "value", "words"), [
    ("gpus", 1, "GPU"),
    ("readinessChecks", [{"name": "r"}], "readiness"),
    ("dependencies", ["/db"], "depends on"),
    ("residency", {"taskLostBehavior": "WAIT_FOREVER"}, "persistent"),
    ("ipAddress", {"networkName": "dcos"}, "IP address per task"),
    ("executor", "//cmd", "executor"),
    ("tty", True, "no Berth equivalent"),
])
def test_fields_that_change_behaviour_are_never_dropped(field: str, value: Any,
                                                        words: str) -> None:
    assert any(words in message for message in reasons(app(**{field: value})).values())


def test_no_docker_image_means_mesos_containerizer() -> None:
    refused = reasons({"id": "/x", "cmd": "java -jar x.jar"})
    assert "no Docker image" in refused["marathon.json#/container/docker/image"]
    ucr = reasons({"id": "/x", "cmd": "x", "container": {"type": "MESOS"}})
    assert "Mesos containerizer (MESOS)" in ucr["marathon.json#/container/docker/image"]


def test_convert_app_raises_spec_refused_with_every_reason() -> None:
    with pytest.raises(SpecRefused) as info:
        convert_app(app(gpus=1, uris=["https://x"]), service_name="x")
    assert len(info.value.details) == 2
    assert info.value.to_dict()["error"] == "spec_refused"


def test_ignored_fields_do_not_refuse() -> None:
    marathon = app(maintainer="m", disk=100, backoffSeconds=1, unreachableStrategy="disabled",
                   taskKillGracePeriodSeconds=5, killSelection="YOUNGEST_FIRST")
    assert analyze_app(marathon).reasons == []
