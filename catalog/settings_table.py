"""Every ``BERTH_*`` environment variable Berth reads, declared once.

Each :class:`Setting` names one variable, its type, its default and its help, and which
parts read it (``readers``):

- ``server``: the Flask server (:mod:`server.settings`);
- ``worker``: the workers (:mod:`worker.settings`);
- ``repository``: the remote-repository fetcher (``RemotePolicy``, in the workers and
  the server alike);
- ``client``: the ``berth`` CLI and the Python client; ``dev``: ``berth dev``;
- ``image``: the image's entrypoint and ``docker-compose.yml`` (shell, not Python).

A process reads its part with :func:`read`; each settings class keeps typed attributes
named :attr:`Setting.attr` with the defaults of this table (a test holds them to it).
``docs/production.md``'s settings table is :func:`markdown_table`'s output (a test
compares them). The table is pure data and lives in the core so that every part can
read it without importing another part's runtime.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ROLES", "SETTINGS", "Setting", "SettingsError", "by_name", "default",
           "markdown_table", "parse", "read", "settings_of"]

ROLES = ("viewer", "maintainer", "admin")  # the roles a token or a user may have

Kind = type[str] | type[int] | type[float] | type[bool] | type[tuple[str, ...]]
_TRUE = ("1", "true", "yes", "on")


class SettingsError(ValueError):
    """A setting has a value Berth cannot use (names the variable)."""


@dataclass(frozen=True)
class Setting:
    """One ``BERTH_*`` variable.

    ``kind`` is ``str``, ``int``, ``float``, ``bool`` or ``tuple`` (paths, ``:`` or
    ``,`` separated). ``attr`` is the attribute on a process's settings object (the
    name without ``BERTH_``, lower case, unless given). ``shown`` is how the default
    reads in the documentation (the default itself unless given). ``minimum`` refuses
    smaller numbers at start.
    """

    name: str
    kind: Kind
    default: Any
    help: str
    readers: tuple[str, ...]
    attr: str = ""
    shown: str = ""
    minimum: float | None = None

    @property
    def field(self) -> str:
        """The attribute name on a process's settings object."""
        return self.attr or self.name.removeprefix("BERTH_").lower()

    @property
    def default_text(self) -> str:
        """The default as the documentation shows it."""
        if self.shown:
            return self.shown
        if self.default in ("", ()):
            return "—"
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        if isinstance(self.default, tuple):
            return ":".join(self.default)
        return f"`{self.default}`" if isinstance(self.default, str) else str(self.default)


def _s(name: str, kind: Kind, default: Any, help: str, *readers: str,  # noqa: A002
       **more: Any) -> Setting:
    """A :class:`Setting`, written compactly in the table below."""
    return Setting(name, kind, default, help, readers, **more)


_SERVER = ("server",)
_BOTH = ("server", "worker")

