"""The spec → Swarm service mapping (``worker/swarm_spec.py``), the task and node views
(``worker/swarm.py``) and the cluster fields (``worker/clusters.py``): pure, no engine."""

from __future__ import annotations

from typing import Any

import pytest

from catalog.links import placeholder
from worker.clusters import check_cluster_fields, engine_url
from worker.errors import InvalidRequest
from worker.swarm import node_view, task_view
from worker.swarm_spec import (
    LINKS_REFUSED,
    SwarmPlan,
    container_labels,
    healthcheck,
    placement,
    refusals,
    service_kwargs,
    task_ports,
    update_config,
)

NS = 1_000_000_000


def spec(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "image": "berth/hello:1.0.0", "instances": 6, "cpus": 0.5, "mem": 64,
        "env": {"A": "1"}, "labels": {"app": "hello"}, "network": "host",
        "ports": [{"name": "http", "hostPort": 0, "protocol": "tcp"}],
        "healthCheck": {"protocol": "http", "portName": "http", "path": "/health",
                        "intervalSeconds": 2, "timeoutSeconds": 1,
                        "gracePeriodSeconds": 10, "maxConsecutiveFailures": 3},
        "upgradeStrategy": {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0}}
    base.update(extra)
    return base


PLAN = SwarmPlan(service="web", generation=1, replicas=6, cluster="sw",
                 blocks=((31000, 31100),))


