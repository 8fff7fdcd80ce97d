"""The local test bed: real Redis, three Docker engines, the local images, a worker.

``Testbed(var_dir, lane=0)`` starts and stops real parts on this machine (see
``docs/architecture.md`` and ``shared/TESTBED.md``). Lane ``L`` keeps side-by-side
runs apart:

=================  ==============================================================
Redis              ``127.0.0.1:(6390+L)``, AOF on, data in ``var_dir/redis``; a
                   password generated once into ``var_dir/redis.password`` (0600)
agents             ``agent-1..3``, engines at ``unix:///tmp/berth-L/agentN/docker.sock``;
                   instances on address ``127.0.(10+L).2..4`` (lane 0:
                   ``127.0.0.2..4``); host ports of agent ``i``:
                   ``20000 + L*1000 + (i-1)*300 … +299``
engine folders     ``/tmp/berth-L/agentN/{data,exec}`` (0700; short: sockets live there)
host-path root     ``/tmp/berth-L/hostpaths`` (``BERTH_ALLOWED_HOST_PATHS`` of the worker)
logs               ``var_dir/log/*.log`` (never the terminal)
server (serve)     ``127.0.0.1:8080`` (lane 0) or ``18080+L``
=================  ==============================================================

``start()`` installs missing Debian packages with apt, stops leftovers of an earlier
run of the same lane (by pidfile), starts Redis and the engines in parallel, waits
for each, builds the images under ``universe/images`` (``hello``, the test database
``testdb``, the ``toolbox``) and loads them on every agent,
removes stale Berth containers, registers the agents, then starts the worker (and
the server with ``serve=True``). The state goes to ``var_dir/testbed.json`` so that
``Testbed.load(var_dir).stop()`` works from another process. ``stop()`` stops exactly
what was started, by pid. Fault helpers: ``kill_worker``, ``start_worker``,
``stop_agent``/``start_agent``, ``restart_redis``.

Containers run on the host network here (the engines have no bridge), so they reach
every loopback port. Nothing there may give control: Redis wants its password (kept
in a 0600 config file, never on a command line) and the engines listen on unix sockets
in 0700 folders, which no container sees (the spec policy refuses such host paths).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, urlsplit

from worker.agents import URL_SCHEMES, register_agent
from worker.docker_agent import DockerAgent, agent_tls
from worker.errors import AgentUnreachable
from worker.store import Store
from worker.store.crypto import generate_key
from worker.testbed import processes as proc
from worker.testbed.images import build_images

__all__ = ["Testbed", "AgentSpec", "TestbedError", "configured_agents", "lane_agents",
           "redis_port", "server_port"]

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "universe" / "images"
AGENT_COUNT = 3
ZONES, RACKS = ("a", "b", "c"), ("r1", "r1", "r2")
TestbedError = proc.TestbedError


def redis_port(lane: int) -> int:
    return 6390 + lane


def server_port(lane: int) -> int:
    return 8080 if lane == 0 else 18080 + lane


class AgentSpec(dict):  # type: ignore[type-arg]
    """One agent of the bed: ``id``, ``url``, ``address``, ``port_range``, ``attributes``."""

    @property
    def id(self) -> str:
        return str(self["id"])

    @property
    def url(self) -> str:
        return str(self["url"])

    @property
    def address(self) -> str:
        return str(self["address"])

    @property
    def port_range(self) -> tuple[int, int]:
        low, high = self["port_range"]
        return int(low), int(high)


def lane_root(lane: int) -> Path:
    """The folder of a lane's engines (short: unix socket paths are limited in length)."""
    return Path(f"/tmp/berth-{lane}")  # noqa: S108 - short paths, per the contract


def lane_agents(lane: int, count: int = AGENT_COUNT) -> list[AgentSpec]:
    """The agents of a lane: addresses, engine sockets, port ranges and attributes.

    An engine listens on a unix socket only (never TCP: a container on the host
    network would reach it); ``address`` is where its instances' ports are.
    """
    agents = []
    for i in range(1, count + 1):
        address = f"127.0.0.{i + 1}" if lane == 0 else f"127.0.{10 + lane}.{i + 1}"
        low = 20000 + lane * 1000 + (i - 1) * 300
        socket = lane_root(lane) / f"agent{i}" / "docker.sock"
        agents.append(AgentSpec(
            id=f"agent-{i}", url=f"unix://{socket}", address=address,
            port_range=[low, low + 299],
            attributes={"hostname": f"agent-{i}", "zone": ZONES[(i - 1) % 3],
                        "rack": RACKS[(i - 1) % 3]}))
    return agents