SETTINGS: tuple[Setting, ...] = (
    # where the state lives -------------------------------------------------------------
    _s("BERTH_REDIS_URL", str, "redis://127.0.0.1:6379/0",
       "state store: `redis://:PASSWORD@host:6379/0`, `rediss://…` (TLS, below), "
       "`unix:///path?password=…`. For Sentinel, see `BERTH_REDIS_SENTINELS`", *_BOTH),
    _s("BERTH_REDIS_PREFIX", str, "berth:",
       "key prefix of every state record: several Berths may share one Redis. Set it the "
       "same on every server and worker of one Berth", *_BOTH, attr="prefix"),
    _s("BERTH_BROKER_URL", str, "",
       "Celery broker; may be a separate Redis. With `BERTH_REDIS_SENTINELS` the broker is "
       "the Sentinels' master (`sentinel://` transport) and this is not used", *_BOTH,
       shown="the Redis URL"),
    _s("BERTH_REDIS_TIMEOUT", float, 2.0,
       "socket timeout for Redis: a dead Redis is answered 503 within this", *_SERVER,
       shown="2 s"),
    _s("BERTH_REDIS_SENTINELS", str, "",
       "Redis through Sentinel: `host:port,host:port,…` of the Sentinels (three or more). "
       "Then `BERTH_REDIS_URL` is not used: the servers, the workers and the broker ask the "
       "Sentinels for the master of `BERTH_REDIS_MASTER` and follow a failover by themselves",
       *_BOTH, shown="none: `BERTH_REDIS_URL`"),
    _s("BERTH_REDIS_MASTER", str, "berth",
       "with Sentinel: the name the Sentinels monitor the master under", *_BOTH),
    _s("BERTH_REDIS_SENTINEL_PASSWORD", str, "",
       "with Sentinel: the Sentinels' own password (`requirepass` of sentinel.conf)", *_BOTH),
    _s("BERTH_REDIS_TLS_CA", str, "",
       "with Sentinel: TLS to the Sentinels and the Redis servers, checked against this CA "
       "file (without Sentinel, use a `rediss://` URL)", *_BOTH),
    _s("BERTH_REDIS_TLS_CERT", str, "",
       "with Sentinel and TLS: a client certificate (and `BERTH_REDIS_TLS_KEY`) when Redis "
       "asks for one (`tls-auth-clients yes`)", *_BOTH),
    _s("BERTH_REDIS_TLS_KEY", str, "",
       "the key of `BERTH_REDIS_TLS_CERT`", *_BOTH),
    _s("BERTH_REDIS_MIN_REPLICAS", int, -1,
       "replicas that must hold a change before it is acknowledged (`WAIT`): an install, "
       "scale, upgrade, uninstall, published bundle or repository change is answered 202/201 "
       "only then, else 503 (the change may or may not stay: read before retrying). `-1`: 1 "
       "with Sentinel, 0 without", *_BOTH, shown="1 with Sentinel, else 0"),
    _s("BERTH_REDIS_WAIT_TIMEOUT", float, 1.0,
       "how long a write waits for `BERTH_REDIS_MIN_REPLICAS` replicas (keep it below "
       "`BERTH_REDIS_TIMEOUT`)", *_BOTH, shown="1 s", minimum=0),
    # keys --------------------------------------------------------------------------------
    _s("BERTH_SECRET_KEY", str, "",
       "signs session cookies and CSRF tokens. **Set it** in production (48+ random bytes) "
       "and keep it the same on every server", *_SERVER,
       shown="a key generated once and kept in Redis"),
    _s("BERTH_DATA_KEY", str, "",
       "seals secret option values at rest (see \"The data key\" below). One or more Fernet "
       "keys, comma-separated, newest first; the same on every server and worker", *_BOTH,
       shown="none: the server and the workers refuse to start"),
    # the server --------------------------------------------------------------------------
    _s("BERTH_ANONYMOUS_ROLE", str, "viewer",
       "`none` makes even browsing need a login", *_SERVER),
    _s("BERTH_MAX_BODY", int, 16 * 1024 * 1024,
       "largest request body (bundles are the biggest)", *_SERVER, shown="16 MiB"),
    _s("BERTH_MAX_JSON_BODY", int, 256 * 1024,
       "largest JSON request body (413 beyond it)", *_SERVER, shown="256 KiB"),
    _s("BERTH_RENDER_WORKERS", int, 2,
       "render processes per server process: maintainer templates render there "
       "(`catalog.render_pool`), not in the server; `0` renders in the server process "
       "(benchmark baseline only)", *_SERVER),
    _s("BERTH_RENDER_MEMORY_MB", int, 512,
       "address-space limit (`RLIMIT_AS`) of each render process; a template past it is "
       "refused and its process replaced", *_SERVER),
    _s("BERTH_RENDER_SECONDS", float, 2.0,
       "a render's deadline; the render process is killed 0.5 s after it", *_SERVER,
       shown="2 s"),
    _s("BERTH_RENDER_RATE", float, 10.0,
       "anonymous renders per second per client address (429 with `Retry-After` beyond); "
       "`0` turns it off. Behind a proxy the address is the proxy's unless the WSGI server "
       "is told to trust `X-Forwarded-For`", *_SERVER, shown="10/s"),
    _s("BERTH_RENDER_BURST", int, 20,
       "anonymous renders a client address may make at once", *_SERVER),
    _s("BERTH_SESSION_COOKIE_SECURE", bool, False, "set `true` behind HTTPS", *_SERVER),
    _s("BERTH_SESSION_LIFETIME", int, 12 * 3600,
       "store-front session length (the session id in Redis expires with it; logout "
       "deletes it)", *_SERVER, shown="43200 s"),
    _s("BERTH_EVENTS_MAX", int, 1000,
       "events one `/events` response sends before it ends", *_SERVER),
    _s("BERTH_EVENTS_BLOCK_MS", int, 15000,
       "how long an `/events` stream waits for an event before a `: keep-alive` line",
       *_SERVER),
    _s("BERTH_LOG_TAIL_MAX", int, 10000,
       "most log lines one logs request may ask for", *_SERVER),
    _s("BERTH_ENDPOINTS_WAIT_MAX", float, 30.0,
       "longest `?wait=` of an endpoints request (a long poll for a change)", *_SERVER,
       shown="30 s", minimum=0),
    # repositories --------------------------------------------------------------------------
    _s("BERTH_UNIVERSE_DIR", str, "",
       "the builtin repository", "server", "client", shown="the shipped `universe/`"),
    _s("BERTH_UNIVERSE_PRIORITY", int, 100,
       "priority of the builtin repository (lower wins)", *_SERVER),
    _s("BERTH_HOSTED_PRIORITY", int, 50,
       "priority of the hosted repository of published packages (lower wins)", *_SERVER),
    _s("BERTH_REPOSITORY_DIRS", str, "",
       "directory repositories, comma separated `name=path[@priority]`", *_SERVER),
    _s("BERTH_REPOSITORY_ALLOW_LOOPBACK", bool, False,
       "let remote repositories live on loopback addresses (the SSRF guard refuses them "
       "otherwise; link-local is always refused). `make run` allows loopback",
       "repository", attr="allow_loopback"),
    _s("BERTH_REPOSITORY_ALLOW_PRIVATE", bool, False,
       "let remote repositories live on private addresses", "repository",
       attr="allow_private"),
    _s("BERTH_REPOSITORY_CONNECT_TIMEOUT", float, 5.0,
       "connect timeout of a remote-repository GET", "repository", attr="connect_timeout",
       shown="5 s", minimum=0),
    _s("BERTH_REPOSITORY_READ_TIMEOUT", float, 15.0,
       "read timeout of a remote-repository GET", "repository", attr="read_timeout",
       shown="15 s", minimum=0),
    _s("BERTH_REPOSITORY_MAX_LISTING", int, 32 * 1024 * 1024,
       "largest `index.json` of a remote repository (decompressed)", "repository",
       attr="max_listing", shown="32 MiB"),
    _s("BERTH_REPOSITORY_MAX_DOCUMENT", int, 4 * 1024 * 1024,
       "largest package document of a remote repository", "repository",
       attr="max_document", shown="4 MiB"),
    _s("BERTH_REPOSITORY_INTERVAL", float, 300.0,
       "seconds between refreshes of one remote repository", "repository",
       attr="interval", shown="300 s", minimum=0),
    _s("BERTH_REPOSITORY_WORKERS", int, 8,
       "parallel document fetches of one refresh", "repository", attr="workers"),
    _s("BERTH_REPOSITORY_MAX_REDIRECTS", int, 5,
       "redirects one remote-repository GET follows", "repository", attr="max_redirects"),
    _s("BERTH_REPOSITORY_DEADLINE", float, 60.0,
       "wall-clock limit of one remote-repository GET, headers and body", "repository",
       attr="deadline", shown="60 s", minimum=0),
    # what specs may ask for --------------------------------------------------------------
    _s("BERTH_ALLOWED_HOST_PATHS", tuple, (),
       "host-path roots (`:` or `,` separated): a spec may mount one folder "
       "`<root>/<name>` inside one, never a root itself or anything deeper; roots must "
       "not lie inside each other (the server and workers refuse to start otherwise). "
       "Read by the server (refused at install, 422) and by every worker (checked again "
       "before any Docker call) — set it the same on both", *_BOTH, shown="`/srv/berth`"),
    _s("BERTH_READONLY_HOST_PATHS", tuple, (),
       "exact host paths a spec may mount read-only (e.g. `/proc:/sys` for "
       "`node-exporter`); set it the same on server and workers", *_BOTH),
    _s("BERTH_ALLOW_HOST_NETWORK", str, "",
       "`true` lets every package use `network: host`; package names (comma separated) "
       "let those only. Server and workers, like the host paths", *_BOTH,
       shown="`false`"),
    _s("BERTH_REFUSE_ROOT_USER", bool, False,
       "`true` refuses specs with `user: root` or `0` (server and workers)", *_BOTH),
    # the agents ----------------------------------------------------------------------------
    _s("BERTH_AGENT_TLS_DIR", str, "",
       "client certificates of TLS agents: `<dir>/<agent-id>/{ca,cert,key}.pem` (workers "
       "and servers)", *_BOTH, "dev"),
    _s("BERTH_TOOLBOX_IMAGE", str, "berth/toolbox:1.0.0",
       "the small image of Berth's own commands run on agents (host-folder checks); built "
       "from `universe/images/toolbox`, loaded like any image (registry, peer agent, or "
       "`BERTH_IMAGE_DIR`)", "worker"),
    _s("BERTH_IMAGE_DIR", str, "",
       "image tarballs for agents with no registry", "worker"),
    _s("BERTH_DOCKER_TIMEOUT", float, 10.0, "timeout of one Docker API call", "worker",
       shown="10 s", minimum=0),
    _s("BERTH_IMAGE_PEER_COPY", bool, True,
       "when a pull fails, copy the image from another agent that has it (`docker save` "
       "into `docker load`); `false` leaves images to the registry and `BERTH_IMAGE_DIR`",
       "worker"),
    _s("BERTH_BACKUP_AGENT", str, "",
       "the agent whose named volume `BERTH_BACKUP_VOLUME` is the backup store: each backup "
       "is kept as files under `<store>/<backup-id>/<volume>/`, streamed engine to engine by "
       "the workers (never through the server)", *_BOTH),
    _s("BERTH_BACKUP_VOLUME", str, "berth-backups",
       "the named volume on `BERTH_BACKUP_AGENT` that holds the backups", *_BOTH),
    _s("BERTH_BACKUP_DIR", str, "",
       "instead of a backup agent: a directory every worker (and, for downloads, every "
       "server) shares, e.g. an NFS mount; each backed-up volume is kept as "
       "`<dir>/<backup-id>/<volume>/volume.tar`", *_BOTH),
    # the workers' timing -------------------------------------------------------------------
    _s("BERTH_UNREACHABLE_TIMEOUT", float, 30.0,
       "an agent silent this long is unreachable and its instances are moved", "worker",
       shown="30 s", minimum=0),
    _s("BERTH_HEARTBEAT_INTERVAL", float, 5.0, "how often every agent is pinged", "worker",
       shown="5 s", minimum=0),
    _s("BERTH_RECONCILE_INTERVAL", float, 10.0,
       "how often every agent's containers are listed and compared with the records",
       "worker", shown="10 s", minimum=0),
    _s("BERTH_REFRESH_INTERVAL", float, 60.0,
       "how often remote repositories are looked at (each refreshes after "
       "`BERTH_REPOSITORY_INTERVAL`)", "worker", shown="60 s", minimum=0),
    _s("BERTH_DEPLOY_LOCK_TTL", float, 10.0,
       "a deployer holding a service renews this lock", "worker", shown="10 s", minimum=0),
    _s("BERTH_STUCK_AFTER", float, 20.0,
       "an unlocked, unfinished deployment this old is driven again", "worker",
       shown="20 s", minimum=0),
    _s("BERTH_HEALTH_POLL", float, 0.2,
       "how often a deployment looks at its new instances", "worker", shown="0.2 s",
       minimum=0),
    _s("BERTH_STOP_TIMEOUT", float, 3.0,
       "SIGTERM → SIGKILL grace when stopping an instance", "worker", shown="3 s",
       minimum=0),
    _s("BERTH_BACKOFF_BASE", float, 1.0,
       "first delay after an instance failed to start", "worker", shown="1 s", minimum=0),
    _s("BERTH_BACKOFF_MAX", float, 60.0,
       "longest delay between replacements of a failing service", "worker", shown="60 s",
       minimum=0),
    _s("BERTH_MAX_START_ATTEMPTS", int, 5,
       "failed starts of one deployment before it fails", "worker"),
    _s("BERTH_TASK_TIME_LIMIT", float, 3600.0,
       "hard time limit of one task (deployments may wait on health checks)", "worker",
       shown="3600 s", minimum=0),
    _s("BERTH_EVENTS_MAXLEN", int, 10000,
       "the event stream keeps about this many entries", "worker"),
    _s("BERTH_WORKER_CONCURRENCY", int, 4,
       "worker processes of `python -m worker`. Deployments wait on health checks, so a "
       "few processes per worker host go a long way; tasks are `acks_late` with prefetch "
       "1, so a killed worker's task is run again by another", "worker",
       attr="concurrency"),
    _s("BERTH_WATCH_EVENTS", bool, True,
       "follow the agents' Docker events for fast replacement", "worker"),
    _s("BERTH_DRAIN_DELAY", float, 2.0,
       "a serving instance leaves its service's endpoints this long before a scale-down "
       "or an upgrade stops it (proxies drop it and finish its requests first)", "worker",
       shown="2 s", minimum=0),
    _s("BERTH_PROXY_RESYNC_INTERVAL", float, 10.0,
       "how often every registered proxy's configuration is compared with the routes and "
       "loaded again when it differs (a restarted Caddy gets its routes back)", "worker",
       shown="10 s", minimum=0),
    _s("BERTH_PROXY_TIMEOUT", float, 5.0,
       "timeout of one request to a proxy's admin API", "worker", shown="5 s", minimum=0),
    _s("BERTH_WORKER_FAST_CONCURRENCY", int, 16,
       "threads of the fast Celery worker of `python -m worker`: it takes only "
       "`berth.reconcile_service` (a dead or unhealthy instance replaced), from a queue of "
       "its own, so a recovery never waits behind periodic passes, and recoveries mostly "
       "wait on Docker and health checks, so threads let many services recover at once "
       "(no task time limit on threads); 0: none (the main processes take it then)",
       "worker", attr="fast_concurrency", minimum=0),
    # the CLI and the image -----------------------------------------------------------------
    _s("BERTH_URL", str, "http://127.0.0.1:8080",
       "the server the `berth` CLI talks to (else the saved login)", "client",
       shown="the saved login, else `http://127.0.0.1:8080`"),
    _s("BERTH_TOKEN", str, "", "the API token the `berth` CLI sends (else the saved login)",
       "client"),
    _s("BERTH_AGENTS", str, "",
       "`berth dev`: Docker engines to use as agents, comma-separated URLs; none: start "
       "three local engines", "dev"),
    _s("BERTH_PORT", int, 8080, "the port the image's server listens on", "image"),
    _s("BERTH_WEB_WORKERS", int, 2, "gunicorn processes of the image's server", "image"),
    _s("BERTH_WEB_THREADS", int, 64,
       "threads of each gunicorn process (`server/gunicorn_conf.py`); each open `/events` "
       "stream holds one while it waits", "image"),
    _s("BERTH_REDIS_PASSWORD", str, "",
       "the Redis servers' password: with `BERTH_REDIS_SENTINELS`, what the servers and "
       "workers send to the master (without Sentinel the URL carries it); "
       "`docker-compose.yml` puts it into every Berth URL (keep it URL-safe)",
       "server", "worker", "image", shown="none (compose refuses to start without it)"),
    _s("BERTH_AGENT_TLS_HOST_DIR", str, "./agents-tls",
       "`docker-compose.yml`: the host folder mounted read-only as `BERTH_AGENT_TLS_DIR`",
       "image"),
)


