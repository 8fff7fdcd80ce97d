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
        │   ├── AgentNotFound             agent_not_found
        │   ├── RegistryNotFound          registry_not_found
        │   ├── VolumeNotFound            volume_not_found
        │   └── BackupNotFound            backup_not_found
        ├── Conflict                      conflict
        │   ├── ServiceExists             service_exists
        │   ├── DeploymentInProgress      deployment_in_progress
        │   ├── ConcurrentChange          concurrent_change     (compare-and-set lost a race)
        │   ├── AgentExists               agent_exists
        │   ├── AgentBusy                 agent_busy            (instances remain on it)
        │   ├── VolumeExists              volume_exists         (a copy's target is there)
        │   ├── MoveRefused               move_refused          (its agent does not answer)
        │   ├── MoveFailed                move_failed           (rolled back to the old agent)
        │   └── LockLost                  lock_lost             (a fenced writer's lock is gone)
        ├── NotDurable                    not_durable           (too few replicas took a write)
        ├── InvalidRequest                invalid_request       (a bad count, name or range)
        │   └── BackupUnavailable         backup_unavailable    (no store, or nothing to copy)
        └── AgentError                    agent_error           (the Docker funnel's failures)
            ├── AgentUnreachable          agent_unreachable
            ├── ImageUnavailable          image_unavailable
            │   ├── ImageUnauthorized       image_unauthorized    (credentials refused)
            │   ├── ImageNotFound           image_not_found       (no such image there)
            │   └── RegistryUnreachable     registry_unreachable  (not reached)
            ├── ContainerError            container_error
            │   ├── ContainerNotFound       (the engine does not know the container)
            │   └── ContainerConflict       (the engine refused: its state conflicts)
            │       └── RemovalInProgress   (someone else is removing it already)
            ├── HostPathUnsafe            host_path_unsafe      (a host folder is a link)
            ├── VolumeCopyFailed          volume_copy_failed    (checksums differ, a helper failed)
            └── BackupFailed              backup_failed         (a hook, copy, check or restart)

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
    "VolumeNotFound",
    "BackupNotFound",
    "BackupUnavailable",
    "Conflict",
    "ServiceExists",
    "DeploymentInProgress",
    "ConcurrentChange",
    "AgentExists",
    "AgentBusy",
    "VolumeExists",
    "MoveRefused",
    "MoveFailed",
    "LockLost",
    "NotDurable",
    "InvalidRequest",
    "AgentError",
    "AgentUnreachable",
    "ImageUnavailable",
    "ImageUnauthorized",
    "ImageNotFound",
    "RegistryUnreachable",
    "RegistryNotFound",
    "ContainerError",
    "ContainerNotFound",
    "ContainerConflict",
    "RemovalInProgress",
    "HostPathUnsafe",
    "VolumeCopyFailed",
    "BackupFailed",
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


class RegistryNotFound(NotFound):
    code = "registry_not_found"


class VolumeNotFound(NotFound):
    """A named volume is not on the agent it was looked for on."""

    code = "volume_not_found"


class BackupNotFound(NotFound):
    code = "backup_not_found"


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


class LockLost(Conflict):
    """A fenced writer (a deployer) no longer holds its lock: another may work on the
    service now, so its write was refused and it stops (after a failover, or a stall
    longer than the lock's TTL)."""

    code = "lock_lost"


class NotDurable(WorkerError):
    """A write reached the master but not ``BERTH_REDIS_MIN_REPLICAS`` replicas in time:
    it may be lost in a failover, so it is not acknowledged (the server answers 503)."""

    code = "not_durable"


class VolumeExists(Conflict):
    """The target of a volume copy is there already (a left-over copy, say)."""

    code = "volume_exists"


class MoveRefused(Conflict):
    """A move that would lose data (its agent does not answer) or cannot be (the same
    agent, a draining one) — refused before anything is changed."""

    code = "move_refused"


class MoveFailed(Conflict):
    """A move did not complete; the instance runs on its old agent again (or, moving an
    unreachable agent's instance, stays lost there)."""

    code = "move_failed"


class InvalidRequest(WorkerError):
    code = "invalid_request"


class BackupUnavailable(InvalidRequest):
    """A backup or restore cannot be done as asked: no backup store is set, the service
    has no named volume or no instance to copy from, the backup is not complete."""

    code = "backup_unavailable"


class AgentError(WorkerError):
    code = "agent_error"


class AgentUnreachable(AgentError):
    code = "agent_unreachable"


class ImageUnavailable(AgentError):
    """No source had the image; ``reason`` says why in a word or two."""

    code = "image_unavailable"
    reason = "unavailable"


class ImageUnauthorized(ImageUnavailable):
    """The registry refused the pull: no credentials, or wrong ones."""

    code = "image_unauthorized"
    reason = "unauthorized"


class ImageNotFound(ImageUnavailable):
    """The registry answered that it has no such repository or tag."""

    code = "image_not_found"
    reason = "not found"


class RegistryUnreachable(ImageUnavailable):
    """The engine could not reach the image's registry (refused, no such host, timeout)."""

    code = "registry_unreachable"
    reason = "unreachable"


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


class VolumeCopyFailed(AgentError):
    """A volume's copy is not a faithful one (checksums differ) or a helper failed."""

    code = "volume_copy_failed"


class BackupFailed(AgentError):
    """A backup or restore step failed on an agent: the package's hook, the copy, the
    check of a restored volume, or starting the instance again."""

    code = "backup_failed"
