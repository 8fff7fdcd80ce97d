"""Local processes of the test bed: install, spawn, wait for, and stop them by pid.

Every process runs in its own session (so a signal to the terminal's process group
never reaches it) with its output in a log file, never the terminal. Pidfiles hold
``<pid> <program>`` so that a leftover of a crashed run is stopped only when the pid
still runs that program.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis
import requests

from worker.errors import WorkerError

__all__ = ["TestbedError", "ensure_packages", "spawn", "alive", "terminate", "kill",
           "stop_pidfile", "write_pidfile", "wait_for", "redis_ping", "http_answers",
           "log_says", "log_size", "run_cli", "tail", "stat_fields", "tree_pids"]

PACKAGES = {"dockerd": "docker.io", "redis-server": "redis-server", "redis-cli": "redis-tools",
            "busybox": "busybox-static"}


class TestbedError(WorkerError):
    """A part of the test bed could not be installed, started or stopped."""

    code = "testbed_error"
    __test__ = False   # not a test class, though pytest would collect it by its name


def missing_packages() -> list[str]:
    """Debian packages the bed needs that are not installed."""
    missing = [pkg for cmd, pkg in PACKAGES.items() if cmd != "busybox" and not shutil.which(cmd)]
    if not Path("/bin/busybox").is_file():
        missing.append(PACKAGES["busybox"])
    return missing


def ensure_packages(log_dir: Path) -> None:
    """Install missing Debian packages with apt (output to ``log_dir/apt.log``).

    :raises TestbedError: not root, or apt failed.
    """
    missing = missing_packages()
    if not missing:
        return
    if os.geteuid() != 0:
        raise TestbedError(f"missing Debian packages: {' '.join(missing)}",
                           hint=f"sudo apt-get install -y {' '.join(missing)}")
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with open(log_dir / "apt.log", "ab") as log:
        for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
            if subprocess.run(argv, stdout=log, stderr=log, env=env, check=False).returncode:
                raise TestbedError(f"{' '.join(argv)} failed; see {log_dir / 'apt.log'}")


def spawn(argv: list[str], log: Path, *, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> int:
    """Start ``argv`` in its own session with output appended to ``log``; return its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True,
                                 env={**os.environ, **(env or {})})
    _children[child.pid] = child
    return child.pid


_children: dict[int, subprocess.Popen[bytes]] = {}


def stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name, the state first
    (``[1]`` parent pid, ``[7]`` minor faults, ``[11]``/``[12]`` user/system ticks);
    None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def tree_pids(pid: int) -> list[int]:
    """``pid`` and every process below it, by the parent each process names in ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := stat_fields(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _state(pid: int) -> str | None:
    """The process state letter from ``/proc`` (None when there is no such process)."""
    fields = stat_fields(pid)
    return fields[0] if fields else None


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie child is reaped and counts as gone)."""
    state = _state(pid)
    if state == "Z":
        _reap(pid)
        return False
    return state is not None


def _reap(pid: int) -> None:
    child = _children.pop(pid, None)
    if child is not None:
        child.wait()
        return
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    _reap(pid)
    return True


def _signal_group(pid: int, sig: int) -> None:
    """Send ``sig`` to the process group ``pid`` leads (spawned processes lead one)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def terminate(pid: int, *, grace: float = 10) -> None:
    """SIGTERM ``pid``, wait up to ``grace`` seconds, then SIGKILL its whole group."""
    if alive(pid):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        _wait_gone(pid, grace)
    _signal_group(pid, signal.SIGKILL)
    _wait_gone(pid, 5)


def kill(pid: int) -> None:
    """SIGKILL the process group ``pid`` leads (a crash: no clean-up runs)."""
    _signal_group(pid, signal.SIGKILL)
    _wait_gone(pid, 5)


def write_pidfile(path: Path, pid: int, program: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{pid} {program}\n")


def stop_pidfile(path: Path, *, grace: float = 10, program: str = "") -> None:
    """Stop the process a pidfile names when it still runs the program named there.

    ``program`` is the word to look for when the file names none (dockerd's own).
    """
    try:
        pid_text, _, named = path.read_text().strip().partition(" ")
        pid, program = int(pid_text), named or program
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError):
        path.unlink(missing_ok=True)
        return
    if program and program in cmdline:
        terminate(pid, grace=grace)
    path.unlink(missing_ok=True)


def tail(log: Path, lines: int = 15) -> str:
    """The last lines of a log file (for error messages)."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_for(ready: Callable[[], bool], *, what: str, pid: int, log: Path,
             timeout: float = 30, interval: float = 0.1) -> None:
    """Poll ``ready()`` until true.

    :raises TestbedError: the process exited or the deadline passed (with its log tail).
    """
    deadline = time.monotonic() + timeout
    while not ready():
        if not alive(pid):
            raise TestbedError(f"{what} exited while starting; see {log}:\n{tail(log)}")
        if time.monotonic() > deadline:
            raise TestbedError(f"{what} not ready after {timeout:g}s; see {log}:\n{tail(log)}")
        time.sleep(interval)


def redis_ping(url: str) -> bool:
    """Whether the Redis at ``url`` answers a PING within a second."""
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def http_answers(url: str) -> bool:
    """Whether anything answers HTTP at ``url`` within two seconds."""
    try:
        requests.get(url, timeout=2, allow_redirects=False)
    except requests.RequestException:
        return False
    return True


def log_size(log: Path) -> int:
    """The current size of a log file (0 when missing): where new output starts."""
    try:
        return log.stat().st_size
    except OSError:
        return 0


def log_says(log: Path, text: str, offset: int = 0) -> bool:
    """Whether ``text`` appears in the log after byte ``offset``."""
    try:
        with open(log, "rb") as f:
            f.seek(offset)
            return text.encode() in f.read()
    except OSError:
        return False


def run_cli(args: list[str], *, env: dict[str, str], log: Path) -> str:
    """Run ``berth <args>`` with this Python; return its stdout, stripped.

    :raises TestbedError: it failed (stderr goes to ``log``).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-c", "from server.client.cli import main; main()", *args]
    with open(log, "ab") as err:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=err, timeout=120,
                              env={**os.environ, **env}, check=False)
    if done.returncode:
        raise TestbedError(f"berth {' '.join(args)} failed (exit {done.returncode}); see {log}")
    return done.stdout.decode().strip()
