"""Backups: take, list, show, delete, restore and download backups of services' volumes.

Taking and restoring are deployments of the service (``DesiredState.backup`` /
``restore``): the server writes the records and a worker does the copying, streaming
the volumes from agent to backup store; nothing passes through the server. A delete is
a worker task as well (it removes files on the backup agent). The one read the server
does on an agent is a download: the backup's files streamed from the backup agent (or
the shared directory) as a ``.tar.gz``, chunk by chunk, never whole in memory.
"""

from __future__ import annotations

import json
import tarfile
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from catalog.names import require_service_name
from worker.backup_plan import map_volumes, new_backup, pick_instance
from worker.backup_store import (
    BACKUP_ID,
    DirectoryBackupStore,
    VolumeBackupStore,
    describe_store,
)
from worker.docker_agent import DockerAgent, agent_tls
from worker.errors import BackupNotFound, BackupUnavailable, Conflict
from worker.records import Backup
from worker.volume_stream import DEFAULT_IMAGE

from ..errors import Invalid

__all__ = ["BackupManager", "MAX_KEEP"]

MAX_KEEP = 1000
DOWNLOAD_TIMEOUT = 60     # seconds the backup agent has for each read of a download


class BackupInProgress(Conflict):
    code = "backup_in_progress"


class BackupManager:
    """Backups of services' named volumes, for the API and the store front."""

    def __init__(self, berth: Any) -> None:
        self.berth = berth

    @property
    def store(self) -> Any:
        return self.berth.store

    @property
    def ops(self) -> Any:
        return self.berth.ops

    # writes ------------------------------------------------------------------------------
    def create(self, actor: str, service: str, *, instance: str | None = None,
               keep: int | None = None, force: bool = False) -> dict[str, Any]:
        """Queue a backup of ``service`` (one instance's volumes); the backup and the
        deployment that takes it.

        :raises ServiceNotFound, BackupUnavailable, DeploymentInProgress, Invalid:
        """
        record = self.ops.get_service(service)
        chosen = pick_instance(self.ops.list_instances(service), instance)
        backup = new_backup(record, chosen, store=self.store_description(), actor=actor,
                            keep=_check_keep(keep))
        deployment = self.ops.backup(service, backup, actor=actor, force=force)
        return {"backup": self.store.backups.require(backup["id"]), "deployment": deployment}

    def before_upgrade(self, actor: str, service: str) -> Backup:
        """A backup record for an upgrade to take first (``upgrade --backup`` or a spec's
        ``backupBeforeUpgrade``); written with the upgrade's deployment."""
        record = self.ops.get_service(service)
        chosen = pick_instance(self.ops.list_instances(service))
        return new_backup(record, chosen, store=self.store_description(), actor=actor,
                          reason="upgrade")

    def restore(self, actor: str, backup_id: str, *, to: str | None = None,
                force: bool = False, agent: str | None = None) -> dict[str, Any]:
        """Start a restore deployment of ``backup_id`` into ``to`` (its own service by
        default), onto ``agent`` when given (the worker writes the data there and starts
        the instances there; see ``worker/backups.py`` for where it goes otherwise).

        :raises BackupNotFound, BackupUnavailable, ServiceNotFound, DeploymentInProgress:
        """
        backup = self.show(backup_id)
        target = require_service_name(to, "to") if to else backup["service"]
        _require_complete(backup)
        service = self.ops.get_service(target)
        map_volumes(backup, service["spec"])     # every volume has a place to go
        if agent is not None:
            agent = _check_agent(agent)
        return self.ops.restore(target, backup["id"], actor=actor, force=force, agent=agent)

    def latest_of_generation(self, service: str, generation: int) -> Backup:
        """The newest complete backup taken of ``service`` at ``generation``.

        :raises BackupUnavailable: there is none.
        """
        for backup in self.store.backups.list(service, limit=1000):
            if backup["status"] == "succeeded" and int(backup["generation"]) == generation:
                return backup  # type: ignore[no-any-return]
        raise BackupUnavailable(
            f"{service!r} has no backup of generation {generation}",
            details=[{"path": "restore_data", "message": f"no backup of generation "
                                                         f"{generation}"}],
            hint="roll back without --restore-data, or restore another backup "
                 "(berth backup list)")

    def delete(self, actor: str, backup_id: str) -> Backup:
        """Mark a backup ``deleting`` and hand its removal to a worker.

        :raises BackupNotFound:
        :raises BackupInProgress: it is being taken right now.
        """
        backup = self.show(backup_id)
        if backup["status"] in ("queued", "running"):
            raise BackupInProgress(f"backup {backup_id} is {backup['status']}",
                                   hint="wait for it to finish, or cancel its deployment")

        def mark(doc: Backup) -> Backup:
            return {**doc, "status": "deleting"}

        marked = self.store.backups.update(backup["id"], mark, event="backup.deleting",
                                           actor=actor)
        self.berth.enqueue("berth.delete_backup", [backup["id"]])
        return marked or backup

    # reads -------------------------------------------------------------------------------
    def list(self, service: str | None = None, limit: int = 100) -> list[Backup]:
        """Backups, newest first (of one service when given; it may be uninstalled)."""
        if service is not None:
            require_service_name(service, "service")
        return self.store.backups.list(service, limit=limit)  # type: ignore[no-any-return]

    def show(self, backup_id: str) -> Backup:
        """:raises BackupNotFound: (also for an id Berth would never make)"""
        if not BACKUP_ID.fullmatch(str(backup_id)):
            raise BackupNotFound(f"no backup {str(backup_id)[:40]!r}", backup=str(backup_id)[:40])
        return self.store.backups.require(backup_id)  # type: ignore[no-any-return]

    def store_description(self) -> dict[str, str]:
        """Where new backups go, from the settings.

        :raises BackupUnavailable: no backup store is set, or its agent is unknown.
        """
        where = describe_store(self.berth.settings)
        if where["kind"] == "volume" and self.store.agents.get(where["agent"]) is None:
            raise BackupUnavailable(f"the backup agent {where['agent']!r} is not registered",
                                    hint="register it (berth agents add) or set "
                                         "BERTH_BACKUP_AGENT to an agent's id")
        return where

    # download ----------------------------------------------------------------------------
    def download(self, backup_id: str) -> Iterator[bytes]:
        """The backup as a gzip'd tar: ``backup.json`` (the record) and each volume's
        files under ``<volume>/``, streamed from where it is kept.

        :raises BackupNotFound, BackupUnavailable:
        """
        backup = self.show(backup_id)
        _require_complete(backup)
        where = backup.get("store") or {}
        if where.get("kind") == "volume":
            body = self._from_agent(backup, where)
        elif where.get("kind") == "directory":
            body = _from_directory(backup, DirectoryBackupStore(where["path"]))
        else:
            raise BackupUnavailable(f"backup {backup_id} names no store Berth knows")
        head = _member("backup.json", json.dumps(backup, indent=2, sort_keys=True).encode())
        return gzipped(_chain([head], body))

    def _from_agent(self, backup: Backup, where: Mapping[str, str]) -> Iterator[bytes]:
        agent = self.store.agents.get(where["agent"])
        if agent is None:
            raise BackupUnavailable(f"the backup agent {where['agent']!r} is not registered")
        engine = DockerAgent(agent["url"], timeout=DOWNLOAD_TIMEOUT,
                             tls=agent_tls(self.berth.settings.agent_tls_dir, agent["id"]))
        store = VolumeBackupStore(agent["id"], engine, where["volume"], DEFAULT_IMAGE)
        return _closing(store.read_all(backup["id"]), engine)


