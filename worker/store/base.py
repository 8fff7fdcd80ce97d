"""The shared base of every sub-store: connection, keys, JSON documents, events.

A record is a JSON document at one key, carrying a ``rev`` that grows by one on every
write. Writes go through :meth:`RedisState.transact`: the keys a change reads are
WATCHed, the change is computed in Python, and the writes (documents, index sets and
the event describing the change) are committed in one MULTI/EXEC — all or nothing. A
concurrent writer makes EXEC fail and the change is recomputed on fresh data, so no
update is ever lost and no reader sees half of one.

The event stream ``<prefix>events`` (a Redis stream, capped near ``events_maxlen``)
records every state change as ``{"type", "subject", "actor", "at", "data"}``.

Two guards for a replicated Redis (Sentinel), both checked by the store itself:

- **durability** (:class:`Durability`): with ``replicas > 0`` every committed
  transaction is followed by ``WAIT replicas timeout``; fewer acknowledgements raise
  :class:`~worker.errors.NotDurable`, so a caller never acknowledges a change a failover
  may drop. ``WAIT`` counts the writes of the connection it runs on, so it runs after a
  small write of its own (``<prefix>durable``) on one connection: replication is one
  ordered stream, and a replica that holds that write holds every earlier one. The
  transaction reads the master's replication id inside MULTI/EXEC and the confirmation
  refuses any other: a confirmation retried after a failover reaches a new master,
  which may lack the write.
- **fencing** (:meth:`RedisState.fenced`): a state whose writer holds a lock (a
  deployer, ``worker.instances.ServiceLock``) WATCHes the lock key in every
  transaction and refuses to commit — :class:`~worker.errors.LockLost` — once the key
  no longer holds the writer's token. A lock lost in a failover, or taken over by
  another deployer after a stall, thus stops the old holder at its next write.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar, cast

import redis
from redis.typing import EncodableT, FieldT

from ..errors import ConcurrentChange, LockLost, NotDurable
from ..records import JSON, Document
from .connection import RedisEndpoint

__all__ = ["RedisState", "Tx", "Durability", "Document", "JSON", "dumps", "loads"]

T = TypeVar("T")
EVENTS_MAXLEN = 10000

# XREAD's answer: per stream, its entries as (id, fields)
_StreamReply = list[tuple[object, list[tuple[object, dict[object, object]]]]] | None


def dumps(doc: object) -> str:
    """A compact JSON text (records are read far more often than they are looked at)."""
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def loads(raw: str | bytes | None) -> Document | None:
    """A JSON object from Redis (text or bytes), or None for a missing key.

    :raises ValueError: the key holds JSON that is not an object.
    """
    if raw is None:
        return None
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError(f"a stored record is {type(value).__name__}, not a JSON object")
    return value


def _rev(doc: Document) -> int:
    """A document's revision (0 before its first write)."""
    rev = doc.get("rev", 0)
    return int(rev) if isinstance(rev, int | float | str) else 0


