"""Where instances run: the typed seam between Berth's cluster logic and its backends.

The deployer, the reconciler, the health checks and the watcher need a few things of
"where instances run", and only these (``docs/architecture.md``, "Cluster backends"):

- **images**: make sure a generation's image is there (``ensure_image``, ``has_image``);
- **deploy or scale a generation**: run one instance of it by name, idempotently
  (``run_instance``); scaling is running more of them or removing some;
- **observe instances**: ``find``, ``list_instances`` (by Berth's labels), and
  ``events`` (lifecycle changes as they happen, an :class:`EventFeed`);
- **stop and remove**: ``remove`` (missing is fine; anonymous volumes go with the
  container), ``kill`` (fault tests);
- **named volumes**: ``ensure_volume`` (labelled ``berth.service``/``berth.volume``),
  ``list_volumes`` (with size and use), ``volume_labels``, ``remove_volume``, and their
  files as tar streams (``read_volume_archive``, ``write_volume_archive``: moves and
  backups, :mod:`worker.volume_stream`);
- **logs**, **command health checks** (``exec_check``) and Berth's own short commands on
  a host (``run_toolbox``: host-folder checks);
- **reachability and capacity**: ``ping``, ``is_up``, ``info``.

:class:`Engine` is one place instances run; :class:`ClusterBackend` hands out the
engine of an agent record. :class:`GenerationBackend` is the other kind: a cluster that
places and rolls instances itself (:class:`worker.swarm.SwarmBackend`), given a whole
generation at once. The first implementation is Berth-placed Docker engines:
:class:`worker.docker_agent.DockerAgent` is an ``Engine`` and
:class:`worker.agents.AgentPool` a ``ClusterBackend`` (checked by mypy below).

Failures are the classified :mod:`worker.errors` types (``AgentUnreachable``,
``ImageUnavailable``, ``ContainerNotFound``, ``ContainerConflict``,
``RemovalInProgress``, ``ContainerError``), so callers never look at a backend's own
exceptions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .containers import ContainerEvent, ContainerInfo, ExecResult, VolumeInfo

__all__ = ["Engine", "EventFeed", "ClusterBackend", "GenerationBackend", "LIFECYCLE",
           "BERTH_LABEL"]

BERTH_LABEL = "berth.service"
LIFECYCLE = ("create", "start", "die", "stop", "kill", "oom", "destroy")


class EventFeed(Protocol):
    """Lifecycle events of Berth's instances: iterate (blocks), ``close()`` from any
    thread ends the loop."""

    def __iter__(self) -> Iterator[ContainerEvent]: ...

    def close(self) -> None: ...


class Engine(Protocol):
    """One place instances run (a Docker engine today)."""

    url: str

    def ping(self) -> bool:
        """True when it answers; :raises AgentUnreachable: when it does not."""
        ...

    def is_up(self) -> bool:
        """Whether it answers, never raising."""
        ...

    def info(self) -> dict[str, Any]:
        """``{"cpus", "mem" (MiB), "hostname", "version"}``."""
        ...

    def has_image(self, ref: str) -> bool: ...

    def ensure_image(self, ref: str, *, peers: Iterable[Any] = (),
                     tarball_dir: str | os.PathLike[str] | None = None,
                     auth_config: Mapping[str, str] | None = None,
                     progress: Callable[[Any], None] | None = None) -> str:
        """Make sure ``ref`` is there (pulled with ``auth_config`` when its registry
        needs credentials, ``progress`` told how the pull goes); return where it came
        from."""
        ...

    def run_instance(self, name: str, spec: Mapping[str, Any], *, labels: Mapping[str, str],
                     env: Mapping[str, str] | None = None,
                     ports: Mapping[str, int] | Sequence[int] = (),
                     address: str = "") -> str:
        """Create and start instance ``name`` of a generation's spec (idempotent by
        name); return its container id."""
        ...

    def find(self, name_or_id: str) -> ContainerInfo | None: ...

    def list_instances(self, labels: Mapping[str, str | None] | Iterable[str] = (BERTH_LABEL,)
                       ) -> list[ContainerInfo]: ...

    def remove(self, name_or_id: str, *, stop_timeout: float | None = None) -> bool:
        """Stop and remove; False when it was not there."""
        ...

    def kill(self, name_or_id: str) -> None: ...

    def ensure_volume(self, name: str, labels: Mapping[str, str]) -> bool:
        """Create a labelled named volume unless it exists; True when created."""
        ...

    def list_volumes(self, labels: Mapping[str, str | None] | Iterable[str] = (BERTH_LABEL,)
                     ) -> list[VolumeInfo]: ...

    def remove_volume(self, name: str) -> bool:
        """Remove a named volume; False when it was not there."""
        ...

    def volume_labels(self, name: str) -> dict[str, str] | None:
        """A named volume's labels, or None when it is not there."""
        ...

    def read_volume_archive(self, image: str, volume: str, path: str, *,
                            chunk_size: int = ...) -> Iterator[bytes]:
        """Stream a tar of folder ``path`` of ``volume`` through a helper container."""
        ...

    def write_volume_archive(self, image: str, volume: str, path: str,
                             chunks: Iterable[bytes]) -> None:
        """Extract a tar stream into folder ``path`` of ``volume`` through a helper."""
        ...

    def events(self, since: float | None = None, until: float | None = None,
               actions: Sequence[str] = LIFECYCLE) -> EventFeed: ...

    def logs(self, name_or_id: str, tail: int | str = 100, follow: bool = False
             ) -> str | Iterator[str]: ...

    def exec_check(self, name_or_id: str, cmd: str | Sequence[str], timeout: float = 5
                   ) -> ExecResult: ...

    def run_toolbox(self, image: str, argv: Sequence[str], *,
                    binds: Mapping[str, Mapping[str, str]] | None = None,
                    timeout: float = 30, cap_add: Sequence[str] = ()) -> ExecResult: ...

    def start_toolbox(self, image: str, argv: Sequence[str], *,
                      binds: Mapping[str, Mapping[str, str]] | None = None,
                      cap_add: Sequence[str] = ()) -> str: ...

    def finish_toolbox(self, container_id: str, *, timeout: float = 30) -> ExecResult: ...

    def close(self) -> None: ...


