"""The default repository, ``universe/``, loaded whole with the catalog's own loader.

Every package must lint clean, render with its defaults (and with each option changed
one at a time) to a valid spec, pin its images, ship a small safe SVG icon and a
README; the ``hello`` package and the image folders the test bed builds must match.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET  # noqa: S405 - parses the repository's own files
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from catalog import (
    OptionsInvalid,
    Package,
    lint_paths,
    load_repository_dir,
    parse_range,
    parse_version,
    render_service,
    resolve_options,
    upgrade_options,
)
from catalog.generated_secrets import resolve_generated
from catalog.lint import placeholders

ROOT = Path(__file__).resolve().parents[2]
UNIVERSE = ROOT / "universe"
IMAGES = UNIVERSE / "images"
SVG_NS = "{http://www.w3.org/2000/svg}"
MAX_ICON_BYTES = 2048
GIVEN = "a-long-secret"  # what an admin types as a password  # noqa: S105
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - what the package must listen on


def _load() -> list[Package]:
    repo, problems = load_repository_dir(UNIVERSE, name="universe", priority=0)
    assert problems == []
    return sorted(repo.packages, key=lambda p: (p.name, p.sort_key))


PACKAGES = _load()
IDS = [f"{p.name}@{p.version}" for p in PACKAGES]


def _by_name() -> dict[str, list[Package]]:
    names: dict[str, list[Package]] = {}
    for package in PACKAGES:
        names.setdefault(package.name, []).append(package)
    return names


def _walk_options(schema: Mapping[str, Any], path: tuple[str, ...] = ()
                  ) -> Iterator[tuple[tuple[str, ...], Mapping[str, Any]]]:
    """Every option of a config schema with its path, groups included."""
    for key, sub in schema.get("properties", {}).items():
        yield (*path, key), sub
        if sub.get("type") == "object":
            yield from _walk_options(sub, (*path, key))


def _with(options: Mapping[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(dict(options))
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


def _defaults(package: Package, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The defaults, plus a value for each required option without one (a password the
    admin must give), plus ``given``; generated secrets made, as at an install."""
    required = placeholders(package.config_schema)
    return resolve_generated(package, _merged(required, given or {}))[0]


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        out[key] = (_merged(out[key], value) if isinstance(value, Mapping)
                    and isinstance(out.get(key), Mapping) else value)
    return out


def _variants(package: Package) -> Iterator[tuple[str, dict[str, Any]]]:
    """The defaults with one boolean flipped, one enum value chosen or one number at a
    bound, one option at a time."""
    defaults = _defaults(package)
    for path, sub in _walk_options(package.config_schema):
        if sub.get("type") == "boolean":
            yield "/".join(path), _with(defaults, path, not sub["default"])
        for bound in ("minimum", "maximum"):
            if bound in sub:
                yield f"{'/'.join(path)}={sub[bound]}", _with(defaults, path, sub[bound])
        for value in sub.get("enum", []):
            if value != sub.get("default"):
                yield f"{'/'.join(path)}={value}", _with(defaults, path, value)


def _render(package: Package, options: Mapping[str, Any]) -> dict[str, Any]:
    return render_service(package, options, service_name="svc",
                          readonly_host_paths=("/proc", "/sys"))


# Packages that run in their own network namespace, and why.
BRIDGED = {"mongodb": "the official entrypoint's first-start mongod listens on "
                      "127.0.0.1:27017, a port no one reserved on the host"}


