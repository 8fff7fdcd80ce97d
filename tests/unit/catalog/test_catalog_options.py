"""Options: defaults merged deeply, every problem with its path, secrets never shown."""

from __future__ import annotations

import time
from typing import Any

import pytest
from catalog_testkit import GOOD_CONFIG

from catalog import (
    MASK,
    OptionsInvalid,
    Package,
    PackageInvalid,
    defaults_of,
    mask_secrets,
    resolve_options,
    upgrade_options,
)
from catalog.options import schema_defaults


def _pkg(schema: dict[str, Any], version: str = "1.0.0") -> Package:
    return Package("demo", version, config_schema=schema)


def test_defaults_are_merged_deeply() -> None:
    resolved = resolve_options(_pkg(GOOD_CONFIG), {"tuning": {}, "port": 8080})
    assert resolved == {"port": 8080, "message": "hello", "password": "",
                        "tuning": {"workers": 2}}


def test_defaults_of_follows_local_refs_and_object_defaults() -> None:
    schema = {"$defs": {"tls": {"properties": {"on": {"default": True}}}},
              "properties": {"tls": {"$ref": "#/$defs/tls"},
                             "obj": {"default": {"a": 1}, "properties": {"b": {"default": 2}}}}}
    assert schema_defaults(schema) == {"tls": {"on": True}, "obj": {"a": 1, "b": 2}}


def test_every_problem_is_reported_at_its_option_path() -> None:
    with pytest.raises(OptionsInvalid) as info:
        resolve_options(_pkg(GOOD_CONFIG), {"port": 70000, "tuning": {"workers": 0},
                                            "message": 5, "extra": True})
    paths = [e["path"] for e in info.value.details]
    assert paths == ["options", "options/message", "options/port", "options/tuning/workers"]


def test_options_must_be_an_object() -> None:
    with pytest.raises(OptionsInvalid):
        resolve_options(_pkg(GOOD_CONFIG), ["port"])


def test_secret_values_do_not_appear_in_error_messages() -> None:
    schema = {"type": "object", "properties": {
        "pw": {"type": "string", "minLength": 20, "x-secret": True}}}
    with pytest.raises(OptionsInvalid) as info:
        resolve_options(_pkg(schema), {"pw": "hunter2"})
    assert "hunter2" not in str(info.value.to_dict())
    assert MASK in info.value.details[0]["message"]


def test_a_backtracking_pattern_runs_in_linear_time() -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string",
                                                        "pattern": "^(a+)+$"}},
              "patternProperties": {"^(b+)+$": {"type": "string"}},
              "additionalProperties": False}
    started = time.monotonic()
    with pytest.raises(OptionsInvalid):
        resolve_options(_pkg(schema), {"name": "a" * 50000 + "!", "b" * 50000 + "!": "x"})
    assert time.monotonic() - started < 5


def test_an_unusable_schema_is_the_package_fault() -> None:
    with pytest.raises(PackageInvalid) as info:
        resolve_options(_pkg({"type": "object", "properties": {"x": {"type": "nope"}}}), {})
    assert info.value.details[0]["path"].startswith("config.json#/properties/x")


def test_mask_secrets_masks_nested_and_mapped_values() -> None:
    schema = {"properties": {"db": {"properties": {"pw": {"x-secret": True}}},
                             "keys": {"additionalProperties": {"x-secret": True}},
                             "plain": {}}}
    options = {"db": {"pw": "p"}, "keys": {"a": "1", "b": "2"}, "plain": "x"}
    assert mask_secrets(schema, options) == {"db": {"pw": MASK}, "keys": {"a": MASK, "b": MASK},
                                             "plain": "x"}
    assert options["db"]["pw"] == "p"


def test_upgrade_keeps_known_values_and_takes_new_defaults() -> None:
    new = _pkg({"type": "object", "properties": {
        "port": {"type": "integer", "default": 80},
        "tls": {"type": "object", "properties": {"on": {"type": "boolean", "default": True},
                                                 "cert": {"type": "string", "default": ""}}}},
                "additionalProperties": False}, "2.0.0")
    old = {"port": 8080, "removed": 1, "tls": {"on": False, "old": 1}}
    upgraded = upgrade_options(old, new)
    assert upgraded == {"port": 8080, "tls": {"on": False, "cert": ""}}
    assert resolve_options(new, upgraded) == upgraded


def test_absurdly_deep_options_are_refused_cleanly() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(OptionsInvalid):
        resolve_options(_pkg({"type": "object"}), deep)


def test_doctests_of_the_options_module_pass() -> None:
    import doctest

    import catalog.options

    result = doctest.testmod(catalog.options)
    assert result.attempted >= 3 and result.failed == 0


# A schema where the two formats' rules disagree: an object with its own default AND
# defaulted properties (native merges both, Cosmos takes the object's default alone).
SPLIT_SCHEMA = {"type": "object", "properties": {
    "tls": {"type": "object", "default": {"on": True},
            "properties": {"on": {"type": "boolean"}, "port": {"type": "integer",
                                                               "default": 443}}}}}


def test_defaults_of_follows_each_formats_rule_and_matches_what_resolves() -> None:
    native = Package("demo", "1.0.0", config_schema=SPLIT_SCHEMA)
    dcos = Package("demo", "1.0.0", config_schema=SPLIT_SCHEMA, format="dcos")
    assert defaults_of(native) == {"tls": {"on": True, "port": 443}}
    assert defaults_of(dcos) == {"tls": {"on": True}}
    assert resolve_options(native, {}) == defaults_of(native)
    assert resolve_options(dcos, {}) == defaults_of(dcos)
