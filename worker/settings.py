"""Settings of the worker processes: their part of the ``BERTH_*`` table
(:mod:`catalog.settings_table`, where every variable's type, default and help are
declared), read once from the environment.

The defaults are the table's; tests and the test bed inject their own values
(``WorkerSettings(...)`` or ``WorkerSettings.from_env({...})``). Times are seconds.

Redis over TLS is a ``rediss://`` URL whose query carries the TLS files, read alike by
redis-py (the state store) and kombu (the Celery broker):
``rediss://:PASSWORD@host:6380/0?ssl_cert_reqs=required&ssl_ca_certs=/etc/berth/ca.pem``
(and ``ssl_certfile``/``ssl_keyfile`` for a client certificate). :func:`check_redis_url`
refuses a ``rediss://`` URL that would not check the server's certificate.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from catalog.settings_table import SettingsError, default, read
from catalog.spec import DEFAULT_ALLOWED_HOST_PATHS, ContainerPolicy, host_path_settings_problems

from .store.connection import RedisEndpoint
from .store.crypto import DataKeys

if TYPE_CHECKING:  # the runtime import is in _remote_policy: see there
    from .repository_fetcher import RemotePolicy

DEFAULT_REDIS_URL: str = default("BERTH_REDIS_URL")


def _remote_policy() -> RemotePolicy:
    """The default fetch policy of remote repositories.

    Imported here, not at the top: ``worker.repository_fetcher`` imports requests and
    urllib3, and this module is read by every process that only wants its settings.
    """
    from .repository_fetcher import RemotePolicy  # requests: see the docstring

    return RemotePolicy()


@dataclass(frozen=True)
class SharedSettings:
    """The settings servers and workers both read, and must agree on (the table's
    entries read by both parts): where the records are, how secrets are sealed, what
    specs may ask for, how agents and remote repositories are reached."""

    redis_url: str = DEFAULT_REDIS_URL
    broker_url: str = default("BERTH_BROKER_URL")   # empty: the Redis of ``redis_url``
    prefix: str = default("BERTH_REDIS_PREFIX")     # key prefix of every state record
    allowed_host_paths: tuple[str, ...] = default("BERTH_ALLOWED_HOST_PATHS")  # empty: default
    readonly_host_paths: tuple[str, ...] = default("BERTH_READONLY_HOST_PATHS")
    allow_host_network: str = default("BERTH_ALLOW_HOST_NETWORK")
    refuse_root_user: bool = default("BERTH_REFUSE_ROOT_USER")
    agent_tls_dir: str = default("BERTH_AGENT_TLS_DIR")
    # Redis through Sentinel (``worker.store.connection.RedisEndpoint``)
    redis_sentinels: str = default("BERTH_REDIS_SENTINELS")   # host:port,… ; empty: the URL
    redis_master: str = default("BERTH_REDIS_MASTER")
    redis_password: str = field(default=default("BERTH_REDIS_PASSWORD"), repr=False)
    redis_sentinel_password: str = field(default=default("BERTH_REDIS_SENTINEL_PASSWORD"),
                                         repr=False)
    redis_tls_ca: str = default("BERTH_REDIS_TLS_CA")
    redis_tls_cert: str = default("BERTH_REDIS_TLS_CERT")
    redis_tls_key: str = default("BERTH_REDIS_TLS_KEY")
    # replicas a write must reach before it counts (-1: 1 with Sentinel, else 0)
    redis_min_replicas: int = default("BERTH_REDIS_MIN_REPLICAS")
    redis_wait_timeout: float = default("BERTH_REDIS_WAIT_TIMEOUT")
    backup_agent: str = default("BERTH_BACKUP_AGENT")   # agent id of the backup store
    backup_volume: str = default("BERTH_BACKUP_VOLUME")
    backup_dir: str = default("BERTH_BACKUP_DIR")       # or a directory the workers share
    # Fernet keys, comma-separated, newest first: seal and open secret option values
    data_key: str = field(default=default("BERTH_DATA_KEY"), repr=False)
    # how remote repositories are fetched (``BERTH_REPOSITORY_*``)
    remote_policy: RemotePolicy = field(default_factory=_remote_policy)

    def data_keys(self) -> DataKeys | None:
        """The data keys, None when unset.

        :raises DataKeyError: when ``BERTH_DATA_KEY`` holds a malformed key.
        """
        return DataKeys.from_setting(self.data_key)

    @property
    def container_policy(self) -> ContainerPolicy:
        """The network and user policy of specs (servers and workers check the same one).

        :raises SettingsError: naming ``BERTH_ALLOW_HOST_NETWORK`` when it does not parse.
        """
        try:
            return ContainerPolicy.from_settings(self.allow_host_network, self.refuse_root_user)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None

    @property
    def broker(self) -> str:
        """The Celery broker URL (the state Redis unless set apart; with Sentinel,
        kombu's ``sentinel://`` list of the Sentinels)."""
        return self.redis_endpoint.broker_url(self.broker_url)

    @property
    def redis_endpoint(self) -> RedisEndpoint:
        """Where the state Redis is: the URL, or the Sentinels and the master's name.

        :raises SettingsError: ``BERTH_REDIS_SENTINELS`` does not parse.
        """
        try:
            return RedisEndpoint.of(self)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None

    @property
    def host_path_roots(self) -> tuple[str, ...]:
        """The allowed host-path roots (the catalog's default when none are set)."""
        return self.allowed_host_paths or DEFAULT_ALLOWED_HOST_PATHS

    def check_shared(self) -> None:
        """Refuse shared values that make no sense (checked at start by both parts).

        :raises SettingsError: naming the variable.
        """
        self.container_policy  # noqa: B018 - raises SettingsError for a bad value
        self._check_sentinel()
        for name, url in (("BERTH_REDIS_URL", self.redis_url),
                          ("BERTH_BROKER_URL", self.broker_url)):
            try:
                check_redis_url(name, url)
            except ValueError as exc:
                raise SettingsError(str(exc)) from None
        problems = host_path_settings_problems(self.host_path_roots, self.readonly_host_paths)
        if problems:
            raise SettingsError("BERTH_ALLOWED_HOST_PATHS / BERTH_READONLY_HOST_PATHS: "
                                + "; ".join(problems))

    def _check_sentinel(self) -> None:
        """The Sentinel settings: parseable, a master name, TLS files that go together.

        :raises SettingsError: naming the variable.
        """
        endpoint = self.redis_endpoint
        if endpoint.sentinel and not self.redis_master:
            raise SettingsError("BERTH_REDIS_MASTER: the Sentinels' master name is empty")
        if self.redis_tls_key and not self.redis_tls_cert:
            raise SettingsError("BERTH_REDIS_TLS_KEY is set without BERTH_REDIS_TLS_CERT")
        if self.redis_tls_cert and not self.redis_tls_ca:
            raise SettingsError("BERTH_REDIS_TLS_CERT needs BERTH_REDIS_TLS_CA (the CA that "
                                "signed the Redis servers' certificates)")
        if self.redis_min_replicas < -1:
            raise SettingsError("BERTH_REDIS_MIN_REPLICAS must be -1 (automatic) or more")


@dataclass(frozen=True)
class WorkerSettings(SharedSettings):
    """Everything a worker (and whoever sends it tasks) needs to know (the table's
    ``worker`` part; times are seconds)."""

    unreachable_timeout: float = default("BERTH_UNREACHABLE_TIMEOUT")
    heartbeat_interval: float = default("BERTH_HEARTBEAT_INTERVAL")
    reconcile_interval: float = default("BERTH_RECONCILE_INTERVAL")
    refresh_interval: float = default("BERTH_REFRESH_INTERVAL")
    toolbox_image: str = default("BERTH_TOOLBOX_IMAGE")
    docker_timeout: float = default("BERTH_DOCKER_TIMEOUT")
    image_dir: str = default("BERTH_IMAGE_DIR")
    image_peer_copy: bool = default("BERTH_IMAGE_PEER_COPY")
    deploy_lock_ttl: float = default("BERTH_DEPLOY_LOCK_TTL")
    stuck_after: float = default("BERTH_STUCK_AFTER")
    health_poll: float = default("BERTH_HEALTH_POLL")
    stop_timeout: float = default("BERTH_STOP_TIMEOUT")
    backoff_base: float = default("BERTH_BACKOFF_BASE")
    backoff_max: float = default("BERTH_BACKOFF_MAX")
    max_start_attempts: int = default("BERTH_MAX_START_ATTEMPTS")
    task_time_limit: float = default("BERTH_TASK_TIME_LIMIT")
    events_maxlen: int = default("BERTH_EVENTS_MAXLEN")
    concurrency: int = default("BERTH_WORKER_CONCURRENCY")
    watch_events: bool = default("BERTH_WATCH_EVENTS")
    drain_delay: float = default("BERTH_DRAIN_DELAY")
    proxy_resync_interval: float = default("BERTH_PROXY_RESYNC_INTERVAL")
    proxy_timeout: float = default("BERTH_PROXY_TIMEOUT")
    fast_concurrency: int = default("BERTH_WORKER_FAST_CONCURRENCY")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerSettings:
        """Settings from the table's ``worker`` and ``repository`` variables
        (``os.environ`` by default).

        :raises SettingsError: (a ``ValueError``) naming the variable when a value does
            not parse or makes no sense.
        """
        from .repository_fetcher import RemotePolicy  # see _remote_policy

        env = os.environ if environ is None else environ
        settings = cls(**read("worker", env), remote_policy=RemotePolicy.from_env(env))
        settings.check_shared()
        return settings


def check_redis_url(name: str, url: str) -> None:
    """Refuse a ``rediss://`` URL that would not verify the server (or that kombu, the
    broker's client, would silently read as plain TCP: it wants ``ssl_cert_reqs``).

    :raises ValueError: naming the variable and what to add.
    """
    parts = urlsplit(url)
    if parts.scheme != "rediss":
        return
    query = parse_qs(parts.query)
    reqs = (query.get("ssl_cert_reqs") or [""])[0].lower()
    if reqs not in ("required", "cert_required"):
        raise ValueError(f"{name}: a rediss:// URL needs ssl_cert_reqs=required (and "
                         "ssl_ca_certs=<CA file> unless the system CAs signed Redis's "
                         f"certificate); it has ssl_cert_reqs={reqs or 'nothing'}")
