"""Render templates in child processes with a memory limit and a hard deadline.

The sandbox (:mod:`catalog.sandbox`) bounds time and size from inside the render; it is
the first line. What slips past it — a C call that runs long, many values that each
pass the checks but add up to gigabytes — must cost at most one child process, not the
server. :class:`RenderPool` keeps a few pre-started children:

- each child sets ``RLIMIT_AS`` on itself before it serves (``BERTH_RENDER_MEMORY_MB``),
  so an allocation past it raises ``MemoryError`` in the child (refused as "the template
  exceeded the memory limit"), and the child is replaced after it;
- the parent waits for an answer until the deadline plus a short grace, then kills the
  child (``SIGKILL``) and starts a fresh one on the next render. As in process, the
  deadline counts rendering, not compiling (which has its own, generous bound: the
  source is at most 64 KiB, compiled once per child and cached);
- children are fresh interpreters (``python -m catalog.render_pool``, never a ``fork``
  of a threaded server, and unlike ``multiprocessing``'s spawn and forkserver they do
  not re-import the server's main module), talk over a socket pair, and leave when the
  parent's end closes — also when the parent dies.

Only the template text and its context (plain JSON-like values) cross the pipe, and the
child sends back the text or the :class:`~catalog.errors.RenderError`'s data, so callers
see the same errors with the same messages as in-process rendering. A round trip costs
tens of microseconds; starting a child, tens of milliseconds, once.

Stdlib only and no I/O but its own children and pipes, so it belongs to the core: the
publish-time lint (``catalog.lint``) renders through it as well as the server.
"""

from __future__ import annotations

import atexit
import os
import queue
import resource
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .errors import RenderError
from .render import TEMPLATE_NAME, compile_template, render_template
from .sandbox import Limits

__all__ = ["RenderPool", "PoolSettings", "shared_pool"]

_MB = 1024 * 1024


@dataclass(frozen=True)
class PoolSettings:
    """How many children, how much memory each may use, and the render limits."""

    workers: int = 2
    memory_mb: int = 512
    limits: Limits = Limits()
    grace: float = 0.5  # seconds past the deadline before the child is killed


def _serve(conn: Connection, memory_mb: int) -> None:
    """A child's loop: limit its own memory, then render until the pipe closes."""
    limit = memory_mb * _MB
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    conn.send(("ready", None))
    while True:
        try:
            source, context, file, limits = conn.recv()
        except (EOFError, OSError):
            return
        try:
            compile_template(source, file=file)  # cached: the deadline is for rendering
            conn.send(("compiled", None))
            answer = _answer(source, context, file, limits)
        except RenderError as exc:
            answer = ("error", (exc.message, exc.details, exc.hint))
        except MemoryError:
            answer = ("memory", None)
        try:
            conn.send(answer)
        except MemoryError:
            return  # the parent sees the pipe close: reported as the memory limit
        if answer[0] == "memory":
            return  # a fresh child, not one whose heap is fragmented by the bomb


def _answer(source: str, context: Mapping[str, Any], file: str, limits: Limits
            ) -> tuple[str, Any]:
    """``("ok", text)``, ``("error", (message, errors, hint))`` or ``("memory", None)``."""
    try:
        return "ok", render_template(source, context, file=file, limits=limits)
    except RenderError as exc:
        if exc.message.endswith("the template used too much memory"):
            return "memory", None
        return "error", (exc.message, exc.details, exc.hint)
    except MemoryError:
        return "memory", None


_START_SECONDS = 30.0  # a child imports Jinja once; a loaded machine may take seconds
_COMPILE_SECONDS = 10.0  # Jinja compiling at most 64 KiB of source, on a loaded machine
_ROOT = str(Path(__file__).resolve().parent.parent)  # the folder holding ``catalog``


class _Child:
    """One child process and the parent's end of its socket, ready to render.

    :raises RenderError: when the child does not start (e.g. the memory limit is too
        small for Python itself).
    """

    def __init__(self, memory_mb: int) -> None:
        ours, theirs = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (_ROOT, os.environ.get("PYTHONPATH", "")) if p)}
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "catalog.render_pool", str(theirs.fileno()),
                 str(memory_mb)], pass_fds=(theirs.fileno(),), env=env,
                stdin=subprocess.DEVNULL, close_fds=True)
        self.conn = Connection(ours.detach())
        try:  # the deadline then counts rendering only, not the child's start-up
            ready = self.conn.poll(_START_SECONDS) and self.conn.recv()[0] == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.stop()
            raise RenderError("the render process did not start",
                              details=[{"path": TEMPLATE_NAME, "message": "render process "
                                       f"did not start within {memory_mb} MB"}],
                              hint="check BERTH_RENDER_MEMORY_MB")

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """Kill the child now (it may be looping in C code) and reap it."""
        self.conn.close()
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL ignored: left
            pass


