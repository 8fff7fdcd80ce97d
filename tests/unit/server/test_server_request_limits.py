"""Large or invalid request bodies are refused cheaply with bounded errors (item 7).

Each test sends the attack through the Flask test client and checks the answer is a
clear, bounded error. (How fast they answer is measured in ``bench/bench_requests.py``,
not here.)
"""

from __future__ import annotations

import json
from typing import Any

RENDER = "/api/v1/packages/hello/render"
JSON = {"Content-Type": "application/json"}


def _post(client: Any, body: Any, url: str = RENDER, **headers: str) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(url, data=data, headers={**JSON, **headers})


def test_a_15_mb_constraints_array_is_refused_before_it_is_parsed(client: Any) -> None:
    body = json.dumps({"constraints": [["hostname", "UNIQUE"]] * 630_000}).encode()
    assert 15_000_000 < len(body) < 16 * 1024 * 1024  # under BERTH_MAX_BODY
    answer = _post(client, body)
    assert answer.status_code == 413
    error = answer.get_json()
    assert error["error"] == "too_large"
    assert error["details"] == [{"path": "body",
                                 "message": "at most 262144 bytes of JSON"}]


def test_too_many_constraints_are_refused_by_count_naming_the_field(client: Any) -> None:
    answer = _post(client, {"constraints": [["hostname", "UNIQUE", "x" * 5]] * 7_000})
    assert answer.status_code == 422
    assert answer.get_json()["details"] == [
        {"path": "body/constraints", "message": "at most 20 items (got 7000)"}]


def test_errors_stop_after_a_bound_with_a_final_note(client: Any) -> None:
    answer = _post(client, {"constraints": [[1, 2, 3]] * 20, "options": {}, "instances": "x",
                            "name": 5, "version": 7})
    details = answer.get_json()["details"]
    assert answer.status_code == 422
    assert len(details) == 51
    assert details[-1] == {"path": "body", "message": "… and more problems (only the "
                                                      "first 50 are listed)"}


def test_a_long_value_is_echoed_truncated(client: Any) -> None:
    answer = _post(client, {"instances": "y" * 100_000})
    assert answer.status_code == 422
    [detail] = answer.get_json()["details"]
    assert detail["path"] == "body/instances"
    assert detail["message"] == "'" + "y" * 78 + "… is not of type 'integer'"


def test_long_option_values_and_keys_are_echoed_truncated(client: Any) -> None:
    answer = _post(client, {"options": {"k" * 5000: 1, "greeting": "z" * 200_000}})
    assert answer.status_code == 422
    body = answer.get_json()
    assert len(json.dumps(body)) < 2000
    assert all(len(d["path"]) <= 200 and len(d["message"]) <= 400 for d in body["details"])


def test_anonymous_renders_are_rate_limited_per_client(make_app: Any, tokens: Any) -> None:
    # a window of 2000 s: the three calls cannot straddle two windows
    client = make_app(BERTH_RENDER_RATE="0.001", BERTH_RENDER_BURST="2").test_client()
    assert [_post(client, {}).status_code for _ in range(2)] == [200, 200]
    refused = _post(client, {})
    assert refused.status_code == 429
    assert refused.get_json()["error"] == "too_many_requests"
    assert 1 <= int(refused.headers["Retry-After"]) <= 2000
    other = client.post(RENDER, json={}, environ_base={"REMOTE_ADDR": "127.0.0.2"})
    assert other.status_code == 200  # another client has its own budget
    with_token = _post(client, {}, Authorization=f"Bearer {tokens['viewer']}")
    assert with_token.status_code == 200


def test_a_body_nested_too_deeply_is_refused(client: Any) -> None:
    answer = _post(client, b'{"options": {"a": ' + b"[" * 40 + b"]" * 40 + b"}}")
    assert answer.status_code == 400
    assert answer.get_json()["details"] == [
        {"path": "body", "message": "at most 32 levels of arrays and objects"}]


def test_a_body_of_too_many_values_is_refused_before_full_validation(client: Any) -> None:
    answer = _post(client, {"options": {"greeting": [[{"a": 1}]] * 8000}})
    assert answer.status_code == 422
    assert answer.get_json()["details"] == [
        {"path": "body",
         "message": "at most 20000 values in all (arrays, objects, strings, numbers)"}]