def _replid(info: object) -> str:
    """``master_replid`` of an ``INFO replication`` answer."""
    return str(info.get("master_replid", "")) if isinstance(info, dict) else ""


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Tx:
    """One optimistic transaction: reads are WATCHed, writes are queued until commit."""

    def __init__(self, state: RedisState, pipe: redis.client.Pipeline) -> None:
        self.state = state
        self._pipe = pipe
        self._docs: dict[str, Document | None] = {}
        self._revs: dict[str, int] = {}
        self._ops: list[tuple[str, tuple[object, ...], dict[str, object]]] = []

    def _watch(self, key: str) -> None:
        self._pipe.watch(key)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped

    def get(self, key: str) -> Document | None:
        """The document at ``key`` (watched: a concurrent write restarts the transaction)."""
        if key not in self._docs:
            self._watch(key)
            self._docs[key] = loads(self._pipe.get(key))
            self._revs[key] = _rev(self._docs[key] or {})
        found = self._docs[key]
        return copy.deepcopy(found) if found is not None else None

    def confirm(self, key: str, seen: Document) -> Document:
        """Watch ``key`` and check it still is the document ``seen`` (same ``rev``).

        For a choice made among many documents read without watching (one ``MGET``):
        only the ones chosen are watched, so a write to any other does not restart the
        transaction. A changed or removed document restarts it (as a watched write would).
        """
        current = self.get(key)
        if current is None or _rev(current) != _rev(seen):
            raise redis.WatchError(f"{key} changed since it was read")
        return current

    def members(self, key: str) -> set[str]:
        """The members of a set (watched)."""
        self._watch(key)
        return {_text(m) for m in self._pipe.smembers(key)}

    def get_list(self, key: str) -> list[Document | None]:
        """The JSON documents of a Redis list, in order (watched)."""
        self._watch(key)
        return [loads(raw) for raw in self._pipe.lrange(key, 0, -1)]

    @staticmethod
    def dumps(doc: object) -> str:
        """``doc`` as the store writes it (for ``call("rpush", …)``)."""
        return dumps(doc)

    def put(self, key: str, doc: Document) -> Document:
        """Queue a write of ``doc`` with its ``rev`` one above the stored one."""
        self.get(key)
        doc = dict(doc)
        doc["rev"] = self._revs[key] + 1
        self._docs[key] = doc
        self._ops.append(("set", (key, dumps(doc)), {}))
        return doc

    def delete(self, key: str) -> None:
        """Queue the removal of a document."""
        self.get(key)
        self._docs[key] = None
        self._ops.append(("delete", (key,), {}))

    def call(self, command: str, *args: object, **kwargs: object) -> None:
        """Queue any other redis-py command (``sadd``, ``zadd``, ``rpush`` …)."""
        self._ops.append((command, args, kwargs))

    def event(self, type_: str, subject: str, actor: str = "",
              data: Mapping[str, object] | None = None) -> None:
        """Queue an event so that it is published only if the change commits."""
        fields = self.state.event_fields(type_, subject, actor, data)
        self._ops.append(("xadd", (self.state.events_key, fields),
                          {"maxlen": self.state.events_maxlen, "approximate": True}))

    def _commit(self) -> str | None:
        """MULTI, the queued writes, EXEC. With durability asked for, the transaction
        also reads the master's replication id, so that :meth:`RedisState.confirm_durable`
        can tell that it waits on the very server that committed; returns it."""
        self._pipe.multi()
        for command, args, kwargs in self._ops:
            getattr(self._pipe, command)(*args, **kwargs)
        durable = self.state.durability.replicas > 0 and bool(self._ops)
        if durable:
            self._pipe.info("replication")
        results = self._pipe.execute()
        return _replid(results[-1]) if durable else None


@dataclass(frozen=True)
class Durability:
    """How many replicas must hold a write before it counts (``WAIT``), and how long
    to wait for them. ``replicas`` 0: the master's answer is enough."""

    replicas: int = 0
    timeout: float = 1.0

    @classmethod
    def of(cls, settings: object) -> Durability:
        """From ``BERTH_REDIS_MIN_REPLICAS`` (-1: 1 with Sentinel, else 0) and
        ``BERTH_REDIS_WAIT_TIMEOUT``."""
        wanted = int(getattr(settings, "redis_min_replicas", -1))
        if wanted < 0:
            wanted = 1 if getattr(settings, "redis_sentinels", "") else 0
        return cls(wanted, float(getattr(settings, "redis_wait_timeout", 1.0)))


