"""Where backups are kept: a named volume on the backup agent, or a shared directory.

``describe_store(settings)`` says where new backups go (a record keeps it), and
``store_of(record["store"], agents, backend)`` opens it:

- ``BERTH_BACKUP_AGENT`` (with ``BERTH_BACKUP_VOLUME``, ``berth-backups`` by default):
  :class:`VolumeBackupStore`. A backup is kept as files under
  ``<store>/<backup-id>/<volume>/`` in that named volume. It streams from the agent of
  the instance to the backup agent through the Docker API (a tar stream passing through
  the worker in chunks, :mod:`worker.volume_stream`), never through the server; its
  checksum is computed on the backup agent, by the same command as on the source, so
  the two compare.
- ``BERTH_BACKUP_DIR``: :class:`DirectoryBackupStore`, a directory every worker shares
  (an NFS mount, say). Each backed-up volume is kept as one tar file,
  ``<dir>/<backup-id>/<volume>/volume.tar``, written as it streams; it is never
  unpacked on the worker's host (a volume's files come from a container and are not
  trusted: links, devices and owners are the engine's to restore, inside a helper).

Both offer ``write``, ``read`` (a tar stream of one volume, as
``open_volume_archive`` gives it), ``checksum`` and ``delete``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import BackupUnavailable, InvalidRequest
from .volume_stream import open_volume_archive, volume_checksum, write_volume_archive

if TYPE_CHECKING:
    from .backend import ClusterBackend, Engine
    from .settings import SharedSettings

__all__ = ["BackupStore", "VolumeBackupStore", "DirectoryBackupStore", "describe_store",
           "store_of", "BACKUP_ID", "STORE_LABEL"]

BACKUP_ID = re.compile(r"b-[0-9a-f]{12}")
STORE_LABEL = "berth.backup-store"     # the store volume's label (not a service's volume)
CHUNK = 1 << 20


def check_backup_id(backup_id: str) -> str:
    """The id if it is one Berth makes (``b-`` and 12 hex digits): ids become paths.

    :raises InvalidRequest: otherwise.
    """
    if not BACKUP_ID.fullmatch(str(backup_id)):
        raise InvalidRequest(f"{backup_id!r} is not a backup id",
                             details=[{"path": "backup", "message": "b- and 12 hex digits"}])
    return str(backup_id)


class BackupStore(Protocol):
    """Where the files of backups are kept."""

    def describe(self) -> dict[str, str]: ...
    def write(self, backup_id: str, volume: str, chunks: Iterable[bytes]) -> None: ...
    def read(self, backup_id: str, volume: str) -> Iterator[bytes]: ...
    def checksum(self, backup_id: str, volume: str) -> str | None: ...
    def delete(self, backup_id: str) -> None: ...


class VolumeBackupStore:
    """Backups as files in one named volume on the backup agent."""

    def __init__(self, agent_id: str, engine: Engine, volume: str, image: str) -> None:
        self.agent_id = agent_id
        self.engine = engine
        self.volume = volume
        self.image = image

    def describe(self) -> dict[str, str]:
        return {"kind": "volume", "agent": self.agent_id, "volume": self.volume}

    def _folder(self, backup_id: str, volume: str = "") -> str:
        return "/" + "/".join(p for p in (check_backup_id(backup_id), volume) if p)

    def write(self, backup_id: str, volume: str, chunks: Iterable[bytes]) -> None:
        """Stream a volume's tar into ``<store>/<id>/<volume>/`` (a new folder: backup
        ids are never reused, and a retried backup deletes its folder first)."""
        write_volume_archive(self.engine, self.volume, chunks,
                             path=self._folder(backup_id, volume),
                             labels={STORE_LABEL: "1"}, image=self.image)

    def read(self, backup_id: str, volume: str) -> Iterator[bytes]:
        return open_volume_archive(self.engine, self.volume, self._folder(backup_id, volume),
                                   image=self.image)

    def read_all(self, backup_id: str) -> Iterator[bytes]:
        """A tar stream of the whole backup (``./<volume>/…``), for downloads."""
        return open_volume_archive(self.engine, self.volume, self._folder(backup_id),
                                   image=self.image)

    def checksum(self, backup_id: str, volume: str) -> str | None:
        return volume_checksum(self.engine, self.volume, self._folder(backup_id, volume),
                               image=self.image)

    def delete(self, backup_id: str) -> None:
        """Remove ``<store>/<id>`` (a store that was never written is fine)."""
        if self.engine.volume_labels(self.volume) is None:
            return
        self._remove(self._folder(backup_id))

    def _remove(self, folder: str) -> None:
        """``rm -rf`` a folder of the store on the backup agent (the toolbox)."""
        if self.engine.volume_labels(self.volume) is None:
            return
        result = self.engine.run_toolbox(
            self.image, ["/bin/rm", "-rf", "/v" + folder],
            binds={self.volume: {"bind": "/v", "mode": "rw"}}, timeout=600)
        if result.exit_code != 0:
            raise BackupUnavailable(f"could not remove {folder} from the backup store on "
                                    f"{self.agent_id}: {result.output.strip()[-200:]}")


class DirectoryBackupStore:
    """Backups as tar files in a directory the workers share."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def describe(self) -> dict[str, str]:
        return {"kind": "directory", "path": str(self.root)}

    def _file(self, backup_id: str, volume: str) -> Path:
        if "/" in volume or volume in ("", ".", ".."):
            raise InvalidRequest(f"{volume!r} is not a volume name")
        return self.root / check_backup_id(backup_id) / volume / "volume.tar"

    def write(self, backup_id: str, volume: str, chunks: Iterable[bytes]) -> None:
        """Write the stream to ``volume.tar`` (through a temporary name: a torn copy is
        never taken for a whole one)."""
        target = self._file(backup_id, volume)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = target.with_suffix(".part")
        with open(partial, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(target)

    def read(self, backup_id: str, volume: str) -> Iterator[bytes]:
        path = self._file(backup_id, volume)
        if not path.is_file():
            raise BackupUnavailable(f"backup {backup_id} has no copy of {volume} in "
                                    f"{self.root}")
        return _file_chunks(path)

    def checksum(self, backup_id: str, volume: str) -> str | None:
        """None: the files' checksum is computed on agents (the source, the target of a
        restore), never on the worker's host."""
        return None

    def delete(self, backup_id: str) -> None:
        shutil.rmtree(self.root / check_backup_id(backup_id), ignore_errors=True)


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as source:
        while chunk := source.read(CHUNK):
            yield chunk


def describe_store(settings: SharedSettings) -> dict[str, str]:
    """Where new backups go, as a record keeps it: ``{"kind": "volume", "agent",
    "volume"}`` for ``BERTH_BACKUP_AGENT``, else ``{"kind": "directory", "path"}``.

    :raises BackupUnavailable: neither ``BERTH_BACKUP_AGENT`` nor ``BERTH_BACKUP_DIR``
        is set.
    """
    if settings.backup_agent:
        return {"kind": "volume", "agent": settings.backup_agent,
                "volume": settings.backup_volume}
    if settings.backup_dir:
        return {"kind": "directory", "path": settings.backup_dir}
    raise BackupUnavailable("no backup store is set",
                            hint="set BERTH_BACKUP_AGENT (an agent's id) or BERTH_BACKUP_DIR "
                                 "(a directory the workers share) on the servers and workers")


def store_of(where: Mapping[str, str], agents: Iterable[Mapping[str, Any]],
             backend: ClusterBackend, *, image: str) -> BackupStore:
    """The store a backup record names (``backup["store"]``): a backup is read, restored
    and deleted where it was written, whatever the settings say now.

    :raises BackupUnavailable: the record names an agent that is not registered, or no
        store Berth knows.
    """
    if where.get("kind") == "volume":
        for agent in agents:
            if agent["id"] == where.get("agent"):
                return VolumeBackupStore(agent["id"], backend.get(agent),
                                         str(where["volume"]), image)
        raise BackupUnavailable(f"the backup agent {where.get('agent')!r} of this backup is "
                                "not registered")
    if where.get("kind") == "directory":
        return DirectoryBackupStore(str(where["path"]))
    raise BackupUnavailable("the backup names no store Berth knows")
