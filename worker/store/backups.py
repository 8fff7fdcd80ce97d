"""Backup records: what each backup holds, where, and how it went.

Keys (under the prefix)::

    backup:<id>                 Backup document (``worker/records.py``)
    backups                     sorted set of every backup id by creation time
    backups:<service>           sorted set of one service's backup ids by creation time

The service's own keys (``service:<name>:…``) are not used: an uninstall removes
those, and a backup must outlive its service. The data itself is in the backup store
(``worker/backup_store.py``); these records only describe it.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable

from ..errors import BackupNotFound
from ..records import Backup, backup_from_json, backup_to_json
from .base import RedisState, Tx

__all__ = ["BackupRecords"]


def _texts(values: object) -> builtins.list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]  # type: ignore[attr-defined]


class BackupRecords:
    """Backup records and their indexes."""

    def __init__(self, state: RedisState) -> None:
        self.state = state
        self.redis = state.redis

    def key(self, backup_id: str) -> str:
        return self.state.key("backup", backup_id)

    def get(self, backup_id: str) -> Backup | None:
        doc = self.state.get_doc(self.key(backup_id))
        return None if doc is None else backup_from_json(doc)

    def require(self, backup_id: str) -> Backup:
        """:raises BackupNotFound:"""
        backup = self.get(backup_id)
        if backup is None:
            raise BackupNotFound(f"no backup {backup_id!r}", backup=backup_id)
        return backup

    def read(self, tx: Tx, backup_id: str) -> Backup | None:
        doc = tx.get(self.key(backup_id))
        return None if doc is None else backup_from_json(doc)

    def list(self, service: str | None = None, limit: int = 100) -> builtins.list[Backup]:
        """Backups, newest first (of one service when given)."""
        index = self.state.key("backups", service) if service else self.state.key("backups")
        ids = _texts(self.redis.zrevrange(index, 0, max(0, limit - 1)))
        docs = self.state.get_docs(self.key(i) for i in ids)
        return [backup_from_json(d) for d in docs if d is not None]

    def stage_put(self, tx: Tx, backup: Backup) -> Backup:
        """Queue the write of a backup and its place in both indexes."""
        written = tx.put(self.key(backup["id"]), backup_to_json(backup))
        score = {backup["id"]: float(backup["created_at"])}
        tx.call("zadd", self.state.key("backups"), score)
        tx.call("zadd", self.state.key("backups", backup["service"]), score)
        return backup_from_json(written)

    def update(self, backup_id: str, fn: Callable[[Backup], Backup | None], *,
               event: str | None = None, actor: str = "") -> Backup | None:
        """Compare-and-set ``fn`` over the record (None when it does not exist)."""
        spec = (event, backup_id, actor) if event else None
        written = self.state.cas_update(
            self.key(backup_id),
            lambda doc: (None if (new := fn(backup_from_json(doc))) is None
                         else backup_to_json(new)),
            event=spec)
        return None if written is None else backup_from_json(written)

    def remove(self, backup: Backup) -> None:
        """Forget a backup (its data is already gone from the store)."""
        def change(tx: Tx) -> None:
            tx.delete(self.key(backup["id"]))
            tx.call("zrem", self.state.key("backups"), backup["id"])
            tx.call("zrem", self.state.key("backups", backup["service"]), backup["id"])
            tx.event("backup.deleted", backup["id"], "worker", {"service": backup["service"]})

        self.state.transact(change)
