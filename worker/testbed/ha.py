"""The test bed with no single point of failure: Redis through Sentinel, two servers and
two workers (``berth dev up --ha``, and the fixture of the failover tests).

``HaTestbed(var_dir, lane)`` is the bed of :mod:`worker.testbed.bed` (the same three
Docker engines, images and agents) with, instead of one Redis, one server and one
worker:

=================  ==============================================================
Redis              ``redis-1..3`` on ``127.0.0.1:(16500+20L)..+2``: ``redis-1`` starts
                   as the master, the others as its replicas; AOF on (flushed by the
                   OS: acknowledged writes are kept by the replicas); one password
                   (``requirepass`` and ``masterauth``) in 0600 config files
Sentinels          ``sentinel-1..3`` on ``127.0.0.1:(16510+20L)..+2``, quorum 2,
                   ``down-after-milliseconds`` 1500 unless given, their own password
servers            ``server-1`` on :func:`~worker.testbed.bed.server_port`, ``server-2``
                   100 above it (``gunicorn server.wsgi:app``)
workers            ``worker-1``, ``worker-2`` (``python -m worker``)
agents' ports      ``agent-i``: ``10000 + (L mod 20)*600 + (i-1)*200 … +199`` (below
                   the ephemeral range, whatever the lane)
=================  ==============================================================

Every part takes its settings from ``BERTH_…`` variables only (:attr:`HaTestbed.env`):
``BERTH_REDIS_SENTINELS``, ``BERTH_REDIS_MASTER``, the two passwords, and
``BERTH_REDIS_MIN_REPLICAS=1``. Fault helpers act on one named process by its pid:
:meth:`kill` (SIGKILL), :meth:`freeze` / :meth:`thaw` (SIGSTOP / SIGCONT: a partitioned
host), :meth:`start_part` (start a stopped Redis again: Sentinel makes it a replica).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from worker.settings import WorkerSettings
from worker.store import Store
from worker.testbed import processes as proc
from worker.testbed.bed import Testbed, server_port

__all__ = ["HaTestbed", "MASTER_NAME", "agent_ports", "redis_ports", "sentinel_ports"]

MASTER_NAME = "berth"
REPLICAS = 2


def redis_ports(lane: int) -> list[int]:
    """The ports of ``redis-1..3`` in one lane."""
    return [16500 + 20 * lane + i for i in range(REPLICAS + 1)]


def agent_ports(lane: int) -> int:
    """The first host port of ``agent-1`` in one lane (``agent-i``: 200 further each).

    Below Linux's ephemeral range (32768 and up): a port there may be held by any
    outgoing connection on the machine, and an instance could not bind it.
    """
    return 10000 + (lane % 20) * 600


def sentinel_ports(lane: int) -> list[int]:
    """The ports of ``sentinel-1..3`` in one lane."""
    return [16510 + 20 * lane + i for i in range(3)]


class HaTestbed(Testbed):
    """Three Redis, three Sentinels, two servers, two workers and the bed's engines."""

    __test__ = False

    def __init__(self, var_dir: str | os.PathLike[str], lane: int = 0, *,
                 worker_env: dict[str, str] | None = None, down_after_ms: int = 1500,
                 workers: int = 2, servers: int = 2, **more: Any) -> None:
        super().__init__(var_dir, lane, worker_env=worker_env, **more)
        for i, agent in enumerate(self.agents):
            if not agent.get("external"):
                low = agent_ports(lane) + 200 * i
                agent["port_range"] = [low, low + 199]
        self.down_after_ms = down_after_ms
        self.worker_count = workers
        self.server_count = servers
        self.server_urls = [f"http://127.0.0.1:{server_port(lane) + 100 * i}"
                            for i in range(servers)]

    # -- settings ----------------------------------------------------------------------
    @property
    def sentinel_password(self) -> str:
        """The Sentinels' own password, made once in ``var_dir/sentinel.password``."""
        path = self.var_dir / "sentinel.password"
        if not (path.is_file() and path.read_text().strip()):
            _private(path, secrets.token_urlsafe(24) + "\n")
        return path.read_text().strip()

    @property
    def env(self) -> dict[str, str]:
        """``BERTH_…`` variables of every server, worker and CLI of the bed: Sentinel."""
        env = dict(super().env)
        env.pop("BERTH_REDIS_URL", None)
        env.update({
            "BERTH_REDIS_SENTINELS": ",".join(f"127.0.0.1:{p}"
                                              for p in sentinel_ports(self.lane)),
            "BERTH_REDIS_MASTER": MASTER_NAME, "BERTH_REDIS_PASSWORD": self.redis_password,
            "BERTH_REDIS_SENTINEL_PASSWORD": self.sentinel_password,
            "BERTH_REDIS_MIN_REPLICAS": "1"})
        return {**env, **self.worker_env}

    @property
    def redis_url_shown(self) -> str:
        ports = ",".join(str(p) for p in sentinel_ports(self.lane))
        return (f"Sentinels 127.0.0.1:{ports}, master {MASTER_NAME!r} "
                f"(passwords in {self.var_dir})")

    def settings(self) -> WorkerSettings:
        """The bed's settings as a worker reads them."""
        return WorkerSettings.from_env(self.env)

    def store(self) -> Store:
        """A store on the bed's Sentinel set (follows a failover like a worker's)."""
        return Store.from_settings(self.settings())

    def save(self) -> None:
        """The bed's state, marked ``"ha"`` so that ``berth dev down`` loads this class."""
        super().save()
        state = json.loads(self.state_file.read_text())
        state.update(ha=True, server_urls=self.server_urls if self.serving else [])
        self.state_file.write_text(json.dumps(state, indent=2))

    # -- Redis and Sentinels -------------------------------------------------------------
    def redis_client(self, name: str, timeout: float = 1.0) -> redis.Redis:
        """A direct client of ``redis-N`` (not through Sentinel)."""
        port = redis_ports(self.lane)[int(name.rsplit("-", 1)[1]) - 1]
        return redis.Redis(host="127.0.0.1", port=port, password=self.redis_password,
                           socket_timeout=timeout, socket_connect_timeout=timeout,
                           decode_responses=True)

    def sentinel_client(self, index: int = 0, timeout: float = 1.0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=sentinel_ports(self.lane)[index],
                           password=self.sentinel_password, socket_timeout=timeout,
                           socket_connect_timeout=timeout, decode_responses=True)

    def start_redis(self) -> None:
        """Start the master, its two replicas and the three Sentinels; wait until the
        replicas are in sync and every Sentinel knows the others."""
        for i in range(1, REPLICAS + 2):
            self.start_part(f"redis-{i}", replica_of=None if i == 1 else 1)
        self._wait("replicas in sync", self._replicas_synced, "redis-1")
        for i in range(1, 4):
            self._start_sentinel(i)
        self._wait("Sentinels agree", self._sentinels_ready, "sentinel-1", timeout=60)

    def start_part(self, name: str, *, replica_of: int | None = None) -> None:
        """Start ``redis-N`` (a replica of ``redis-<replica_of>`` when given; a Redis
        started again without it comes up a master and Sentinel demotes it)."""
        index = int(name.rsplit("-", 1)[1])
        folder = self.var_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        lines = [f"port {redis_ports(self.lane)[index - 1]}", "bind 127.0.0.1",
                 "protected-mode yes", f"dir {folder}", f"requirepass {self.redis_password}",
                 f"masterauth {self.redis_password}", "appendonly yes",
                 # the AOF is written, the OS flushes it: on a test machine shared with
                 # busy engines an fsync can stall Redis for seconds, and what keeps an
                 # acknowledged write here is the replica that took it (WAIT)
                 "appendfsync no", 'save ""', "repl-diskless-sync yes",
                 "repl-diskless-sync-delay 0"]
        if replica_of is not None:
            lines.append(f"replicaof 127.0.0.1 {redis_ports(self.lane)[replica_of - 1]}")
        config = folder / "redis.conf"
        _private(config, "\n".join(lines) + "\n")
        self._spawn(name, ["redis-server", str(config)], marker="redis-server")
        self._wait(name, lambda: _answers(self.redis_client(name)), name)

    def _start_sentinel(self, index: int) -> None:
        name = f"sentinel-{index}"
        folder = self.var_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        master = redis_ports(self.lane)[0]
        config = folder / "sentinel.conf"   # Sentinel rewrites it: kept in its folder
        _private(config, "\n".join([
            f"port {sentinel_ports(self.lane)[index - 1]}", "bind 127.0.0.1", f"dir {folder}",
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2",
            f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}",
            f"sentinel failover-timeout {MASTER_NAME} {max(4 * self.down_after_ms, 5000)}",
            f"sentinel parallel-syncs {MASTER_NAME} {REPLICAS}",
            f"sentinel auth-pass {MASTER_NAME} {self.redis_password}",
            f"requirepass {self.sentinel_password}",
            f"sentinel sentinel-pass {self.sentinel_password}"]) + "\n")
        self._spawn(name, ["redis-server", str(config), "--sentinel"], marker="redis-server")
        self._wait(name, lambda: _answers(self.sentinel_client(index - 1)), name)

    def _replicas_synced(self) -> bool:
        info = self.redis_client("redis-1").info("replication")
        online = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
                  and v.get("state") == "online"]
        return len(online) == REPLICAS

    def _sentinels_ready(self) -> bool:
        for i in range(3):
            state: Any = self.sentinel_client(i).sentinel_master(MASTER_NAME)
            if int(state.get("num-slaves", 0)) < REPLICAS or \
                    int(state.get("num-other-sentinels", 0)) < 2:
                return False
        return True

    def master(self) -> str:
        """The name (``redis-N``) of the master the Sentinels name now."""
        for i in range(3):
            try:
                address: Any = self.sentinel_client(i).sentinel_get_master_addr_by_name(
                    MASTER_NAME)
                _host, port = address
            except redis.RedisError:
                continue
            return f"redis-{redis_ports(self.lane).index(int(port)) + 1}"
        raise proc.TestbedError("no Sentinel answers")

    def role(self, name: str) -> str:
        """``master`` or ``slave``, as ``redis-N`` itself says."""
        return str(self.redis_client(name).execute_command("ROLE")[0])

    def _wait(self, what: str, ready: Callable[[], bool], name: str, *,
              timeout: float = 30) -> None:
        def check() -> bool:
            try:
                return ready()
            except redis.RedisError:
                return False

        proc.wait_for(check, what=what, pid=self.pids[name],
                      log=self.log_dir / f"{name}.log", timeout=timeout)

    # -- faults ------------------------------------------------------------------------
    def kill(self, name: str) -> None:
        """SIGKILL one part (a crash: no clean-up runs) and forget it."""
        pid = self.pids.pop(name, None)
        if pid is not None:
            proc.kill(pid)
        (self.root / "pids" / f"{name}.pid").unlink(missing_ok=True)
        self.save()

    def freeze(self, name: str) -> None:
        """SIGSTOP one part: it hangs the way a partitioned host does."""
        os.kill(self.pids[name], signal.SIGSTOP)

    def thaw(self, name: str) -> None:
        """SIGCONT a frozen part."""
        os.kill(self.pids[name], signal.SIGCONT)

    # -- workers and servers -----------------------------------------------------------
    def start_worker(self, index: int | None = None) -> None:
        """Start ``worker-N`` (every worker when ``index`` is None)."""
        for i in [index] if index else range(1, self.worker_count + 1):
            name = f"worker-{i}"
            log = self.log_dir / f"{name}.log"
            offset = proc.log_size(log)
            self._spawn(name, [sys.executable, "-m", "worker"], marker="-m worker",
                        env=self.env)
            proc.wait_for(_log_says(log, " ready.", offset), what=name, pid=self.pids[name],
                          log=log, timeout=60)
        self.save()

    def start_server(self, index: int | None = None) -> None:
        """Start ``server-N`` (every server when None) and make sure an admin token exists."""
        for i in [index] if index else range(1, self.server_count + 1):
            name, url = f"server-{i}", self.server_urls[i - 1]
            port = url.rsplit(":", 1)[1]
            self._spawn(name, [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}",
                               "--workers", "2", "--threads", "4", "--no-control-socket",
                               "server.wsgi:app"], marker="gunicorn", env=self.env)
            proc.wait_for(_http_answers(url), what=name,
                          pid=self.pids[name], log=self.log_dir / f"{name}.log", timeout=60)
        self.serving = True
        self.server_url = self.server_urls[0]
        self.admin_token = self.ensure_admin_token()
        self.save()

    def stop(self) -> None:
        """Stop every part this bed started, by pid (frozen ones are thawed first)."""
        for name in list(self.pids):
            if name.startswith(("server-", "worker-", "redis-", "sentinel-")):
                try:
                    os.kill(self.pids[name], signal.SIGCONT)
                except ProcessLookupError:
                    pass
        for name in sorted(n for n in self.pids if n.startswith(("server-", "worker-"))):
            self._stop(name)
        self.remove_containers()
        for name in [n for n in self.pids if n.startswith("agent-")]:
            self._stop(name, grace=30)
        for name in sorted(n for n in self.pids if n.startswith(("sentinel-", "redis-"))):
            self._stop(name)
        self.serving = False
        self.save()


def _log_says(log: Path, text: str, offset: int) -> Callable[[], bool]:
    return lambda: proc.log_says(log, text, offset)


def _http_answers(url: str) -> Callable[[], bool]:
    return lambda: proc.http_answers(url)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    finally:
        client.close()


def _private(path: Path, text: str) -> None:
    """Write a file only its owner may read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def wait_until(check: Callable[[], bool], *, timeout: float, what: str,
               interval: float = 0.1) -> float:
    """Poll ``check`` until true; the seconds it took.

    :raises proc.TestbedError: past ``timeout``.
    """
    started = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - started
        except redis.RedisError:
            pass
        if time.monotonic() - started > timeout:
            raise proc.TestbedError(f"{what}: not after {timeout:g} s")
        time.sleep(interval)