def test_instances_resources_env_labels_and_network_map_to_the_service() -> None:
    kwargs = service_kwargs(spec(), PLAN)
    assert kwargs["name"] == "berth-web" and kwargs["image"] == "berth/hello:1.0.0"
    assert kwargs["mode"] == {"replicated": {"Replicas": 6}}
    assert kwargs["resources"]["Limits"] == {"NanoCPUs": NS // 2, "MemoryBytes": 64 << 20}
    assert kwargs["resources"]["Reservations"] == kwargs["resources"]["Limits"]
    assert "A=1" in kwargs["env"]
    assert kwargs["labels"] == {"app": "hello", "berth.service": "web",
                                "berth.generation": "1", "berth.cluster": "sw"}
    assert kwargs["networks"] == ["host"]


def test_task_containers_carry_no_berth_service_label() -> None:
    """An engine that is also Berth's agent sweeps berth.service containers it has no
    record of: a Swarm task's container must not look like one."""
    labels = container_labels(spec(), PLAN)
    assert "berth.service" not in labels and labels["berth.swarm.service"] == "web"


def test_assigned_ports_are_the_block_of_the_generation_parity_plus_the_slot() -> None:
    odd = task_ports(spec(), PLAN)
    even = task_ports(spec(), SwarmPlan(service="web", generation=2, replicas=6,
                                        blocks=((31000, 31100),)))
    assert odd == ['311{{if lt (len .Task.Slot) 2}}0{{end}}{{.Task.Slot}}']
    assert even[0].startswith("310{{")
    env = service_kwargs(spec(), PLAN)["env"]
    assert f"PORT0={odd[0]}" in env and f"PORT_HTTP={odd[0]}" in env


def test_command_replaces_the_entrypoint_and_args_go_to_it() -> None:
    assert service_kwargs(spec(command="httpd -f -p $PORT0"), PLAN)["command"] == \
        ["/bin/sh", "-c"]
    assert service_kwargs(spec(command="httpd -f"), PLAN)["args"] == ["httpd -f"]
    assert service_kwargs(spec(args=["--x"]), PLAN)["args"] == ["--x"]


def test_named_volumes_become_labelled_volume_mounts() -> None:
    kwargs = service_kwargs(spec(volumes=[{"containerPath": "/data", "name": "web-data"}]),
                            PLAN)
    mount = kwargs["mounts"][0]
    assert (mount["Type"], mount["Source"], mount["Target"]) == ("volume", "web-data", "/data")
    assert mount["VolumeOptions"]["Labels"] == {"berth.service": "web",
                                                "berth.volume": "web-data"}


@pytest.mark.parametrize(("constraints", "expected"), [
    ([["hostname", "CLUSTER", "n1"]], {"constraints": ["node.hostname==n1"]}),
    ([["zone", "CLUSTER", "a"]], {"constraints": ["node.labels.zone==a"]}),
    ([["hostname", "UNIQUE"]], {"maxreplicas": 1}),
    ([["hostname", "MAX_PER", "2"]], {"maxreplicas": 2}),
    ([["rack", "GROUP_BY"]], {"preferences": [("spread", "node.labels.rack")]}),
])
def test_constraints_map_to_placement(constraints: list[list[str]],
                                      expected: dict[str, Any]) -> None:
    assert placement(spec(constraints=constraints)) == expected
    assert refusals(spec(constraints=constraints)) == []


@pytest.mark.parametrize(("constraint", "word"), [
    (["zone", "LIKE", "a|b"], "LIKE"), (["zone", "UNLIKE", "c"], "UNLIKE"),
    (["zone", "UNIQUE"], "per node"), (["rack", "MAX_PER", "2"], "per node"),
    (["zone", "WHATEVER"], "unknown operator"),
])
def test_what_swarm_cannot_express_is_refused_with_the_reason(constraint: list[str],
                                                              word: str) -> None:
    problems = refusals(spec(constraints=[["hostname", "MAX_PER", "2"], constraint]))
    assert [p["path"] for p in problems] == ["constraints/1"]
    assert word in problems[0]["message"]


def test_host_folders_and_colliding_fixed_ports_are_refused() -> None:
    folder = spec(volumes=[{"containerPath": "/c", "hostPath": "/srv/berth/c"}])
    assert refusals(folder)[0]["path"] == "volumes/0/hostPath"
    fixed = spec(ports=[{"name": "http", "hostPort": 8080}],
                 constraints=[["hostname", "MAX_PER", "2"]])
    assert refusals(fixed)[0]["path"] == "ports"
    assert placement(spec(ports=[{"name": "http", "hostPort": 8080}]))["maxreplicas"] == 1


def test_named_volumes_allow_one_task_per_node_unless_every_one_is_shared() -> None:
    data = {"name": "web-data", "containerPath": "/data"}
    assert placement(spec(volumes=[data]))["maxreplicas"] == 1
    assert placement(spec(volumes=[data], constraints=[["hostname", "MAX_PER", "3"]])) == \
        {"maxreplicas": 1}
    assert "maxreplicas" not in placement(spec(volumes=[{**data, "shared": True}]))
    folder = {"containerPath": "/c", "hostPath": "/srv/berth/c"}
    assert "maxreplicas" not in placement(spec(volumes=[folder]))


def test_http_and_tcp_checks_become_commands_and_command_checks_stay() -> None:
    http = healthcheck(spec())
    assert http is not None
    assert http["Test"] == ["CMD-SHELL",
                            "wget -q -O /dev/null http://127.0.0.1:${PORT0}/health || exit 1"]
    assert (http["Interval"], http["Timeout"], http["Retries"], http["StartPeriod"]) == \
        (2 * NS, NS, 3, 10 * NS)
    tcp = healthcheck(spec(healthCheck={"protocol": "tcp", "portIndex": 0}))
    assert tcp is not None and "nc -z 127.0.0.1 ${PORT0}" in tcp["Test"][1]
    cmd = healthcheck(spec(healthCheck={"protocol": "command", "command": "test -f /ok"}))
    assert cmd is not None and cmd["Test"] == ["CMD-SHELL", "test -f /ok"]
    assert healthcheck(spec(healthCheck=None)) is None


@pytest.mark.parametrize(("strategy", "room", "order", "parallelism"), [
    ({"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0}, None, "start-first", 6),
    ({"minimumHealthCapacity": 1.0, "maximumOverCapacity": 0.5}, None, "start-first", 3),
    ({"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.0}, None, "stop-first", 3),
    ({"minimumHealthCapacity": 1.0, "maximumOverCapacity": 0.0}, None, "start-first", 1),
    ({"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0}, 3, "start-first", 3),
    ({"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0}, 0, "stop-first", 1),
])
def test_upgrade_strategy_becomes_the_update_config(strategy: dict[str, float],
                                                    room: int | None, order: str,
                                                    parallelism: int) -> None:
    config = update_config(spec(upgradeStrategy=strategy), 6, room=room)
    assert (config["Order"], config["Parallelism"]) == (order, parallelism)
    assert config["FailureAction"] == "rollback"
    assert config["Monitor"] == 6 * NS   # interval × failures of the health check


TASK = {"ID": "t1abcdefghijk", "Slot": 3, "NodeID": "n1", "DesiredState": "running",
        "CreatedAt": "2026-12-01T00:00:00Z",
        "Spec": {"ContainerSpec": {"Labels": {"berth.generation": "1"}}},
        "Status": {"State": "running", "ContainerStatus": {"ContainerID": "c1"}}}
NODE = {"ID": "n1abcdef", "Spec": {"Labels": {"berth.node": "agent-1", "zone": "a",
                                              "berth.address": "127.0.0.2"},
                                   "Availability": "drain", "Role": "worker"},
        "Description": {"Hostname": "box", "Resources": {"NanoCPUs": 2 * NS,
                                                         "MemoryBytes": 1 << 30}},
        "Status": {"State": "ready", "Addr": "127.0.0.1"}}


def test_a_task_becomes_an_instance_view_with_node_state_health_and_port() -> None:
    view = task_view(TASK, {"n1": NODE}, spec(), [(31000, 31100)], True)
    assert (view.node, view.address, view.state, view.health) == \
        ("agent-1", "127.0.0.2", "running", "healthy")
    assert view.ports == {"http": 31103} and view.generation == 1 and view.live
    failed = task_view({**TASK, "DesiredState": "shutdown",
                        "Status": {"State": "failed", "Err": "exit 1"}},
                       {"n1": NODE}, spec(), [(31000, 31100)], True)
    assert (failed.state, failed.error, failed.live) == ("failed", "exit 1", False)


def test_a_node_becomes_a_read_only_agent() -> None:
    view = node_view(NODE, "sw")
    assert view["id"] == "agent-1" and view["state"] == "draining"
    assert view["capacity"] == {"cpus": 2.0, "mem": 1024}
    assert view["attributes"]["zone"] == "a" and view["availability"] == "drain"


def test_cluster_fields_are_checked_all_at_once() -> None:
    assert check_cluster_fields({"name": "sw", "url": "swarm://10.0.0.1:2376"})["kind"] == \
        "swarm"
    with pytest.raises(InvalidRequest) as caught:
        check_cluster_fields({"name": "default", "url": "ftp://[x", "kind": "k8s",
                              "port_range": [10, 20]})
    assert {d["path"] for d in caught.value.details} == {"name", "url", "kind", "port_range"}
    assert engine_url("swarm://m:2376") == "tcp://m:2376"


def test_service_and_node_events_of_the_manager_wake_a_refresh() -> None:
    from worker.swarm_events import wakes

    assert wakes({"Type": "node", "Action": "update", "Actor": {"Attributes": {}}})
    assert wakes({"Type": "service", "Action": "update",
                  "Actor": {"Attributes": {"name": "berth-web"}}})
    assert not wakes({"Type": "service", "Action": "update",
                      "Actor": {"Attributes": {"name": "someone-else"}}})
    assert not wakes({"Type": "container", "Action": "die"})


def test_links_are_refused_on_a_swarm_at_their_path() -> None:
    linked = spec(links=[{"option": "database", "service": "pg", "port": "postgres",
                          "onLinkChange": "restart"}],
                  env={"DB": placeholder("database", "address")})
    [problem] = refusals(linked)
    assert problem["path"] == "links/0"
    assert problem["message"].startswith(LINKS_REFUSED)
    assert "'database' links to service 'pg'" in problem["message"]
    # a placeholder left in a spec without its record is refused where it is
    stray = spec(args=["--db", f"host={placeholder('database', 'host')}"])
    assert [p["path"] for p in refusals(stray)] == ["args/1"]
    assert refusals(spec(env={"DB": "@@not-a-link@@"})) == []
