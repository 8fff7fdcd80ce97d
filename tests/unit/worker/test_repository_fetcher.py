"""Fetching remote repositories: the SSRF guard and conditional GETs on loopback."""

from __future__ import annotations

import gzip
import hashlib
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from catalog.errors import RepositoryError
from worker.repository_fetcher import (
    Fetcher,
    RemotePolicy,
    UnsafeURL,
    check_address,
    check_url,
    listing_url,
)

LOOPBACK_OK = RemotePolicy(allow_loopback=True, connect_timeout=2, read_timeout=5)


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.files`` with ETags and gzip, plus a few special paths."""

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.server.hits.append((self.path, self.headers.get("If-None-Match")))
        if self.path.startswith("/redirect?"):
            self._send(302, b"", {"Location": self.path.split("?", 1)[1]})
            return
        if self.path == "/bomb":
            bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
            body = bomb.compress(b"\0" * (50 * 1024 * 1024)) + bomb.flush()
            self._send(200, body, {"Content-Encoding": "gzip"})
            return
        data = self.server.files.get(self.path)
        if data is None:
            self._send(404, b"not found")
            return
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self._send(304, b"", {"ETag": etag})
            return
        headers = {"ETag": etag}
        if "gzip" in (self.headers.get("Accept-Encoding") or ""):
            data, headers["Content-Encoding"] = gzip.compress(data), "gzip"
        self._send(200, data, headers)

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.hits = {"/index.json": b'{"indexVersion": 1, "packages": []}'}, []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def _url(httpd: ThreadingHTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}{path}"


@pytest.mark.parametrize("address", ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"])
def test_loopback_needs_the_setting(address: str) -> None:
    with pytest.raises(UnsafeURL, match="LOOPBACK"):
        check_address(address, RemotePolicy())
    check_address(address, RemotePolicy(allow_loopback=True))


@pytest.mark.parametrize("address", ["10.1.2.3", "172.16.0.1", "192.168.1.1", "fd00::1",
                                     "100.64.0.1"])
def test_private_needs_the_setting(address: str) -> None:
    with pytest.raises(UnsafeURL, match="PRIVATE"):
        check_address(address, RemotePolicy(allow_loopback=True))
    check_address(address, RemotePolicy(allow_private=True))


@pytest.mark.parametrize("address", ["169.254.169.254", "fe80::1", "224.0.0.1", "0.0.0.0",  # noqa: S104
                                     "240.0.0.1", "ff02::1"])
def test_link_local_multicast_reserved_always_refused(address: str) -> None:
    with pytest.raises(UnsafeURL):
        check_address(address, RemotePolicy(allow_loopback=True, allow_private=True))


def test_public_addresses_pass() -> None:
    check_address("93.184.216.34", RemotePolicy())
    check_address("2606:4700::1111", RemotePolicy())


@pytest.mark.parametrize("url", ["ftp://example.org/", "file:///etc/passwd", "gopher://x/",
                                 "http:///nohost", "http://user:secret@example.org/"])
def test_only_plain_http_urls(url: str) -> None:
    with pytest.raises(UnsafeURL):
        check_url(url, RemotePolicy(), resolve=False)


def test_names_are_resolved_before_use() -> None:
    with pytest.raises(UnsafeURL, match="loopback"):
        check_url("http://localhost:1/", RemotePolicy())
    with pytest.raises(UnsafeURL, match="resolve"):
        check_url("http://no-such-host.invalid/", RemotePolicy())


def test_policy_from_env() -> None:
    policy = RemotePolicy.from_env({"BERTH_REPOSITORY_ALLOW_LOOPBACK": "1",
                                    "BERTH_REPOSITORY_INTERVAL": "30"})
    assert policy.allow_loopback and not policy.allow_private and policy.interval == 30.0
    with pytest.raises(ValueError, match="BERTH_REPOSITORY_WORKERS"):
        RemotePolicy.from_env({"BERTH_REPOSITORY_WORKERS": "many"})


def test_listing_url_accepts_folder_or_file() -> None:
    assert listing_url("http://h/repo") == ("http://h/repo/index.json", "http://h/repo/")
    assert listing_url("http://h/r/index.json") == ("http://h/r/index.json", "http://h/r/")


def test_conditional_get_answers_304(server: ThreadingHTTPServer) -> None:
    fetcher = Fetcher(LOOPBACK_OK)
    first = fetcher.get(_url(server, "/index.json"), max_bytes=1000)
    assert first.status == 200 and first.body.startswith(b'{"indexVersion"') and first.etag
    second = fetcher.get(_url(server, "/index.json"), max_bytes=1000, etag=first.etag)
    assert second.status == 304 and second.body == b""
    assert server.hits[-1] == ("/index.json", first.etag)


def test_bodies_over_the_cap_and_gzip_bombs_stop(server: ThreadingHTTPServer) -> None:
    server.files["/big.json"] = b"x" * 5000
    fetcher = Fetcher(LOOPBACK_OK)
    with pytest.raises(RepositoryError, match="cap"):
        fetcher.get(_url(server, "/big.json"), max_bytes=1000)
    with pytest.raises(RepositoryError, match="cap"):
        fetcher.get(_url(server, "/bomb"), max_bytes=1024 * 1024)


def test_errors_become_repository_errors(server: ThreadingHTTPServer) -> None:
    fetcher = Fetcher(LOOPBACK_OK)
    with pytest.raises(RepositoryError, match="404"):
        fetcher.get(_url(server, "/missing"), max_bytes=1000)
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    with pytest.raises(RepositoryError, match="failed"):
        fetcher.get(f"http://127.0.0.1:{port}/index.json", max_bytes=1000)


def test_redirects_are_checked_again(server: ThreadingHTTPServer) -> None:
    fetcher = Fetcher(LOOPBACK_OK)
    ok = fetcher.get(_url(server, "/redirect?/index.json"), max_bytes=1000)
    assert ok.status == 200
    for target in ("http://10.0.0.1/index.json", "http://169.254.169.254/latest/",
                   "file:///etc/passwd"):
        with pytest.raises(UnsafeURL):
            fetcher.get(_url(server, f"/redirect?{target}"), max_bytes=1000)


def test_the_peer_address_is_checked_at_connect_time(server: ThreadingHTTPServer) -> None:
    """Even past the up-front check (DNS rebinding), a refused peer gets no request."""
    session = Fetcher(RemotePolicy())._session()
    before = len(server.hits)
    with pytest.raises(UnsafeURL, match="loopback"):
        session.get(_url(server, "/index.json"), timeout=2)
    assert len(server.hits) == before


# refresh into a real Redis store ------------------------------------------------------------
def _index(packages: list[tuple[str, str]]) -> dict[str, bytes]:
    """Static index files (path → bytes) of tiny native packages."""
    from catalog.model import Package
    from catalog.static_index import build_index
    from catalog.version import parse_version

    listing, documents = build_index(
        Package(name=n, version=v, semver=parse_version(v), description=f"{n} {v}",
                template="{}") for n, v in packages)
    return {"/index.json": listing, **{f"/packages/{n}.json": d for n, d in documents.items()}}


def _add(store: object, server: ThreadingHTTPServer, name: str = "mirror") -> None:
    store.repositories.add({"name": name, "url": _url(server, "/"), "priority": 10})


def test_refresh_fetches_only_changed_documents(store: object,
                                                server: ThreadingHTTPServer) -> None:
    from worker.repository_fetcher import refresh

    server.files = _index([("web", "1.0.0"), ("db", "1.0.0"), ("old", "1.0.0")])
    _add(store, server)
    first = refresh(store, "mirror", LOOPBACK_OK)
    assert (first["status"], first["changed"], first["requests"]) == ("updated", 3, 4)
    generation = store.repositories.generation()
    server.hits.clear()
    assert refresh(store, "mirror", LOOPBACK_OK)["status"] == "not_modified"
    assert [path for path, _ in server.hits] == ["/index.json"]
    assert store.repositories.generation() == generation  # nothing changed: no rebuild
    server.files = _index([("web", "1.0.0"), ("db", "1.0.0"), ("db", "1.1.0")])
    server.hits.clear()
    later = refresh(store, "mirror", LOOPBACK_OK)
    assert (later["changed"], later["removed"]) == (1, 1)
    assert sorted(p for p, _ in server.hits) == ["/index.json", "/packages/db.json"]
    assert sorted(store.repositories.digests("mirror")) == ["db", "web"]


def test_a_failing_repository_keeps_its_copy_and_turns_stale(
        store: object, server: ThreadingHTTPServer) -> None:
    from worker.repository_fetcher import refresh, refresh_all

    server.files = _index([("web", "1.0.0")])
    _add(store, server)
    refresh(store, "mirror", LOOPBACK_OK)
    copy = store.repositories.documents("mirror")
    server.files["/index.json"] = b'{"indexVersion": 1, "packages": [{"name": "Bad!"}]}'
    failed = refresh(store, "mirror", LOOPBACK_OK)
    record = store.repositories.get("mirror")
    assert failed["status"] == "failed" and record["stale"] and "index.json" in record["error"]
    assert store.repositories.documents("mirror") == copy
    server.files = _index([("web", "1.0.0")])  # same content again: 304 clears stale
    assert refresh(store, "mirror", LOOPBACK_OK)["status"] == "not_modified"
    assert not store.repositories.get("mirror")["stale"]
    store.repositories.add({"name": "gone", "url": "http://127.0.0.1:9/", "priority": 5})
    results = {r["name"]: r["status"] for r in refresh_all(store, LOOPBACK_OK, force=True)}
    assert results == {"gone": "failed", "mirror": "not_modified"}
    assert refresh_all(store, LOOPBACK_OK) == [
        {"name": n, "status": "skipped", "changed": 0, "removed": 0, "requests": 0,
         "error": None} for n in ("gone", "mirror")]


def test_a_document_that_does_not_match_its_digest_fails_the_refresh(
        store: object, server: ThreadingHTTPServer) -> None:
    from worker.repository_fetcher import refresh

    server.files = _index([("web", "1.0.0")])
    server.files["/packages/web.json"] = _index([("web", "2.0.0")])["/packages/web.json"]
    _add(store, server)
    result = refresh(store, "mirror", LOOPBACK_OK)
    assert result["status"] == "failed" and "digest" in result["error"]
    assert store.repositories.digests("mirror") == {}


# addresses that carry an IPv4 address inside ---------------------------------------------
@pytest.mark.parametrize(("address", "inner", "words"), [
    ("2002:a9fe:a9fe::1", "169.254.169.254", "link-local"),  # 6to4
    ("2002:7f00:1::1", "127.0.0.1", "loopback"),
    ("2002:a00:1::1", "10.0.0.1", "private"),
    ("64:ff9b::a9fe:a9fe", "169.254.169.254", "link-local"),  # NAT64, well-known prefix
    ("64:ff9b::7f00:1", "127.0.0.1", "loopback"),
    ("64:ff9b::c0a8:101", "192.168.1.1", "private"),
    ("64:ff9b:1::a9fe:a9fe", "169.254.169.254", "link-local"),  # NAT64, local-use prefix
    ("::ffff:169.254.169.254", "169.254.169.254", "link-local"),  # IPv4-mapped
    ("2001:0:4136:e378:8000:63bf:5601:5601", "169.254.169.254", "link-local"),  # Teredo
    ("2001:0:a00:1:8000:63bf:f7f7:f7f7", "10.0.0.1", "private"),  # Teredo server
])
def test_embedded_ipv4_addresses_are_judged_by_the_inner_address(
        address: str, inner: str, words: str) -> None:
    with pytest.raises(UnsafeURL, match=words) as caught:
        check_address(address, RemotePolicy())
    assert inner in caught.value.message


def test_embedded_link_local_is_refused_even_when_private_is_allowed() -> None:
    policy = RemotePolicy(allow_private=True, allow_loopback=True)
    for address in ("2002:a9fe:a9fe::1", "64:ff9b::a9fe:a9fe",
                    "2001:0:4136:e378:8000:63bf:5601:5601"):
        with pytest.raises(UnsafeURL, match="link-local"):
            check_address(address, policy)


def test_embedded_public_addresses_pass() -> None:
    for address in ("2002:808:808::1", "64:ff9b::808:808", "::ffff:8.8.8.8",
                    "2001:0:4136:e378:8000:63bf:f7f7:f7f7"):
        check_address(address, RemotePolicy())


def test_embedded_loopback_follows_the_loopback_setting() -> None:
    check_address("64:ff9b::7f00:1", RemotePolicy(allow_loopback=True))
    check_address("2002:7f00:1::1", RemotePolicy(allow_loopback=True))
