"""Berth's test database package (``universe/packages/testdb``) and its image folder:
what the stateful-service tests rely on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalog import (
    OptionsInvalid,
    Package,
    load_repository_dir,
    parse_range,
    parse_version,
    render_service,
    resolve_options,
)

UNIVERSE = Path(__file__).resolve().parents[2] / "universe"
PASSWORD = "a-long-secret"  # noqa: S105 - what an admin types


def _versions() -> dict[str, Package]:
    repo, problems = load_repository_dir(UNIVERSE, name="universe", priority=0)
    assert problems == []
    return {p.version: p for p in repo.packages if p.name == "testdb"}


VERSIONS = _versions()


def _spec(package: Package, **options: object) -> dict:
    chosen = {**options, "auth": {"password": PASSWORD}}
    return render_service(package, resolve_options(package, chosen), service_name="db")


def test_there_are_two_versions_and_the_newer_upgrades_the_older() -> None:
    assert set(VERSIONS) == {"1.0.0", "1.1.0"}
    newer = VERSIONS["1.1.0"]
    assert newer.upgrades_from and parse_range(newer.upgrades_from).contains(
        parse_version("1.0.0"))
    old, new = (_spec(VERSIONS[v]) for v in ("1.0.0", "1.1.0"))
    assert old["image"] == new["image"] == "berth/testdb:7"
    assert "--appendfsync everysec" in old["command"]
    assert "--appendfsync always" in new["command"]


@pytest.mark.parametrize("version", ["1.0.0", "1.1.0"])
def test_it_is_marked_as_berths_test_database_and_not_featured(version: str) -> None:
    package = VERSIONS[version]
    assert "test" in package.tags and not package.featured
    assert "test database" in package.description.lower()
    assert package.readme.startswith("# Berth test database")


@pytest.mark.parametrize("version", ["1.0.0", "1.1.0"])
def test_the_password_is_required_and_secret(version: str) -> None:
    package = VERSIONS[version]
    with pytest.raises(OptionsInvalid) as raised:
        resolve_options(package, {})
    assert any("password" in d["message"] for d in raised.value.details)
    schema = package.config_schema["properties"]["auth"]["properties"]["password"]
    assert schema["x-secret"] is True
    spec = _spec(package)
    assert spec["env"] == {"TESTDB_PASSWORD": PASSWORD}
    assert PASSWORD not in spec["command"] + spec["healthCheck"]["command"]


@pytest.mark.parametrize("version", ["1.0.0", "1.1.0"])
def test_data_lives_only_in_the_aof_in_a_named_volume(version: str) -> None:
    spec = _spec(VERSIONS[version])
    assert [(v["containerPath"], v["name"], v["readOnly"]) for v in spec["volumes"]] == [
        ("/data", "db-data", False)]
    for flag in ("--dir /data", "--appendonly yes", "--save ''", '--port "$PORT_REDIS"'):
        assert flag in spec["command"], flag
    assert spec["network"] == "host"
    assert spec["ports"] == [{"name": "redis", "hostPort": 0, "protocol": "tcp"}]
    health = spec["healthCheck"]
    assert health["protocol"] == "command"
    assert "redis-cli" in health["command"] and "grep -q PONG" in health["command"]


def test_the_image_folder_copies_debians_redis_programs() -> None:
    image = json.loads((UNIVERSE / "images" / "testdb" / "7" / "image.json").read_text())
    assert (image["repository"], image["tag"]) == ("berth/testdb", "7")
    assert image["binaries"] == ["/usr/bin/redis-server", "/usr/bin/redis-cli"]
    assert {"sh", "grep"} <= set(image["applets"])