def by_name(name: str) -> Setting:
    """The setting called ``name``.

    :raises KeyError: when Berth has no such setting.
    """
    for setting in SETTINGS:
        if setting.name == name:
            return setting
    raise KeyError(name)


def default(name: str) -> Any:
    """The default of the setting called ``name`` (for settings classes' fields)."""
    return by_name(name).default


def settings_of(reader: str) -> tuple[Setting, ...]:
    """The settings one part reads (``server``, ``worker``, ``repository``…)."""
    return tuple(s for s in SETTINGS if reader in s.readers)


def parse(setting: Setting, raw: object) -> Any:
    """One raw value as the setting's type. Values that are not strings (injected by
    tests and callers) are taken as they are.

    :raises SettingsError: naming the variable when the value does not parse.
    """
    if not isinstance(raw, str):
        return tuple(raw) if setting.kind is tuple and isinstance(raw, list) else raw
    try:
        value = _typed(setting.kind, raw)
    except ValueError:
        raise SettingsError(f"{setting.name}={raw!r} is not {_KIND_WORDS[setting.kind]}") \
            from None
    if setting.minimum is not None and value < setting.minimum:
        raise SettingsError(f"{setting.name}={raw!r} must be {setting.minimum:g} or more")
    return value


_KIND_WORDS = {str: "a string", int: "a whole number", float: "a number",
               bool: "true or false", tuple: "a list of paths"}