def _required(schema: Mapping[str, Any], path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Paths of the options a schema requires (at any depth)."""
    found = {(*path, key) for key in schema.get("required", [])}
    for key, sub in schema.get("properties", {}).items():
        if sub.get("type") == "object":
            found |= _required(sub, (*path, key))
    return found


def _image_tag(ref: str) -> str | None:
    name = ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else None


def test_the_universe_lints_clean() -> None:
    assert lint_paths([UNIVERSE]) == []


def test_there_are_at_least_15_packages_besides_hello() -> None:
    names = set(_by_name()) - {"hello"}
    assert len(names) >= 15, sorted(names)


def test_at_least_three_packages_have_several_versions_with_an_upgrade_path() -> None:
    upgradable = []
    for name, versions in _by_name().items():
        newest, older = versions[-1], versions[:-1]
        if older and newest.upgrades_from:
            allowed = parse_range(newest.upgrades_from)
            if any(allowed.contains(parse_version(old.version)) for old in older):
                upgradable.append(name)
    assert len(set(upgradable) - {"hello"}) >= 3, upgradable


@pytest.mark.parametrize("package", PACKAGES, ids=IDS)
def test_every_version_renders_with_its_defaults(package: Package) -> None:
    spec = _render(package, _defaults(package))
    assert spec["image"] in package.resource["assets"]["container"]["docker"].values()
    assert spec["cpus"] > 0 and spec["mem"] >= 16
    assert spec["ports"] and all(p["name"] for p in spec["ports"])
    health = spec["healthCheck"]
    assert health["protocol"] in ("http", "tcp", "command")
    if health["protocol"] == "command":
        assert health["command"]
    else:
        assert health["portName"] in {p["name"] for p in spec["ports"]}
    assert spec["network"] == ("bridge" if package.name in BRIDGED else "host")
    assert not spec.get("privileged")


@pytest.mark.parametrize("package", PACKAGES, ids=IDS)
def test_every_boolean_enum_and_bound_renders(package: Package) -> None:
    rendered = 0
    for label, options in _variants(package):
        spec = _render(package, resolve_options(package, options))
        assert spec["image"], label
        rendered += 1
    assert rendered >= 1


@pytest.mark.parametrize("package", PACKAGES, ids=IDS)
def test_rendered_commands_are_valid_shell(package: Package) -> None:
    variants = [("defaults", _defaults(package)), *_variants(package)]
    for label, options in variants:
        command = _render(package, resolve_options(package, options)).get("command")
        if command is None:
            continue
        result = subprocess.run(["/bin/sh", "-n", "-c", command], capture_output=True,
                                text=True, timeout=10, check=False)
        assert result.returncode == 0, f"{label}: {result.stderr}"


@pytest.mark.parametrize("package", PACKAGES, ids=IDS)
def test_secret_options_reach_the_container_only_through_env(package: Package) -> None:
    secrets = [path for path, sub in _walk_options(package.config_schema)
               if sub.get("x-secret")]
    for path in secrets:
        value = "s3cret-Value-42"
        options = resolve_options(package, _with(_defaults(package), path, value))
        spec = _render(package, options)
        outside_env = json.dumps({k: v for k, v in spec.items() if k != "env"})
        assert value not in outside_env, "/".join(path)
        assert all(value == v or value not in v for v in spec.get("env", {}).values())


def test_at_least_one_secret_option_exists() -> None:
    secrets = [(p.name, path) for p in PACKAGES
               for path, sub in _walk_options(p.config_schema) if sub.get("x-secret") is True]
    assert len(secrets) >= 5, secrets


@pytest.mark.parametrize("package", PACKAGES, ids=IDS)
def test_every_option_has_a_title_a_description_and_a_default(package: Package) -> None:
    schema = package.config_schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema.get("additionalProperties") is False
    required = _required(schema)
    for path, sub in _walk_options(schema):
        where = "/".join(path)
        assert sub.get("title") and sub.get("description"), where
        assert ("default" in sub) != (path in required), where  # required: no default
        if sub.get("type") == "object":
            assert sub.get("additionalProperties") is False, where
        if sub.get("type") in ("integer", "number"):
            assert "minimum" in sub and "maximum" in sub, where


def test_the_universe_uses_groups_enums_and_bounded_numbers() -> None:
    kinds: set[str] = set()
    for package in PACKAGES:
        for _path, sub in _walk_options(package.config_schema):
            kinds.add("group" if sub.get("type") == "object" else "")
            kinds.add("enum" if "enum" in sub else "")
            kinds.add("bounded" if {"minimum", "maximum"} <= set(sub) else "")
    assert {"group", "enum", "bounded"} <= kinds


@pytest.mark.parametrize("package", PACKAGES, ids=IDS)
def test_every_image_is_pinned_to_a_version(package: Package) -> None:
    images = package.resource["assets"]["container"]["docker"]
    assert images
    for ref in images.values():
        tag = _image_tag(ref)
        assert tag and tag != "latest", ref
        assert any(ch.isdigit() for ch in tag), ref


@pytest.mark.parametrize("package", PACKAGES, ids=IDS)
def test_every_version_has_a_small_safe_svg_icon(package: Package) -> None:
    assert package.icon == "icon.svg"
    data = package.read_file("icon.svg")
    assert data is not None and 0 < len(data) <= MAX_ICON_BYTES
    text = data.decode("utf-8")
    assert "<!DOCTYPE" not in text and "<!ENTITY" not in text
    root = ET.fromstring(text)  # noqa: S314 - the repository's own file, no DTD (above)
    assert root.tag == f"{SVG_NS}svg"
    assert root.get("viewBox")
    for element in root.iter():
        local = element.tag.removeprefix(SVG_NS)
        assert local not in ("script", "foreignObject", "image", "use", "a"), local
        for attribute, value in element.attrib.items():
            name = attribute.rsplit("}", 1)[-1].lower()
            assert not name.startswith("on") and name != "href", attribute
            assert "url(" not in value and "javascript:" not in value.lower(), value


@pytest.mark.parametrize("package", PACKAGES, ids=IDS)
def test_every_version_has_a_readme_that_explains_options_and_connecting(
        package: Package) -> None:
    assert package.readme.startswith("# ")
    assert "## Options" in package.readme
    assert "## Connecting" in package.readme
    assert package.title and package.description and package.tags


def test_four_to_six_packages_are_featured() -> None:
    featured = {name for name, versions in _by_name().items() if versions[-1].featured}
    assert 4 <= len(featured) <= 6, featured


def test_hello_has_versions_1_and_2_built_from_local_images() -> None:
    hello = {p.version: p for p in _by_name()["hello"]}
    assert set(hello) == {"1.0.0", "2.0.0"}
    for version, package in hello.items():
        assert package.resource["assets"]["container"]["docker"] == {
            "hello": f"berth/hello:{version}"}
    assert hello["2.0.0"].upgrades_from
    assert parse_range(hello["2.0.0"].upgrades_from).contains(parse_version("1.0.0"))


@pytest.mark.parametrize("version", ["1.0.0", "2.0.0"])
def test_hello_health_check_is_quick_http(version: str) -> None:
    package = next(p for p in _by_name()["hello"] if p.version == version)
    spec = _render(package, _defaults(package))
    assert spec["ports"] == [{"name": "http", "hostPort": 0, "protocol": "tcp"}]
    health = spec["healthCheck"]
    assert (health["protocol"], health["portName"], health["path"]) == ("http", "http",
                                                                        "/health")
    assert (health["intervalSeconds"], health["timeoutSeconds"],
            health["gracePeriodSeconds"]) == (2, 2, 10)
    assert spec["env"]["HELLO_MESSAGE"] == "Hello from Berth"
    given = "t0ken-xyz"
    env = _render(package, resolve_options(package, {"auth": {"token": given}}))["env"]
    assert env["HELLO_TOKEN"] == given


@pytest.mark.parametrize("tag", ["1.0.0", "2.0.0"])
def test_hello_image_folder_is_what_the_test_bed_builds(tag: str) -> None:
    folder = IMAGES / "hello" / tag
    image = json.loads((folder / "image.json").read_text())
    assert image["repository"] == "berth/hello" and image["tag"] == tag
    assert {"sh", "httpd", "sed", "printf", "mkdir"} <= set(image["applets"])
    assert image["cmd"] == ["/bin/start"]
    assert image["env"] == ["PATH=/bin"]
    start = folder / "rootfs" / "bin" / "start"
    assert os.access(start, os.X_OK)
    script = start.read_text()
    assert script.startswith("#!/bin/sh")
    assert f'VERSION="{tag}"' in script
    assert 'httpd -f -p "$PORT" -h /www' in script and 'PORT="${PORT0:-8080}"' in script
    check = subprocess.run(["/bin/sh", "-n", str(start)], capture_output=True, text=True,
                           timeout=10, check=False)
    assert check.returncode == 0, check.stderr


# What each package needs to start, and to start safely, on a real host ---------------
def _newest(name: str) -> Package:
    return _by_name()[name][-1]


def _all(name: str) -> list[Package]:
    return _by_name()[name]


def test_minio_default_install_always_passes_a_root_password_with_the_user() -> None:
    """MinIO refuses to start with MINIO_ROOT_USER set and no MINIO_ROOT_PASSWORD: left
    empty, the password is generated at install."""
    minio = _newest("minio")
    env = _render(minio, _defaults(minio))["env"]
    assert env["MINIO_ROOT_USER"] == "minioadmin"
    assert len(env["MINIO_ROOT_PASSWORD"]) == 32
    given = _render(minio, _defaults(minio, {"auth": {"root_password": GIVEN}}))["env"]
    assert given["MINIO_ROOT_PASSWORD"] == GIVEN
    with pytest.raises(OptionsInvalid):
        resolve_options(minio, {"auth": {"root_password": "short"}})
    text = " ".join([minio.readme, minio.pre_install_notes or "",
                     json.dumps(minio.config_schema)]).lower()
    assert "falls back to minioadmin" not in text and "empty means minioadmin" not in text


def test_mongodb_never_starts_with_an_empty_password_and_keeps_it_on_re_render() -> None:
    """The entrypoint exits on every start when the user is set and the password empty:
    the password is generated at install, and an upgrade's re-render (the old options
    merged over the new defaults, the password sent back empty) keeps the same one."""
    mongo = _newest("mongodb")
    first = _defaults(mongo)
    password = first["auth"]["password"]
    assert len(password) == 32
    spec = _render(mongo, first)
    assert spec["env"]["MONGO_INITDB_ROOT_PASSWORD"] == password
    assert "GENERATED" not in spec["command"] and "urandom" not in spec["command"]
    again = resolve_generated(mongo, _merged(upgrade_options(first, mongo),
                                             {"auth": {"password": ""}}),
                              {"/auth/password": password})[0]
    assert _render(mongo, again)["env"]["MONGO_INITDB_ROOT_PASSWORD"] == password


def test_mongodb_first_start_init_cannot_take_a_host_port_berth_did_not_reserve() -> None:
    """The entrypoint's temporary mongod binds 127.0.0.1:27017: in the container's own
    network namespace, that port is no one else's."""
    mongo = _newest("mongodb")
    spec = _render(mongo, _defaults(mongo))
    assert spec["network"] == "bridge"
    assert spec["ports"] == [{"name": "mongo", "containerPort": 27017, "hostPort": 0,
                              "protocol": "tcp"}]
    assert "--port 27017" in spec["command"]


