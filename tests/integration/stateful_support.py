"""Helpers of the stateful-service tests: Berth's test database (``testdb``, a real Redis)
installed from the universe, and real data written and read back through its own client.

Data goes in and comes out through Debian's ``redis-cli`` run on the host against the
instance's address and port (the password in ``REDISCLI_AUTH``, never on a command
line), or through the ``redis-cli`` inside the container by the Docker engine's exec. A
data set is compared by a checksum of its sorted keys and values, so "all the data is
there" is one equality.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import docker.errors
from cluster_support import catalog

from catalog.options import resolve_options
from catalog.render import render_service
from worker.docker_agent import DockerAgent

KEY = re.compile(r"[A-Za-z0-9:._-]+")
BATCH = 500


def testdb(version: str, name: str, password: str,
           constraints: Iterable[Iterable[str]] = (), **options: Any) -> tuple[dict, dict]:
    """(package identity, rendered spec) of the universe's ``testdb`` package."""
    package = catalog().resolve("testdb", version)
    chosen = {**options, "auth": {"password": password}}
    spec = render_service(package, resolve_options(package, chosen), service_name=name,
                          constraints=tuple(tuple(c) for c in constraints))
    identity = {"name": package.name, "version": package.version,
                "repository": package.repository}
    return identity, spec


testdb.__test__ = False  # type: ignore[attr-defined]


class RedisCliError(AssertionError):
    """redis-cli failed or answered something other than what was asked for."""


@dataclass(frozen=True)
class TestDb:
    """One running testdb instance, reached from the host with Debian's redis-cli."""

    address: str
    port: int
    password: str

    __test__ = False

    @classmethod
    def of(cls, instance: Mapping[str, Any], password: str) -> TestDb:
        """The instance record's address and its ``redis`` port."""
        return cls(str(instance["address"]), int(instance["ports"]["redis"]), password)

    def cli(self, *args: str, commands: str | None = None, timeout: float = 60) -> str:
        """Run ``redis-cli ARGS`` (commands from ``commands`` on stdin); its output.

        :raises RedisCliError: non-zero exit, or an error reply on any line.
        """
        env = {**os.environ, "REDISCLI_AUTH": self.password}
        argv = ["redis-cli", "-h", self.address, "-p", str(self.port), "--raw", *args]
        result = subprocess.run(argv, input=commands, capture_output=True, text=True,
                                env=env, timeout=timeout, check=False)
        errors = [line for line in result.stdout.splitlines()
                  if line.startswith(("ERR", "NOAUTH", "WRONGPASS", "WRONGTYPE"))]
        if result.returncode != 0 or errors:
            raise RedisCliError(f"redis-cli {' '.join(args)}: exit {result.returncode}: "
                                f"{(errors or [result.stderr.strip()])[:3]}")
        return result.stdout

    def ping(self) -> bool:
        """True when the server answers PONG to an authenticated PING."""
        try:
            return self.cli("ping", timeout=5).strip() == "PONG"
        except (RedisCliError, subprocess.TimeoutExpired):
            return False

    def write(self, data: Mapping[str, str]) -> None:
        """SET every key to its value, in one redis-cli session; every reply must be OK."""
        for key, value in data.items():
            if not (KEY.fullmatch(key) and KEY.fullmatch(value)):
                raise ValueError(f"keys and values must match {KEY.pattern}: {key!r}")
        lines = "".join(f"SET {key} {value}\n" for key, value in data.items())
        replies = self.cli(commands=lines).split()
        if replies != ["OK"] * len(data):
            raise RedisCliError(f"SET: {len(replies)} replies, not {len(data)} OKs: "
                                f"{sorted(set(replies))[:3]}")

    def keys(self, pattern: str = "*") -> list[str]:
        """Every key matching ``pattern`` (SCAN through ``redis-cli --scan``), sorted."""
        return sorted(set(self.cli("--scan", "--pattern", pattern).split()))

    def dump(self, pattern: str = "*") -> dict[str, str]:
        """Every key matching ``pattern`` with its value (MGET in batches)."""
        keys = self.keys(pattern)
        values: list[str] = []
        for start in range(0, len(keys), BATCH):
            batch = keys[start:start + BATCH]
            values += self.cli(commands=f"MGET {' '.join(batch)}\n").splitlines()
        if len(values) != len(keys):
            raise RedisCliError(f"MGET: {len(values)} values for {len(keys)} keys")
        return dict(zip(keys, values, strict=True))

    def checksum(self, pattern: str = "*") -> str:
        """:func:`checksum` of what the server holds now."""
        return checksum(self.dump(pattern))


def sample(count: int, prefix: str = "key", seed: str = "berth") -> dict[str, str]:
    """``count`` keys ``<prefix>:<n>`` with values derived from ``seed`` (reproducible)."""
    return {f"{prefix}:{n:06d}": hashlib.sha256(f"{seed}:{n}".encode()).hexdigest()
            for n in range(count)}


def checksum(data: Mapping[str, str]) -> str:
    """SHA-256 of the sorted ``key NUL value LF`` lines: equal data, equal checksum."""
    digest = hashlib.sha256()
    for key in sorted(data):
        digest.update(f"{key}\0{data[key]}\n".encode())
    return digest.hexdigest()


def dbsize_in_container(agent: DockerAgent, container: str) -> int:
    """DBSIZE through the ``redis-cli`` inside the container (by the engine's exec).

    The password and port come from the container's own environment, so no secret is
    put on a command line.
    """
    result = agent.exec_check(container, 'REDISCLI_AUTH="$TESTDB_PASSWORD" '
                                         'redis-cli -p "$PORT_REDIS" DBSIZE', timeout=10)
    if not result.ok or not result.output.strip().isdigit():
        raise RedisCliError(f"DBSIZE in {container}: exit {result.exit_code}: "
                            f"{result.output.strip()[:200]}")
    return int(result.output.strip())


def unique(base: str) -> str:
    """A service name no earlier run used: a volume ``<name>-data`` left on an agent by
    an earlier run must never pass for data this run wrote."""
    return f"{base}-{secrets.token_hex(3)}"


def remove_volumes(agents: Iterable[DockerAgent], names: Iterable[str]) -> list[str]:
    """Remove the named volumes wherever they are (clean-up after a test); the removed."""
    removed = []
    for agent in agents:
        for name in names:
            try:
                agent.api.remove_volume(name, force=True)
            except docker.errors.NotFound:
                continue
            removed.append(name)
    return removed