def _typed(kind: Kind, raw: str) -> Any:
    """``raw`` converted to ``kind``.

    :raises ValueError: when it does not convert.
    """
    if kind is bool:
        return raw.strip().lower() in _TRUE
    if kind is int:
        return int(raw)
    if kind is float:
        return float(raw)
    if kind is tuple:
        return tuple(p.strip() for p in raw.replace(",", ":").split(":") if p.strip())
    return raw


def read(reader: str, environ: Mapping[str, object]) -> dict[str, Any]:
    """The values ``environ`` sets for one part's settings, by attribute name.

    A variable that is unset or empty keeps its default (compose files pass empty
    values for unset ones).

    :raises SettingsError: naming the first variable whose value does not parse.
    """
    values: dict[str, Any] = {}
    for setting in settings_of(reader):
        raw = environ.get(setting.name)
        if raw is None or raw == "":
            continue
        values[setting.field] = parse(setting, raw)
    return values


def markdown_table(settings: Iterable[Setting] = SETTINGS) -> str:
    """The settings as the Markdown table of ``docs/production.md``."""
    lines = ["| variable | default | read by | what |", "| --- | --- | --- | --- |"]
    for s in settings:
        lines.append(f"| `{s.name}` | {s.default_text} | {', '.join(s.readers)} | {s.help} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # ``python -m catalog.settings_table``: print the docs table
    print(markdown_table(), end="")
