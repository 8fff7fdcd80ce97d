"""Credentials a link asks for: placeholders only when the handover is confirmed,
``""`` otherwise; a mark with several packages picks the port of the linked one; a
repository lint refuses a credential that is no secret of the linked package, naming
the file and the field; the universe's Gitea, Grafana and Adminer link as documented."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from catalog_testkit import GOOD_CONFIG

from catalog.links import credential_problems, placeholder
from catalog.loader import load_package_dir, load_repository_dir
from catalog.options import resolve_options
from catalog.render import render_service

UNIVERSE = Path(__file__).resolve().parents[3] / "universe" / "packages"
MARK = {"package": "testdb", "port": "redis", "credentials": {"password": "/auth/password"}}
TEMPLATE = """{
  "image": {{ resource.assets.container.docker.app | tojson }},
  "env": {"DB_ADDRESS": {{ links.db.address | tojson }},
          "DB_PASSWORD": {{ links.db.credentials.password | tojson }}},
  "ports": [{"name": "http"}]
}
"""


def _config(mark: Any = MARK) -> dict[str, Any]:
    config = copy.deepcopy(GOOD_CONFIG)
    config["properties"]["db"] = {"type": "string", "default": "", "x-berth-service": mark}
    return config


def test_credentials_are_placeholders_only_when_the_handover_is_confirmed(
        make_package: Callable[..., Path]) -> None:
    package = load_package_dir(make_package(config=_config(), template=TEMPLATE))
    options = resolve_options(package, {"db": "cache"})
    refused = render_service(package, options, service_name="app")
    assert refused["env"]["DB_PASSWORD"] == ""
    assert "credentials" not in refused["links"][0]
    given = render_service(package, options, service_name="app", handover=["db"])
    assert given["env"]["DB_PASSWORD"] == placeholder("db", "credential.password")
    assert given["links"][0]["credentials"] == {"password": "/auth/password"}


def test_a_confirmed_handover_of_an_empty_link_gives_nothing(
        make_package: Callable[..., Path]) -> None:
    package = load_package_dir(make_package(config=_config(), template=TEMPLATE))
    spec = render_service(package, resolve_options(package, {}), service_name="app",
                          handover=["db"])
    assert spec["env"]["DB_PASSWORD"] == "" and "links" not in spec


def test_a_mark_of_several_packages_links_to_the_port_of_the_chosen_one(
        make_package: Callable[..., Path]) -> None:
    mark = {"package": ["postgres", "mariadb"], "port": {"postgres": "postgres",
                                                         "mariadb": "mysql"}}
    template = TEMPLATE.replace(
        ',\n          "DB_PASSWORD": {{ links.db.credentials.password | tojson }}', "")
    package = load_package_dir(make_package(config=_config(mark), template=template))
    options = resolve_options(package, {"db": "maria"})
    spec = render_service(package, options, service_name="app",
                          linked_packages={"db": "mariadb"})
    assert spec["links"][0]["port"] == "mysql"
    unknown = render_service(package, options, service_name="app")   # a preview, a lint
    assert unknown["links"][0]["port"] == "postgres"


def test_only_secret_options_of_the_linked_package_can_be_asked_for() -> None:
    linked = {"properties": {"auth": {"properties": {
        "password": {"type": "string", "x-secret": True},
        "user": {"type": "string"}}}}}
    mark = {**MARK, "credentials": {"password": "/auth/password", "user": "/auth/user"}}
    problems = credential_problems(_config(mark), lambda name: [linked])
    assert problems == [("/properties/db/x-berth-service/credentials/user",
                         "'/auth/user' is not a secret option of testdb (only options it "
                         "marks x-secret can be handed over)")]
    assert credential_problems(_config(mark), lambda name: []) == []   # not known here


def test_a_repository_lint_names_the_file_and_field_of_a_credential_that_is_no_secret(
        tmp_path: Path) -> None:
    root = tmp_path / "repo" / "packages"
    shutil.copytree(UNIVERSE / "testdb", root / "testdb")
    shutil.copytree(UNIVERSE / "grafana" / "11.4.0", root / "grafana" / "11.4.0")
    config_file = root / "grafana" / "11.4.0" / "config.json"
    config = json.loads(config_file.read_text())
    config["properties"]["postgres_service"]["x-berth-service"] = {
        "package": "testdb", "port": "redis",
        "credentials": {"password": "/auth/password", "port": "/service/port"}}
    config_file.write_text(json.dumps(config))
    _repo, problems = load_repository_dir(tmp_path / "repo", name="t", strict=True)
    assert [p for p in problems if "is not a secret" in p["message"]] == [{
        "path": f"{config_file}#/properties/postgres_service/x-berth-service/credentials/port",
        "message": "'/service/port' is not a secret option of testdb (only options it "
                   "marks x-secret can be handed over)"}]


def _universe(name: str, version: str) -> Any:
    return load_package_dir(UNIVERSE / name / version)


def test_gitea_and_grafana_use_a_linked_postgres_with_the_handed_over_password() -> None:
    for name, version, prefix, password in (("gitea", "1.22.6", "GITEA__database__",
                                             "PASSWD"),
                                            ("grafana", "11.4.0", "GF_DATABASE_",
                                             "PASSWORD")):
        package = _universe(name, version)
        options = resolve_options(package, {"postgres_service": "pg"})
        env = render_service(package, options, service_name=name,
                             handover=["postgres_service"])["env"]
        prefixed = {k[len(prefix):].upper(): v for k, v in env.items() if k.startswith(prefix)}
        assert prefixed["DB_TYPE" if name == "gitea" else "TYPE"] == "postgres"
        assert prefixed["HOST"] == placeholder("postgres_service", "address")
        assert prefixed[password] == placeholder("postgres_service", "credential.password")
        alone = render_service(package, resolve_options(package, {}), service_name=name)
        assert not any(k.startswith(prefix) for k in alone["env"]), name   # as before


def test_adminer_links_a_postgres_or_a_mariadb() -> None:
    package = _universe("adminer", "4.8.1")
    options = resolve_options(package, {"database": "maria"})
    spec = render_service(package, options, service_name="adm",
                          linked_packages={"database": "mariadb"})
    assert spec["links"][0]["port"] == "mysql"
    assert spec["env"]["ADMINER_DEFAULT_SERVER"] == placeholder("database", "address")
