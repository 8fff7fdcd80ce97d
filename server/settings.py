"""The server's settings: its part of the ``BERTH_*`` table (:mod:`catalog.settings_table`).

Read once per process by :func:`Settings.from_env`; tests inject their own values
through ``create_app(config)`` (keys named like the variables, e.g. ``BERTH_REDIS_URL``).
The variables, their types, defaults and help are declared once, in the table; this
class holds them as typed attributes and checks the values that make no sense together.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog.settings_table import ROLES, SettingsError, default, read
from catalog.spec import DEFAULT_ALLOWED_HOST_PATHS, ContainerPolicy, host_path_settings_problems
from worker.remotes import RemotePolicy
from worker.settings import check_redis_url
from worker.store.crypto import DataKeyError, DataKeys

__all__ = ["ROLES", "Settings", "SettingsError", "require_data_key"]

_DEFAULT_UNIVERSE = str(Path(__file__).resolve().parent.parent / "universe")


@dataclass(frozen=True)
class Settings:
    """Everything the server reads from its environment (the table's ``server`` part)."""

    redis_url: str = default("BERTH_REDIS_URL")
    prefix: str = default("BERTH_REDIS_PREFIX")  # key prefix, the same as the workers'
    broker_url: str = default("BERTH_BROKER_URL")  # empty: the Redis URL
    secret_key: str = field(default=default("BERTH_SECRET_KEY"), repr=False)
    universe_dir: str = _DEFAULT_UNIVERSE  # the table's "": the shipped universe
    universe_priority: int = default("BERTH_UNIVERSE_PRIORITY")
    hosted_priority: int = default("BERTH_HOSTED_PRIORITY")
    repository_dirs: str = default("BERTH_REPOSITORY_DIRS")  # name=path[@priority],…
    anonymous_role: str = default("BERTH_ANONYMOUS_ROLE")  # viewer | none
    max_body: int = default("BERTH_MAX_BODY")
    redis_timeout: float = default("BERTH_REDIS_TIMEOUT")
    session_cookie_secure: bool = default("BERTH_SESSION_COOKIE_SECURE")
    session_lifetime: int = default("BERTH_SESSION_LIFETIME")
    events_max: int = default("BERTH_EVENTS_MAX")
    events_block_ms: int = default("BERTH_EVENTS_BLOCK_MS")
    log_tail_max: int = default("BERTH_LOG_TAIL_MAX")
    # host folders a spec may mount; empty: the catalog's default (``/srv/berth``). The
    # workers read the same variable and check again.
    allowed_host_paths: tuple[str, ...] = default("BERTH_ALLOWED_HOST_PATHS")
    # the host network: "true", "false" (default) or package names, comma separated;
    # ``user: root``/``0`` refused when set. The workers read the same variables.
    allow_host_network: str = default("BERTH_ALLOW_HOST_NETWORK")
    refuse_root_user: bool = default("BERTH_REFUSE_ROOT_USER")
    agent_tls_dir: str = default("BERTH_AGENT_TLS_DIR")
    # Fernet keys sealing secret option values at rest, comma-separated, newest first
    # (docs/production.md: "The data key"); the production entry points refuse to start
    # without one, and no service with a secret value is written without one.
    data_key: str = field(default=default("BERTH_DATA_KEY"), repr=False)
    readonly_host_paths: tuple[str, ...] = default("BERTH_READONLY_HOST_PATHS")
    render_workers: int = default("BERTH_RENDER_WORKERS")
    render_memory_mb: int = default("BERTH_RENDER_MEMORY_MB")
    render_seconds: float = default("BERTH_RENDER_SECONDS")
    max_json_body: int = default("BERTH_MAX_JSON_BODY")
    render_rate: float = default("BERTH_RENDER_RATE")
    render_burst: int = default("BERTH_RENDER_BURST")
    # how remote repositories are fetched (``BERTH_REPOSITORY_*``), as in the workers
    remote_policy: RemotePolicy = field(default_factory=RemotePolicy)

    @classmethod
    def from_env(cls, environ: Mapping[str, Any] | None = None) -> Settings:
        """Build settings from ``BERTH_*`` variables (``os.environ`` by default).

        :raises SettingsError: when a value has the wrong type or is not allowed.
        """
        env = os.environ if environ is None else environ
        settings = cls(**read("server", env), remote_policy=RemotePolicy.from_env(env))
        settings.check()
        return settings

    @property
    def host_paths(self) -> tuple[str, ...]:
        """The allowed host-path roots specs are checked against."""
        return self.allowed_host_paths or DEFAULT_ALLOWED_HOST_PATHS

    @property
    def readonly_paths(self) -> tuple[str, ...]:
        """Exact host paths a spec may mount read-only."""
        return self.readonly_host_paths

    @property
    def container_policy(self) -> ContainerPolicy:
        """The network and user policy specs are checked against.

        :raises SettingsError: when ``BERTH_ALLOW_HOST_NETWORK`` does not parse.
        """
        try:
            return ContainerPolicy.from_settings(self.allow_host_network, self.refuse_root_user)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None

    @property
    def broker(self) -> str:
        """The Celery broker URL (the Redis URL unless set)."""
        return self.broker_url or self.redis_url

    def check(self) -> None:
        """Refuse values that make no sense.

        :raises SettingsError: naming the variable.
        """
        if self.anonymous_role not in ("viewer", "none"):
            raise SettingsError("BERTH_ANONYMOUS_ROLE must be 'viewer' or 'none'")
        if self.max_body <= 0:
            raise SettingsError("BERTH_MAX_BODY must be a positive number of bytes")
        if self.redis_timeout <= 0:
            raise SettingsError("BERTH_REDIS_TIMEOUT must be positive")
        if self.events_block_ms <= 0:
            raise SettingsError("BERTH_EVENTS_BLOCK_MS must be a positive number of ms")
        self.container_policy  # noqa: B018 - raises SettingsError for a bad value
        for name, url in (("BERTH_REDIS_URL", self.redis_url),
                          ("BERTH_BROKER_URL", self.broker_url)):
            try:
                check_redis_url(name, url)
            except ValueError as exc:
                raise SettingsError(str(exc)) from None
        problems = host_path_settings_problems(self.host_paths, self.readonly_paths)
        if problems:
            raise SettingsError("BERTH_ALLOWED_HOST_PATHS / BERTH_READONLY_HOST_PATHS: "
                                + "; ".join(problems))
        self.data_keys()
        self._check_render()

    def _check_render(self) -> None:
        """The render and request-size settings.

        :raises SettingsError: naming the variable.
        """
        if self.render_workers < 0:
            raise SettingsError("BERTH_RENDER_WORKERS must be 0 or more")
        if self.render_memory_mb < 64:
            raise SettingsError("BERTH_RENDER_MEMORY_MB must be at least 64")
        if self.render_seconds <= 0:
            raise SettingsError("BERTH_RENDER_SECONDS must be positive")
        if self.max_json_body <= 0:
            raise SettingsError("BERTH_MAX_JSON_BODY must be a positive number of bytes")
        if self.render_rate < 0 or self.render_burst < 1:
            raise SettingsError("BERTH_RENDER_RATE must be 0 or more and "
                                "BERTH_RENDER_BURST at least 1")

    def data_keys(self) -> DataKeys | None:
        """The data keys, None when unset.

        :raises SettingsError: when ``BERTH_DATA_KEY`` holds a malformed key.
        """
        try:
            return DataKeys.from_setting(self.data_key)
        except DataKeyError as error:
            raise SettingsError(error.message) from None


def require_data_key(environ: Mapping[str, Any] | None = None) -> None:
    """Stop a production entry point that has no data key, with the reason.

    :raises SystemExit: when ``BERTH_DATA_KEY`` is unset or empty.
    """
    env = os.environ if environ is None else environ
    if not str(env.get("BERTH_DATA_KEY") or "").strip():
        raise SystemExit("berth: BERTH_DATA_KEY is not set. Berth seals secret option "
                         "values with it and will not start without one; make one with "
                         "`python -m worker new-data-key` (docs/production.md)")
