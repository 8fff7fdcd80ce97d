"""An image registry of the test bed: Debian's ``docker-registry`` on loopback, htpasswd auth.

``BedRegistry(var_dir, lane)`` serves on ``127.0.0.1:(5100+L)`` (lane ``L``), keeps
its blobs in ``var_dir/registry/data`` and its config and htpasswd file (bcrypt, made
with ``htpasswd -Bbn``, package ``apache2-utils``) beside them, logs to
``var_dir/log/registry.log``. The user is ``berth`` with a password generated once
into ``var_dir/registry/password`` (0600). ``start()`` waits until ``/v2/`` answers
(401 without credentials); ``stop()`` stops it by its pid; ``push(agent, ref)`` tags an
image an agent holds as ``<host>/<ref>`` and pushes it there with the credentials, and
removes the new tag from that agent again (so pulls in tests really pull).

Engines treat registries on ``127.0.0.0/8`` as insecure-allowed, so no TLS is needed.
An engine never keeps the credentials: whoever pulls sends them (``auth_config``).
See ``shared/TESTBED.md``, "An image registry".
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

import requests

from worker.docker_agent import DockerAgent, split_ref
from worker.testbed import processes as proc

__all__ = ["BedRegistry", "registry_port", "USER"]

USER = "berth"


def registry_port(lane: int) -> int:
    """The registry's port on 127.0.0.1 for a lane."""
    return 5100 + lane


class BedRegistry:
    """One ``docker-registry`` process for a lane (start, push, stop)."""

    def __init__(self, var_dir: str | os.PathLike[str], lane: int = 0) -> None:
        self.folder = Path(var_dir).resolve() / "registry"
        self.log = Path(var_dir).resolve() / "log" / "registry.log"
        self.lane = lane
        self.host = f"127.0.0.1:{registry_port(lane)}"
        self.pid: int | None = None

    @property
    def password(self) -> str:
        """The user's password: made once into ``registry/password`` (0600)."""
        path = self.folder / "password"
        if not path.is_file():
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(24) + "\n")
        return path.read_text().strip()

    @property
    def auth(self) -> dict[str, str]:
        """docker-py's ``auth_config`` for this registry."""
        return {"username": USER, "password": self.password}

    def ref(self, image: str) -> str:
        """``berth/hello:2.0.0`` as this registry names it."""
        return f"{self.host}/{image}"

    def start(self) -> BedRegistry:
        """Write the config and htpasswd file, start the registry and wait for ``/v2/``.

        :raises TestbedError: it did not come up (naming its log).
        """
        self.stop_leftover()
        config = self._write_config()
        self.pid = proc.spawn(["docker-registry", "serve", str(config)], self.log)
        proc.write_pidfile(self._pidfile, self.pid, "docker-registry")
        proc.wait_for(self.answers, what="registry", pid=self.pid, log=self.log, timeout=30)
        return self

    def stop(self) -> None:
        """Stop the registry this object started (by pid)."""
        if self.pid is not None:
            proc.terminate(self.pid)
            self.pid = None
        self._pidfile.unlink(missing_ok=True)

    def stop_leftover(self) -> None:
        """Stop a registry an earlier run of this lane left (by its pidfile)."""
        proc.stop_pidfile(self._pidfile, grace=10)

    @property
    def _pidfile(self) -> Path:
        return Path(f"/tmp/berth-{self.lane}/pids/registry.pid")  # noqa: S108 - the lane's

    def answers(self) -> bool:
        """Whether ``/v2/`` answers (401 without credentials, 200 with)."""
        try:
            status = requests.get(f"http://{self.host}/v2/", timeout=2).status_code
        except requests.RequestException:
            return False
        return status in (200, 401)

    def _write_config(self) -> Path:
        """The registry's config (YAML is a superset of JSON) and htpasswd file."""
        self.folder.mkdir(parents=True, exist_ok=True)
        htpasswd = self.folder / "htpasswd"
        line = subprocess.run(["htpasswd", "-Bbn", USER, self.password], check=True,
                              capture_output=True, text=True, timeout=30).stdout.strip()
        htpasswd.write_text(line + "\n")
        htpasswd.chmod(0o600)
        config = self.folder / "config.yml"
        config.write_text(json.dumps({
            "version": 0.1, "log": {"level": "info"},
            "storage": {"filesystem": {"rootdirectory": str(self.folder / "data")},
                        "delete": {"enabled": True}},
            "http": {"addr": self.host},
            "auth": {"htpasswd": {"realm": "berth", "path": str(htpasswd)}}}, indent=2))
        return config

    def push(self, agent: DockerAgent, image: str) -> str:
        """Push ``image`` (held by ``agent``) here; returns its name in this registry.

        The registry's tag is removed from ``agent`` afterwards: the agent keeps the
        original name only, so a later pull of the registry's name really pulls.
        """
        target = self.ref(image)
        repository, tag = split_ref(target)
        agent.api.tag(image, repository, tag=tag)
        try:
            for message in agent.api.push(repository, tag=tag, auth_config=self.auth,
                                          stream=True, decode=True):
                if message.get("error"):
                    raise proc.TestbedError(f"push of {target} failed: {message['error']}")
        finally:
            agent.api.remove_image(target)
        return target
