"""Publishing and remote repositories, end to end on the real test bed.

Package names carry a random suffix so that nothing published here shadows a package
other tests install (the hosted repository outranks the builtin universe).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from catalog.bundle import build_bundle
from catalog.static_index import write_index
from server.client import BerthClient
from tests.fixtures.live_server import start_server, stop_server

pytestmark = pytest.mark.integration

HELLO = Path(__file__).resolve().parents[2] / "universe" / "packages" / "hello" / "1.0.0"


def _package(root: Path, name: str, version: str) -> Path:
    """A copy of hello 1.0.0 renamed to ``name`` ``version``."""
    folder = root / name / version
    shutil.copytree(HELLO, folder)
    meta = json.loads((folder / "package.json").read_text())
    meta.update(name=name, version=version, title=f"Published {name}", featured=False)
    (folder / "package.json").write_text(json.dumps(meta))
    return folder


def _post(url: str, token: str, data: bytes) -> requests.Response:
    return requests.post(url + "/api/v1/packages", data=data, timeout=60, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/gzip"})


def _api(server: Any, method: str, path: str, token: str | None = None,
         **kwargs: Any) -> requests.Response:
    return requests.request(method, server.api + path, timeout=60,
                            headers=server.headers(token), **kwargs)


def test_publish_search_install_then_yank(live_server: Any, tmp_path: Path) -> None:
    name = f"pub-{uuid.uuid4().hex[:8]}"
    maintainer = live_server.make_token("maintainer")
    first = build_bundle(_package(tmp_path, name, "1.0.0"))
    assert _post(live_server.url, live_server.make_token("viewer"), first).status_code == 403
    published = _post(live_server.url, maintainer, first)
    assert published.status_code == 201, published.text
    assert published.json()["digest"] == "sha256:" + hashlib.sha256(first).hexdigest()

    found = _api(live_server, "GET", "/packages", params={"q": name}).json()["items"]
    assert [(p["name"], p["repository"]) for p in found] == [(name, "hosted")]
    client = BerthClient(live_server.url, live_server.admin_token)
    service = f"svc-{uuid.uuid4().hex[:6]}"
    answer = client.install(name, version="^1", name=service, instances=1)
    assert answer["service"]["package"] == {"name": name, "version": "1.0.0",
                                            "repository": "hosted"}
    try:
        assert client.wait_for_deployment(answer["deployment"]["id"],
                                          timeout=120)["status"] == "succeeded"
        again = _post(live_server.url, maintainer, first)
        assert again.status_code == 409 and again.json()["error"] == "version_exists"
        assert _post(live_server.url, maintainer,
                     build_bundle(_package(tmp_path, name, "1.1.0"))).status_code == 201
        _check_yank(live_server, maintainer, name, service)
    finally:
        removal = client.uninstall(service)
        client.wait_for_deployment(removal["deployment"]["id"], timeout=120)


def _check_yank(server: Any, maintainer: str, name: str, service: str) -> None:
    """Yank 1.1.0: ranges skip it, it stays listed with its reason; services keep running."""
    assert _api(server, "GET", f"/packages/{name}").json()["version"] == "1.1.0"
    yanked = _api(server, "POST", f"/packages/{name}/versions/1.1.0/yank", maintainer,
                  json={"reason": "leaks memory"})
    assert yanked.status_code == 200 and yanked.json()["yanked"] == "leaks memory"
    rendered = _api(server, "POST", f"/packages/{name}/render", json={"version": "^1"})
    assert rendered.status_code == 200 and rendered.json()["package"]["version"] == "1.0.0"
    versions = _api(server, "GET", f"/packages/{name}/versions").json()["items"]
    assert {v["version"]: v["yanked"] for v in versions} == {"1.1.0": "leaks memory",
                                                             "1.0.0": None}
    shown = _api(server, "GET", f"/packages/{name}/versions/1.1.0").json()
    assert shown["yanked"] == "leaks memory"
    assert _api(server, "POST", f"/packages/{name}/versions/1.0.0/yank", maintainer,
                json={"reason": "old"}).status_code == 200
    status = _api(server, "GET", f"/services/{service}").json()
    assert status["status"] in ("running", "deploying") and status["package"]["version"] == "1.0.0"


def test_a_maintainer_cannot_take_over_a_universe_package(live_server: Any,
                                                          tmp_path: Path) -> None:
    """postgres 99.0.0 published to hosted would win every new install of postgres."""
    maintainer = live_server.make_token("maintainer")
    before = _api(live_server, "GET", "/packages/postgres").json()
    answer = _post(live_server.url, maintainer,
                   build_bundle(_package(tmp_path, "postgres", "99.0.0")))
    body = answer.json()
    assert answer.status_code == 409 and body["error"] == "name_owned", body
    assert "package name 'postgres' belongs to repository 'universe'" in body["message"]
    assert "berth package owners add postgres --token" in body["hint"]
    after = _api(live_server, "GET", "/packages/postgres").json()
    assert (after["repository"], after["version"]) == ("universe", before["version"])
    rendered = _api(live_server, "POST", "/packages/postgres/render", json={})
    assert rendered.json()["package"]["repository"] == "universe"
    assert "postgres" not in live_server.store().hosted.names()


def _tar_gz(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return gzip.compress(raw.getvalue())


def _member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE,
            link: str = "") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data)
    return info, (data if kind == tarfile.REGTYPE else None)


def test_hostile_bundles_are_refused_and_nothing_is_stored(live_server: Any,
                                                           tmp_path: Path) -> None:
    name = f"evil-{uuid.uuid4().hex[:8]}"
    good = build_bundle(_package(tmp_path, name, "1.0.0"))
    deep = b"[" * 5000 + b"]" * 5000
    bomb = gzip.compress(b"\0" * (200 * 1024 * 1024), compresslevel=9)
    hostile = {
        "traversal": _tar_gz([_member("../../etc/cron.d/evil", b"x")]),
        "absolute": _tar_gz([_member("/etc/passwd", b"x")]),
        "symlink": _tar_gz([_member("package.json", kind=tarfile.SYMTYPE, link="/etc/passwd")]),
        "hardlink": _tar_gz([_member("config.json", kind=tarfile.LNKTYPE, link="/etc/shadow")]),
        "device": _tar_gz([_member("dev", kind=tarfile.CHRTYPE)]),
        "deep json": _tar_gz([_member("config.json", deep)]),
        "bomb": bomb,
        "oversized": good + b"\0" * (17 * 1024 * 1024),
        "garbage": b"not a bundle at all",
        "tampered": good[:-40] + bytes(40),
    }
    maintainer = live_server.make_token("maintainer")
    store = live_server.store()
    before = store.repositories.generation()
    for label, data in hostile.items():
        answer = _post(live_server.url, maintainer, data)
        assert 400 <= answer.status_code < 500, (label, answer.status_code, answer.text[:300])
        if answer.status_code != 413:
            assert answer.json()["details"], label
    assert name not in store.hosted.names()
    assert store.repositories.generation() == before
    assert _api(live_server, "GET", f"/packages/{name}").status_code == 404


# remote repositories ----------------------------------------------------------------------
class _StaticHandler(BaseHTTPRequestHandler):
    """Serves ``server.root`` with strong ETags; records (path, status) of every GET."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = (self.server.root / self.path.lstrip("/")).resolve()
        if not path.is_relative_to(self.server.root) or not path.is_file():
            self._reply(404, b"")
            return
        data = path.read_bytes()
        etag = '"' + hashlib.sha256(data).hexdigest()[:20] + '"'
        if self.headers.get("If-None-Match") == etag:
            self._reply(304, b"", etag)
        else:
            self._reply(200, data, etag)

    def _reply(self, status: int, body: bytes, etag: str | None = None) -> None:
        self.server.hits.append((self.path, status))
        self.send_response(status)
        if etag:
            self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def static_repo(tmp_path: Path) -> Iterator[tuple[ThreadingHTTPServer, str]]:
    """A static index of one uniquely named package, served on loopback."""
    name = f"remote-{uuid.uuid4().hex[:8]}"
    _package(tmp_path / "repo", name, "1.0.0")
    write_index(tmp_path / "repo", tmp_path / "index")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _StaticHandler)
    httpd.root, httpd.hits = (tmp_path / "index").resolve(), []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, name
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture
def guarded_server(live_server: Any, tmp_path: Path) -> Iterator[Any]:
    """A second Berth server on the same Redis, with the SSRF guard's defaults (the
    test bed's own server allows loopback repositories; this one does not)."""
    process, url, log = start_server(live_server.redis_url, tmp_path,
                                     {**live_server.env, "BERTH_REPOSITORY_ALLOW_LOOPBACK": "0"})
    try:
        yield type(live_server)(url=url, redis_url=live_server.redis_url,
                                admin_token=live_server.admin_token, log_path=log,
                                process=process)
    finally:
        stop_server(process)


