"""The service spec: schema and semantic checks, defaults, policy, masking."""

from __future__ import annotations

from typing import Any

import pytest

from catalog import MASK, Package, SpecInvalid, SpecRefused, check_policy, mask_spec, validate_spec


def _problems(spec: Any) -> list[dict[str, str]]:
    with pytest.raises(SpecInvalid) as info:
        validate_spec(spec)
    return info.value.details


def test_defaults_are_filled_and_validation_is_idempotent() -> None:
    spec = validate_spec({"image": "x:1", "ports": [{"name": "http"}],
                          "healthCheck": {"protocol": "http", "portName": "http"}})
    assert spec["instances"] == 1 and spec["network"] == "bridge" and spec["privileged"] is False
    assert spec["ports"] == [{"name": "http", "hostPort": 0, "protocol": "tcp"}]
    assert spec["healthCheck"]["path"] == "/" and spec["healthCheck"]["intervalSeconds"] == 10
    assert spec["upgradeStrategy"] == {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0}
    assert validate_spec(spec) == spec


def test_every_schema_problem_is_reported_with_its_path() -> None:
    paths = {p["path"] for p in _problems({"image": "x:1", "cpus": 0, "mem": "1",
                                            "ports": [{"name": "Bad Name"}], "shell": True})}
    assert {"spec/cpus", "spec/mem", "spec/ports/0/name", "spec"} <= paths


@pytest.mark.parametrize(("spec", "path"), [
    ({"command": "run", "args": ["x"]}, "spec/args"),
    ({"ports": [{"name": "a"}, {"name": "a"}]}, "spec/ports/1/name"),
    ({"ports": [{"name": "a", "hostPort": 80}, {"name": "b", "hostPort": 80}]},
     "spec/ports/1/hostPort"),
    ({"healthCheck": {"protocol": "http", "portName": "nope"}}, "spec/healthCheck/portName"),
    ({"healthCheck": {"protocol": "command"}}, "spec/healthCheck/command"),
    ({"constraints": [["hostname", "MAX_PER"]]}, "spec/constraints/0"),
    ({"constraints": [["hostname", "MAX_PER", "zero"]]}, "spec/constraints/0/2"),
    ({"constraints": [["hostname", "LIKE", "(a)\\1"]]}, "spec/constraints/0/2"),
    ({"constraints": [["hostname", "UNIQUE", "x"]]}, "spec/constraints/0/2"),
    ({"volumes": [{"containerPath": "/a", "name": "v"}, {"containerPath": "/a/", "name": "w"}]},
     "spec/volumes/1/containerPath"),
    ({"labels": {"berth.service": "x"}}, "spec/labels/berth.service"),
])
def test_semantic_problems(spec: dict[str, Any], path: str) -> None:
    assert path in [p["path"] for p in _problems({"image": "x:1", **spec})]


@pytest.mark.parametrize(("volume", "words"), [
    ({"hostPath": "/var/run/docker.sock"}, "Docker socket"),
    ({"hostPath": "/run"}, "Docker socket"),
    ({"hostPath": "/"}, "Docker socket"),
    ({"hostPath": "/etc"}, "outside the allowed host paths"),
    ({"hostPath": "/srv/berth/../../etc"}, "'..'"),
    ({"hostPath": "/srv/berthx"}, "outside the allowed host paths"),
    ({"name": "v", "containerPath": "/var/run/docker.sock"}, "Docker socket"),
])
def test_policy_refusals(volume: dict[str, Any], words: str) -> None:
    spec = validate_spec({"image": "x:1", "volumes": [{"containerPath": "/c", **volume}]})
    with pytest.raises(SpecRefused) as info:
        check_policy(spec)
    assert words in info.value.details[0]["message"]


def test_privileged_is_refused_and_allowed_paths_pass() -> None:
    with pytest.raises(SpecRefused) as info:
        check_policy(validate_spec({"image": "x:1", "privileged": True}))
    assert info.value.details[0]["path"] == "spec/privileged"
    check_policy(validate_spec({"image": "x:1", "volumes": [
        {"containerPath": "/c", "hostPath": "/srv/berth/cfg", "readOnly": True}]}))


def test_mask_spec_hides_secret_values_in_env_command_and_args() -> None:
    package = Package("demo", "1.0.0", config_schema={"properties": {
        "db": {"properties": {"password": {"type": "string", "x-secret": True}}}}})
    options = {"db": {"password": "hunter22"}}
    spec = {"image": "x:1", "env": {"PW": "hunter22", "URL": "pg://u:hunter22@db"},
            "command": "run --pw hunter22", "args": []}
    masked = mask_spec(spec, package, options)
    assert masked["env"] == {"PW": MASK, "URL": f"pg://u:{MASK}@db"}
    assert masked["command"] == f"run --pw {MASK}"
    assert spec["env"]["PW"] == "hunter22"
