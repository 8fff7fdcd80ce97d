"""The offline stages of ``berth package test`` (``catalog.package_test``): renders with
examples, the port and secret checks against the rendered spec, the ``tests.smoke``
field of ``package.json``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from catalog.loader import lint_package_dir
from catalog.package_test import (
    offline_stages,
    secret_option_problems,
    spec_problems,
    version_folders,
)

UNIVERSE = Path(__file__).resolve().parents[3] / "universe" / "packages"


def messages(problems: list[dict[str, str]]) -> str:
    return "\n".join(f"{p['path']}: {p['message']}" for p in problems)


# --- ports --------------------------------------------------------------------------
def test_a_port_reference_must_name_a_declared_port() -> None:
    spec = {"network": "host", "ports": [{"name": "http", "hostPort": 0}],
            "command": 'exec app --http "$PORT_HTTP" --admin "${PORT_ADMIN_UI}" --x $PORT2',
            "env": {"OK": "$PORT0", "ALSO": "$PORTS"}}
    found = spec_problems(spec)
    assert [p["path"] for p in found] == ["service.json.j2#/command"] * 2
    text = messages(found)
    assert "$PORT_ADMIN_UI but no declared port is named admin-ui (declared: http)" in text
    assert "$PORT2 but the spec declares 1 port(s)" in text


def test_mongodb_first_start_port_under_host_networking_is_found() -> None:
    """The old mongodb template: its init mongod listens on 127.0.0.1:27017, never
    reserved, in the host network."""
    spec = {"network": "host", "ports": [{"name": "mongo", "hostPort": 0}],
            "command": 'exec docker-entrypoint.sh mongod --port "$PORT_MONGO"',
            "healthCheck": {"protocol": "command",
                            "command": "mongosh --host 127.0.0.1:27017 --eval 1"}}
    found = spec_problems(spec)
    assert [p["path"] for p in found] == ["service.json.j2#/healthCheck/command"]
    assert "fixed port 27017 under host networking" in found[0]["message"]


@pytest.mark.parametrize("text, number", [
    ("prometheus.tcp.port = 15692", 15692), ("--web.listen-address=:9100", 9100),
    ("exec app --port 8080", 8080), ("--http-port=3000", 3000),
    ("listen 1883", 1883), ("bind 0.0.0.0:5672", 5672), ('--address ":9000"', 9000)])
def test_fixed_listening_ports_are_found(text: str, number: int) -> None:
    spec = {"network": "host", "ports": [{"name": "a", "hostPort": 0}], "command": text}
    assert f"fixed port {number} " in messages(spec_problems(spec))


def test_declared_or_bridged_fixed_ports_are_fine() -> None:
    declared = {"network": "host", "ports": [{"name": "mqtt", "hostPort": 1883}],
                "command": "listen 1883", "env": {"MQTT_PORT": "1883"}}
    bridged = {"network": "bridge", "ports": [{"name": "m", "containerPort": 27017}],
               "command": "mongod --port 27017 --bind 127.0.0.1:28017"}
    unrelated = {"network": "host", "ports": [{"name": "a", "hostPort": 0}],
                 "command": "head -c 24 /dev/urandom; echo 'max_payload: 1048576'; "
                            "app --transport 3 --report 10 --support=2",
                 "env": {"SIZE": "4096", "TIMEOUT": "30"}}
    assert spec_problems(declared) == spec_problems(bridged) == spec_problems(unrelated) == []


def test_a_numeric_port_variable_under_host_networking_must_be_declared() -> None:
    spec = {"network": "host", "ports": [{"name": "http", "hostPort": 0}],
            "env": {"GF_SERVER_HTTP_PORT": "3000"}}
    found = spec_problems(spec)
    assert [p["path"] for p in found] == ["service.json.j2#/env/GF_SERVER_HTTP_PORT"]


def test_the_smoke_test_port_and_command_are_checked() -> None:
    spec = {"network": "host", "ports": [{"name": "http", "hostPort": 0}]}
    found = spec_problems(spec, {"protocol": "http", "portName": "admin"})
    assert found == [{"path": "package.json#/tests/smoke/portName", "message":
                      "'admin' is not a port the spec declares (declared: http)"}]
    found = spec_problems(spec, {"protocol": "command", "command": "wget :$PORT_API/"})
    assert [p["path"] for p in found] == ["package.json#/tests/smoke/command"]


# --- secrets ------------------------------------------------------------------------
def schema(**auth: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"auth": {"type": "object", **auth}}}


def test_a_credential_that_is_not_secret_is_found() -> None:
    found = secret_option_problems(schema(properties={
        "admin_password": {"type": "string", "default": ""},
        "api_key": {"type": "string"}, "token_auth": {"type": "boolean"}}), "config.json")
    assert [p["path"] for p in found] == [
        "config.json#/properties/auth/properties/admin_password",
        "config.json#/properties/auth/properties/api_key"]
    assert "not marked \"x-secret\": true" in found[0]["message"]


def test_a_secret_must_be_generated_or_required() -> None:
    optional = schema(properties={"password": {"type": "string", "x-secret": True,
                                               "default": ""}})
    generated = schema(properties={"password": {
        "type": "string", "x-secret": True, "default": "",
        "x-generate": {"kind": "password", "length": 32}}})
    required = schema(required=["password"], properties={
        "password": {"type": "string", "x-secret": True, "minLength": 8}})
    conditional = schema(
        properties={"type": {"enum": ["local", "remote"]},
                    "password": {"type": "string", "x-secret": True, "default": ""}},
        **{"if": {"properties": {"type": {"const": "remote"}}},
           "then": {"required": ["password"], "properties": {"password": {"minLength": 1}}}})
    found = secret_option_problems(optional, "config.json")
    assert [p["path"] for p in found] == ["config.json#/properties/auth/properties/password"]
    assert "generated (\"x-generate\") or required" in found[0]["message"]
    for fine in (generated, required, conditional):
        assert secret_option_problems(fine, "config.json") == []


# --- the stages on folders ----------------------------------------------------------
@pytest.fixture
def hello(tmp_path: Path) -> Path:
    copy = tmp_path / "hello"
    shutil.copytree(UNIVERSE / "hello", copy)
    return copy


def test_every_version_renders_with_its_defaults_and_examples(hello: Path) -> None:
    stages, renders = offline_stages(hello)
    assert [s.status for s in stages] == ["passed"] * 3
    assert [r.label for r in renders] == ["1.0.0 defaults", "1.0.0 examples/custom.json",
                                          "2.0.0 defaults", "2.0.0 examples/custom.json"]
    example = renders[1].spec["env"]
    assert example["HELLO_MESSAGE"] == "Hello from the package test"
    assert version_folders(hello / "2.0.0") == [str(hello / "2.0.0")]


def test_broken_examples_say_which_file_failed_and_why(hello: Path) -> None:
    examples = hello / "2.0.0" / "examples"
    (examples / "bad-json.json").write_text("{\"message\": ")
    (examples / "bad-option.json").write_text(json.dumps({"color": "pink",
                                                          "resources": {"mem": 1}}))
    (examples / "list.json").write_text("[]")
    stages, renders = offline_stages(hello)
    render = stages[1]
    assert render.status == "failed"
    text = messages(render.problems)
    folder = f"{hello}/2.0.0"
    assert f"{folder}/examples/bad-json.json: malformed JSON at line 1" in text
    assert f"{folder}/examples/bad-option.json#/color: rendered with " \
           f"examples/bad-option.json: options/color:" in text
    assert f"{folder}/examples/bad-option.json#/resources/mem:" in text
    assert f"{folder}/examples/list.json: must hold a JSON object of options" in text
    assert len(renders) == 4   # the good ones still render


def test_a_spec_fault_names_the_example_it_appeared_with(hello: Path) -> None:
    template = hello / "2.0.0" / "service.json.j2"
    text = template.read_text().replace(
        '"HELLO_TOKEN"', '"ADMIN": {{ ("$PORT_ADMIN" if not options.show_details else "") '
                         '| tojson }},\n    "HELLO_TOKEN"')
    template.write_text(text)
    stages, _renders = offline_stages(hello)
    spec = stages[2]
    assert spec.status == "failed"
    assert spec.problems == [{"path": f"{hello}/2.0.0/service.json.j2#/env/ADMIN",
                              "message": "rendered with examples/custom.json: uses "
                                         "$PORT_ADMIN but no declared port is named admin "
                                         "(declared: http)"}]


def test_lint_render_and_spec_faults_are_all_reported_at_once(hello: Path) -> None:
    meta = hello / "1.0.0" / "package.json"
    data = json.loads(meta.read_text())
    del data["description"]
    meta.write_text(json.dumps(data))
    config = hello / "2.0.0" / "config.json"
    text = config.read_text()
    mark = text[text.index('"x-secret-optional"'):]
    config.write_text(text.replace(mark[:mark.index("\n") + 1], ""))
    (hello / "2.0.0" / "examples" / "x.json").write_text('{"nope": 1}')
    stages, _ = offline_stages(hello)
    assert [s.status for s in stages] == ["failed"] * 3
    assert "'description' is a required property" in messages(stages[0].problems)
    assert "examples/x.json" in messages(stages[1].problems)
    assert "properties/auth/properties/token" in messages(stages[2].problems)


def test_a_folder_without_packages_is_one_clear_problem(tmp_path: Path) -> None:
    stages, renders = offline_stages(tmp_path)
    assert stages[0].problems[0]["message"].startswith("not a package folder")
    assert [s.status for s in stages] == ["failed", "skipped", "skipped"] and renders == []


# --- tests.smoke in package.json ----------------------------------------------------
@pytest.mark.parametrize("smoke, fault", [
    ({"protocol": "http", "portName": "http", "path": "/", "status": 204}, None),
    ({"protocol": "command", "command": "true", "timeoutSeconds": 5}, None),
    ({"protocol": "http", "path": "/"}, "'portName' is a required property"),
    ({"protocol": "command"}, "'command' is a required property"),
    ({"protocol": "command", "command": "true", "portName": "x"}, "should not be valid"),
    ({"protocol": "http", "portName": "http", "status": 99}, "less than the minimum"),
    ({"protocol": "ftp"}, "is not one of"),
    ({"protocol": "http", "portName": "http", "retries": 3}, "unknown field"),
])
def test_the_smoke_field_is_checked(hello: Path, smoke: dict[str, Any],
                                    fault: str | None) -> None:
    meta = hello / "2.0.0" / "package.json"
    data = json.loads(meta.read_text())
    data["tests"] = {"smoke": smoke}
    meta.write_text(json.dumps(data))
    problems = lint_package_dir(hello / "2.0.0")
    if fault is None:
        assert problems == []
    else:
        assert any(p["path"].startswith(f"{meta}#/tests/smoke") and fault in p["message"]
                   for p in problems), problems


@pytest.mark.parametrize(("mark", "why"), [
    ({"x-secret-optional": "short"}, "10 to 300 characters"),
    ({"x-secret-optional": 3}, "10 to 300 characters"),
    ({"x-secret": False, "x-secret-optional": "a token sent to another system"},
     '"x-secret": true'),
    ({"x-generate": {"kind": "hex"}, "x-secret-optional": "a token sent to another system"},
     "drop one of"),
])
def test_a_misused_secret_optional_mark_is_refused_with_its_place(mark, why):
    from catalog.lint import default_problems

    option = {"type": "string", "default": "", "x-secret": True, **mark}
    schema = {"type": "object", "properties": {"token": option}}
    problems = default_problems(schema, "config.json")
    found = [p for p in problems if p["path"].endswith("/token/x-secret-optional")]
    assert found and why in found[0]["message"], problems


def test_a_secret_that_says_why_it_may_stay_empty_passes_the_secret_check():
    from catalog.package_checks import secret_option_problems

    token = {"type": "string", "default": "", "x-secret": True}
    bare = {"type": "object", "properties": {"token": token}}
    assert secret_option_problems(bare, "config.json")
    explained = {"type": "object", "properties": {"token": {
        **token, "x-secret-optional": "a token sent to Berth; empty reads anonymously"}}}
    assert secret_option_problems(explained, "config.json") == []
