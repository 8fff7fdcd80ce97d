"""Published packages and repository settings in Redis (the publishing side of state).

Keys (under the store's prefix):

- ``hosted:names`` (set) and ``hosted:versions:<name>`` (hash version → metadata JSON),
  ``hosted:bundle:<name>:<version>`` (the bundle, base64 text so any client decode
  setting reads it back);
- ``repos`` (set of names), ``repo:<name>`` (settings and fetch state, JSON),
  ``repo:<name>:digests`` / ``repo:<name>:docs`` (hashes package → digest / compressed
  package document: the last good copy), ``repo:<name>:listing`` (compressed listing);
- ``packages:owners`` (hash name → ownership JSON ``{"repositories": [...],
  "maintainers": [...], "at", "by"}``): who a package name belongs to — the
  repositories that may serve it (the first one that served it, plus any an admin
  shared it with) and, for ``hosted``, the principals (``token:<id>``, ``user:<name>``)
  that may publish and yank it;
- ``catalog:generation`` — bumped in the same transaction as every change above, so
  every server process knows when to rebuild its catalog.

Publishing is atomic (a Lua script): the caller must own the name in ``hosted`` (or
nobody owns it yet, and then the caller does), an existing version is refused, and
nothing of the new one is written otherwise. Published versions are immutable; a yank
only marks them, and only an owner of the name (or an admin) may yank.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from redis.exceptions import WatchError

from catalog.errors import Conflict, NotFound, VersionExists, VersionNotFound
from catalog.owners import HOSTED, may_publish, ownership, refusal

from .base import JSON, Document, RedisState, Tx

__all__ = ["HostedPackageStore", "RepositoryStore", "RepositoryExists", "RepositoryNotFound",
           "GENERATION_KEY", "OWNERS_KEY", "pack", "unpack"]

GENERATION_KEY = ("catalog", "generation")
OWNERS_KEY = ("packages", "owners")

# KEYS: versions hash, bundle, names set, generation, owners hash
# ARGV: version, meta JSON, bundle, name, actor, the claim to write when unowned
# Returns {1} stored, {0} version exists, {-1, record} name owned by others.
_PUBLISH = """
local owner = redis.call('HGET', KEYS[5], ARGV[4])
if owner then
  local record = cjson.decode(owner)
  local hosted, mine = false, false
  for _, repo in ipairs(record.repositories or {}) do
    if repo == 'hosted' then hosted = true end
  end
  for _, who in ipairs(record.maintainers or {}) do
    if who == ARGV[5] then mine = true end
  end
  if not (hosted and mine) then return {-1, owner} end
end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return {0} end
if not owner then redis.call('HSET', KEYS[5], ARGV[4], ARGV[6]) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('INCR', KEYS[4])
return {1}
"""



def _listing_order(record: Document) -> tuple[int, str]:
    """Repositories list by priority, then name."""
    priority = record.get("priority", 0)
    return (int(priority) if isinstance(priority, int | float | str) else 0,
            str(record["name"]))

class RepositoryExists(Conflict):
    """A repository of that name is already configured."""

    code = "repository_exists"


class RepositoryNotFound(NotFound):
    """No repository of that name is configured."""

    code = "repository_not_found"


def _text(value: Any) -> str:
    """Redis replies as text, whatever the client's decode setting."""
    return value.decode() if isinstance(value, bytes) else str(value)


def pack(data: bytes) -> str:
    """Compress bytes into Redis-safe text (zlib, then base64)."""
    return base64.b64encode(zlib.compress(data, 6)).decode("ascii")


def unpack(text: str | bytes) -> bytes:
    """The bytes :func:`pack` stored."""
    return zlib.decompress(base64.b64decode(_text(text)))


class _Base:
    def __init__(self, state: RedisState) -> None:
        self.state = state
        self.redis = state.redis

    def _key(self, *parts: str) -> str:
        return self.state.key(*parts)

    def generation(self) -> tuple[str, int]:
        """The catalog generation: ``(epoch, counter)``; compare it, do not parse it.

        The epoch is a random id kept beside the counter, so a Redis that was emptied
        (or restored from an older copy) never repeats a generation a process built.
        """
        epoch_key = self._key("catalog", "epoch")
        epoch, value = self.redis.mget(epoch_key, self._key(*GENERATION_KEY))
        if epoch is None:
            self.redis.set(epoch_key, secrets.token_hex(8), nx=True)
            epoch = self.redis.get(epoch_key)
        return _text(epoch), int(_text(value)) if value is not None else 0

    def bump(self) -> int:
        """Bump the catalog generation (every process rebuilds its catalog)."""
        return int(self.redis.incr(self._key(*GENERATION_KEY)))


