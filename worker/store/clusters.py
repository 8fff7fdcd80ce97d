"""Cluster records (``worker/clusters.py``) and the host-port blocks Berth assigned on
each Swarm. Keys (under the prefix):

    cluster:<name>                   Cluster document
    clusters                         set of cluster names
    cluster:<name>:ports             hash: service name → JSON list of block bases
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Mapping
from typing import Any

import redis

from ..clusters import ClusterBusy, ClusterExists, ClusterNotFound
from .base import JSON, Document, RedisState, Tx

__all__ = ["ClusterStore"]


class ClusterStore:
    """Clusters other than Berth's own agents."""

    def __init__(self, state: RedisState) -> None:
        self.state = state
        self.redis = state.redis

    def _key(self, *parts: object) -> str:
        return self.state.key("cluster", *parts)

    def add(self, record: Mapping[str, JSON], actor: str = "") -> Document:
        """Write a new cluster.

        :raises ClusterExists: when the name is taken.
        """
        full: Document = {**dict(record), "created_at": time.time(), "created_by": actor}
        name = str(full["name"])

        def change(tx: Tx) -> Document:
            if tx.get(self._key(name)) is not None:
                raise ClusterExists(f"a cluster named {name!r} exists",
                                    details=[{"path": "name", "message": "taken"}])
            written = tx.put(self._key(name), full)
            tx.call("sadd", self.state.key("clusters"), name)
            tx.event("cluster.added", name, actor, {"kind": full.get("kind"),
                                                    "url": full.get("url")})
            return written

        return self.state.transact(change)

    def get(self, name: str) -> Document | None:
        return self.state.get_doc(self._key(name))

    def require(self, name: str) -> Document:
        """:raises ClusterNotFound:"""
        record = self.get(name)
        if record is None:
            raise ClusterNotFound(f"no cluster {name!r}", details=[
                {"path": "cluster", "message": "not a cluster; `berth clusters` lists them"}])
        return record

    def list(self) -> builtins.list[Document]:
        names = sorted(str(n) for n in self.redis.smembers(self.state.key("clusters")))
        return [d for d in self.state.get_docs(self._key(n) for n in names) if d]

    def remove(self, name: str, actor: str = "") -> None:
        def change(tx: Tx) -> None:
            tx.delete(self._key(name))
            tx.call("srem", self.state.key("clusters"), name)
            tx.call("delete", self._key(name, "ports"))
            tx.event("cluster.removed", name, actor, {})

        self.state.transact(change)

    # port blocks ---------------------------------------------------------------------
    def blocks(self, name: str, service: str) -> builtins.list[int] | None:
        raw = self.redis.hget(self._key(name, "ports"), service)
        found = json.loads(raw) if raw else None
        return [int(b) for b in found] if isinstance(found, list) else None

    def reserve_blocks(self, name: str, service: str, count: int,
                       port_range: tuple[int, int], size: int) -> builtins.list[int]:
        """The ``count`` port blocks of ``service`` on a cluster: those it has, else free
        ones of ``port_range`` (block bases are multiples of ``size``), taken atomically.

        :raises ClusterBusy: when the range has no room left.
        """
        key = self._key(name, "ports")
        low, high = port_range
        first = -(-low // size) * size
        bases = list(range(first, high - size + 2, size))
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    taken: dict[str, Any] = {str(k): json.loads(v)
                                             for k, v in pipe.hgetall(key).items()}
                    own = taken.get(service)
                    if isinstance(own, list) and len(own) >= count:
                        return [int(b) for b in own[:count]]
                    used = {int(b) for s, v in taken.items() if s != service
                            for b in (v or [])}
                    free = [b for b in bases if b not in used]
                    if len(free) < count:
                        raise ClusterBusy(
                            f"cluster {name!r}: no free host ports for {service!r}",
                            details=[{"path": "port_range", "message": (
                                f"{len(free)} of {count} blocks of {size} ports free in "
                                f"{low}-{high}")}])
                    pipe.multi()
                    pipe.hset(key, service, json.dumps(free[:count]))
                    pipe.execute()
                    return free[:count]
                except redis.WatchError:
                    continue

    def release_blocks(self, name: str, service: str) -> None:
        self.redis.hdel(self._key(name, "ports"), service)