def test_gitea_does_not_reopen_the_installer_or_reset_the_database_on_restart() -> None:
    """environment-to-ini writes every GITEA__* variable on every start: the defaults
    must not write INSTALL_LOCK=false or DB_TYPE over what the web install saved."""
    gitea = _newest("gitea")
    env = _render(gitea, _defaults(gitea))["env"]
    assert "GITEA__security__INSTALL_LOCK" not in env
    assert not any(key.startswith("GITEA__database__") for key in env)
    locked = _render(gitea, _defaults(gitea, {"gitea": {"install_lock": True}}))["env"]
    assert locked["GITEA__security__INSTALL_LOCK"] == "true"
    external = _render(gitea, _defaults(gitea, {"database": {
        "type": "postgres", "host": "db:5432", "password": "pw"}}))["env"]
    assert external["GITEA__database__DB_TYPE"] == "postgres"


def test_uptime_kuma_listens_where_it_says_and_keeps_its_frame_header() -> None:
    """Uptime Kuma binds to UPTIME_KUMA_HOST || HOST and treats any non-empty
    UPTIME_KUMA_DISABLE_FRAME_SAMEORIGIN as true."""
    kuma = _newest("uptime-kuma")
    env = _render(kuma, _defaults(kuma))["env"]
    assert env["UPTIME_KUMA_HOST"] == ALL_INTERFACES
    assert "UPTIME_KUMA_DISABLE_FRAME_SAMEORIGIN" not in env
    framed = _render(kuma, _defaults(kuma, {"kuma": {"disable_frame_sameorigin": True}}))
    assert framed["env"]["UPTIME_KUMA_DISABLE_FRAME_SAMEORIGIN"] == "true"


