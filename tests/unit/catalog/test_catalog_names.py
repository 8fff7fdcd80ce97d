"""``catalog.names``: one rule per kind of name, matched whole."""

from __future__ import annotations

import doctest

import pytest

from catalog import names


def test_doctests() -> None:
    assert doctest.testmod(names, raise_on_error=False).failed == 0


@pytest.mark.parametrize("name", ["web\n", "web\r", "\nweb", " web", "web-", "a" * 41, "",
                                  "we_b", "WEB"])
def test_service_name_refused(name: str) -> None:
    assert not names.is_service_name(name)
    assert names.service_name_problem(name, "body/name") == {
        "path": "body/name", "message": names.SERVICE_NAME_RULE}


@pytest.mark.parametrize("name", ["a", "web", "web-1", "a" * 40, "0x"])
def test_service_name_accepted(name: str) -> None:
    assert names.is_service_name(name) and names.service_name_problem(name) is None


def test_index_name_needs_the_whole_string() -> None:
    assert names.INDEX_NAME.fullmatch("hello.world")
    assert not names.INDEX_NAME.fullmatch("hello\n")


def test_non_strings_are_refused() -> None:
    assert not names.is_service_name(None) and not names.is_service_name(7)
