"""Publishing, yanking, repositories and the static index through the Flask test client."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from catalog.bundle import build_bundle

HELLO = Path(__file__).resolve().parents[3] / "universe" / "packages" / "hello" / "1.0.0"
GZ = {"Content-Type": "application/gzip"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _bundle(tmp_path: Path, name: str = "greeter", version: str = "1.0.0",
            **changes: Any) -> bytes:
    folder = tmp_path / f"{name}-{version}" / name / version
    shutil.copytree(HELLO, folder)
    meta = json.loads((folder / "package.json").read_text())
    meta.update(name=name, version=version, featured=False, **changes)
    (folder / "package.json").write_text(json.dumps(meta))
    return build_bundle(folder)


def _publish(client: Any, token: str, data: bytes) -> Any:
    return client.post("/api/v1/packages", data=data, headers={**bearer(token), **GZ})


def test_publish_search_conflict_and_yank(client: Any, tokens: dict[str, str],
                                          tmp_path: Path) -> None:
    first = _bundle(tmp_path)
    assert _publish(client, tokens["viewer"], first).status_code == 403
    answer = _publish(client, tokens["maintainer"], first)
    assert answer.status_code == 201 and answer.headers["Location"].endswith("/1.0.0")
    found = client.get("/api/v1/packages?q=greeter").get_json()["items"]
    assert [(p["name"], p["repository"]) for p in found] == [("greeter", "hosted")]
    again = _publish(client, tokens["maintainer"], first)
    assert again.status_code == 409 and again.get_json()["error"] == "version_exists"
    assert _publish(client, tokens["maintainer"],
                    _bundle(tmp_path, version="1.1.0")).status_code == 201
    assert client.get("/api/v1/packages/greeter").get_json()["version"] == "1.1.0"
    yank = client.post("/api/v1/packages/greeter/versions/1.1.0/yank",
                       json={"reason": "broken"}, headers=bearer(tokens["maintainer"]))
    assert yank.status_code == 200 and yank.get_json()["yanked"] == "broken"
    shown = client.get("/api/v1/packages/greeter").get_json()
    assert shown["version"] == "1.0.0"
    assert {v["version"]: v["yanked"] for v in shown["versions"]} == {"1.1.0": "broken",
                                                                      "1.0.0": None}


def test_yank_needs_a_reason_and_a_hosted_version(client: Any, tokens: dict[str, str]) -> None:
    headers = bearer(tokens["maintainer"])
    empty = client.post("/api/v1/packages/hello/versions/1.0.0/yank", json={"reason": " "},
                        headers=headers)
    assert empty.status_code == 422 and empty.get_json()["details"][0]["path"] == "body/reason"
    builtin = client.post("/api/v1/packages/hello/versions/1.0.0/yank", json={"reason": "x"},
                          headers=headers)
    assert builtin.status_code == 404


def test_lint_problems_are_all_reported(client: Any, tokens: dict[str, str],
                                        tmp_path: Path) -> None:
    bad = _bundle(tmp_path, tags=["Not A Tag"], description="")
    answer = _publish(client, tokens["maintainer"], bad)
    body = answer.get_json()
    assert answer.status_code == 422 and body["error"] == "package_invalid"
    paths = {d["path"] for d in body["details"]}
    assert any(p.startswith("package.json#/tags") for p in paths)
    assert any(p.startswith("package.json#/description") for p in paths)
    assert client.get("/api/v1/packages/greeter").status_code == 404


def test_hostile_and_wrong_bodies(make_app: Any, tmp_path: Path) -> None:
    from server.auth import create_token

    app = make_app(BERTH_MAX_BODY="100000")
    client = app.test_client()
    token = create_token(app.extensions["berth"].store, name="m", role="maintainer")[1]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("../../escape")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    traversal = _publish(client, token, gzip.compress(raw.getvalue()))
    assert traversal.status_code == 422 and traversal.get_json()["error"] == "bundle_invalid"
    assert _publish(client, token, b"\0" * 100_001).status_code == 413
    assert _publish(client, token, b"").status_code == 422
    wrong = client.post("/api/v1/packages", data=_bundle(tmp_path), headers={
        **bearer(token), "Content-Type": "application/json"})
    assert wrong.status_code == 415
    assert app.extensions["berth"].store.hosted.names() == []


def test_repositories_list_and_ssrf(client: Any, tokens: dict[str, str]) -> None:
    items = client.get("/api/v1/repositories").get_json()["items"]
    assert [(i["name"], i["priority"]) for i in items][:2] == [("hosted", 50), ("universe", 100)]
    admin = bearer(tokens["admin"])
    refused = client.post("/api/v1/repositories", headers=admin,
                          json={"name": "local", "url": "http://127.0.0.1:9/"})
    assert refused.status_code == 422 and refused.get_json()["error"] == "url_refused"
    invalid = client.post("/api/v1/repositories", headers=admin,
                          json={"name": "Universe!", "url": 5, "priority": -1, "x": 1})
    paths = {d["path"] for d in invalid.get_json()["details"]}
    assert paths == {"body/x", "body/name", "body/url", "body/priority"}
    assert client.post("/api/v1/repositories", headers=bearer(tokens["maintainer"]),
                       json={"name": "a", "url": "http://a/"}).status_code == 403
    assert client.post("/api/v1/repositories/none/refresh", headers=admin).status_code == 404


@pytest.fixture
def index_client(app: Any) -> Any:
    from server.served_index import bp

    if "repo_index" not in app.blueprints:
        app.register_blueprint(bp)
    return app.test_client()


def test_the_server_serves_its_catalog_as_a_static_index(index_client: Any) -> None:
    from catalog.static_index import parse_listing, parse_package_document

    first = index_client.get("/repo/index.json")
    listing = parse_listing(first.data)
    hello = next(i for i in listing["packages"] if i["name"] == "hello")
    assert first.headers["ETag"] and first.headers["Cache-Control"] == "no-cache"
    again = index_client.get("/repo/index.json", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    zipped = index_client.get("/repo/packages/hello.json", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    parse_package_document(gzip.decompress(zipped.data), name="hello", digest=hello["digest"])
    assert index_client.get("/repo/packages/nope.json").status_code == 404
    assert index_client.get("/repo/packages/..%2Fx.json").status_code == 404
