"""Options with Cosmos's semantics (catalog.dcos.options)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from catalog.dcos.options import (
    cosmos_defaults,
    deep_merge,
    resolve_dcos_options,
    upgrade_dcos_options,
    validate_dcos_options,
)
from catalog.errors import OptionsInvalid, PackageInvalid

SCHEMA = {
    "type": "object",
    "properties": {
        "service": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "default": "web"},
                "instances": {"type": "integer", "minimum": 1, "default": 1},
                "tls": {"type": "object", "properties": {"on": {"type": "boolean"}}},
            },
            "required": ["name"],
        },
        "token": {"type": "string"},
        "extra": {"type": "object", "default": {"a": 1}, "properties": {"b": {"default": 2}}},
    },
}


def package(schema: dict | None = SCHEMA) -> SimpleNamespace:
    return SimpleNamespace(name="p", version="1.0", config_schema=schema)


def test_defaults_follow_cosmos() -> None:
    # a default wins over nested properties; an object without defaults gives {}
    assert cosmos_defaults(SCHEMA) == {"service": {"name": "web", "instances": 1, "tls": {}},
                                   "extra": {"a": 1}}


def test_deep_merge_merges_objects_and_replaces_the_rest() -> None:
    merged = deep_merge({"a": {"x": 1, "y": [1]}, "b": 1}, {"a": {"y": [2]}, "c": 3})
    assert merged == {"a": {"x": 1, "y": [2]}, "b": 1, "c": 3}


def test_user_options_are_merged_over_the_defaults() -> None:
    resolved = resolve_dcos_options(package(), {"service": {"instances": 3}, "token": "abc"})
    assert resolved["service"] == {"name": "web", "instances": 3, "tls": {}}
    assert resolved["token"] == "abc"  # noqa: S105 - a test value, not a password


def test_every_problem_is_reported_with_its_json_path() -> None:
    with pytest.raises(OptionsInvalid) as info:
        resolve_dcos_options(package(), {"service": {"instances": 0, "tls": {"on": "yes"}},
                                         "token": 5})
    paths = sorted(d["path"] for d in info.value.details)
    assert paths == ["options/service/instances", "options/service/tls/on", "options/token"]


def test_draft4_semantics_apply() -> None:
    # draft-04: exclusiveMaximum is a boolean modifier of maximum
    schema = {"properties": {"n": {"type": "integer", "maximum": 5,
                                   "exclusiveMaximum": True, "default": 1}}}
    with pytest.raises(OptionsInvalid) as info:
        resolve_dcos_options(package(schema), {"n": 5})
    assert info.value.details[0]["path"] == "options/n"


def test_options_must_be_an_object() -> None:
    with pytest.raises(OptionsInvalid, match="JSON object"):
        resolve_dcos_options(package(), ["x"])  # type: ignore[arg-type]


def test_a_package_without_config_takes_no_options() -> None:
    assert resolve_dcos_options(package({}), None) == {}
    with pytest.raises(OptionsInvalid, match="no options"):
        resolve_dcos_options(package({}), {"a": 1})


def test_a_broken_config_schema_is_the_package_fault() -> None:
    with pytest.raises(PackageInvalid):
        resolve_dcos_options(package({"type": "object", "properties": {"a": {"type": 5}}}),
                             {"a": 1})


def test_upgrade_keeps_known_old_values_over_new_defaults() -> None:
    new = package({"properties": {"service": {"properties": {
        "name": {"default": "web"}, "mem": {"default": 64}}}}})
    old = {"service": {"name": "mine", "instances": 4}, "token": "t"}
    assert upgrade_dcos_options(old, new) == {"service": {"name": "mine", "mem": 64}}


def test_an_empty_document_is_not_validated_as_cosmos_did() -> None:
    schema = {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]}
    assert resolve_dcos_options(package(schema), {}) == {}
    with pytest.raises(OptionsInvalid):
        resolve_dcos_options(package(schema), {"other": 1})


@pytest.mark.timeout(20)
def test_a_catastrophic_pattern_is_matched_in_linear_time() -> None:
    """A maintainer's `(a+)+$` against 'aaa…b' backtracks for ages under Python's `re`;
    option validation uses RE2, so the mismatch is reported at once."""
    schema = {"type": "object", "properties": {"name": {"type": "string", "pattern": "^(a+)+$"}}}
    with pytest.raises(OptionsInvalid) as caught:
        validate_dcos_options(schema, {"name": "a" * 60 + "b"})
    assert [e["path"] for e in caught.value.details] == ["options/name"]
