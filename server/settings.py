"""The server's settings: ``BERTH_*`` environment variables with defaults in code.

Read once per process by :func:`Settings.from_env`; tests inject their own values
through ``create_app(config)`` (keys named like the variables, e.g. ``BERTH_REDIS_URL``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from catalog.spec import DEFAULT_ALLOWED_HOST_PATHS, ContainerPolicy, host_path_settings_problems
from worker.settings import check_redis_url

ROLES = ("viewer", "maintainer", "admin")
_DEFAULT_UNIVERSE = str(Path(__file__).resolve().parent.parent / "universe")


class SettingsError(ValueError):
    """A setting has a value Berth cannot use (names the variable)."""


@dataclass(frozen=True)
class Settings:
    """Everything the server reads from its environment."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    broker_url: str = ""  # empty: the Redis URL
    secret_key: str = ""  # empty: a shared key kept in Redis (see server.context)
    universe_dir: str = _DEFAULT_UNIVERSE
    anonymous_role: str = "viewer"  # viewer | none
    max_body: int = 16 * 1024 * 1024  # bytes; bundles are the biggest bodies
    redis_timeout: float = 2.0  # seconds for connect and each command
    session_cookie_secure: bool = False
    session_lifetime: int = 12 * 3600  # seconds
    events_max: int = 1000  # events one /events response sends before it ends
    events_block_ms: int = 15000  # how long /events waits for an event: its heartbeat
    log_tail_max: int = 10000
    # host folders a spec may mount, ``:`` or ``,`` separated; empty: the catalog's
    # default (``/srv/berth``). The workers read the same variable and check again.
    allowed_host_paths: str = ""
    # the host network: "true", "false" (default) or package names, comma separated;
    # ``user: root``/``0`` refused when set. The workers read the same variables.
    allow_host_network: str = ""
    refuse_root_user: bool = False
    # client certificates of TLS agents: <dir>/<agent-id>/{ca,cert,key}.pem
    agent_tls_dir: str = ""
    # Fernet keys sealing secret option values at rest, comma-separated, newest first
    # (docs/production.md: "The data key"); the production entry points refuse to start
    # without one, and no service with a secret value is written without one.
    data_key: str = field(default="", repr=False)
    # exact host paths a spec may mount read-only (``/proc:/sys`` for node-exporter)
    readonly_host_paths: str = ""
    # maintainer templates render in child processes (catalog.render_pool); 0 renders
    # in the server process itself (benchmarks' baseline, not for production)
    render_workers: int = 2
    render_memory_mb: int = 512  # address-space limit of each render process
    render_seconds: float = 2.0  # a render's deadline; the process is killed soon after
    max_json_body: int = 256 * 1024  # bytes of a JSON request body (bundles: max_body)
    render_rate: float = 10.0  # anonymous renders per second per client address; 0: off
    render_burst: int = 20  # anonymous renders a client may make at once
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, Any] | None = None) -> Settings:
        """Build settings from ``BERTH_*`` variables (``os.environ`` by default).

        :raises SettingsError: when a value has the wrong type or is not allowed.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = "BERTH_" + f.name.upper()
            if f.name == "extra" or name not in env:
                continue
            values[f.name] = _convert(name, env[name], f.type)
        values["extra"] = {k: str(v) for k, v in env.items() if k.startswith("BERTH_")}
        settings = cls(**values)
        settings.check()
        return settings

    @property
    def host_paths(self) -> tuple[str, ...]:
        """The allowed host-path roots specs are checked against."""
        return _path_list(self.allowed_host_paths) or DEFAULT_ALLOWED_HOST_PATHS

    @property
    def readonly_paths(self) -> tuple[str, ...]:
        """Exact host paths a spec may mount read-only."""
        return _path_list(self.readonly_host_paths)

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

    def data_keys(self) -> Any:
        """The data keys (``worker.store.crypto.DataKeys``), None when unset.

        :raises SettingsError: when ``BERTH_DATA_KEY`` holds a malformed key.
        """
        from worker.store.crypto import DataKeyError, DataKeys

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


def _path_list(raw: str) -> tuple[str, ...]:
    """Paths of a ``:`` or ``,`` separated setting."""
    return tuple(p.strip() for p in raw.replace(",", ":").split(":") if p.strip())


def _convert(name: str, raw: Any, kind: Any) -> Any:
    """Turn one raw value into the field's type.

    :raises SettingsError: when it does not parse.
    """
    if not isinstance(raw, str):
        return raw
    kind = str(kind)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            return raw.strip().lower() in ("1", "true", "yes", "on")
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a {kind}") from exc
    return raw
