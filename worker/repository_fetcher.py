"""Fetching remote repositories: conditional GETs, a size cap, and an SSRF guard.

A Berth remote repository is a static index (see ``catalog.static_index``): the
listing ``index.json`` is fetched with ``If-None-Match`` / ``If-Modified-Since``; when
it changed, only the package documents whose digest changed are fetched. A DC/OS
Universe repository (``format: "dcos"``) is one ``repo-up-to-*.json`` file, fetched
the same conditional way and split per package.

A refresh either replaces the last good copy in one Redis transaction or changes
nothing but the repository's ``stale``/``error`` fields: a repository that is down or
serves garbage keeps its packages (marked stale) and never breaks the rest.

SSRF guard: only ``http``/``https``; the host is resolved and every address checked
(loopback only with ``BERTH_REPOSITORY_ALLOW_LOOPBACK=1``, private ranges only with
``BERTH_REPOSITORY_ALLOW_PRIVATE=1``; link-local — where cloud metadata services
live —, multicast, reserved and unspecified addresses never). The check is repeated
on the socket's peer address at connect time (no DNS-rebinding window) and for every
redirect. Proxies from the environment are ignored. An IPv6 address that carries an
IPv4 address inside — IPv4-mapped (``::ffff:0:0/96``), 6to4 (``2002::/16``), Teredo
(``2001::/32``: its server and its client) and NAT64 (``64:ff9b::/96``,
``64:ff9b:1::/48``) — reaches that IPv4 host through a relay or translator, so it is
judged by the inner address (every one of them, for Teredo).

Deadline: every GET ends within ``BERTH_REPOSITORY_DEADLINE`` seconds (60) of wall
clock, headers and body together. A per-read timeout alone lets a server that sends
one byte a second hold a fetch for as long as it likes, so a timer shuts the GET's
sockets down when the deadline passes, which wakes the blocked read.

Failures are recorded (and shown, also anonymously) as a short reason Berth writes
itself plus the HTTP status when there was one, never text the remote sent: schema
errors quote the document, and a failing remote's body can hold anything. The full
details go to the worker's log.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from catalog.errors import InvalidInput, RepositoryError
from catalog.settings_table import default, read
from catalog.static_index import (
    canonical,
    digest_of,
    loads_bounded,
    parse_listing,
    parse_package_document,
)

__all__ = ["RemotePolicy", "UnsafeURL", "FetchFailed", "check_url", "check_address",
           "refresh", "refresh_all", "Fetcher", "listing_url"]

log = logging.getLogger(__name__)
USER_AGENT = "berth-repository-client/1"


class UnsafeURL(InvalidInput):
    """A repository URL Berth refuses to fetch (scheme, credentials or address)."""

    code = "url_refused"


class FetchFailed(RepositoryError):
    """A GET that did not give a usable answer; ``status`` is the HTTP status, if any."""

    def __init__(self, message: str, *, status: int | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.status = status


@dataclass(frozen=True)
class RemotePolicy:
    """How remote repositories are fetched (``BERTH_REPOSITORY_*`` variables)."""

    allow_loopback: bool = default("BERTH_REPOSITORY_ALLOW_LOOPBACK")
    allow_private: bool = default("BERTH_REPOSITORY_ALLOW_PRIVATE")
    connect_timeout: float = default("BERTH_REPOSITORY_CONNECT_TIMEOUT")
    read_timeout: float = default("BERTH_REPOSITORY_READ_TIMEOUT")
    max_listing: int = default("BERTH_REPOSITORY_MAX_LISTING")  # bytes of index.json
    max_document: int = default("BERTH_REPOSITORY_MAX_DOCUMENT")  # bytes of one document
    interval: float = default("BERTH_REPOSITORY_INTERVAL")  # seconds between refreshes
    workers: int = default("BERTH_REPOSITORY_WORKERS")  # parallel document fetches
    max_redirects: int = default("BERTH_REPOSITORY_MAX_REDIRECTS")
    deadline: float = default("BERTH_REPOSITORY_DEADLINE")  # seconds for one GET

    @classmethod
    def from_env(cls, env: Mapping[str, Any] | None = None) -> RemotePolicy:
        """Read ``BERTH_REPOSITORY_*`` (the settings table's ``repository`` part) from
        ``env`` (``os.environ`` by default).

        :raises SettingsError: a ``ValueError`` naming a variable whose value does not parse.
        """
        return cls(**read("repository", os.environ if env is None else env))

    @classmethod
    def of(cls, settings: Any) -> RemotePolicy:
        """The policy a process's settings carry (``remote_policy``), else the env's."""
        if isinstance(settings, RemotePolicy):
            return settings
        policy = getattr(settings, "remote_policy", None)
        return policy if isinstance(policy, RemotePolicy) else cls.from_env()


# the SSRF guard ------------------------------------------------------------------------
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64_PREFIXES = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


def check_address(address: str, policy: RemotePolicy) -> None:
    """Refuse an IP address the policy does not allow (judging the IPv4 address an
    IPv6 address carries, when it carries one).

    :raises UnsafeURL: naming the address and why.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    targets: list[IPAddress] = [*embedded_ipv4(ip)] or [ip]
    for target in targets:
        reason = _refusal(target, policy)
        if reason:
            shown = address if target == ip else f"{address} (which carries {target})"
            raise UnsafeURL(f"refusing to connect to {shown}: {reason}",
                            details=[{"path": "url", "message": f"{shown} is {reason}"}])


def embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address stands for (none for a plain address)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    if ip.ipv4_mapped:
        return [ip.ipv4_mapped]
    if ip.sixtofour:
        return [ip.sixtofour]
    if ip.teredo:
        return list(ip.teredo)
    if any(ip in prefix for prefix in NAT64_PREFIXES):
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    return []


def _refusal(ip: IPAddress, policy: RemotePolicy) -> str | None:
    """Why the policy refuses ``ip``, or None when it allows it."""
    if ip.is_loopback:
        if policy.allow_loopback:
            return None
        return "a loopback address (set BERTH_REPOSITORY_ALLOW_LOOPBACK=1 to allow)"
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return "a link-local, multicast, reserved or unspecified address"
    if ip.is_private or not ip.is_global:
        if policy.allow_private:
            return None
        return "a private address (set BERTH_REPOSITORY_ALLOW_PRIVATE=1 to allow)"
    return None


def check_url(url: str, policy: RemotePolicy, *, resolve: bool = True) -> None:
    """Refuse URLs that are not plain http(s) to an allowed address.

    :raises UnsafeURL: with the reason.
    """
    parts = urlsplit(url)
    problem = None
    if parts.scheme not in ("http", "https"):
        problem = "only http and https URLs are allowed"
    elif not parts.hostname:
        problem = "the URL has no host"
    elif parts.username or parts.password:
        problem = "credentials in the URL are not allowed"
    if problem:
        raise UnsafeURL(f"refusing {url[:200]!r}: {problem}",
                        details=[{"path": "url", "message": problem}])
    if resolve:
        for address in _resolve(str(parts.hostname), parts.port or 443):
            check_address(address, policy)


def _resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to.

    :raises UnsafeURL: when it does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURL(f"cannot resolve {host!r}: {exc}",
                        details=[{"path": "url", "message": f"{host} does not resolve"}]) from None
    return sorted({str(info[4][0]) for info in infos})


def _guarded(base: Any, policy: RemotePolicy) -> type:
    """A urllib3 connection class that checks the peer address right after connecting
    and puts its socket under the running GET's deadline (new or reused)."""

    def _new_conn(self: Any) -> socket.socket:
        sock = base._new_conn(self)
        try:
            check_address(sock.getpeername()[0], policy)
        except UnsafeURL:
            sock.close()
            raise
        _Deadline.watch_current(sock)
        return sock

    def request(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.sock is not None:  # a kept-alive connection from an earlier GET
            _Deadline.watch_current(self.sock)
        return base.request(self, *args, **kwargs)

    return type(f"Guarded{base.__name__}", (base,), {"_new_conn": _new_conn,
                                                     "request": request})


class _Deadline:
    """The wall-clock limit of one GET in this thread: when it passes, the sockets the
    GET uses are shut down, which ends a read a slow sender keeps alive."""

    _current = threading.local()

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    @classmethod
    def watch_current(cls, sock: socket.socket) -> None:
        """Put ``sock`` under this thread's running deadline, if there is one."""
        deadline = getattr(cls._current, "deadline", None)
        if deadline is not None:
            deadline.watch(sock)

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            if not self.expired:
                self._sockets.append(sock)
                return
        _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut(sock)

    def __enter__(self) -> _Deadline:
        self._current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        self._current.deadline = None


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # closed already


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, policy: RemotePolicy) -> None:
        self._policy = policy
        super().__init__(pool_connections=4, pool_maxsize=max(4, policy.workers), max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        http = type("GuardedPool", (HTTPConnectionPool,),
                    {"ConnectionCls": _guarded(HTTPConnection, self._policy)})
        https = type("GuardedSPool", (HTTPSConnectionPool,),
                     {"ConnectionCls": _guarded(HTTPSConnection, self._policy)})
        self.poolmanager.pool_classes_by_scheme = {"http": http, "https": https}


# fetching ----------------------------------------------------------------------------
@dataclass
class Response:
    """What one conditional GET gave: 200 with a body, or 304."""

    status: int
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None


class Fetcher:
    """GETs under the policy: guarded connections, timeouts, caps, checked redirects."""

    def __init__(self, policy: RemotePolicy) -> None:
        self.policy = policy
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close every session (and its connections) this fetcher opened."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no proxies or .netrc from the environment
            adapter = _GuardedAdapter(self.policy)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers.update({"User-Agent": USER_AGENT, "Accept-Encoding": "gzip"})
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def get(self, url: str, *, max_bytes: int, etag: str | None = None,
            last_modified: str | None = None) -> Response:
        """One GET (conditional when told), following checked redirects.

        :raises FetchFailed: on any network error, a bad status, a body over
            ``max_bytes`` (counted after gzip decoding, while it streams), or no complete
            answer within ``policy.deadline`` seconds.
        :raises UnsafeURL: when the URL or a redirect target is refused.
        """
        with _Deadline(self.policy.deadline) as deadline:
            try:
                answer = self._follow(url, max_bytes, etag, last_modified, deadline)
            except UnsafeURL:
                raise
            except Exception:
                if deadline.expired:
                    raise self._late(url) from None
                raise
            if deadline.expired:  # a cut-off body without a length can look complete
                raise self._late(url)
            return answer

    def _late(self, url: str) -> FetchFailed:
        return FetchFailed(f"GET {url}: no complete answer within the deadline of "
                           f"{self.policy.deadline:g} s", path=url)

    def _follow(self, url: str, max_bytes: int, etag: str | None,
                last_modified: str | None, deadline: _Deadline) -> Response:
        """The GET itself, following checked redirects."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        for _hop in range(self.policy.max_redirects + 1):
            check_url(url, self.policy)
            try:
                response = self._session().get(
                    url, headers=headers, stream=True, allow_redirects=False,
                    timeout=(self.policy.connect_timeout, self.policy.read_timeout))
            except requests.RequestException as exc:  # UnsafeURL from a peer passes through
                raise FetchFailed(f"GET {url} failed: {_network_reason(exc)}",
                                  path=url) from None
            with response:
                if response.is_redirect:
                    url = urljoin(url, response.headers.get("Location", ""))
                    continue
                return self._answer(url, response, max_bytes, deadline)
        raise FetchFailed(f"GET {url}: more than {self.policy.max_redirects} redirects",
                          path=url)

    def _answer(self, url: str, response: requests.Response, max_bytes: int,
                deadline: _Deadline) -> Response:
        etag, modified = response.headers.get("ETag"), response.headers.get("Last-Modified")
        if response.status_code == 304:
            return Response(304, b"", etag, modified)
        if response.status_code != 200:
            raise FetchFailed(f"GET {url} answered HTTP {response.status_code}", path=url,
                              status=response.status_code)
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes \
                and "gzip" not in response.headers.get("Content-Encoding", ""):
            raise FetchFailed(f"GET {url}: {declared} bytes is over the cap of {max_bytes}",
                              path=url, status=200)
        return Response(200, self._read(url, response, max_bytes, deadline), etag, modified)

    def _read(self, url: str, response: requests.Response, max_bytes: int,
              deadline: _Deadline) -> bytes:
        """The body, decoded, streamed and capped (a gzip bomb stops at the cap); the
        deadline is checked per chunk as well as by its timer."""
        body = bytearray()
        try:
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) > max_bytes:
                    raise FetchFailed(f"GET {url}: body over the cap of {max_bytes} bytes",
                                      path=url, status=200)
                if time.monotonic() > deadline.at:
                    raise self._late(url)
        except requests.RequestException as exc:
            raise FetchFailed(f"GET {url} failed: {_network_reason(exc)}", path=url) from None
        return bytes(body)


def _network_reason(exc: requests.RequestException) -> str:
    """A short reason for a failed request (``connection refused``, ``read timeout``)."""
    if isinstance(exc, requests.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, requests.ReadTimeout):
        return "read timeout"
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc))
    return found.group(1).strip().lower()[:80] if found else "connection failed"


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 300 else text[:297] + "..."


# refreshing --------------------------------------------------------------------------
def listing_url(url: str) -> tuple[str, str]:
    """``(listing URL, base URL)`` for a repository URL (folder or ``…/index.json``)."""
    if urlsplit(url).path.endswith(".json"):
        return url, url.rsplit("/", 1)[0] + "/"
    base = url if url.endswith("/") else url + "/"
    return base + "index.json", base


def refresh(store: Any, name: str, settings: Any = None, *, force: bool = True) -> dict[str, Any]:
    """Refresh one repository; never raises for fetch trouble (it is recorded instead).

    Returns ``{"name", "status", "changed", "removed", "requests", "error"}`` where
    ``status`` is ``updated``, ``not_modified``, ``skipped`` (refreshed recently and not
    forced) or ``failed``.

    :raises RepositoryNotFound: when there is no repository of that name.
    """
    policy = RemotePolicy.of(settings)
    record = store.repositories.require(name)
    result = {"name": name, "status": "skipped", "changed": 0, "removed": 0, "requests": 0,
              "error": None}
    interval = float(record.get("interval") or policy.interval)
    if not force and time.time() - float(record.get("checked_at") or 0) < interval:
        return result
    fetcher = Fetcher(policy)
    sync = _Sync(store, record, fetcher, policy)
    try:
        sync.run()
    except (RepositoryError, InvalidInput) as exc:
        sync.fail(exc)
    except Exception:  # noqa: BLE001 - record, never break the caller's loop
        log.exception("refreshing repository %s", name)
        sync.fail(RepositoryError("unexpected error (see the worker's log)"))
    finally:
        fetcher.close()
    return {**result, **sync.result}


def refresh_all(store: Any, settings: Any = None, *, force: bool = False) -> list[dict[str, Any]]:
    """Refresh every remote repository that is due (one failing never stops the rest)."""
    results = []
    for record in store.repositories.list():
        if record.get("kind", "remote") != "remote":
            continue
        try:
            results.append(refresh(store, record["name"], settings, force=force))
        except Exception as exc:  # noqa: BLE001 - e.g. removed meanwhile
            log.warning("repository %s not refreshed: %s", record.get("name"), exc)
    return results


class _Sync:
    """One refresh of one repository: conditional listing, changed documents, save."""

    def __init__(self, store: Any, record: dict[str, Any], fetcher: Fetcher,
                 policy: RemotePolicy) -> None:
        self.store, self.record, self.fetcher, self.policy = store, record, fetcher, policy
        self.name = record["name"]
        self.result: dict[str, Any] = {"requests": 0}

    def run(self) -> None:
        listing_at, base = listing_url(self.record["url"])
        has_copy = self.record.get("fetched_at") is not None
        answer = self._get(listing_at, self.policy.max_listing,
                           etag=self.record.get("etag") if has_copy else None,
                           last_modified=self.record.get("last_modified") if has_copy else None)
        if answer.status == 304:
            self._unchanged(answer)
            return
        if self.record.get("format") == "dcos":
            wanted = _universe_documents(answer.body, listing_at)
            self._save(answer, wanted, {})
            return
        listing = parse_listing(answer.body)
        digests = {item["name"]: item["digest"] for item in listing["packages"]}
        self._save(answer, digests, self._documents(base, digests))

    def _get(self, url: str, cap: int, **conditions: Any) -> Response:
        self.result["requests"] += 1
        return self.fetcher.get(url, max_bytes=cap, **conditions)

    def _documents(self, base: str, digests: dict[str, str]) -> dict[str, tuple[str, Any]]:
        """Fetch the documents whose digest differs from the stored copy, in parallel."""
        stored = self.store.repositories.digests(self.name)
        todo = sorted(n for n, d in digests.items() if stored.get(n) != d)

        def one(name: str) -> tuple[str, tuple[str, Any]]:
            answer = self._get(urljoin(base, f"packages/{name}.json"), self.policy.max_document)
            document = parse_package_document(answer.body, name=name, digest=digests[name])
            return name, (digests[name], document)

        if len(todo) <= 1:
            return dict(one(n) for n in todo)
        with ThreadPoolExecutor(max_workers=self.policy.workers) as pool:
            return dict(pool.map(one, todo))

    def _save(self, answer: Response, wanted: Mapping[str, Any],
              fetched: dict[str, tuple[str, Any]]) -> None:
        """Store what changed (``wanted``: name → digest, or → (digest, doc) for DC/OS)."""
        stored = self.store.repositories.digests(self.name)
        changed = dict(fetched)
        for pkg, value in wanted.items():
            if isinstance(value, tuple) and stored.get(pkg) != value[0]:
                changed[pkg] = value
        removed = [p for p in stored if p not in wanted]
        now = time.time()
        fields = {"etag": answer.etag, "last_modified": answer.last_modified,
                  "fetched_at": now, "checked_at": now, "stale": False, "error": None,
                  "error_status": None, "packages": len(wanted),
                  "listing_digest": digest_of(answer.body)}
        self.store.repositories.save_copy(self.name, listing=answer.body, changed=changed,
                                          removed=removed, fields=fields)
        self.result.update(status="updated", changed=len(changed), removed=len(removed))

    def _unchanged(self, answer: Response) -> None:
        """A 304: note the check; rebuild catalogs only if the stale flag clears."""
        was_stale = bool(self.record.get("stale"))
        self.store.repositories.update(self.name, bump=was_stale, checked_at=time.time(),
                                       stale=False, error=None, error_status=None,
                                       etag=answer.etag or self.record.get("etag"))
        self.result.update(status="not_modified")

    def fail(self, error: Exception) -> None:
        """Keep the last good copy; mark the repository stale with a short reason and
        the HTTP status (the details, which may quote the remote, only in the log)."""
        reason = _reason(error)
        status = getattr(error, "status", None)
        details = getattr(error, "details", None) or []
        log.warning("repository %s: refresh failed: %s %s", self.name, reason,
                    "; ".join(f"{d.get('path')}: {d.get('message')}" for d in details[:3]))
        try:
            self.store.repositories.update(self.name, checked_at=time.time(), stale=True,
                                           error=reason, error_status=status)
        except Exception as exc:  # noqa: BLE001 - removed meanwhile, or Redis trouble
            log.warning("repository %s: could not record the failure: %s", self.name, exc)
        self.result.update(status="failed", error=reason)


MAX_REASON = 200


def _reason(error: Exception) -> str:
    """The failure as Berth words it: an error's own message, never its details (the
    messages of :mod:`worker.repository_fetcher` and ``catalog.static_index`` carry no remote
    text; anything else is named by its kind only)."""
    if isinstance(error, RepositoryError | UnsafeURL):
        text = error.message
    else:
        text = f"{type(error).__name__} (see the worker's log)"
    return text if len(text) <= MAX_REASON else text[:MAX_REASON - 3] + "..."


def _universe_documents(body: bytes, where: str) -> dict[str, tuple[str, Any]]:
    """A DC/OS ``repo-up-to-*.json`` split per package: name → (digest, document).

    :raises RepositoryError: when it is not such a document.
    """
    try:
        data = loads_bounded(body, 64)
    except ValueError as exc:
        raise RepositoryError(f"{where} is not valid JSON", path=where,
                              details=[{"path": where, "message": _short(exc)}]) from None
    entries = data.get("packages") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise RepositoryError(f"{where} has no 'packages' list", path=where)
    grouped: dict[str, list[Any]] = {}
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            grouped.setdefault(entry["name"], []).append(entry)
    documents = {}
    for name, group in grouped.items():
        document = {"packages": group}
        documents[name] = (digest_of(canonical(document)), document)
    return documents