def test_remote_repository_sync_304_and_stale(live_server: Any, guarded_server: Any,
                                              static_repo: tuple[Any, str]) -> None:
    httpd, package = static_repo
    repo = f"rt-{uuid.uuid4().hex[:6]}"
    url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    refused = _api(guarded_server, "POST", "/repositories", json={"name": repo, "url": url})
    assert refused.status_code == 422 and refused.json()["error"] == "url_refused"
    added = _api(live_server, "POST", "/repositories",
                 json={"name": repo, "url": url, "priority": 300})
    assert added.status_code == 202, added.text
    try:
        first = live_server.fetched(repo)
        assert not first["pending"] and not first["stale"] and first["error"] is None, first
        for server in (guarded_server, live_server):  # every process agrees
            shown = _api(server, "GET", f"/packages/{package}").json()
            assert shown["repository"] == repo
        httpd.hits.clear()
        again = _api(live_server, "POST", f"/repositories/{repo}/refresh").json()
        assert again["refresh"]["status"] == "not_modified"
        assert httpd.hits == [("/index.json", 304)]
        httpd.shutdown()
        httpd.server_close()
        down = _api(live_server, "POST", f"/repositories/{repo}/refresh").json()
        assert down["stale"] and "connection refused" in down["error"]
        _check_stale_but_listed(live_server, repo, package)
    finally:
        assert _api(live_server, "DELETE", f"/repositories/{repo}").status_code == 204
    assert _api(live_server, "GET", f"/packages/{package}").status_code == 404



