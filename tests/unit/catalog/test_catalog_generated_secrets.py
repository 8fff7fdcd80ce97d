"""``x-generate``: values made once, kept, and every misuse reported with its place."""

from __future__ import annotations

import base64
import copy
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from catalog_testkit import GOOD_CONFIG
from cryptography.hazmat.primitives import serialization

from catalog.errors import PackageInvalid
from catalog.generated_secrets import fill_generated, generate_value, generators
from catalog.loader import lint_package_dir, load_package_dir


def _config(**password: Any) -> dict[str, Any]:
    config = copy.deepcopy(GOOD_CONFIG)
    config["properties"]["password"].update(password)
    return config


def test_each_kind_makes_what_it_says() -> None:
    password = generate_value("password", 40)
    assert re.fullmatch(r"[A-Za-z0-9]{40}", password)
    assert re.fullmatch(r"[0-9a-f]{64}", generate_value("hex", 32))
    assert len(base64.b64decode(generate_value("base64", 24), validate=True)) == 24
    assert uuid.UUID(generate_value("uuid")).version == 4
    key = serialization.load_pem_private_key(generate_value("rsa-key", 2048).encode(), None)
    assert key.key_size == 2048  # type: ignore[union-attr]
    assert len({generate_value("password", 32) for _ in range(50)}) == 50


def test_an_empty_option_is_filled_once_and_a_given_one_is_kept() -> None:
    schema = _config(**{"x-generate": {"kind": "password", "length": 24}})
    filled, made = fill_generated(schema, {"password": "", "message": "m"})
    assert list(made) == ["/password"] and len(made["/password"]) == 24
    assert filled == {"password": made["/password"], "message": "m"}
    assert fill_generated(schema, {"password": "mine"}) == ({"password": "mine"}, {})
    again, made_again = fill_generated(schema, {"password": ""}, kept=made)
    assert again["password"] == made["/password"] and made_again == {}


def test_a_nested_option_under_a_ref_is_filled_where_its_group_is_missing() -> None:
    schema = {"type": "object", "properties": {"auth": {"type": "object", "properties": {
        "key": {"$ref": "#/$defs/key"}}}},
        "$defs": {"key": {"type": "string", "x-secret": True,
                          "x-generate": {"kind": "hex", "length": 16}}}}
    filled, made = fill_generated(schema, {})
    assert list(made) == ["/auth/key"] and filled["auth"]["key"] == made["/auth/key"]


@pytest.mark.parametrize(("mark", "words"), [
    ({"kind": "pin", "length": 4}, "kind 'pin' is not one of password, hex"),
    ({"kind": "password", "length": 4}, "must be from 8 to 1024"),
    ({"kind": "password", "length": "32"}, "whole number of characters"),
    ({"kind": "password", "length": True}, "whole number of characters"),
    ({"kind": "uuid", "length": 16}, "a uuid has no length"),
    ({"kind": "rsa-key", "length": 1024}, "one of 2048, 3072, 4096"),
    ({"kind": "hex", "size": 8}, "unknown key 'size'"),
    ("password", "must be an object"),
])
def test_a_bad_kind_or_length_is_refused_at_load_with_file_and_field(
        make_package: Callable[..., Path], mark: Any, words: str) -> None:
    folder = make_package(config=_config(**{"x-generate": mark}))
    with pytest.raises(PackageInvalid) as raised:
        load_package_dir(folder)
    where = [d for d in raised.value.details if words in d["message"]]
    assert where, raised.value.details
    assert where[0]["path"].endswith("config.json#/properties/password/x-generate")


def test_x_generate_on_an_option_that_is_not_secret_is_refused(
        make_package: Callable[..., Path]) -> None:
    config = copy.deepcopy(GOOD_CONFIG)
    config["properties"]["message"]["x-generate"] = {"kind": "password"}
    problems = lint_package_dir(make_package(config=config))
    assert {"path": problems[0]["path"].split("packages/")[1],
            "message": problems[0]["message"]} == {
        "path": "demo/1.0.0/config.json#/properties/message/x-generate",
        "message": 'x-generate needs "x-secret": true on the same option: a generated '
                   "value is a secret"}


def test_x_generate_on_a_non_string_or_nameless_option_is_refused(
        make_package: Callable[..., Path]) -> None:
    config = copy.deepcopy(GOOD_CONFIG)
    config["properties"]["tuning"]["properties"]["workers"].update(
        {"x-secret": True, "x-generate": {"kind": "hex"}})
    config["properties"]["keys"] = {"type": "object", "additionalProperties": {
        "type": "string", "x-secret": True, "x-generate": {"kind": "uuid"}}}
    messages = {p["path"].split("config.json#")[1]: p["message"]
                for p in lint_package_dir(make_package(config=config))
                if "config.json#" in p["path"]}
    assert "type must be string" in messages[
        "/properties/tuning/properties/workers/x-generate"]
    assert "no fixed name" in messages["/properties/keys/additionalProperties/x-generate"]


def test_lint_refuses_a_generated_value_the_option_schema_rejects(
        make_package: Callable[..., Path]) -> None:
    config = _config(maxLength=16, **{"x-generate": {"kind": "password", "length": 32}})
    problems = lint_package_dir(make_package(config=config))
    assert [p["message"] for p in problems] == [
        "a generated value fails the option's own schema: maxLength 16"]
    assert problems[0]["path"].endswith("config.json#/properties/password/x-generate")


def test_install_time_refuses_a_misused_mark_it_did_not_load() -> None:
    """A schema built in memory (a DC/OS conversion, a test) is checked again."""
    with pytest.raises(PackageInvalid) as raised:
        generators({"properties": {"a": {"type": "string", "x-generate": {"kind": "hex"}}}})
    assert raised.value.details[0]["path"] == "config.json#/properties/a/x-generate"


def test_a_good_mark_lints_clean(make_package: Callable[..., Path]) -> None:
    config = _config(maxLength=200, **{"x-generate": {"kind": "password", "length": 32}})
    assert lint_package_dir(make_package(config=config)) == []
