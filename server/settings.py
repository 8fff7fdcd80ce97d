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
from worker.repository_fetcher import RemotePolicy
from worker.settings import SharedSettings
from worker.store import Durability
from worker.store.crypto import DataKeyError, DataKeys

__all__ = ["ROLES", "Settings", "SettingsError", "require_data_key"]

_DEFAULT_UNIVERSE = str(Path(__file__).resolve().parent.parent / "universe")


@dataclass(frozen=True)
class Settings(SharedSettings):
    """Everything the server reads from its environment (the table's ``server`` part;
    the part it shares with the workers comes from :class:`SharedSettings`)."""

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
    endpoints_wait_max: float = default("BERTH_ENDPOINTS_WAIT_MAX")
    render_workers: int = default("BERTH_RENDER_WORKERS")
    render_memory_mb: int = default("BERTH_RENDER_MEMORY_MB")
    render_seconds: float = default("BERTH_RENDER_SECONDS")
    max_json_body: int = default("BERTH_MAX_JSON_BODY")
    render_rate: float = default("BERTH_RENDER_RATE")
    render_burst: int = default("BERTH_RENDER_BURST")

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
        return self.host_path_roots

    @property
    def readonly_paths(self) -> tuple[str, ...]:
        """Exact host paths a spec may mount read-only."""
        return self.readonly_host_paths

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
        if Durability.of(self).replicas and self.redis_wait_timeout >= self.redis_timeout:
            raise SettingsError("BERTH_REDIS_WAIT_TIMEOUT must be below BERTH_REDIS_TIMEOUT "
                                "(a write waiting for replicas would time out as a dead "
                                "Redis otherwise)")
        if self.events_block_ms <= 0:
            raise SettingsError("BERTH_EVENTS_BLOCK_MS must be a positive number of ms")
        self.check_shared()
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
            return super().data_keys()
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