def _check_stale_but_listed(server: Any, repo: str, package: str) -> None:
    """The stale repository's packages stay; the rest of the catalog is unaffected."""
    listed = {r["name"]: r for r in _api(server, "GET", "/repositories").json()["items"]}
    assert listed[repo]["stale"] and listed[repo]["error"]
    assert not listed["universe"]["stale"]
    assert _api(server, "GET", f"/packages/{package}").json()["repository"] == repo
    hello = _api(server, "GET", "/packages/hello").json()
    assert hello["repository"] == "universe"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # search reflects the same catalog
        items = _api(server, "GET", "/packages", params={"q": package}).json()["items"]
        if items:
            break
        time.sleep(0.2)
    assert [i["name"] for i in items] == [package]


def test_the_cli_builds_publishes_and_yanks(live_server: Any, testbed: Any,
                                            tmp_path: Path) -> None:
    import subprocess
    import sys

    name = f"cli-{uuid.uuid4().hex[:8]}"
    folder = _package(tmp_path / "src", name, "1.0.0")
    env = live_server.cli_env(live_server.make_token("maintainer"))

    def berth(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(Path(sys.executable).parent / "berth"), *args]
        return subprocess.run(command, cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)

    built = berth("package", "build", str(folder), "-o", "b.tar.gz")
    assert built.returncode == 0, built.stderr
    published = berth("publish", "b.tar.gz")
    assert published.returncode == 0 and f"published {name} 1.0.0" in published.stdout
    again = berth("publish", str(folder))
    assert again.returncode == 5 and "immutable" in again.stderr
    yanked = berth("yank", name, "1.0.0", "--reason", "testing")
    assert yanked.returncode == 0, yanked.stderr
    expected = [{"version": "1.0.0", "yanked": "testing", "unsupported": [],
                 "repository": "hosted"}]
    assert _api(live_server, "GET", f"/packages/{name}/versions").json()["items"] == expected
    testbed.restart_redis()  # published versions live in Redis (AOF): they come back
    deadline, answer = time.monotonic() + 30, None
    while time.monotonic() < deadline:
        try:
            answer = _api(live_server, "GET", f"/packages/{name}/versions")
        except requests.RequestException:
            answer = None
        if answer is not None and answer.status_code == 200:
            break
        time.sleep(0.2)
    assert answer is not None and answer.json()["items"] == expected
    stored = live_server.store().hosted  # read from the restarted Redis itself
    assert [(m["version"], m["yanked"]["reason"]) for m in stored.versions(name)] == [
        ("1.0.0", "testing")]
    assert stored.get_bundle(name, "1.0.0") == (tmp_path / "b.tar.gz").read_bytes()