class RedisState:
    """A Redis connection with a key prefix, transactions and the event stream."""

    def __init__(self, redis_client: redis.Redis, prefix: str = "berth:",
                 events_maxlen: int = EVENTS_MAXLEN,
                 durability: Durability | None = None) -> None:
        self.redis = redis_client
        self.prefix = prefix
        self.events_maxlen = events_maxlen
        self.events_key = prefix + "events"
        self.durability = durability or Durability()
        self.fence: tuple[str, str] | None = None   # (lock key, token) of a fenced writer

    @classmethod
    def connect(cls, url: str) -> redis.Redis:
        """A redis-py client for ``url`` that rides out a Redis restart.

        Commands are retried with exponential backoff (about 10 s in all) on connection
        errors, so a worker resumes on its own when Redis comes back.
        """
        return RedisEndpoint(url).client()

    def fenced(self, key: str, token: str) -> RedisState:
        """This state for a writer holding the lock ``key`` with ``token``: every
        transaction commits only while the key still holds the token (else
        :class:`LockLost`)."""
        state = copy.copy(self)
        state.fence = (key, token)
        return state

    def with_durability(self, durability: Durability) -> RedisState:
        """This state with other durability rules (same connection and prefix)."""
        state = copy.copy(self)
        state.durability = replace(durability)
        return state

    def replication_id(self) -> str | None:
        """The master's replication id (a new one after every failover), or None when
        no durability is asked for: read before a write :meth:`confirm_durable` checks."""
        if self.durability.replicas <= 0:
            return None
        return _replid(self.redis.info("replication"))

    def confirm_durable(self, replid: str | None = None) -> None:
        """Return once ``durability.replicas`` replicas hold every write made so far.

        ``replid`` is the replication id of the master that took the write: when the
        confirmation reaches another master (the connection broke and was retried after
        a failover), the write may be lost, and it is not confirmed.

        :raises NotDurable: when fewer acknowledged within ``durability.timeout``, or
            the master changed since the write.
        """
        wanted = self.durability.replicas
        if wanted <= 0:
            return
        timeout_ms = max(1, int(self.durability.timeout * 1000))
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(self.prefix + "durable")
            pipe.execute_command("WAIT", wanted, timeout_ms)  # type: ignore[no-untyped-call]
            pipe.info("replication")
            _, acked, info = pipe.execute()
        if replid is not None and _replid(info) != replid:
            raise NotDurable("the Redis master changed while the change was being "
                             "confirmed (a failover), so it is not acknowledged",
                             hint="the change may or may not stay — read the record "
                                  "before trying again", replicas=0)
        if int(acked) < wanted:
            raise NotDurable(
                f"the change reached the master but only {acked} of {wanted} replicas "
                f"within {self.durability.timeout:g} s, so it is not acknowledged",
                hint="a replica is down or lagging; the change may or may not stay — "
                     "read the record before trying again", replicas=int(acked))

    def check_fence(self) -> None:
        """Refuse to go on when this state's fence (if any) is no longer held: called
        before an outside action (a container create) that no transaction guards.

        :raises LockLost:
        """
        if self.fence is not None:
            with self.redis.pipeline(transaction=True) as pipe:
                self._check_fence(pipe)

    def _check_fence(self, pipe: redis.client.Pipeline) -> None:
        """WATCH the fence's lock key and refuse to go on when it is not ours.

        :raises LockLost:
        """
        if self.fence is None:
            return
        key, token = self.fence
        pipe.watch(key)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        raw = pipe.get(key)
        held = _text(raw) if raw is not None else None
        if held != token:
            raise LockLost(f"the lock {key} is no longer held by this writer",
                           lock=key, held_by=held)

    def key(self, *parts: object) -> str:
        """The full key of a record: the prefix, then the parts joined by ``:``."""
        return self.prefix + ":".join(str(p) for p in parts)

    # documents ----------------------------------------------------------------
    def get_doc(self, key: str) -> Document | None:
        """The document at ``key`` or None."""
        return loads(self.redis.get(key))

    def get_docs(self, keys: Iterable[str]) -> list[Document | None]:
        """Several documents in one round trip (None where missing)."""
        keys = list(keys)
        if not keys:
            return []
        return [loads(raw) for raw in self.redis.mget(keys)]

    def transact(self, fn: Callable[[Tx], T], *, retries: int = 100) -> T:
        """Run ``fn(tx)`` and commit its writes atomically; recompute on a race.

        ``fn`` may raise to abort (nothing is written). It must only read through
        ``tx`` so that every read is watched — or check what it read outside with
        ``tx.confirm`` before it writes anything that depends on it. A change that wrote
        something is confirmed on the replicas the :class:`Durability` asks for.

        :raises ConcurrentChange: when ``retries`` attempts all lost a race.
        :raises LockLost: a fenced state's lock is no longer held (nothing is written).
        :raises NotDurable: committed, but too few replicas acknowledged in time.
        """
        for attempt in range(retries):
            with self.redis.pipeline(transaction=True) as pipe:
                tx = Tx(self, pipe)
                try:
                    self._check_fence(pipe)
                    result = fn(tx)
                    replid = tx._commit()
                except redis.WatchError:
                    time.sleep(min(0.001 * attempt, 0.05))
                    continue
            if tx._ops:
                self.confirm_durable(replid)
            return result
        raise ConcurrentChange("the record kept changing; try again")

    def create_doc(self, key: str, doc: Document) -> Document | None:
        """Write ``doc`` (rev 1) unless the key exists; the written doc or None."""
        def change(tx: Tx) -> Document | None:
            if tx.get(key) is not None:
                return None
            return tx.put(key, doc)

        return self.transact(change)

    def cas_update(self, key: str, fn: Callable[[Document], Document | None],
                   *, event: tuple[str, str, str] | None = None) -> Document | None:
        """Apply ``fn`` to the current document and write the result (compare-and-set).

        ``fn`` returning None leaves the document as it is. Returns the new document,
        or None when the key does not exist. ``event`` is ``(type, subject, actor)``.
        """
        def change(tx: Tx) -> Document | None:
            current = tx.get(key)
            if current is None:
                return None
            updated = fn(current)
            if updated is None:
                return current
            written = tx.put(key, updated)
            if event:
                tx.event(event[0], event[1], event[2], {"rev": written["rev"]})
            return written

        return self.transact(change)

    def cas_put(self, key: str, doc: Document) -> Document:
        """Write ``doc`` only if the stored ``rev`` still equals ``doc["rev"]``.

        :raises ConcurrentChange: when someone else wrote in between.
        """
        def change(tx: Tx) -> Document:
            current = tx.get(key) or {}
            if _rev(current) != _rev(doc):
                raise ConcurrentChange("the record changed since it was read",
                                       details=[{"path": key, "message":
                                                 f"rev {doc.get('rev')} is not "
                                                 f"{current.get('rev', 0)}"}])
            return tx.put(key, doc)

        return self.transact(change)

    # events -------------------------------------------------------------------
    def event_fields(self, type_: str, subject: str, actor: str = "",
                     data: Mapping[str, object] | None = None) -> dict[FieldT, EncodableT]:
        """The stream entry of one event."""
        return {"type": type_, "subject": subject, "actor": actor or "",
                "at": repr(time.time()), "data": dumps(data or {})}

    def publish_event(self, type: str, subject: str, actor: str = "",  # noqa: A002
                      data: Mapping[str, object] | None = None) -> str:
        """Append an event to the stream; returns its id."""
        fields = self.event_fields(type, subject, actor, data)
        return _text(self.redis.xadd(self.events_key, fields, maxlen=self.events_maxlen,
                                     approximate=True))

    def read_events(self, last_id: str = "0-0", count: int = 100,
                    block_ms: int | None = None) -> list[Document]:
        """Events after ``last_id`` (``"$"``: only new ones), oldest first.

        With ``block_ms`` the call waits that long for a first event.
        """
        reply = cast(_StreamReply, self.redis.xread({self.events_key: last_id}, count=count,
                                                     block=block_ms))
        events = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                events.append(_event(entry_id, fields))
        return events

    def last_event_id(self) -> str:
        """The id of the newest event ("0-0" when there is none)."""
        entries = self.redis.xrevrange(self.events_key, count=1)
        return _text(entries[0][0]) if entries else "0-0"


def _event(entry_id: object, fields: Mapping[object, object]) -> Document:
    raw = {_text(k): _text(v) for k, v in fields.items()}
    return {"id": _text(entry_id), "type": raw.get("type", ""),
            "subject": raw.get("subject", ""), "actor": raw.get("actor", ""),
            "at": float(raw.get("at") or 0), "data": loads(raw.get("data")) or {}}