@pytest.mark.parametrize("redis", _all("redis"), ids=lambda p: p.version)
def test_redis_always_has_a_password_and_answers_remote_clients(redis: Package) -> None:
    """Protected mode without a password answers every remote client -DENIED while a
    TCP check stays green: a password is always set (generated when left empty) and
    protected mode is off."""
    spec = _render(redis, _defaults(redis))
    assert "--protected-mode no" in spec["command"]
    assert '--requirepass "$REDIS_PASSWORD"' in spec["command"]
    assert len(spec["env"]["REDIS_PASSWORD"]) == 32
    given = _render(redis, _defaults(redis, {"auth": {"password": GIVEN}}))
    assert given["env"]["REDIS_PASSWORD"] == GIVEN
    assert "protected-mode yes" not in redis.template


@pytest.mark.parametrize("package", PACKAGES, ids=IDS)
def test_every_password_or_token_is_generated_or_required(package: Package) -> None:
    """An empty secret is fatal in MinIO, refused on restart in MongoDB, admin/admin in
    Grafana, guest-only in RabbitMQ and anonymous in Mosquitto and NATS: every secret
    is generated at install (x-generate), required, or says why empty is safe
    (x-secret-optional: a token sent to an outside system that may not need one)."""
    required = _required(package.config_schema)
    for path, sub in _walk_options(package.config_schema):
        if sub.get("x-secret") is not True or sub.get("x-secret-optional"):
            continue
        assert "x-generate" in sub or path in required, "/".join(path)
        if "x-generate" in sub:
            value = _defaults(package)
            for key in path:
                value = value[key]
            assert value, "/".join(path)


