"""A remote repository's fields have one rule (``catalog.repository_fields``): the
check the server runs and the API's request schema agree on every sample."""

from __future__ import annotations

from typing import Any

import pytest

from catalog.repository_fields import REMOTE_SCHEMA, check_remote_fields
from catalog.schemas.validation import Re2Draft202012Validator

URL = "https://example.org/index.json"
SAMPLES: list[dict[str, Any]] = [
    {"name": "extra", "url": URL},
    {"name": "extra", "url": URL, "priority": 0, "format": "dcos", "interval": 10},
    {"name": "extra", "url": URL, "priority": 100000, "interval": 86400.5},
    {"name": "Extra", "url": URL},
    {"name": "web\n", "url": URL},
    {"name": "a" * 41, "url": URL},
    {"name": "extra", "url": "x" * 2001},
    {"name": "extra", "url": URL, "priority": -1},
    {"name": "extra", "url": URL, "priority": True},
    {"name": "extra", "url": URL, "priority": 1.5},
    {"name": "extra", "url": URL, "format": "zip"},
    {"name": "extra", "url": URL, "interval": 9},
    {"name": "extra", "url": URL, "interval": False},
    {"name": "extra", "url": URL, "colour": "red"},
    {"url": URL},
]


@pytest.mark.parametrize("fields", SAMPLES)
def test_the_rule_and_the_schema_agree(fields: dict[str, Any]) -> None:
    schema_ok = Re2Draft202012Validator(REMOTE_SCHEMA).is_valid(fields)
    _clean, problems = check_remote_fields(fields)
    assert (problems == []) == schema_ok, problems


def test_every_problem_is_reported_at_once() -> None:
    _clean, problems = check_remote_fields({"name": "hosted", "url": "", "priority": -1,
                                            "format": "zip", "interval": 1, "x": 1})
    assert [p["path"] for p in problems] == ["body/x", "body/name", "body/url",
                                             "body/priority", "body/format", "body/interval"]


def test_configured_names_are_reserved_too() -> None:
    _clean, problems = check_remote_fields({"name": "team", "url": URL}, reserved={"team"})
    assert problems == [{"path": "body/name", "message": "'team' is reserved"}]


def test_defaults_are_filled_in() -> None:
    clean, problems = check_remote_fields({"name": "extra", "url": URL})
    assert problems == [] and clean["priority"] == 200 and clean["format"] == "berth"
