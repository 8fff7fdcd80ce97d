"""``common.act``: the store front's one try / flash / redirect shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, get_flashed_messages

from catalog.errors import NotFound
from server.storefront import common


@pytest.fixture
def context() -> Iterator[None]:
    app = Flask(__name__)
    app.secret_key = "test"  # noqa: S105 - a throwaway session key for flashes
    with app.test_request_context("/", method="POST"):
        yield


def _fail(error: Exception) -> Any:
    def action() -> Any:
        raise error
    return action


def test_a_wrong_field_is_flashed_and_the_browser_goes_back(context: None) -> None:
    answer = common.act(_fail(ValueError("Instances: 'x' is not a whole number.")),
                        back_to="/services/web", success="never shown")
    assert (answer.status_code, answer.location) == (302, "/services/web")
    assert get_flashed_messages(with_categories=True) == [
        ("error", "Instances: 'x' is not a whole number.")]


def test_a_berth_error_is_flashed_and_the_browser_goes_back(context: None) -> None:
    answer = common.act(_fail(NotFound("no service web")), back_to="/services",
                        success="never shown")
    assert answer.location == "/services"
    assert get_flashed_messages(with_categories=True) == [("error", "no service web")]


def test_success_flashes_its_message_and_goes_where_the_result_says(context: None) -> None:
    answer = common.act(lambda: {"id": "d-1"}, back_to="/services/web",
                        success=lambda d: f"Scaling, deployment {d['id']}.",
                        then=lambda d: f"/deployments/{d['id']}")
    assert answer.location == "/deployments/d-1"
    assert get_flashed_messages(with_categories=True) == [
        ("success", "Scaling, deployment d-1.")]


def test_other_errors_are_not_swallowed(context: None) -> None:
    with pytest.raises(KeyError):
        common.act(_fail(KeyError("bug")), back_to="/", success="never shown")
