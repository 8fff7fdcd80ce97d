"""Settings of the worker processes, read once from ``BERTH_…`` environment variables.

Defaults live here in code; tests and the test bed inject their own values
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
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import parse_qs, urlsplit

from catalog.spec import DEFAULT_ALLOWED_HOST_PATHS, ContainerPolicy, host_path_settings_problems

from .store.crypto import DataKeys

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class WorkerSettings:
    """Everything a worker (and whoever sends it tasks) needs to know."""

    redis_url: str = DEFAULT_REDIS_URL
    broker_url: str = ""                 # empty: the Redis of ``redis_url``
    prefix: str = "berth:"               # key prefix of every state record
    unreachable_timeout: float = 30.0    # agent silent this long → unreachable, instances moved
    heartbeat_interval: float = 5.0      # how often every agent is pinged
    reconcile_interval: float = 10.0     # periodic list-by-label on every agent
    refresh_interval: float = 60.0       # how often remote repositories are looked at
    allowed_host_paths: tuple[str, ...] = ()   # empty: the catalog's default allow-list
    allow_host_network: str = ""         # "true", "false" (default) or package names
    refuse_root_user: bool = False       # refuse ``user: root``/``0`` in specs
    agent_tls_dir: str = ""              # <dir>/<agent-id>/{ca,cert,key}.pem for TLS agents
    readonly_host_paths: tuple[str, ...] = ()  # exact paths a spec may mount read-only
    toolbox_image: str = "berth/toolbox:1.0.0"  # checks host folders on the agents
    docker_timeout: float = 10.0         # per Docker API call
    image_dir: str = ""                  # image tarballs for agents with no registry
    deploy_lock_ttl: float = 10.0        # a deployer holding a service renews this lock
    stuck_after: float = 20.0            # an unlocked, unfinished deployment this old is re-driven
    health_poll: float = 0.2             # how often a deployment looks at new instances
    stop_timeout: float = 3.0            # SIGTERM → SIGKILL grace when stopping an instance
    backoff_base: float = 1.0            # first delay after an instance failed to start
    backoff_max: float = 60.0            # longest delay between replacements of a failing service
    max_start_attempts: int = 5          # failed starts of one deployment before it fails
    task_time_limit: float = 3600.0      # hard limit of one task (deployments may wait on health)
    events_maxlen: int = 10000           # the event stream keeps about this many entries
    concurrency: int = 4                 # worker processes (or threads) of ``python -m worker``
    watch_events: bool = True            # follow Docker events for fast replacement
    # Fernet keys, comma-separated, newest first: open secret values at container creation
    data_key: str = field(default="", repr=False)

    def data_keys(self) -> DataKeys | None:
        """The data keys (``worker.store.crypto.DataKeys``), None when unset.

        :raises DataKeyError: when ``BERTH_DATA_KEY`` holds a malformed key.
        """
        return DataKeys.from_setting(self.data_key)

    @property
    def container_policy(self) -> ContainerPolicy:
        """The network and user policy of specs (the server checks the same one).

        :raises ValueError: naming ``BERTH_ALLOW_HOST_NETWORK`` when it does not parse.
        """
        return ContainerPolicy.from_settings(self.allow_host_network, self.refuse_root_user)

    @property
    def broker(self) -> str:
        """The Celery broker URL (the state Redis unless set apart)."""
        return self.broker_url or self.redis_url

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerSettings:
        """Settings from ``BERTH_<FIELD>`` variables (``os.environ`` by default).

        :raises ValueError: naming the variable when a value does not parse.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for each in fields(cls):
            name = _ENV_NAMES.get(each.name, "BERTH_" + each.name.upper())
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            values[each.name] = _parse(name, raw, each.default)
        settings = cls(**values)
        settings.container_policy  # noqa: B018 - refuses a bad value at start
        check_redis_url("BERTH_REDIS_URL", settings.redis_url)
        check_redis_url("BERTH_BROKER_URL", settings.broker_url)
        problems = host_path_settings_problems(settings.host_path_roots,
                                               settings.readonly_host_paths)
        if problems:
            raise ValueError("BERTH_ALLOWED_HOST_PATHS / BERTH_READONLY_HOST_PATHS: "
                             + "; ".join(problems))
        return settings

    @property
    def host_path_roots(self) -> tuple[str, ...]:
        """The allowed host-path roots (the catalog's default when none are set)."""
        return self.allowed_host_paths or DEFAULT_ALLOWED_HOST_PATHS


_ENV_NAMES = {"image_dir": "BERTH_IMAGE_DIR", "prefix": "BERTH_REDIS_PREFIX",
              "concurrency": "BERTH_WORKER_CONCURRENCY"}


def _parse(name: str, raw: str, default: Any) -> Any:
    """One value, typed like the field's default.

    :raises ValueError: naming the variable.
    """
    try:
        if isinstance(default, bool):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            value = float(raw)
            if value < 0:
                raise ValueError("negative")
            return value
        if isinstance(default, tuple):
            parts = raw.replace(",", ":").split(":")
            return tuple(p.strip() for p in parts if p.strip())
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r}: {exc}") from None
    return raw


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
