"""Where the state Redis is, and how every part connects to it: a URL or Sentinel.

:class:`RedisEndpoint` is the one description both the servers and the workers build
from their settings. Without Sentinel it is ``BERTH_REDIS_URL`` (``redis://``,
``rediss://``, ``unix://``). With ``BERTH_REDIS_SENTINELS`` it is a set of Sentinels and
a master name: redis-py's :class:`redis.sentinel.Sentinel` finds the master, and its
connection pool asks again after a connection error or a ``READONLY`` answer (the old
master demoted to a replica) — which is how every process follows a failover by
itself. The Celery broker gets the same endpoint as kombu's ``sentinel://`` transport
(``master_name`` and ``sentinel_kwargs`` in its transport options).

Retries are bounded: a worker's client retries a failed command with exponential
backoff for about ten seconds (a failover with ``down-after-milliseconds`` 2000 takes
three to five), a server's once, so that a request is answered 503 at once instead of
hanging (see ``server.context``).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

__all__ = ["RedisEndpoint", "RedisSettings", "parse_sentinels", "RETRY_ON"]

# a demoted master answers READONLY: retried like a lost connection (the Sentinel pool
# turns it into a ConnectionError and asks the Sentinels again)
RETRY_ON: list[type[Exception]] = [redis.ConnectionError, redis.TimeoutError,
                                   redis.ReadOnlyError]
# a worker's command waits this long for an answer: a master frozen in a partition (no
# answer, no reset) is given up on, and the Sentinels are asked again, within it
WORKER_SOCKET_TIMEOUT = 5.0


class RedisSettings(Protocol):
    """The settings that say where the state Redis is (servers' and workers' alike)."""

    @property
    def redis_url(self) -> str: ...
    @property
    def redis_sentinels(self) -> str: ...
    @property
    def redis_master(self) -> str: ...
    @property
    def redis_password(self) -> str: ...
    @property
    def redis_sentinel_password(self) -> str: ...
    @property
    def redis_tls_ca(self) -> str: ...
    @property
    def redis_tls_cert(self) -> str: ...
    @property
    def redis_tls_key(self) -> str: ...


def worker_retry() -> Retry:
    """About ten seconds of exponential backoff: long enough to ride out a failover."""
    return Retry(ExponentialBackoff(cap=2.0, base=0.05), 12)


def parse_sentinels(text: str) -> tuple[tuple[str, int], ...]:
    """``host:port,host:port`` as pairs.

    :raises ValueError: naming ``BERTH_REDIS_SENTINELS`` and the entry that is wrong.
    """
    pairs = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        host, sep, port = entry.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"BERTH_REDIS_SENTINELS: {entry!r} is not host:port")
        pairs.append((host.strip("[]"), int(port)))
    return tuple(pairs)


@dataclass(frozen=True)
class RedisEndpoint:
    """The state Redis: a URL, or Sentinels with a master name (and passwords, TLS)."""

    url: str
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str = "berth"
    password: str = field(default="", repr=False)
    sentinel_password: str = field(default="", repr=False)
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""

    @classmethod
    def of(cls, settings: RedisSettings) -> RedisEndpoint:
        """The endpoint a settings object (server or worker) names.

        :raises ValueError: ``BERTH_REDIS_SENTINELS`` does not parse.
        """
        return cls(url=settings.redis_url,
                   sentinels=parse_sentinels(settings.redis_sentinels),
                   master=settings.redis_master, password=settings.redis_password,
                   sentinel_password=settings.redis_sentinel_password,
                   tls_ca=settings.redis_tls_ca, tls_cert=settings.redis_tls_cert,
                   tls_key=settings.redis_tls_key)

    @property
    def sentinel(self) -> bool:
        """Whether Sentinels are used (else the URL)."""
        return bool(self.sentinels)

    @property
    def shown(self) -> str:
        """Where the state is, without secrets (for logs and error hints)."""
        if self.sentinel:
            hosts = ",".join(f"{h}:{p}" for h, p in self.sentinels)
            return f"Sentinel {hosts}, master {self.master!r}"
        return "BERTH_REDIS_URL"

    # the state store --------------------------------------------------------------
    def tls_kwargs(self) -> dict[str, object]:
        """redis-py's TLS arguments (empty without TLS); the server is always checked."""
        if not self.tls_ca:
            return {}
        out: dict[str, object] = {"ssl": True, "ssl_cert_reqs": "required",
                               "ssl_ca_certs": self.tls_ca}
        if self.tls_cert:
            out.update(ssl_certfile=self.tls_cert, ssl_keyfile=self.tls_key or None)
        return out

    def client(self, *, socket_timeout: float = WORKER_SOCKET_TIMEOUT,
               connect_timeout: float = 5.0, retry: Retry | None = None) -> redis.Redis:
        """A redis-py client of the master, text in and out.

        ``retry`` defaults to :func:`worker_retry`; the timeouts to a worker's.
        """
        retry = retry or worker_retry()
        common: dict[str, Any] = {"decode_responses": True, "health_check_interval": 15,
                                  "socket_connect_timeout": connect_timeout,
                                  "socket_timeout": socket_timeout, "retry": retry,
                                  "retry_on_error": list(RETRY_ON)}
        if not self.sentinel:
            tcp = {} if self.url.startswith("unix:") else {"socket_keepalive": True}
            return redis.Redis.from_url(self.url, **common, **tcp)
        sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
            list(self.sentinels), sentinel_kwargs=self._sentinel_kwargs(
                socket_timeout, connect_timeout), socket_keepalive=True, **self.tls_kwargs())
        client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            self.master, password=self.password or None, **common)
        return client

    def _sentinel_kwargs(self, socket_timeout: float,
                         connect_timeout: float) -> dict[str, Any]:
        """How to reach the Sentinels themselves (their password, TLS, short timeouts:
        a dead Sentinel is skipped quickly for the next one)."""
        out: dict[str, Any] = {"socket_timeout": min(socket_timeout, 1.0),
                               "socket_connect_timeout": min(connect_timeout, 1.0),
                               **self.tls_kwargs()}
        if self.sentinel_password:
            out["password"] = self.sentinel_password
        return out

    # the Celery broker --------------------------------------------------------------
    def broker_url(self, broker_url: str = "") -> str:
        """The Celery broker URL: kombu's ``sentinel://`` list, else ``broker_url`` or the
        state URL. The master's password rides in the URL (kombu hands it to the master)."""
        if not self.sentinel:
            return broker_url or self.url
        auth = f":{_quote(self.password)}@" if self.password else ""
        return ";".join(f"sentinel://{auth}{_host(host)}:{port}/0"
                        for host, port in self.sentinels)

    def broker_transport_options(self) -> dict[str, object]:
        """kombu's Sentinel options: ``master_name`` and how to reach the Sentinels."""
        if not self.sentinel:
            return {}
        return {"master_name": self.master,
                "sentinel_kwargs": self._sentinel_kwargs(1.0, 1.0),
                # a frozen master is given up on (kombu's BRPOP itself waits 1 s)
                "socket_timeout": 2 * WORKER_SOCKET_TIMEOUT, "socket_keepalive": True}

    def broker_use_ssl(self) -> Mapping[str, object] | None:
        """Celery's ``broker_use_ssl`` for a Sentinel set over TLS (None otherwise)."""
        if not (self.sentinel and self.tls_ca):
            return None
        out: dict[str, Any] = {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": self.tls_ca}
        if self.tls_cert:
            out.update(ssl_certfile=self.tls_cert, ssl_keyfile=self.tls_key or None)
        return out


def _host(host: str) -> str:
    """A host as a URL writes it (an IPv6 address in brackets)."""
    return f"[{host}]" if ":" in host else host


def _quote(text: str) -> str:
    return quote(text, safe="")