class RenderPool:
    """A few child processes that render templates (see the module docstring)."""

    def __init__(self, settings: PoolSettings | None = None, *,
                 kill_after: float | None = None) -> None:
        self.settings = settings or PoolSettings()
        self.kill_after = kill_after if kill_after is not None else (
            self.settings.limits.seconds + self.settings.grace)
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        """Empty state for this process (also after a fork inherited a pool)."""
        self._pid = os.getpid()
        self._idle: queue.LifoQueue[_Child] = queue.LifoQueue()
        self._count = 0

    def render(self, source: str, context: Mapping[str, Any], file: str = TEMPLATE_NAME
               ) -> str:
        """:func:`catalog.render.render_template` in a child process.

        :raises RenderError: the template's own errors as in-process rendering gives
            them, or that it went past the memory limit or the deadline.
        """
        child = self._checkout()
        try:
            child.conn.send((source, dict(context), file, self.settings.limits))
            kind, value = self._wait(child, _COMPILE_SECONDS, "compile")
            if kind == "compiled":
                kind, value = self._wait(child, self.kill_after, "deadline")
        except (EOFError, OSError):
            kind, value = "memory", None  # the child died: its memory ran out
        except BaseException:
            self._discard(child)
            raise
        if kind in ("ok", "error"):
            self._checkin(child)
        else:
            self._discard(child)
        return self._result(kind, value, file)

    @staticmethod
    def _wait(child: _Child, seconds: float, late: str) -> tuple[str, Any]:
        """The child's next message, or ``(late, None)`` after ``seconds``."""
        return child.conn.recv() if child.conn.poll(seconds) else (late, None)

    def _result(self, kind: str, value: Any, file: str) -> str:
        """The text, or the matching :class:`RenderError`."""
        if kind == "ok":
            return str(value)
        if kind == "error":
            message, errors, hint = value
            raise RenderError(message, details=errors, hint=hint)
        if kind == "memory":
            text = f"the template exceeded the memory limit of {self.settings.memory_mb} MB"
        elif kind == "compile":
            text = f"the template took longer than {_COMPILE_SECONDS:g} s to compile"
        else:
            text = (f"the template ran longer than {self.settings.limits.seconds:g} s "
                    "and was stopped")
        raise RenderError(f"{file}: {text}", details=[{"path": file, "message": text}])

    def _checkout(self) -> _Child:
        """An idle child, a new one while there are fewer than ``workers``, else wait.

        :raises RenderError: when every child stays busy past the deadline.
        """
        with self._lock:
            if self._pid != os.getpid():
                self._reset()
            try:
                return self._idle.get_nowait()
            except queue.Empty:
                if self._count < self.settings.workers:
                    self._count += 1
                    return self._start()
        try:
            return self._idle.get(timeout=self.kill_after * 2)
        except queue.Empty:
            raise RenderError("every render process is busy; try again shortly",
                              details=[{"path": TEMPLATE_NAME, "message": "render busy"}]
                              ) from None

    def _start(self) -> _Child:
        try:
            return _Child(self.settings.memory_mb)
        except BaseException:
            with self._lock:
                self._count -= 1
            raise

    def _checkin(self, child: _Child) -> None:
        self._idle.put(child)

    def _discard(self, child: _Child) -> None:
        """Kill a child that overran or died; the next render starts a replacement."""
        child.stop()
        with self._lock:
            if self._pid == os.getpid():
                self._count -= 1

    def pids(self) -> list[int]:
        """The process ids of the idle children (for status pages and tests)."""
        with self._idle.mutex:
            return [c.pid for c in self._idle.queue]

    def close(self) -> None:
        """Stop every idle child (busy ones stop when their render returns)."""
        while True:
            try:
                child = self._idle.get_nowait()
            except queue.Empty:
                return
            self._discard(child)


_shared: dict[PoolSettings, RenderPool] = {}
_shared_lock = threading.Lock()


def shared_pool(settings: PoolSettings) -> RenderPool:
    """One pool per process for each settings (apps built by tests share it), closed
    when the process exits."""
    with _shared_lock:
        if not _shared:
            atexit.register(_close_shared)
        pool = _shared.get(settings)
        if pool is None:
            pool = _shared[settings] = RenderPool(settings)
        return pool


def _close_shared() -> None:
    for pool in list(_shared.values()):
        pool.close()


def _main(argv: list[str]) -> None:
    """A child's entry point: ``python -m catalog.render_pool FD MEMORY_MB``."""
    _serve(Connection(int(argv[0])), int(argv[1]))


if __name__ == "__main__":
    _main(sys.argv[1:])
