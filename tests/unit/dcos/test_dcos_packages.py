"""A dozen real Universe packages in detail: the Berth spec against the Marathon app.

Each installable package is rendered the way an install renders it
(``catalog.render.render_service``) and compared field by field with the Marathon app
that Cosmos would have sent to Marathon (``render_marathon`` with the same options).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from catalog.dcos.compat import CLI_ONLY_REASON, NO_IMAGE_REASON, SDK_REASON
from catalog.dcos.convert import analyze_app
from catalog.dcos.options import resolve_dcos_options
from catalog.dcos.render import render_marathon
from catalog.errors import PackageInvalid, SpecRefused
from catalog.render import render_service

from .conftest import corpus_package

HEALTH = {"HTTP": "http", "MESOS_HTTP": "http", "TCP": "tcp", "MESOS_TCP": "tcp",
          "COMMAND": "command"}


def marathon_and_spec(package: Any, options: dict[str, Any] | None = None,
                      ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Marathon app Cosmos would render and the spec Berth installs."""
    resolved = resolve_dcos_options(package, options or {})
    app = render_marathon(package.template, resolved, package.resource)
    return app, render_service(package, resolved, service_name="svc")


def docker(app: dict[str, Any]) -> dict[str, Any]:
    return (app.get("container") or {}).get("docker") or {}


def expected_ports(app: dict[str, Any]) -> list[tuple[Any, Any]]:
    """(containerPort, hostPort) pairs Marathon would give the task."""
    if str(docker(app).get("network", "HOST")).upper() == "BRIDGE":
        mappings = docker(app).get("portMappings") or app["container"].get("portMappings")
        return [(m["containerPort"], m.get("hostPort", 0)) for m in mappings]
    defs = app.get("portDefinitions") or [{"port": p} for p in app.get("ports") or [0]]
    return [(None, d["port"] if app.get("requirePorts") else 0) for d in defs]


def assert_same_service(app: dict[str, Any], spec: dict[str, Any]) -> None:
    """Every field Marathon honoured is in the spec with the same meaning."""
    assert spec["image"] == docker(app)["image"]
    assert spec["instances"] == app.get("instances", 1)
    assert spec["cpus"] == pytest.approx(app.get("cpus", 1))
    assert spec["mem"] == pytest.approx(app.get("mem", 128), abs=1)
    assert spec.get("command") == app.get("cmd")
    assert spec.get("args", []) == [str(a) for a in app.get("args") or []]
    assert spec["network"] == ("bridge" if docker(app).get("network") == "BRIDGE" else "host")
    assert [(p.get("containerPort"), p["hostPort"]) for p in spec["ports"]] == \
        expected_ports(app)
    assert {k: str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in (app.get("env") or {}).items()} == spec.get("env", {})
    assert spec.get("labels", {}) == (app.get("labels") or {})
    strategy = app.get("upgradeStrategy") or {}
    for key in ("minimumHealthCapacity", "maximumOverCapacity"):
        if key in strategy:
            assert spec["upgradeStrategy"][key] == strategy[key]
    _assert_health(app, spec)


def _assert_health(app: dict[str, Any], spec: dict[str, Any]) -> None:
    checks = app.get("healthChecks") or []
    if not checks:
        assert not spec.get("healthCheck")
        return
    check, mine = checks[0], spec["healthCheck"]
    assert mine["protocol"] == HEALTH[check.get("protocol", "HTTP")]
    for key, default in (("gracePeriodSeconds", 300), ("intervalSeconds", 60),
                         ("timeoutSeconds", 20), ("maxConsecutiveFailures", 3)):
        assert mine[key] == check.get(key, default), key
    if mine["protocol"] == "command":
        assert mine["command"] == check["command"]["value"]
    else:
        assert mine["portName"] == spec["ports"][check.get("portIndex", 0)]["name"]
    if mine["protocol"] == "http":
        assert mine["path"] == check.get("path", "/")