class HostedPackageStore(_Base):
    """Published package versions: bundle bytes plus metadata, immutable once stored."""

    def publish(self, name: str, version: str, bundle: bytes, *, digest: str,
                actor: str = "", extra: Mapping[str, JSON] | None = None) -> Document:
        """Store a new version atomically and bump the catalog generation.

        The first publish of a name nobody owns makes ``actor`` its owner in ``hosted``.

        :raises NameOwned: when the name belongs to another repository or other
            maintainers (nothing is written).
        :raises VersionExists: when ``name`` ``version`` was published before.
        """
        meta: Document = {**dict(extra or {}), "name": name, "version": version, "digest": digest,
                "size": len(bundle), "published_at": time.time(), "published_by": actor,
                "yanked": None}
        script = self.redis.register_script(_PUBLISH)
        keys = [self._key("hosted", "versions", name),
                self._key("hosted", "bundle", name, version),
                self._key("hosted", "names"), self._key(*GENERATION_KEY),
                self._key(*OWNERS_KEY)]
        claim = ownership([HOSTED], [actor], by=actor, at=time.time())
        args = [version, json.dumps(meta), base64.b64encode(bundle).decode("ascii"), name,
                actor, json.dumps(claim)]
        replid = self.state.replication_id()
        answer = script(keys=keys, args=args)
        if int(answer[0]) < 0:
            raise refusal(name, json.loads(_text(answer[1])), actor, "publish")
        if not int(answer[0]):
            raise VersionExists(f"{name} {version} is already published; published "
                                "versions are immutable", package=name, version=version,
                                hint="bump the version in package.json and publish again")
        self.state.publish_event("package.published", f"{name}@{version}", actor,
                                 {"digest": digest})
        self.state.confirm_durable(replid)   # a 201 only for a bundle a failover keeps
        return meta

    def get(self, name: str, version: str) -> Document | None:
        """One version's metadata, or None."""
        raw = self.redis.hget(self._key("hosted", "versions", name), version)
        return json.loads(_text(raw)) if raw is not None else None

    def get_bundle(self, name: str, version: str) -> bytes | None:
        """The stored bundle bytes, or None."""
        raw = self.redis.get(self._key("hosted", "bundle", name, version))
        return base64.b64decode(_text(raw)) if raw is not None else None

    def names(self) -> list[str]:
        """Every published package name, sorted."""
        return sorted(_text(n) for n in self.redis.smembers(self._key("hosted", "names")))

    def versions(self, name: str) -> list[Document]:
        """Every published version of ``name`` (metadata), oldest first."""
        raw = self.redis.hgetall(self._key("hosted", "versions", name))
        found = [json.loads(_text(v)) for v in raw.values()]
        return sorted(found, key=lambda m: m.get("published_at", 0))

    def list_versions(self) -> list[Document]:
        """Metadata of every published version of every package."""
        return [meta for name in self.names() for meta in self.versions(name)]

    def yank(self, name: str, version: str, reason: str, actor: str = "", *,
             admin: bool = False) -> Document:
        """Mark a version yanked (hidden from new installs and ranges, still listed).

        Only a maintainer of the name in ``hosted`` may, or an admin (``admin=True``).

        :raises VersionNotFound: when that version was never published here.
        :raises NameOwned: when ``actor`` is neither.
        """
        key = self._key("hosted", "versions", name)
        owners_key = self._key(*OWNERS_KEY)
        replid = self.state.replication_id()
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key, owners_key)  # type: ignore[no-untyped-call]
                    raw = pipe.hget(key, version)
                    if raw is None:
                        raise VersionNotFound(f"{name} {version} is not published here",
                                              package=name, version=version)
                    owner = pipe.hget(owners_key, name)
                    record = json.loads(_text(owner)) if owner is not None else None
                    if not admin and not may_publish(record, actor):
                        raise refusal(name, record or ownership([], []), actor, "yank")
                    meta: dict[str, Any] = json.loads(_text(raw))
                    meta["yanked"] = {"reason": reason, "actor": actor, "at": time.time()}
                    pipe.multi()
                    pipe.hset(key, version, json.dumps(meta))
                    pipe.incr(self._key(*GENERATION_KEY))
                    pipe.xadd(self.state.events_key, self.state.event_fields(
                        "package.yanked", f"{name}@{version}", actor, {"reason": reason}),
                        maxlen=self.state.events_maxlen, approximate=True)
                    pipe.execute()
                    break
                except WatchError:
                    continue
        self.state.confirm_durable(replid)
        return meta