@pytest.mark.parametrize(("name", "variable"), [
    ("grafana", "GF_SECURITY_ADMIN_PASSWORD"), ("rabbitmq", "RABBITMQ_DEFAULT_PASS"),
    ("mosquitto", "MQTT_PASSWORD"), ("nats", "NATS_TOKEN"), ("postgres", "POSTGRES_PASSWORD"),
    ("mariadb", "MARIADB_ROOT_PASSWORD"), ("mariadb", "MARIADB_PASSWORD"),
    ("gitea", "GITEA_FIRST_SECRET_KEY")])
def test_a_default_install_sets_a_generated_credential(name: str, variable: str) -> None:
    """admin/admin (Grafana), guest only (RabbitMQ), anonymous clients (Mosquitto, NATS),
    Gitea's well-known fallback SECRET_KEY: not with Berth's defaults."""
    for package in _all(name):
        env = _render(package, _defaults(package))["env"]
        assert env.get(variable) and len(env[variable]) >= 32, package.version
        assert "MARIADB_RANDOM_ROOT_PASSWORD" not in env


def test_gitea_writes_its_generated_key_only_while_app_ini_has_none() -> None:
    """The web installer keeps a SECRET_KEY it finds; Berth's is never written over one."""
    spec = _render(_newest("gitea"), _defaults(_newest("gitea")))
    assert "grep -qs '^SECRET_KEY *= *[^ ]' /data/gitea/conf/app.ini" in spec["command"]
    assert "GITEA__security__SECRET_KEY" not in spec["env"]


def test_rabbitmq_declares_its_prometheus_listener() -> None:
    """rabbitmq_prometheus listens on 15692 unless told otherwise: two brokers on one
    host would collide on a port Berth never reserved."""
    rabbit = _newest("rabbitmq")
    spec = _render(rabbit, _defaults(rabbit))
    assert "prometheus" in {p["name"] for p in spec["ports"]}
    assert "prometheus.tcp.port = ${PORT_PROMETHEUS}" in spec["command"]


def test_jenkins_enforces_the_assigned_agent_port_on_every_start() -> None:
    """Without enforcement, the agent port saved in config.xml wins over the env."""
    jenkins = _newest("jenkins")
    spec = _render(jenkins, _defaults(jenkins))
    text = spec["command"] + spec["env"]["JAVA_OPTS"]
    assert "-Djenkins.model.Jenkins.slaveAgentPortEnforce=true" in text
    assert "-Djenkins.model.Jenkins.slaveAgentPort=$PORT_AGENT" in spec["command"]


@pytest.mark.parametrize("package", PACKAGES, ids=IDS)
def test_templates_read_berth_host_not_the_generic_host(package: Package) -> None:
    """HOST is also what many programs bind to; Berth's address is BERTH_HOST."""
    assert not re.search(r"\$\{?HOST\b", package.template), package.name


@pytest.mark.parametrize(("name", "tool"), [("redis", "redis-cli"), ("postgres", "pg_isready"),
                                            ("mariadb", "mariadb-admin"), ("mongodb", "mongosh")])
def test_databases_are_checked_with_their_own_client(name: str, tool: str) -> None:
    """A TCP connect cannot tell "up" from "usable"; the image's client can."""
    for package in _all(name):
        health = _render(package, _defaults(package))["healthCheck"]
        assert health["protocol"] == "command" and tool in health["command"], package.version


@pytest.mark.parametrize("url, asked", [
    ("http://berth:8080/api/v1/sd/prometheus",
     "http://berth:8080/api/v1/sd/prometheus?wait=600"),
    ("http://berth:8080/api/v1/sd/prometheus?service=web",
     "http://berth:8080/api/v1/sd/prometheus?service=web&wait=600"),
    ("http://berth:8080/api/v1/sd/prometheus?wait=20",
     "http://berth:8080/api/v1/sd/prometheus?wait=20"),
    ("", "")])
def test_prometheus_asks_berth_held_questions(url: str, asked: str) -> None:
    """Berth answers a held question when the targets change: the package asks with
    ``wait`` (Berth cuts it a second before the refresh interval); an admin's own
    ``wait`` stays; no URL, no discovery."""
    prometheus = _newest("prometheus")
    options = _defaults(prometheus)
    options["scrape"]["berth_sd"]["url"] = url
    spec = _render(prometheus, options)
    assert spec["env"]["BERTH_SD_URL"] == asked
    assert ("job_name: berth" in spec["command"]) == bool(url)
