"""The one object a Berth server process keeps: ``app.extensions["berth"]``.

:class:`Berth` holds the settings, the state store, the catalog source, the
``DesiredState`` write path, the application layer (:mod:`server.application`) and the
function that enqueues worker tasks. Nothing in it
is state another process needs: every record lives in Redis, so several servers can
run side by side against one Redis.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

import redis
from flask import current_app
from redis.backoff import NoBackoff
from redis.retry import Retry

from catalog.render_pool import PoolSettings, shared_pool
from catalog.sandbox import Limits
from worker.celery_app import create_celery
from worker.service_ops import DesiredState
from worker.settings import WorkerSettings
from worker.store import Durability, RedisEndpoint, RedisState, Store

from .application import Application
from .catalog_cache import CatalogCache
from .settings import Settings

log = logging.getLogger(__name__)

Enqueue = Callable[[str, Sequence[Any]], Any]


class Berth:
    """The server's collaborators, built on first use from :class:`Settings`."""

    def __init__(self, settings: Settings, *, enqueue: Enqueue | None = None,
                 redis_client: Any = None, catalog: Any = None) -> None:
        self.settings = settings
        self._enqueue = enqueue
        self._redis_client = redis_client
        self._catalog = catalog
        self.metrics_paused_until = 0.0  # see server.api.meta: set after a Redis failure

    @cached_property
    def redis(self) -> Any:
        """The Redis client, with short socket timeouts so a dead Redis answers 503 fast."""
        if self._redis_client is not None:
            return self._redis_client
        return connect_redis(self.settings.redis_endpoint, self.settings.redis_timeout)

    @cached_property
    def events_redis(self) -> Any:
        """A Redis client of its own for ``/events`` streams.

        A stream waits in ``XREAD BLOCK`` for up to ``BERTH_EVENTS_BLOCK_MS``, longer
        than :attr:`redis`'s command timeout, so this client's socket timeout allows
        for the block; and its own pool keeps open streams off the connections every
        other request uses.
        """
        if self._redis_client is not None:
            return self._redis_client
        block = self.settings.events_block_ms / 1000
        return connect_redis(self.settings.redis_endpoint, self.settings.redis_timeout,
                             read_timeout=block + self.settings.redis_timeout)

    @cached_property
    def store(self) -> Any:
        """The state store (``worker.store.Store``) on :attr:`redis`, under the records'
        key prefix (``BERTH_REDIS_PREFIX``, the same as the workers'). Its writes are
        confirmed on ``BERTH_REDIS_MIN_REPLICAS`` replicas before they return, so a
        202 is only sent for a change a failover keeps (else ``NotDurable``: 503)."""
        return Store(self.redis, prefix=self.settings.prefix,
                     durability=Durability.of(self.settings))

    @cached_property
    def events_state(self) -> RedisState:
        """The store's keys on :attr:`events_redis`, for ``/events`` streams
        (``read_events`` there may block longer than :attr:`redis` allows)."""
        return RedisState(self.events_redis, prefix=self.store.state.prefix)

    @cached_property
    def catalog(self) -> Any:
        """The catalog source: ``.get()`` returns the current ``catalog.Catalog``."""
        if self._catalog is not None:
            return self._catalog
        return CatalogCache(self.settings, self.store)

    @cached_property
    def ops(self) -> Any:
        """The one write path for desired state (``worker.service_ops.DesiredState``)."""
        return DesiredState(self.store, self.enqueue, keys=self.settings.data_keys())

    @cached_property
    def application(self) -> Application:
        """The application layer both blueprints call, one module per domain."""
        return Application.build(self)

    @cached_property
    def renderer(self) -> Any:
        """What renders maintainer templates: a shared child-process pool
        (``catalog.render_pool``), or None to render in this process."""
        s = self.settings
        if s.render_workers == 0:
            return None
        return shared_pool(PoolSettings(workers=s.render_workers,
                                        memory_mb=s.render_memory_mb,
                                        limits=Limits(seconds=s.render_seconds))).render

    def enqueue(self, task_name: str, args: Sequence[Any] = ()) -> Any:
        """Send a task to the workers by name; never runs it here."""
        if self._enqueue is not None:
            return self._enqueue(task_name, list(args))
        return self.celery.send_task(task_name, args=list(args), retry=False)

    @cached_property
    def celery(self) -> Any:
        """A Celery app used only to send tasks (built lazily; the broker may be down)."""
        app = create_celery(_worker_settings(WorkerSettings, self.settings))
        app.conf.broker_connection_timeout = self.settings.redis_timeout
        app.conf.broker_connection_retry = False
        app.conf.broker_transport_options = {
            **dict(app.conf.broker_transport_options or {}),
            "socket_timeout": self.settings.redis_timeout,
            "socket_connect_timeout": self.settings.redis_timeout,
            "max_retries": 0,
        }
        return app

    def secret_key(self) -> str:
        """The session signing key: the setting, else one shared key kept in Redis.

        Keeping a generated key in Redis lets several servers verify each other's
        sessions; if Redis cannot be reached at start-up a process-local key is used
        (sessions then last until that process restarts).
        """
        if self.settings.secret_key:
            return self.settings.secret_key
        try:
            key = self.store.state.key("secret_key")
            self.redis.set(key, secrets.token_urlsafe(48), nx=True)
            value = self.redis.get(key)
            return value.decode() if isinstance(value, bytes) else str(value)
        except Exception:  # noqa: BLE001 - any Redis trouble: fall back, say so
            log.warning("BERTH_SECRET_KEY unset and Redis unreachable: using a per-process key")
            return secrets.token_urlsafe(48)


def _worker_settings(cls: Any, settings: Settings) -> Any:
    """Worker settings for the task-sending Celery app: the server's own Redis, broker
    and key prefix (the settings both parts read, from the one table)."""
    shared = {f: getattr(settings, f) for f in _REDIS_FIELDS}
    return cls(broker_url=settings.broker_url, prefix=settings.prefix,
               data_key=settings.data_key, **shared)


# where the state Redis is: the server's Celery app must find the same broker
_REDIS_FIELDS = ("redis_url", "redis_sentinels", "redis_master", "redis_password",
                 "redis_sentinel_password", "redis_tls_ca", "redis_tls_cert",
                 "redis_tls_key", "redis_min_replicas", "redis_wait_timeout")


def connect_redis(where: str | RedisEndpoint, timeout: float, *,
                  read_timeout: float | None = None) -> Any:
    """A redis-py client whose calls fail within ``timeout`` when Redis is away.

    ``where`` is a URL or a :class:`RedisEndpoint` (Sentinel). redis-py retries failed
    commands with exponential backoff by default; the server wants one quick retry (a
    dropped connection after a Redis restart, or the first command after a failover,
    which asks the Sentinels again) and then an error it can answer as 503.
    ``read_timeout`` (default ``timeout``) is for clients whose commands block on
    purpose (``XREAD BLOCK``).
    """
    endpoint = RedisEndpoint(where) if isinstance(where, str) else where
    client = endpoint.client(socket_timeout=read_timeout or timeout, connect_timeout=timeout,
                             retry=Retry(NoBackoff(), 1))
    if client.connection_pool.connection_class is redis.UnixDomainSocketConnection:
        kwargs = client.connection_pool.connection_kwargs
        kwargs.pop("socket_keepalive", None)  # TCP-only option
        kwargs.pop("socket_keepalive_options", None)
    return client


def current_berth() -> Berth:
    """The :class:`Berth` of the current Flask app."""
    return current_app.extensions["berth"]
