"""Image registries Berth pulls from with credentials (the cluster side of state).

Keys (under the store's prefix): ``registries`` (set of hosts), ``registry:<host>``
(JSON)::

    {"host": "registry.example.com:5000", "username": "deploy",
     "password": {"$sealed": "<Fernet token>"},          # or null: no credentials
     "created_at": ..., "created_by": "token:ab12cd",
     "updated_at": ..., "updated_by": "token:ab12cd", "rev": 2}

The password is sealed with the data key before it reaches this module
(:class:`worker.store.crypto.DataKeys`), so Redis, its AOF and its dumps never hold it;
only a worker opens it, in memory, to hand it to an engine with a pull. Events name
the host and the username, never the password.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from ..errors import RegistryNotFound
from .base import JSON, Document, RedisState, Tx

__all__ = ["RegistryStore"]


class RegistryStore:
    """Registry records: add or replace, read, list, remove."""

    def __init__(self, state: RedisState) -> None:
        self.state = state

    def key(self, host: str) -> str:
        return self.state.key("registry", host)

    def put(self, host: str, *, username: str | None, password: Mapping[str, str] | None,
            actor: str = "") -> tuple[Document, bool]:
        """Add the registry ``host`` or replace its credentials; (record, created).

        ``password`` must already be sealed (or None for a registry without
        credentials).
        """
        key = self.key(host)

        def change(tx: Tx) -> tuple[Document, bool]:
            old = tx.get(key)
            now = time.time()
            doc: Document = dict(old or {"host": host, "created_at": now,
                                         "created_by": actor})
            sealed: JSON = dict(password) if password is not None else None
            doc.update(username=username, password=sealed, updated_at=now,
                       updated_by=actor)
            written = tx.put(key, doc)
            tx.call("sadd", self.state.key("registries"), host)
            tx.event("registry.updated" if old else "registry.added", host, actor,
                     {"username": username})
            return written, old is None

        return self.state.transact(change)

    def get(self, host: str) -> Document | None:
        """One registry's record (its password sealed), or None."""
        return self.state.get_doc(self.key(host))

    def require(self, host: str) -> Document:
        """One registry's record.

        :raises RegistryNotFound: when Berth has none for ``host``.
        """
        record = self.get(host)
        if record is None:
            raise RegistryNotFound(f"no registry {host!r}",
                                   hint="`berth registries list` shows them")
        return record

    def list(self) -> list[Document]:
        """Every registry record, by host."""
        hosts = sorted(_text(h) for h in self.state.redis.smembers(
            self.state.key("registries")))
        return [r for r in self.state.get_docs(self.key(h) for h in hosts) if r]

    def remove(self, host: str, actor: str = "") -> bool:
        """Forget a registry and its credentials; True if it was there."""
        key = self.key(host)

        def change(tx: Tx) -> bool:
            if tx.get(key) is None:
                return False
            tx.delete(key)
            tx.call("srem", self.state.key("registries"), host)
            tx.event("registry.removed", host, actor)
            return True

        return self.state.transact(change)

    def replace_password(self, host: str, password: Mapping[str, str]) -> bool:
        """Write a re-sealed password (data-key rotation); False when the host is gone."""
        def apply(doc: Document) -> Document | None:
            if doc.get("password") is None:
                return None
            doc["password"] = dict(password)
            return doc

        return self.state.cas_update(self.key(host), apply) is not None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