class ClusterBackend(Protocol):
    """The engines of a cluster, by agent record: what the deployer, reconciler and
    watcher are given instead of a Docker client."""

    def get(self, agent: Mapping[str, Any]) -> Engine:
        """The engine of an agent record (built once, then shared by threads).

        :raises AgentError: the agent cannot be reached as configured (TLS files).
        """
        ...

    def heartbeat_client(self, agent: Mapping[str, Any]) -> Engine:
        """The same engine with a short timeout, for pings."""
        ...

    def close(self) -> None: ...


class GenerationBackend(Protocol):
    """A cluster that places and rolls a service's instances itself (Docker Swarm):
    Berth hands it a whole generation and reads back what runs.

    ``plan`` is the backend's own description of the generation (for Swarm a
    :class:`worker.swarm_spec.SwarmPlan`: generation, replicas, port blocks); the
    instance views it lists are turned into instance records by the caller.
    """

    @property
    def url(self) -> str: ...

    def ping(self) -> bool: ...

    def deploy_generation(self, service: str, spec: Mapping[str, Any], plan: Any, *,
                          restart: bool = False,
                          auth_config: Mapping[str, str] | None = None) -> str:
        """Run ``plan``'s generation of ``service`` with its replica count (create or
        update; idempotent), pulling with ``auth_config``; returns the backend's id of
        the service."""
        ...

    def update_status(self, service: str) -> dict[str, Any]:
        """The backend's state of its last rolling update (``{}`` when none)."""
        ...

    def observe(self, service: str, spec: Mapping[str, Any],
                blocks: Sequence[tuple[int, int]]) -> Sequence[Any]:
        """The service's live instances as the backend sees them (node, state, health,
        ports)."""
        ...

    def remove_service(self, service: str) -> bool:
        """Remove the service with every instance; False when it was not there."""
        ...

    def logs(self, service: str, tail: int | str = 100, task: str | None = None) -> str: ...

    def close(self) -> None: ...


if TYPE_CHECKING:  # mypy proves the Docker-engine backend implements both protocols
    from .agents import AgentPool
    from .docker_agent import DockerAgent
    from .swarm import SwarmBackend

    def _generations(swarm: SwarmBackend) -> GenerationBackend:
        return swarm

    def _engine(agent: DockerAgent) -> Engine:
        return agent

    def _backend(pool: AgentPool) -> ClusterBackend:
        return pool
