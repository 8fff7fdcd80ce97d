"""How a service spec becomes a container: env, command, limits, volumes, labels."""

from __future__ import annotations

from worker.containers import ContainerEvent, ContainerInfo, container_config, instance_env

SPEC = {"image": "berth/hello:1.0.0", "command": "httpd -f -p $PORT0", "env": {"A": "1"},
        "cpus": 0.5, "mem": 64, "labels": {"team": "x", "berth.service": "spoof"},
        "ports": [{"name": "http", "containerPort": 8080}, {"name": "admin-ui"}],
        "volumes": [{"containerPath": "/data", "name": "pgdata"},
                    {"containerPath": "/cfg", "hostPath": "/srv/berth/cfg", "readOnly": True}]}


def config(**overrides: object) -> dict:
    return container_config("berth-web-1", {**SPEC, **overrides},
                            labels={"berth.service": "web"}, env={"B": "2"},
                            ports={"http": 20001, "admin-ui": 20002}, address="127.0.0.2")


def test_assigned_ports_and_host_reach_the_container_as_env() -> None:
    env = instance_env(SPEC, {"admin-ui": 20002, "http": 20001}, "127.0.0.2")
    assert env == {"PORT0": "20001", "PORT1": "20002", "PORT_HTTP": "20001",
                   "PORT_ADMIN_UI": "20002", "PORT": "20001", "PORTS": "20001,20002",
                   "BERTH_HOST": "127.0.0.2", "HOST": "127.0.0.2"}
    assert instance_env(SPEC, [30000, 30001], "")["PORT_ADMIN_UI"] == "30001"


def test_command_runs_in_a_shell_and_args_go_to_the_entrypoint() -> None:
    container = config()["container"]
    assert container["entrypoint"] == ["/bin/sh", "-c"]
    assert container["command"] == ["httpd -f -p $PORT0"]
    with_args = config(command=None, args=["--flag", 3])["container"]
    assert with_args["command"] == ["--flag", "3"] and "entrypoint" not in with_args


def test_limits_network_restart_policy_and_volumes() -> None:
    host = config()["host_config"]
    assert host["mem_limit"] == "64m" and host["nano_cpus"] == 500_000_000
    assert host["network_mode"] == "host" and host["restart_policy"] == {"Name": "no"}
    assert host["binds"] == {"pgdata": {"bind": "/data", "mode": "rw"},
                             "/srv/berth/cfg": {"bind": "/cfg", "mode": "ro"}}
    assert "privileged" not in host


def test_env_and_labels_merge_with_berth_values_winning() -> None:
    container = config(env={"A": "1", "PORT0": "spoofed"})["container"]
    assert container["environment"]["A"] == "1" and container["environment"]["B"] == "2"
    assert container["environment"]["PORT0"] == "20001"
    assert container["labels"] == {"team": "x", "berth.service": "web"}


def test_bridge_mode_binds_container_ports_on_the_agent_address() -> None:
    built = config(network="bridge")
    assert built["host_config"]["network_mode"] == "bridge"
    assert built["host_config"]["port_bindings"] == {"8080/tcp": ("127.0.0.2", 20001),
                                                     "20002/tcp": ("127.0.0.2", 20002)}
    assert built["container"]["ports"] == [(8080, "tcp"), (20002, "tcp")]


def test_engine_records_are_read_from_api_answers() -> None:
    info = ContainerInfo.from_api({"Id": "abc", "Names": ["/berth-web-1"], "State": "running",
                                   "Status": "Up", "Image": "i", "Labels": {"k": "v"}})
    assert info.name == "berth-web-1" and info.running and info.labels == {"k": "v"}
    event = ContainerEvent.from_api({"Type": "container", "Action": "die", "timeNano": 2e9,
                                     "Actor": {"ID": "abc", "Attributes": {
                                         "name": "berth-web-1", "exitCode": "137",
                                         "berth.instance": "web-1", "berth.service": "web"}}})
    assert (event.action, event.exit_code, event.instance, event.service, event.time) == (
        "die", 137, "web-1", "web", 2.0)
