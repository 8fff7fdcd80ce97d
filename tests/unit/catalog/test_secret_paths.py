"""``x-secret`` wherever a schema can hold an option: masked in options and spec, or refused.

Each keyword gets its own schema, with the secret reachable only through it. The
test masks the options and a spec whose env uses the secret, and asserts the secret's
text appears in neither while a plain value stays readable. Schemas whose secret has
no knowable option path are refused by lint with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from catalog import MASK, Package, PackageInvalid, lint_package_dir, mask_secrets, mask_spec
from catalog.options import package_secret_paths, secret_paths, secret_problems

SECRET = "s3cr3t-Value-42"  # noqa: S105 - the value the tests look for
PW = {"type": "string", "x-secret": True}

# keyword -> (config schema, options holding SECRET and a plain value "plain-1")
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "allOf": ({"properties": {"db": {"allOf": [{"properties": {"pw": PW}}]},
                              "port": {"type": "string"}}},
              {"db": {"pw": SECRET}, "port": "plain-1"}),
    "anyOf": ({"properties": {"db": {"anyOf": [{"properties": {"pw": PW}}, {"type": "null"}]},
                              "port": {"type": "string"}}},
              {"db": {"pw": SECRET}, "port": "plain-1"}),
    "oneOf": ({"properties": {"db": {"oneOf": [{"properties": {"pw": PW}, "required": ["pw"]},
                                               {"type": "null"}]},
                              "port": {"type": "string"}}},
              {"db": {"pw": SECRET}, "port": "plain-1"}),
    "if-then-else": ({"properties": {"db": {"if": {"properties": {"pw": PW}},
                                            "then": {"properties": {"token": PW}},
                                            "else": {"properties": {"key": PW}}},
                                     "port": {"type": "string"}}},
                     {"db": {"pw": SECRET, "token": SECRET + "t", "key": SECRET + "k"},
                      "port": "plain-1"}),
    "patternProperties": ({"properties": {"keys": {"type": "object",
                                                   "patternProperties": {"^k": PW}},
                                          "port": {"type": "string"}}},
                          {"keys": {"k1": SECRET}, "port": "plain-1"}),
    "prefixItems": ({"properties": {"pair": {"type": "array",
                                             "prefixItems": [{"type": "string"}, PW]},
                                    "port": {"type": "string"}}},
                    {"pair": ["user", SECRET], "port": "plain-1"}),
    "dependentSchemas": ({"properties": {"db": {"type": "object",
                                                "dependentSchemas": {"user": {
                                                    "properties": {"pw": PW}}}},
                                         "port": {"type": "string"}}},
                         {"db": {"user": "u", "pw": SECRET}, "port": "plain-1"}),
    "$defs-$ref": ({"$defs": {"credentials": {"properties": {"pw": PW}}},
                    "properties": {"db": {"$ref": "#/$defs/credentials"},
                                   "port": {"type": "string"}}},
                   {"db": {"pw": SECRET}, "port": "plain-1"}),
    "$defs-$ref-nested": ({"$defs": {"pw": PW,
                                     "db": {"properties": {"pw": {"$ref": "#/$defs/pw"}}}},
                           "properties": {"db": {"allOf": [{"$ref": "#/$defs/db"}]},
                                          "port": {"type": "string"}}},
                          {"db": {"pw": SECRET}, "port": "plain-1"}),
}


@pytest.mark.parametrize("keyword", list(CASES))
def test_masking_options_covers(keyword: str) -> None:
    schema, options = CASES[keyword]
    masked = mask_secrets(schema, options)
    assert SECRET not in json.dumps(masked)
    assert MASK in json.dumps(masked)
    assert masked["port"] == "plain-1"
    assert options == CASES[keyword][1]   # the caller's options are not changed


@pytest.mark.parametrize("keyword", list(CASES))
def test_masking_spec_env_covers(keyword: str) -> None:
    schema, options = CASES[keyword]
    spec = {"image": "x:1", "env": {"PW": SECRET, "URL": f"pg://u:{SECRET}@db",
                                    "PORT": "plain-1"},
            "command": f"run --pw {SECRET}", "args": []}
    masked = mask_spec(spec, Package("demo", "1.0.0", config_schema=schema), options)
    assert SECRET not in json.dumps(masked)
    assert masked["env"]["PORT"] == "plain-1"
    assert masked["env"]["URL"] == f"pg://u:{MASK}@db"


@pytest.mark.parametrize("keyword", list(CASES))
def test_lint_accepts_and_the_record_names_the_path(keyword: str) -> None:
    schema, _ = CASES[keyword]
    assert secret_problems(schema) == []
    assert package_secret_paths(Package("demo", "1.0.0", config_schema=schema))


def test_record_paths_are_pointers_with_wildcards() -> None:
    assert package_secret_paths(Package("d", "1", config_schema=CASES["prefixItems"][0])) == [
        "/pair/1"]
    assert package_secret_paths(Package("d", "1", config_schema=CASES["patternProperties"][0])
                                ) == ["/keys/*"]
    schema = {"properties": {"a/b": {"properties": {"~x": PW}}}}
    assert package_secret_paths(Package("d", "1", config_schema=schema)) == ["/a~1b/~0x"]
    assert mask_secrets({}, {"a/b": {"~x": SECRET}}, ["/a~1b/~0x"]) == {"a/b": {"~x": MASK}}


def test_draft4_tuple_items_and_dependencies() -> None:
    schema = {"properties": {"pair": {"items": [{"type": "string"}, PW]},
                             "db": {"dependencies": {"user": {"properties": {"pw": PW}}}}}}
    assert sorted(secret_paths(schema)) == [("db", "pw"), ("pair", "1")]


UNKNOWABLE = {
    "recursive $ref": ({"$defs": {"node": {"properties": {
        "child": {"$ref": "#/$defs/node"}, "pw": PW}}},
        "properties": {"tree": {"$ref": "#/$defs/node"}}}, "recursive $ref"),
    "propertyNames": ({"properties": {"keys": {"propertyNames": {"x-secret": True}}}},
                      "holds no option"),
    "anchor $ref": ({"$defs": {"pw": {"$anchor": "pw", **PW}},
                     "properties": {"pw": {"$ref": "#pw"}}}, "holds no option"),
}


@pytest.mark.parametrize("case", list(UNKNOWABLE))
def test_a_secret_without_a_knowable_path_is_refused(case: str, make_package: Any) -> None:
    schema, words = UNKNOWABLE[case]
    folder: Path = make_package(config=schema)
    problems = lint_package_dir(folder)
    assert any(p["path"].startswith(f"{folder}/config.json#") and words in p["message"]
               for p in problems), problems
    with pytest.raises(PackageInvalid) as info:
        package_secret_paths(Package("demo", "1.0.0", config_schema=schema))
    assert words in info.value.details[0]["message"]


def test_a_secret_under_a_secret_is_not_refused() -> None:
    schema = {"properties": {"db": {"x-secret": True, "properties": {"pw": PW}}}}
    assert secret_problems(schema) == []
    assert list(secret_paths(schema)) == [("db",)]


def test_a_wide_diamond_of_refs_is_walked_quickly() -> None:
    defs = {f"d{i}": {"allOf": [{"$ref": f"#/$defs/d{i + 1}"}, {"$ref": f"#/$defs/d{i + 1}"}]}
            for i in range(14)}
    defs["d14"] = {"properties": {"pw": PW}}
    schema = {"$defs": defs, "properties": {"db": {"$ref": "#/$defs/d0"}}}
    assert list(secret_paths(schema)) == [("db", "pw")]
    assert secret_problems(schema) == []


def test_a_secret_nested_deeper_than_followed_is_refused() -> None:
    schema: dict[str, Any] = PW
    for _ in range(40):
        schema = {"properties": {"a": schema}}
    assert "deeper" in secret_problems(schema)[0][1]


def test_a_secret_in_a_field_that_cannot_stay_sealed_is_named() -> None:
    from catalog.spec import secret_leaks

    spec = {"image": "x:1", "env": {"PW": SECRET},
            "healthCheck": {"protocol": "command", "command": f"check {SECRET}"}}
    assert secret_leaks(spec, [SECRET]) == [{
        "path": "spec/healthCheck/command", "message": "holds a secret option's value: only "
        "env, labels, command and args may use secret options"}]