class RepositoryStore(_Base):
    """Remote repository settings, fetch state and last good copy.

    Records are JSON documents with a ``rev``, written through
    :meth:`RedisState.transact`, so a refresh and an admin's change never lose
    each other's fields.
    """

    def add(self, record: Mapping[str, JSON], actor: str = "") -> Document:
        """Add a repository (``name``, ``url``, ``priority``, …).

        :raises RepositoryExists: when the name is taken.
        """
        full: Document = {"kind": "remote", "format": "berth", "created_at": time.time(),
                          "created_by": actor, "etag": None, "last_modified": None,
                          "fetched_at": None, "checked_at": None, "stale": False,
                          "error": None, "packages": 0, **dict(record)}
        name = str(full["name"])
        key = self._key("repo", name)

        def change(tx: Tx) -> Document:
            if tx.get(key) is not None:
                raise RepositoryExists(f"a repository named {name!r} exists",
                                       hint="remove it first or choose another name")
            written = tx.put(key, full)
            tx.call("sadd", self._key("repos"), name)
            tx.call("incr", self._key(*GENERATION_KEY))
            tx.event("repository.added", name, actor, {"url": full.get("url")})
            return written

        return self.state.transact(change)

    def get(self, name: str) -> Document | None:
        """One repository's record, or None."""
        return self.state.get_doc(self._key("repo", name))

    def require(self, name: str) -> Document:
        """One repository's record.

        :raises RepositoryNotFound: when there is none of that name.
        """
        record = self.get(name)
        if record is None:
            raise RepositoryNotFound(f"no repository named {name!r}",
                                     hint="`GET /api/v1/repositories` lists them")
        return record

    def list(self) -> list[Document]:
        """Every repository record, by priority then name."""
        names = sorted(_text(n) for n in self.redis.smembers(self._key("repos")))
        records = [r for r in self.state.get_docs(self._key("repo", n) for n in names) if r]
        return sorted(records, key=_listing_order)

    def remove(self, name: str, actor: str = "") -> bool:
        """Delete a repository and its copy; True if it existed."""
        key = self._key("repo", name)

        def change(tx: Tx) -> bool:
            if tx.get(key) is None:
                return False
            tx.delete(key)
            tx.call("srem", self._key("repos"), name)
            for part in ("digests", "docs", "listing"):
                tx.call("delete", self._key("repo", name, part))
            tx.call("incr", self._key(*GENERATION_KEY))
            tx.event("repository.removed", name, actor)
            return True

        return self.state.transact(change)

    def update(self, name: str, *, bump: bool = True, **fields: JSON) -> Document:
        """Change fields of a record (bumping the generation unless told not to).

        :raises RepositoryNotFound: when there is none of that name.
        """
        key = self._key("repo", name)

        def change(tx: Tx) -> Document:
            current = tx.get(key)
            if current is None:
                raise RepositoryNotFound(f"no repository named {name!r}")
            written = tx.put(key, {**current, **fields})
            if bump:
                tx.call("incr", self._key(*GENERATION_KEY))
            return written

        return self.state.transact(change)

    # the last good copy ------------------------------------------------------------
    def digests(self, name: str) -> dict[str, str]:
        """Package name → digest of its document in the last good copy."""
        raw = self.redis.hgetall(self._key("repo", name, "digests"))
        return {_text(k): _text(v) for k, v in raw.items()}

    def load_documents(self, name: str, packages: Iterable[str]) -> Document:
        """The stored documents of ``packages`` (missing ones left out)."""
        wanted = list(packages)
        if not wanted:
            return {}
        raw = self.redis.hmget(self._key("repo", name, "docs"), wanted)
        return {p: json.loads(unpack(v)) for p, v in zip(wanted, raw, strict=True)
                if v is not None}

    def documents(self, name: str) -> dict[str, tuple[str, JSON]]:
        """Package name → (digest, document) of the whole last good copy."""
        digests = self.digests(name)
        docs = self.load_documents(name, digests)
        return {p: (digests[p], docs[p]) for p in digests if p in docs}

    def save_copy(self, name: str, *, listing: bytes, changed: Mapping[str, tuple[str, JSON]],
                  removed: Iterable[str], fields: Mapping[str, JSON]) -> bool:
        """Replace the last good copy in one transaction and bump the generation.

        Returns False (nothing written) when the repository was removed meanwhile.
        """
        key = self._key("repo", name)
        gone = list(removed)
        digests = {p: d for p, (d, _) in changed.items()}
        docs = {p: pack(json.dumps(doc).encode()) for p, (_, doc) in changed.items()}

        def change(tx: Tx) -> bool:
            current = tx.get(key)
            if current is None:
                return False
            if gone:
                tx.call("hdel", self._key("repo", name, "digests"), *gone)
                tx.call("hdel", self._key("repo", name, "docs"), *gone)
            if changed:
                tx.call("hset", self._key("repo", name, "digests"), mapping=digests)
                tx.call("hset", self._key("repo", name, "docs"), mapping=docs)
            tx.call("set", self._key("repo", name, "listing"), pack(listing))
            tx.put(key, {**current, **fields})
            tx.call("incr", self._key(*GENERATION_KEY))
            tx.event("repository.refreshed", name, "", {"changed": len(changed),
                                                       "removed": len(gone)})
            return True

        return self.state.transact(change)