def configured_agents(urls: Sequence[str], lane: int) -> list[AgentSpec]:
    """Agents given by Docker URL (``BERTH_AGENTS``): Berth starts no engine for them.

    Ids are ``agent-1…``, the address is the URL's host (loopback for a ``unix://``
    socket), and port ranges follow the lane's pattern.

    :raises TestbedError: a URL is not a Docker engine URL.
    """
    agents = []
    for i, url in enumerate(urls, start=1):
        parts = urlsplit(url)
        if parts.scheme not in URL_SCHEMES:
            raise TestbedError(f"BERTH_AGENTS: {url!r} is not a Docker engine URL",
                               hint="tcp://host:2375, unix:///var/run/docker.sock, "
                                    "ssh://user@host")
        low = 20000 + lane * 1000 + (i - 1) * 300
        agents.append(AgentSpec(
            id=f"agent-{i}", url=url, address=parts.hostname or "127.0.0.1",
            port_range=[low, low + 299], external=True,
            attributes={"hostname": parts.hostname or f"agent-{i}"}))
    return agents


class Testbed:
    """Real Redis + Docker engines + worker (+ server) for one lane.

    With ``agent_urls`` the engines are the caller's own (``berth dev up --agents``):
    they are registered and given the ``hello`` images, but never started, stopped or
    cleared of containers by the bed.
    """

    __test__ = False   # not a test class, though pytest would collect it by its name

    # Worker settings for a quick bed (tests): read them, do not hard-code them.
    reconcile_interval = 1.0
    unreachable_timeout = 6.0
    heartbeat_interval = 1.0

    def __init__(self, var_dir: str | os.PathLike[str], lane: int = 0, *,
                 worker_env: dict[str, str] | None = None,
                 agent_urls: Sequence[str] = (), agent_tls_dir: str = "") -> None:
        self.var_dir = Path(var_dir).resolve()
        self.lane = lane
        self.root = lane_root(lane)
        self.log_dir = self.var_dir / "log"
        self.image_dir = self.var_dir / "images"
        self.host_root = self.root / "hostpaths"   # BERTH_ALLOWED_HOST_PATHS of the lane
        self.server_url = f"http://127.0.0.1:{server_port(lane)}"
        self.agents = configured_agents(agent_urls, lane) if agent_urls else lane_agents(lane)
        self.images: list[str] = []
        self.pids: dict[str, int] = {}
        self.admin_token: str | None = None
        self.serving = False
        self.worker_env = dict(worker_env or {})
        # TLS files of the caller's own engines: <dir>/agent-N/{ca,cert,key}.pem
        self.agent_tls_dir = agent_tls_dir

    # -- state ----------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.var_dir / "testbed.json"

    @property
    def password_file(self) -> Path:
        return self.var_dir / "redis.password"

    @property
    def redis_password(self) -> str:
        """Redis's password: read from ``var_dir/redis.password``, made there once (0600)."""
        path = self.password_file
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip()
        _write_private(path, secrets.token_urlsafe(32) + "\n")
        return path.read_text().strip()

    @property
    def redis_url(self) -> str:
        """The URL every part of the bed uses: it carries the password."""
        password = quote(self.redis_password, safe="")
        return f"redis://:{password}@127.0.0.1:{redis_port(self.lane)}/0"

    @property
    def redis_url_shown(self) -> str:
        """The Redis URL with the password masked (for terminals and logs)."""
        port = redis_port(self.lane)
        return f"redis://:***@127.0.0.1:{port}/0 (password in {self.password_file})"

    def save(self) -> None:
        """Write pids, URLs and the lane to ``var_dir/testbed.json``."""
        state = {"lane": self.lane, "redis_url": self.redis_url_shown, "pids": self.pids,
                 "agents": self.agents, "images": self.images, "serving": self.serving,
                 "server_url": self.server_url if self.serving else None,
                 "agent_tls_dir": self.agent_tls_dir}
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(state, indent=2))

    @classmethod
    def load(cls, var_dir: str | os.PathLike[str]) -> Testbed:
        """The bed described by ``var_dir/testbed.json`` (for ``down``/``status``).

        :raises TestbedError: no bed was started with this folder.
        """
        path = Path(var_dir) / "testbed.json"
        if not path.is_file():
            raise TestbedError(f"no test bed state in {path}",
                               hint=f"start one with `berth dev up --var {var_dir}` (make run)")
        state = json.loads(path.read_text())
        bed = cls(var_dir, lane=int(state["lane"]),
                  agent_tls_dir=str(state.get("agent_tls_dir") or ""))
        if state.get("agents"):
            bed.agents = [AgentSpec(a) for a in state["agents"]]
        bed.pids = {k: int(v) for k, v in state.get("pids", {}).items()}
        bed.images = list(state.get("images", []))
        bed.serving = bool(state.get("serving"))
        token = bed.var_dir / "admin.token"
        bed.admin_token = token.read_text().strip() if token.is_file() else None
        return bed

    def status(self) -> dict[str, bool]:
        """Which of the started processes are alive, by name."""
        return {name: proc.alive(pid) for name, pid in sorted(self.pids.items())}

    # -- environment -----------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """``BERTH_…`` variables for a worker, server or CLI against this bed."""
        env = {"BERTH_REDIS_URL": self.redis_url, "BERTH_IMAGE_DIR": str(self.image_dir),
               # the engines here have no bridge: packages run on the host network,
               # which reaches nothing of Berth's (see the module docstring)
               "BERTH_ALLOW_HOST_NETWORK": "true",
               # the local system serves repositories on this machine, so loopback
               # addresses are allowed for remote repositories (private ranges are not)
               "BERTH_REPOSITORY_ALLOW_LOOPBACK": "1",
               "BERTH_DATA_KEY": self.data_key(),
               # the lane's own host-path root (the engines run on this machine)
               "BERTH_ALLOWED_HOST_PATHS": str(self.host_root),
               # backups go to the named volume berth-backups on the third agent
               "BERTH_BACKUP_AGENT": "agent-3"}
        if self.lane != 0:  # test lanes: quick reconciling (lane 0 keeps the defaults)
            env.update(BERTH_RECONCILE_INTERVAL=str(self.reconcile_interval),
                       BERTH_UNREACHABLE_TIMEOUT=str(self.unreachable_timeout),
                       BERTH_HEARTBEAT_INTERVAL=str(self.heartbeat_interval))
        if self.agent_tls_dir:
            env["BERTH_AGENT_TLS_DIR"] = self.agent_tls_dir
        return {**env, **self.worker_env}

    def data_key(self) -> str:
        """The bed's data key (``BERTH_DATA_KEY``), made once and kept in
        ``var_dir/data.key`` (mode 0600) so records sealed earlier still open."""
        path = self.var_dir / "data.key"
        if not path.is_file():
            self.var_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(generate_key() + "\n")
        return path.read_text().strip()

    def agent(self, which: int | str) -> DockerAgent:
        """A ``DockerAgent`` for agent ``i`` (1-based) or ``"agent-i"``."""
        return self._docker(self.agents[self._index(which)])

    def _docker(self, spec: AgentSpec, timeout: float = 10) -> DockerAgent:
        """A client of one agent, over TLS when ``agent_tls_dir`` has its files."""
        return DockerAgent(spec.url, timeout=timeout,
                           tls=agent_tls(self.agent_tls_dir, spec.id))

    def store(self) -> Store:
        """A ``worker.store.Store`` on this bed's Redis."""
        return Store.from_url(self.redis_url)

    # -- start / stop ----------------------------------------------------------------

    def start(self, *, worker: bool = True, serve: bool = False) -> Testbed:
        """Start everything (see the module docstring); returns self.

        :raises TestbedError: a part did not come up (naming its log file).
        """
        proc.ensure_packages(self.log_dir)
        self.stop_leftovers()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        own = [i for i, spec in enumerate(self.agents, start=1) if not spec.get("external")]
        with ThreadPoolExecutor(max_workers=len(self.agents) + 1) as pool:
            jobs = [pool.submit(self.start_redis)]
            jobs += [pool.submit(self.start_agent, i) for i in own]
            for job in jobs:
                job.result()
        self.save()
        self.check_configured_agents()
        self.images = build_images([self.agent(i) for i in range(1, len(self.agents) + 1)],
                                   IMAGES, self.image_dir)
        self.remove_containers()
        self.register_agents()
        if worker:
            self.start_worker()
        if serve:
            self.start_server()
        self.save()
        return self

    def stop(self) -> None:
        """Stop what this bed started, by pid: server, worker, containers, engines, Redis."""
        for name in ("server", "worker"):
            self._stop(name)
        self.remove_containers()
        for name in [n for n in self.pids if n.startswith("agent-")]:
            self._stop(name, grace=30)
        self._stop("redis")
        self.serving = False
        self.save()

    def check_configured_agents(self) -> None:
        """Every agent given by URL must answer.

        :raises TestbedError: naming the ones that do not.
        """
        silent = [spec.url for spec in self.agents
                  if spec.get("external") and not self._docker(spec, timeout=5).is_up()]
        if silent:
            raise TestbedError(f"configured agents do not answer: {', '.join(silent)}",
                               hint="check BERTH_AGENTS and that each Docker engine listens")

    def stop_leftovers(self) -> None:
        """Stop processes of an earlier run of this lane, found by their pidfiles."""
        for pidfile in sorted((self.root / "pids").glob("*.pid")):
            proc.stop_pidfile(pidfile, grace=30)
        for agent in self.agents:
            if agent.get("external"):
                continue  # the caller's own engine
            proc.stop_pidfile(self._agent_dir(agent.id) / "docker.pid", grace=30,
                              program="dockerd")

    def _stop(self, name: str, *, grace: float = 10) -> None:
        pid = self.pids.pop(name, None)
        if pid is not None:
            proc.terminate(pid, grace=grace)
        (self.root / "pids" / f"{name}.pid").unlink(missing_ok=True)

    def _spawn(self, name: str, argv: list[str], *, marker: str,
               env: dict[str, str] | None = None) -> int:
        """Start one process with its output in ``log/<name>.log``; remember its pid.

        ``marker`` is a word of its command line: a leftover pidfile is only acted on
        while the pid still runs a command with that word.
        """
        pid = proc.spawn(argv, self.log_dir / f"{name}.log", env=env, cwd=REPO)
        self.pids[name] = pid
        proc.write_pidfile(self.root / "pids" / f"{name}.pid", pid, marker)
        return pid

    # -- Redis -----------------------------------------------------------------------

    def start_redis(self) -> None:
        """Start redis-server (AOF, fsync always, a password) and wait for PING."""
        data = self.var_dir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        config = self.var_dir / "redis.conf"   # the password stays off the command line
        _write_private(config, f"requirepass {self.redis_password}\n")
        self._spawn("redis", ["redis-server", str(config), "--bind", "127.0.0.1",
                              "--port", str(redis_port(self.lane)), "--dir", str(data),
                              "--appendonly", "yes", "--appendfsync", "always",
                              "--save", "", "--protected-mode", "yes"], marker="redis-server")
        proc.wait_for(lambda: proc.redis_ping(self.redis_url), what="redis",
                      pid=self.pids["redis"], log=self.log_dir / "redis.log")

    def stop_redis(self) -> None:
        """Stop Redis gracefully (it writes its AOF)."""
        self._stop("redis")

    def restart_redis(self) -> None:
        """Stop and start Redis (fault tests): state comes back from the AOF."""
        self.stop_redis()
        self.start_redis()
        self.save()

    # -- engines ---------------------------------------------------------------------

    def _agent_dir(self, agent_id: str) -> Path:
        return self.root / agent_id.replace("agent-", "agent")

    def start_agent(self, which: int | str) -> None:
        """Start one agent's dockerd and wait for ``/_ping``."""
        spec = self.agents[self._index(which)]
        folder = self._agent_dir(spec.id)
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)   # the socket's folder: root only
        proc.stop_pidfile(folder / "docker.pid", grace=30, program="dockerd")
        # a dockerd that crashed leaves its containerd, which the next one would wait on
        proc.stop_pidfile(folder / "exec" / "containerd" / "containerd.pid", grace=30,
                          program="containerd")
        self._spawn(spec.id, [
            "dockerd", "--iptables=false", "--ip6tables=false", "--bridge=none",
            "--storage-driver=vfs", "--data-root", str(folder / "data"),
            "--exec-root", str(folder / "exec"), "--pidfile", str(folder / "docker.pid"),
            "--cgroup-parent", f"/berth-{self.lane}-{folder.name}", "-H", spec.url],
                    marker="dockerd")
        agent = DockerAgent(spec.url, timeout=2)
        proc.wait_for(agent.is_up, what=spec.id, pid=self.pids[spec.id],
                      log=self.log_dir / f"{spec.id}.log", timeout=60)

    def stop_agent(self, which: int | str) -> None:
        """Stop one agent's engine (its containers stop with it)."""
        self._stop(self.agents[self._index(which)].id, grace=30)
        self.save()

    def revive_agents(self) -> list[str]:
        """Start again each engine this bed started that has died since; their ids.

        An engine stopped on purpose (:meth:`stop_agent`) is not among them. One that
        crashed is: Docker 20.10's Swarm manager can panic while a service is removed,
        and the tests after it need the bed's engines running. Each one is said on
        standard error.
        """
        revived = []
        for i, spec in enumerate(self.agents, start=1):
            pid = self.pids.get(spec.id)
            if pid is not None and not proc.alive(pid):
                del self.pids[spec.id]
                self.start_agent(i)
                revived.append(spec.id)
                print(f"\nthe engine of {spec.id} had died and was started again; see "
                      f"{self.log_dir}/{spec.id}.log", file=sys.stderr)
        if revived:
            self.save()
        if revived and "worker" in self.pids:   # the next test finds them up, not lost
            agents = self.store().agents

            def up(agent_id: str) -> bool:
                record = agents.get(agent_id)
                return record is not None and record["state"] == "up"

            proc.wait_for(lambda: all(up(a) for a in revived),
                          what=f"the worker to see {', '.join(revived)} up",
                          pid=self.pids["worker"], log=self.log_dir / "worker.log")
        return revived

    def _index(self, which: int | str) -> int:
        return int(str(which).rsplit("-", 1)[-1]) - 1

    def _running_engines(self) -> Iterator[DockerAgent]:
        """The clients of the engines this bed started and runs now."""
        for i, spec in enumerate(self.agents, start=1):
            if spec.id in self.pids:
                yield self.agent(i)

    def remove_containers(self) -> int:
        """Remove every container on the bed's running engines (they are the bed's own)."""
        removed = 0
        for agent in self._running_engines():
            try:
                for info in agent.list_instances(()):
                    removed += agent.remove(info.id)
            except AgentUnreachable:  # a stopped engine keeps its (stopped) containers
                continue
        return removed

    def remove_volumes(self) -> int:
        """Remove every Berth volume on the bed's running engines.

        For a test session, whose Redis is new: the engines keep their folders (and
        images) between runs, and a volume an earlier run left over would show up as a
        second copy of a service's data, or be taken up again with old data.
        """
        removed = 0
        for agent in self._running_engines():
            try:
                for volume in agent.list_volumes():
                    removed += agent.remove_volume(volume.name)
            except AgentUnreachable:
                continue
        return removed

    def register_agents(self) -> None:
        """Register (or update) the bed's agents in the store."""
        store = self.store()
        for spec in self.agents:
            register_agent(store, spec.url, agent_id=spec.id, tls_dir=self.agent_tls_dir,
                           attributes=dict(spec["attributes"]),
                           port_range=tuple(spec.port_range), address=spec.address)

    # -- worker and server -----------------------------------------------------------

    def start_worker(self) -> None:
        """Start ``python -m worker`` against this bed and wait until it is ready."""
        log = self.log_dir / "worker.log"
        offset = proc.log_size(log)
        self._spawn("worker", [sys.executable, "-m", "worker"], marker="-m worker",
                    env=self.env)
        proc.wait_for(lambda: proc.log_says(log, " ready.", offset),
                      what="worker", pid=self.pids["worker"],
                      log=self.log_dir / "worker.log", timeout=60)
        self.save()

    def kill_worker(self) -> None:
        """SIGKILL the worker (fault tests: a crash mid-deployment)."""
        pid = self.pids.pop("worker", None)
        if pid is not None:
            proc.kill(pid)
        self.save()

    def restart_worker(self) -> None:
        """Stop the worker gracefully and start a new one."""
        self._stop("worker")
        self.start_worker()

    def start_server(self) -> None:
        """Start the Berth server with gunicorn and make sure an admin token exists."""
        port = server_port(self.lane)
        self._spawn("server", [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}",
                               "-c", "python:server.gunicorn_conf", "--no-control-socket",
                               "server.wsgi:app"],
                    marker="gunicorn", env=self.env)
        proc.wait_for(lambda: proc.http_answers(self.server_url), what="server",
                      pid=self.pids["server"], log=self.log_dir / "server.log", timeout=60)
        self.serving = True
        self.admin_token = self.ensure_admin_token()
        self.save()

    def ensure_admin_token(self) -> str:
        """Read ``var_dir/admin.token``, creating an admin token first when it is missing."""
        path = self.var_dir / "admin.token"
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip()
        token = proc.run_cli(["admin", "token", "create", "--role", "admin", "--name",
                              "local", "--raw"], env=self.env, log=self.log_dir / "cli.log")
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(token + "\n")
        return token


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner may read (created 0600, never wider)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(text)
