"""Coarse progress of an image pull, read from the engine's pull stream (pure).

``docker pull`` answers with a stream of JSON messages, one per layer event
(``{"id": "<layer>", "status": "Downloading", "progressDetail": {"current", "total"}}``,
``"Pull complete"``, ``"Already exists"``, …). A deployment records only coarse
progress (layers done of layers seen, and the share of the bytes downloaded), at most
once per ``interval`` seconds and whenever a layer completes, so a large pull does not
write a step per message. :class:`PullTracker` keeps that state; the Docker funnel feeds
it (``worker.docker_agent.DockerAgent.pull_image``) and the deployer turns each
:class:`PullStatus` into its "pull" step. :func:`image_registry` names the registry an
image is pulled from (the credentials Berth sends are that registry's).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PullStatus", "PullTracker", "PullProgress", "DOCKER_HUB", "image_registry",
           "normalize_host"]

_DONE = ("pull complete", "already exists")
_DOWNLOADED = ("download complete", "verifying checksum", "extracting")


DOCKER_HUB = "docker.io"
_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")


def image_registry(ref: str) -> str:
    """The registry host an image reference is pulled from (``docker.io`` for Hub).

    Docker's rule: the part before the first ``/`` is a registry host when it holds a
    ``.`` or a ``:`` or is ``localhost``; any other reference is on Docker Hub.

    >>> image_registry("127.0.0.1:5000/berth/hello:2.0.0")
    '127.0.0.1:5000'
    >>> image_registry("berth/hello:2.0.0")
    'docker.io'
    """
    first, sep, _rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return normalize_host(first)
    return DOCKER_HUB


def normalize_host(host: str) -> str:
    """A host as Berth keeps it: lower case, Docker Hub's aliases as ``docker.io``."""
    host = host.strip().lower()
    return DOCKER_HUB if host in _HUB_ALIASES else host


@dataclass(frozen=True)
class PullStatus:
    """Where a pull stands: layers finished of those seen, bytes downloaded of known."""

    layers: int
    done: int
    current: int
    total: int
    finished: bool = False

    @property
    def percent(self) -> int | None:
        """Share of the known bytes downloaded (None before any size is known)."""
        if self.total <= 0:
            return None
        return min(100, int(100 * self.current / self.total))

    def __str__(self) -> str:
        if self.finished:
            return f"pulled ({self.layers} layers, {self.done} new or present)" \
                if self.layers else "pulled"
        text = f"{self.done}/{self.layers} layers"
        if self.percent is not None:
            text += f", {self.percent}% of {_mib(self.total)}"
        return text


PullProgress = Callable[[PullStatus], None]


@dataclass
class _Layer:
    current: int = 0
    total: int = 0
    done: bool = False


@dataclass
class PullTracker:
    """Folds pull messages into a :class:`PullStatus`; reports it now and then."""

    report: PullProgress | None = None
    interval: float = 1.0
    clock: Callable[[], float] = time.monotonic
    layers: dict[str, _Layer] = field(default_factory=dict)
    _last: float | None = None

    def feed(self, message: Mapping[str, Any]) -> None:
        """Take one message of the stream; report when a layer completed or time passed."""
        layer_id = str(message.get("id") or "")
        status = str(message.get("status") or "").lower()
        if not layer_id or not _is_layer_event(status):
            return
        layer = self.layers.setdefault(layer_id, _Layer())
        detail = message.get("progressDetail") or {}
        completed = False
        if status.startswith("downloading") and isinstance(detail, Mapping):
            layer.current = _int(detail.get("current"), layer.current)
            layer.total = _int(detail.get("total"), layer.total)
        elif any(status.startswith(word) for word in _DOWNLOADED):
            layer.current = layer.total
        if any(status.startswith(word) for word in _DONE) and not layer.done:
            layer.done, layer.current = True, layer.total
            completed = True
        self._maybe_report(force=completed)

    def status(self, *, finished: bool = False) -> PullStatus:
        """The progress so far."""
        values = self.layers.values()
        return PullStatus(layers=len(self.layers), done=sum(1 for v in values if v.done),
                          current=sum(v.current for v in values),
                          total=sum(v.total for v in values), finished=finished)

    def done(self) -> None:
        """The pull ended well: report the final status."""
        if self.report is not None:
            self.report(self.status(finished=True))

    def _maybe_report(self, *, force: bool) -> None:
        if self.report is None:
            return
        now = self.clock()
        if force or self._last is None or now - self._last >= self.interval:
            self._last = now
            self.report(self.status())


def _is_layer_event(status: str) -> bool:
    """Whether a status is about one layer (not "Pulling from …", "Digest: …")."""
    return not (status.startswith("pulling from") or status.startswith("digest")
                or status.startswith("status"))


def _int(value: Any, fallback: int) -> int:
    return int(value) if isinstance(value, int | float) and value >= 0 else fallback


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"