def _check_keep(keep: Any) -> int | None:
    if keep is None:
        return None
    if isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= MAX_KEEP:
        raise Invalid("invalid keep", details=[{"path": "keep",
                                                "message": f"an integer from 1 to {MAX_KEEP}"}])
    return keep


def _check_agent(agent: Any) -> str:
    """An agent id as the restore's ``agent`` (whether it can take the service is the
    worker's call, made with the agents' state of that moment).

    :raises BackupUnavailable: not an agent id.
    """
    if not isinstance(agent, str) or not agent.strip() or len(agent) > 100:
        raise BackupUnavailable("agent must be an agent id",
                                details=[{"path": "agent", "message": "not an agent id"}])
    return agent.strip()


def _require_complete(backup: Backup) -> None:
    if backup["status"] != "succeeded":
        raise BackupUnavailable(f"backup {backup['id']} is {backup['status']}, not complete",
                                details=[{"path": "status", "message": backup["status"]}])


def _member(name: str, data: bytes) -> bytes:
    """One tar entry (header and padded data), without the archive's end blocks, so the
    volumes' own tar stream can follow it."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o600
    padding = (-len(data)) % tarfile.BLOCKSIZE
    return info.tobuf(format=tarfile.PAX_FORMAT) + data + b"\0" * padding


def _chain(*parts: Iterable[bytes]) -> Iterator[bytes]:
    for part in parts:
        yield from part


def _closing(chunks: Iterator[bytes], engine: DockerAgent) -> Iterator[bytes]:
    try:
        yield from chunks
    finally:
        engine.close()


def gzipped(chunks: Iterable[bytes], level: int = 6) -> Iterator[bytes]:
    """``chunks`` compressed as one gzip stream, as they come."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()


def _from_directory(backup: Backup, store: DirectoryBackupStore) -> Iterator[bytes]:
    """Each volume's ``volume.tar`` re-rooted under ``<volume>/``, entry by entry (the
    files are read in chunks by ``tarfile``'s stream mode; nothing is unpacked)."""
    for volume in backup["volumes"]:
        yield from _rerooted(store.read(backup["id"], volume["name"]), volume["name"])
    yield b"\0" * (2 * tarfile.BLOCKSIZE)


class _Reader:
    """A file-like view of a chunk iterator, for ``tarfile`` in stream mode."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self.buffer) < size:
            try:
                self.buffer += next(self.chunks)
            except StopIteration:
                break
        if size < 0:
            size = len(self.buffer)
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out


def _rerooted(chunks: Iterator[bytes], volume: str) -> Iterator[bytes]:
    with tarfile.open(fileobj=_Reader(chunks), mode="r|") as archive:  # type: ignore[call-overload]
        for member in archive:
            name = member.name.removeprefix("./").lstrip("/")
            member.name = f"{volume}/{name}" if name not in ("", ".") else volume
            yield member.tobuf(format=tarfile.PAX_FORMAT)
            if member.isfile():
                source = archive.extractfile(member)
                left = member.size
                while left > 0 and source is not None:
                    block = source.read(min(left, 1 << 20))
                    if not block:
                        break
                    left -= len(block)
                    yield block
                yield b"\0" * ((-member.size) % tarfile.BLOCKSIZE)
