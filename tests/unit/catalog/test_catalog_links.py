"""``x-berth-service``: the mark is checked at load with file and field, and a
linking package renders placeholders (never an address) and records its links."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from catalog_testkit import GOOD_CONFIG

from catalog.errors import PackageInvalid
from catalog.links import placeholder
from catalog.loader import lint_package_dir, load_package_dir
from catalog.options import resolve_options
from catalog.render import render_service

MARK = {"package": "testdb", "port": "redis"}
TEMPLATE = """{
  "image": {{ resource.assets.container.docker.app | tojson }},
  "env": {"DB_HOST": {{ links.db.host | tojson }}, "DB_PORT": {{ links.db.port | tojson }},
          "DB_URL": {{ ("redis://" ~ links.db.address) | tojson }},
          "DB_NAME": {{ links.db.name | tojson }}},
  "ports": [{"name": "http"}]
}
"""


def _config(mark: Any = MARK, **db: Any) -> dict[str, Any]:
    config = copy.deepcopy(GOOD_CONFIG)
    config["properties"]["db"] = {"type": "string", "default": "", "x-berth-service": mark,
                                  **db}
    return config


@pytest.mark.parametrize(("mark", "words"), [
    ("testdb", "must be an object"),
    ({"port": "redis"}, "'package' must be the name of a package"),
    ({"package": "testdb"}, "'port' must be a port name"),
    ({"package": "testdb", "port": "Redis Port"}, "'port' must be a port name"),
    ({"package": "testdb\n", "port": "redis"}, "'package' must be the name of a package"),
    ({**MARK, "onLinkChange": "reload"}, "'onLinkChange' must be 'restart' or 'none'"),
    ({**MARK, "secrets": True}, "unknown field(s) 'secrets'"),
    ({**MARK, "credentials": True}, "'credentials' must map 1 to 16 names"),
    ({**MARK, "credentials": {}}, "'credentials' must map 1 to 16 names"),
    ({**MARK, "credentials": {"pass word": "/auth/password"}}, "credential name 'pass word'"),
    ({**MARK, "credentials": {"pw": "auth.password"}}, "must be an option path"),
    ({**MARK, "credentials": {"pw": "/keys/*"}}, "must be an option path"),
    ({**MARK, "requireCredentials": True}, "'requireCredentials' needs 'credentials'"),
    ({**MARK, "credentials": {"pw": "/auth/password"}, "requireCredentials": "yes"},
     "'requireCredentials' must be true or false"),
    ({"package": ["testdb", "postgres"], "port": "redis",
      "credentials": {"pw": "/auth/password"}}, "'credentials' needs a single 'package'"),
    ({"package": [], "port": "redis"}, "or a list of 1 to 16 of them"),
    ({"package": ["testdb", "testdb"], "port": "redis"}, "names a package twice"),
    ({"package": ["testdb", "postgres"], "port": {"testdb": "redis"}},
     "'port' has no port name for 'postgres'"),
    ({"package": "testdb", "port": {"testdb": "redis", "other": "x"}},
     "'port' names 'other', which 'package' does not list"),
])
def test_a_bad_mark_is_refused_at_load_with_file_and_field(
        make_package: Callable[..., Path], mark: Any, words: str) -> None:
    folder = make_package(config=_config(mark), template=TEMPLATE)
    with pytest.raises(PackageInvalid) as raised:
        load_package_dir(folder)
    where = [d for d in raised.value.details if words in d["message"]]
    assert where, raised.value.details
    assert where[0]["path"].endswith("config.json#/properties/db/x-berth-service")


def test_a_mark_on_a_number_or_a_nested_option_is_refused(
        make_package: Callable[..., Path]) -> None:
    config = _config(type="integer", default=0)
    config["properties"]["tuning"]["properties"]["cache"] = {
        "type": "string", "x-berth-service": MARK}
    folder = make_package(config=config, template=TEMPLATE)
    problems = {p["path"].split("#")[-1]: p["message"] for p in lint_package_dir(folder)}
    assert "type must be string" in problems["/properties/db/x-berth-service"]
    nested = "/properties/tuning/properties/cache/x-berth-service"
    assert "top-level options only" in problems[nested]


def test_a_good_mark_lints_clean(make_package: Callable[..., Path]) -> None:
    folder = make_package(config=_config({**MARK, "onLinkChange": "none"}), template=TEMPLATE)
    assert lint_package_dir(folder) == []


def test_the_template_gets_placeholders_and_the_spec_records_the_link(
        make_package: Callable[..., Path]) -> None:
    package = load_package_dir(make_package(config=_config(), template=TEMPLATE))
    options = resolve_options(package, {"db": "cache"})
    spec = render_service(package, options, service_name="app")
    assert spec["env"] == {"DB_HOST": placeholder("db", "host"),
                           "DB_PORT": placeholder("db", "port"),
                           "DB_URL": "redis://" + placeholder("db", "address"),
                           "DB_NAME": "cache"}
    assert spec["links"] == [{"option": "db", "service": "cache", "port": "redis",
                              "onLinkChange": "restart"}]


def test_an_empty_link_option_records_no_link_and_a_template_cannot_forge_one(
        make_package: Callable[..., Path]) -> None:
    forged = TEMPLATE.replace('"ports"', '"links": [{"option": "x", "service": "other", '
                                         '"port": "http"}], "ports"')
    package = load_package_dir(make_package(config=_config(), template=forged))
    spec = render_service(package, resolve_options(package, {}), service_name="app")
    assert "links" not in spec
