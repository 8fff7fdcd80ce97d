"""Names with a trailing newline are refused everywhere (``$`` matches before ``\\n``).

One rule (``catalog.names``), checked with ``fullmatch``, through the API, the store
front and the worker's own checks.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
URL = "tcp://127.0.0.1:9"  # nothing listens there


@pytest.fixture
def admin(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['admin']}"}


@pytest.mark.parametrize("name", ["web\n", "web\r\n", "\nweb", "-web", "Web", "w" * 41])
def test_install_with_a_bad_service_name_is_422(client: Any, admin: dict[str, str],
                                                  name: str) -> None:
    answer = client.post("/api/v1/services", json={"package": "hello", "name": name},
                         headers=admin)
    assert answer.status_code == 422, answer.json
    assert any(p["path"].endswith("name") for p in answer.json["details"])


def test_repository_name_with_a_newline_is_422(client: Any, admin: dict[str, str]) -> None:
    answer = client.post("/api/v1/repositories",
                         json={"name": "lab\n", "url": "http://127.0.0.1:9/index.json"},
                         headers=admin)
    assert answer.status_code == 422, answer.json
    assert "body/name" in {p["path"] for p in answer.json["details"]}


def test_agent_id_with_a_newline_is_422(client: Any, admin: dict[str, str]) -> None:
    body = {"url": URL, "id": "agent-x\n", "capacity": {"cpus": 1, "mem": 512}}
    answer = client.post("/api/v1/agents", json=body, headers=admin)
    assert answer.status_code == 422, answer.json
    assert client.get("/api/v1/agents").json["items"] == []


def test_package_name_with_a_newline_is_422(client: Any, admin: dict[str, str]) -> None:
    answer = client.post("/api/v1/services", json={"package": "hello\n"}, headers=admin)
    assert answer.status_code == 422, answer.json


def test_worker_refuses_a_service_name_with_a_newline() -> None:
    from catalog.errors import InvalidInput
    from worker.service_ops import _check_name

    with pytest.raises(InvalidInput):
        _check_name("web\n")


def test_server_and_worker_raise_one_error_class_for_a_bad_name() -> None:
    """The server's check and the worker's are the core's one check, one class."""
    from catalog.errors import InvalidInput
    from server.application.services import check_service_name
    from worker.service_ops import _check_name

    raised = []
    for check in (check_service_name, _check_name):
        with pytest.raises(InvalidInput) as info:
            check("Web")
        raised.append((type(info.value), info.value.to_dict()))
    assert raised[0] == raised[1]
    assert raised[0][1]["error"] == "invalid" and raised[0][1]["details"][0]["path"] == "name"


def test_worker_refuses_an_agent_id_with_a_newline(fresh_redis_url: str) -> None:
    import redis as redis_py

    from catalog.errors import InvalidInput
    from worker.agents import register_agent
    from worker.store import Store

    store = Store(redis_py.Redis.from_url(fresh_redis_url))
    with pytest.raises(InvalidInput):
        register_agent(store, URL, capacity={"cpus": 1, "mem": 512}, agent_id="a\n")


def test_one_service_name_rule_in_the_code() -> None:
    """The rule is written once, in the core; nothing else anchors names with ``$``
    and ``match``."""
    copies = []
    for folder in ("catalog", "server", "worker"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            if "[a-z0-9-]{0,38}" in text and path.name != "names.py":
                copies.append(str(path.relative_to(ROOT)))
    assert copies == []


def test_no_anchored_match_on_names() -> None:
    """``re.compile(r"^…$")`` then ``.match``: the trailing-newline trap."""
    found = []
    for folder in ("catalog", "server", "worker"):
        for path in (ROOT / folder).rglob("*.py"):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"""re\.compile\(r?["']\^.*\$["']\)""", line):
                    found.append(f"{path.relative_to(ROOT)}:{number}")
    assert found == []
