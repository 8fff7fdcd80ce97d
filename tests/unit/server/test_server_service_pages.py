"""``GET /api/v1/services`` in pages, the client that follows them, and the store
front's services page (real Redis, no worker)."""

from __future__ import annotations

from typing import Any

import pytest


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def installed(client: Any, tokens: dict[str, str]) -> list[str]:
    names = [f"web-{n:02d}" for n in range(7)]
    for name in reversed(names):
        answer = client.post("/api/v1/services", json={"package": "hello", "name": name},
                             headers=bearer(tokens["admin"]))
        assert answer.status_code == 202, answer.json
    return names


def test_services_come_in_pages_by_name_with_the_total(client: Any, installed: list[str]):
    first = client.get("/api/v1/services?per_page=3")
    assert first.status_code == 200
    assert [s["name"] for s in first.json["items"]] == installed[:3]
    assert (first.json["total"], first.json["page"], first.json["per_page"]) == (7, 1, 3)
    assert first.headers["Link"] == '</api/v1/services?page=2&per_page=3>; rel="next"'
    last = client.get("/api/v1/services?page=3&per_page=3")
    assert [s["name"] for s in last.json["items"]] == installed[6:]
    assert "Link" not in last.headers
    assert client.get("/api/v1/services?page=4&per_page=3").json["items"] == []
    assert all(s["counts"]["desired"] == 1 for s in first.json["items"])


def test_the_default_page_holds_a_hundred(client: Any, installed: list[str]):
    answer = client.get("/api/v1/services").json
    assert answer["per_page"] == 100 and [s["name"] for s in answer["items"]] == installed


@pytest.mark.parametrize("query", ["page=0", "per_page=501", "per_page=x", "page=-1"])
def test_a_bad_page_is_a_clear_422(client: Any, query: str):
    answer = client.get(f"/api/v1/services?{query}")
    assert answer.status_code == 422
    assert answer.json["details"][0]["path"].startswith("query/")


def test_the_client_follows_every_page(app: Any, installed: list[str], monkeypatch):
    from server.client import api

    monkeypatch.setattr(api, "SERVICES_PAGE", 2)
    test_client = app.test_client()

    class Through(api.BerthClient):
        def request(self, method, path, *, params=None, json_body=None):  # noqa: ARG002
            answer = test_client.open(f"/api/v1{path}", method=method, query_string=params)
            assert answer.status_code == 200

            class Reply:
                def json(self):
                    return answer.json
            return Reply()

    assert [s["name"] for s in Through("http://127.0.0.1:9", "x").services()] == installed


def test_the_store_front_pages_its_services(client: Any, installed: list[str], monkeypatch):
    from server.storefront import services

    monkeypatch.setattr(services, "SERVICES_PER_PAGE", 5)
    first = client.get("/services").get_data(as_text=True)
    assert "web-04" in first and "web-05" not in first and "Page 1 of 2" in first
    second = client.get("/services?page=2").get_data(as_text=True)
    assert "web-05" in second and "web-06" in second and "web-00" not in second
    assert "No service on page 9" in client.get("/services?page=9").get_data(as_text=True)
