"""Redis over TLS with a password and client certificates, as production should run it.

A real ``redis-server --tls-port`` (certificates from ``cryptography``) on a free
loopback port: the state store (redis-py) and the Celery broker (kombu) both connect
with one ``rediss://`` URL; plain TCP, or TLS without a client certificate, get nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.fixtures.live_server import free_port
from tests.fixtures.tls import make_pki
from worker.celery_app import create_celery
from worker.settings import WorkerSettings
from worker.store import Store
from worker.testbed import processes as proc

pytestmark = pytest.mark.integration


class TLSRedis:
    """redis-server with TLS only (no plain port), client certificates required."""

    def __init__(self, folder: Path) -> None:
        self.pki = make_pki(folder / "pki", "127.0.0.1")
        self.folder = folder
        self.port = free_port()
        self.password = secrets.token_urlsafe(24)
        self.pid: int | None = None

    def url(self, *, client: str | None = "client") -> str:
        query = f"ssl_cert_reqs=required&ssl_ca_certs={self.pki / 'ca.pem'}"
        if client:
            query += (f"&ssl_certfile={self.pki / client / 'cert.pem'}"
                      f"&ssl_keyfile={self.pki / client / 'key.pem'}")
        return f"rediss://:{self.password}@127.0.0.1:{self.port}/0?{query}"

    def start(self) -> TLSRedis:
        config = self.folder / "redis.conf"
        config.write_text("\n".join([
            "port 0", f"tls-port {self.port}", "bind 127.0.0.1",
            f"tls-cert-file {self.pki / 'server-cert.pem'}",
            f"tls-key-file {self.pki / 'server-key.pem'}",
            f"tls-ca-cert-file {self.pki / 'ca.pem'}", "tls-auth-clients yes",
            f"requirepass {self.password}", f"dir {self.folder}", 'save ""', ""]))
        config.chmod(0o600)
        log = self.folder / "redis.log"
        self.pid = proc.spawn(["redis-server", str(config)], log)
        proc.wait_for(lambda: proc.redis_ping(self.url()), what="TLS redis-server",
                      pid=self.pid, log=log)
        return self

    def stop(self) -> None:
        if self.pid is not None:
            proc.terminate(self.pid)
            self.pid = None


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSRedis]:
    server = TLSRedis(tmp_path_factory.mktemp("redis-tls"))
    try:
        yield server.start()
    finally:
        server.stop()


def test_the_store_works_over_tls_with_the_url_alone(tls_redis: TLSRedis) -> None:
    settings = WorkerSettings.from_env({"BERTH_REDIS_URL": tls_redis.url()})
    store = Store.from_url(settings.redis_url, prefix="tls-test:")
    store.redis.set("tls-test:probe", "1")
    assert store.redis.get("tls-test:probe") in ("1", b"1")


def test_the_celery_broker_connects_over_tls(tls_redis: TLSRedis) -> None:
    app = create_celery(WorkerSettings(redis_url=tls_redis.url()))
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1)
        client: Any = connection.default_channel.client
        assert client.ping()   # the server has no plain port: this went over TLS
        assert issubclass(client.connection_pool.connection_class, redis.SSLConnection)


def test_plain_tcp_to_the_tls_port_gets_nothing(tls_redis: TLSRedis) -> None:
    plain = redis.Redis(host="127.0.0.1", port=tls_redis.port, password=tls_redis.password,
                        socket_timeout=3, socket_connect_timeout=3)
    with pytest.raises(redis.RedisError):
        plain.ping()


def test_tls_without_a_client_certificate_is_refused(tls_redis: TLSRedis) -> None:
    for client in (None, "stranger"):
        anonymous = redis.Redis.from_url(tls_redis.url(client=client), socket_timeout=3,
                                         socket_connect_timeout=3)
        with pytest.raises(redis.RedisError):
            anonymous.ping()
