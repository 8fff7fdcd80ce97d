"""Errors of the cluster side (store, service operations, deployer, Docker funnel).

Every error derives from Berth's one root, ``catalog.errors.BerthError`` (``code``,
``message``, ``details``, ``hint``), and carries data, never HTTP. The server maps the
class family to a status in one table; the CLI maps ``code`` to an exit code.

    BerthError
    └── WorkerError                   code
        ├── NotFound                      not_found
        │   ├── ServiceNotFound           service_not_found
        │   ├── DeploymentNotFound        deployment_not_found
        │   ├── InstanceNotFound          instance_not_found
        │   ├── GenerationNotFound        generation_not_found
        │   └── AgentNotFound             agent_not_found
        ├── Conflict                      conflict
        │   ├── ServiceExists             service_exists
        │   ├── DeploymentInProgress      deployment_in_progress
        │   ├── ConcurrentChange          concurrent_change     (compare-and-set lost a race)
        │   ├── AgentExists               agent_exists
        │   └── AgentBusy                 agent_busy            (instances remain on it)
        ├── InvalidRequest                invalid_request       (a bad count, name or range)
        └── AgentError                    agent_error           (the Docker funnel's failures)
            ├── AgentUnreachable          agent_unreachable
            ├── ImageUnavailable          image_unavailable
            ├── ContainerError            container_error
            │   ├── ContainerNotFound       (the engine does not know the container)
            │   └── ContainerConflict       (the engine refused: its state conflicts)
            │       └── RemovalInProgress   (someone else is removing it already)
            └── HostPathUnsafe            host_path_unsafe      (a host folder is a link)

``details`` is a list of ``{"path": ..., "message": ...}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from catalog.errors import BerthError

__all__ = [
    "WorkerError",
    "NotFound",
    "ServiceNotFound",
    "DeploymentNotFound",
    "InstanceNotFound",
    "GenerationNotFound",
    "AgentNotFound",
    "Conflict",
    "ServiceExists",
    "DeploymentInProgress",
    "ConcurrentChange",
    "AgentExists",
    "AgentBusy",
    "InvalidRequest",
    "AgentError",
    "AgentUnreachable",
    "ImageUnavailable",
    "ContainerError",
    "ContainerNotFound",
    "ContainerConflict",
    "RemovalInProgress",
    "HostPathUnsafe",
]


class WorkerError(BerthError):
    """Root of every error the cluster side raises; keyword data (``service=``,
    ``agent=``…) is kept in :attr:`data`."""

    code = "worker_error"

    def __init__(self, message: str, *, details: Iterable[Mapping[str, Any]] = (),
                 hint: str | None = None, **data: Any) -> None:
        super().__init__(message, details=details, hint=hint)
        self.data = data


class NotFound(WorkerError):
    code = "not_found"


class ServiceNotFound(NotFound):
    code = "service_not_found"


class DeploymentNotFound(NotFound):
    code = "deployment_not_found"


class InstanceNotFound(NotFound):
    code = "instance_not_found"


class GenerationNotFound(NotFound):
    code = "generation_not_found"


class AgentNotFound(NotFound):
    code = "agent_not_found"


class Conflict(WorkerError):
    code = "conflict"


class ServiceExists(Conflict):
    code = "service_exists"


class DeploymentInProgress(Conflict):
    code = "deployment_in_progress"


class ConcurrentChange(Conflict):
    code = "concurrent_change"


class AgentExists(Conflict):
    code = "agent_exists"


class AgentBusy(Conflict):
    code = "agent_busy"


class InvalidRequest(WorkerError):
    code = "invalid_request"


class AgentError(WorkerError):
    code = "agent_error"


class AgentUnreachable(AgentError):
    code = "agent_unreachable"


class ImageUnavailable(AgentError):
    code = "image_unavailable"


class ContainerError(AgentError):
    code = "container_error"


class HostPathUnsafe(AgentError):
    """A spec's host folder is not a plain folder on the agent (a link, a file)."""

    code = "host_path_unsafe"


class ContainerNotFound(ContainerError):
    """The engine answered that the container (or exec) it was asked about is not there.

    Classified by the Docker funnel (HTTP 404), so callers catch this type instead of
    reading the Docker SDK's exception; ``code`` stays ``container_error``.
    """


class ContainerConflict(ContainerError):
    """The engine refused because of the container's state (HTTP 409: a name in use)."""


class RemovalInProgress(ContainerConflict):
    """The container is already being removed by another caller (its outcome is the
    one wanted, so callers wait for it instead of failing)."""