@pytest.mark.parametrize(("name", "revision", "options"), [
    ("nginx", 6, {}),                                   # BRIDGE portMappings, COMMAND check
    ("nginx", 6, {"nginx": {"bridge": False}}),         # HOST, one assigned port
    ("grafana", 5, {}),                                 # BRIDGE with an HTTP check
    ("redis", 2, {}),                                   # TCP check
    ("exhibitor", 0, {}),                               # hostname UNIQUE
    ("artifactory-lb", 4, {}),                          # UNIQUE + slave_public role
    ("logstash", 0, {}),                                # args, not cmd
    ("confluent-rest-proxy", 300, {}),                  # COMMAND check, upgradeStrategy
    ("openldap-admin", 3, {}),                          # HTTP check in bridge
])
def test_installable_packages_match_their_marathon_app(corpus: Path, name: str, revision: int,
                                                       options: dict[str, Any]) -> None:
    package = corpus_package(corpus, name, revision)
    assert package.unsupported == ()
    app, spec = marathon_and_spec(package, options)
    assert_same_service(app, spec)


def test_nginx_in_detail(corpus: Path) -> None:
    app, spec = marathon_and_spec(corpus_package(corpus, "nginx", 6))
    assert spec["image"] == "bitnami/nginx:1.10.3-r1"
    assert (spec["cpus"], spec["mem"], spec["instances"]) == (1, 1024, 1)
    assert spec["ports"] == [
        {"name": "port0", "containerPort": 80, "hostPort": 0, "protocol": "tcp"},
        {"name": "port1", "containerPort": 443, "hostPort": 0, "protocol": "tcp"}]
    assert spec["healthCheck"]["command"] == \
        "nami status nginx | grep -q 'com.bitnami.nginx is running'"
    assert spec["labels"]["DCOS_SERVICE_NAME"] == "nginx"


def test_constraints_come_through_as_marathon_spelled_them(corpus: Path) -> None:
    app, spec = marathon_and_spec(corpus_package(corpus, "artifactory-lb", 4))
    assert app["constraints"] == [["hostname", "UNIQUE"]]
    assert app["acceptedResourceRoles"] == ["slave_public"]
    assert spec["constraints"] == [["hostname", "UNIQUE"], ["role", "LIKE", "slave_public"]]


def test_an_sdk_framework_is_unsupported_with_the_exact_reason(corpus: Path) -> None:
    kafka = corpus_package(corpus, "kafka", 1200)
    assert kafka.unsupported == (SDK_REASON,)
    with pytest.raises(PackageInvalid) as info:
        render_service(kafka, {}, service_name="kafka")
    assert info.value.details[0]["message"] == SDK_REASON


def test_a_plain_mesos_framework_is_unsupported(corpus: Path) -> None:
    marathon = corpus_package(corpus, "marathon", 0)
    assert len(marathon.unsupported) == 1
    assert marathon.unsupported[0].startswith("a Mesos framework")


def test_a_cli_only_package_is_unsupported(corpus: Path) -> None:
    cli = corpus_package(corpus, "dcos-core-cli", 20004)
    assert cli.unsupported == (CLI_ONLY_REASON,)


def test_secrets_chosen_in_the_options_are_refused(corpus: Path) -> None:
    airfield = corpus_package(corpus, "airfield", 2)
    render_service(airfield, resolve_dcos_options(airfield, {}), service_name="a")  # plain
    options = resolve_dcos_options(airfield, {"service": {"service_account_secret": "af/sa"}})
    with pytest.raises(SpecRefused) as info:
        render_service(airfield, options, service_name="a")
    messages = {d["path"]: d["message"] for d in info.value.details}
    assert "DC/OS secret 'serviceCredential'" in \
        messages["marathon.json#/env/DCOS_SERVICE_ACCOUNT_CREDENTIAL"]
    assert "marathon.json#/secrets" in messages


def test_host_paths_outside_the_allow_list_are_refused_by_policy(corpus: Path) -> None:
    mysql = corpus_package(corpus, "mysql", 6)
    with pytest.raises(SpecRefused) as info:
        render_service(mysql, resolve_dcos_options(mysql, {}), service_name="db")
    assert "/tmp/mysql" in str(info.value)  # noqa: S108 - the package's path, not ours


def test_no_docker_image_is_known_at_load_and_the_secret_volume_at_render(
        corpus: Path) -> None:
    tunnel = corpus_package(corpus, "cloudflare-argotunnel", 0)
    assert tunnel.unsupported == (NO_IMAGE_REASON,)
    app = render_marathon(tunnel.template, resolve_dcos_options(tunnel, {}), tunnel.resource)
    paths = {r["path"] for r in analyze_app(app).reasons}
    assert {"marathon.json#/container/docker/image",
            "marathon.json#/container/volumes/0"} <= paths
