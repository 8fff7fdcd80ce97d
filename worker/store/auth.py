"""Users and API tokens in Redis (the server's side of auth).

Tokens are stored as the SHA-256 of the token, never the token itself: a token is
256 random bits, so a fast unsalted hash is enough (nobody can guess a preimage)
and lets a lookup stay cheap on every request. Passwords, which people choose, are
hashed slowly by the caller (``werkzeug.security``, scrypt) before they get here.

Keys (under the store's prefix): ``token:<id>`` and ``user:<name>`` hashes, with the
sets ``tokens`` and ``users`` listing them; ``session:<sha256 of the session id>``
strings (the actor, expiring with the session) for the store front's sessions, so
logging out ends a session even when an old copy of its cookie is replayed.
"""

from __future__ import annotations

import time
from typing import Any

from redis.typing import EncodableT, FieldT

from .base import RedisState

_TOKEN_FIELDS = ("id", "name", "role", "hash", "created_at", "created_by", "last_used_at")
_USER_FIELDS = ("name", "role", "password_hash", "created_at", "created_by")


def _text(value: Any) -> str:
    """Redis replies as text, whatever the client's decode setting."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _record(raw: dict[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}



def _fields(record: dict[str, str]) -> dict[EncodableT, EncodableT]:
    """A record as the fields of a Redis hash."""
    return {key: value for key, value in record.items()}

class AuthStore:
    """Users (hashed passwords) and tokens (hashed secrets), with their roles."""

    def __init__(self, state: RedisState) -> None:
        self.state = state
        self.redis = state.redis

    def _key(self, *parts: str) -> str:
        return self.state.key(*parts)

    # tokens -------------------------------------------------------------------
    def add_token(self, token_id: str, *, name: str, role: str, token_hash: str,
                  created_by: str = "") -> dict[str, str]:
        """Store a token's hash and metadata; returns the record (without the hash)."""
        record = {"id": token_id, "name": name, "role": role, "hash": token_hash,
                  "created_at": repr(time.time()), "created_by": created_by,
                  "last_used_at": ""}
        pipe = self.redis.pipeline()
        pipe.hset(self._key("token", token_id), mapping=_fields(record))
        pipe.sadd(self._key("tokens"), token_id)
        pipe.execute()
        return _public(record)

    def get_token(self, token_id: str) -> dict[str, str] | None:
        """The full token record (hash included), or None."""
        raw = self.redis.hgetall(self._key("token", token_id))
        return _record(raw) if raw else None

    def touch_token(self, token_id: str) -> None:
        """Note when a token was last used (best effort)."""
        self.redis.hset(self._key("token", token_id), "last_used_at", repr(time.time()))

    def list_tokens(self) -> list[dict[str, str]]:
        """Every token's metadata, never its hash; oldest first."""
        ids = sorted(_text(i) for i in self.redis.smembers(self._key("tokens")))
        records = [self.get_token(i) for i in ids]
        found = [_public(r) for r in records if r]
        return sorted(found, key=lambda r: float(r.get("created_at") or 0))

    def revoke_token(self, token_id: str) -> bool:
        """Delete a token; True if it existed."""
        pipe = self.redis.pipeline()
        pipe.delete(self._key("token", token_id))
        pipe.srem(self._key("tokens"), token_id)
        deleted, _ = pipe.execute()
        return bool(deleted)

    # sessions ---------------------------------------------------------------
    def add_session(self, session_hash: str, *, actor: str, lifetime: int) -> None:
        """Record a live store-front session (by the hash of its id) for ``lifetime`` s."""
        self.redis.set(self._key("session", session_hash), actor, ex=max(1, lifetime))

    def session_alive(self, session_hash: str) -> bool:
        """True while the session has not been revoked nor expired."""
        return bool(session_hash) and bool(self.redis.exists(self._key("session", session_hash)))

    def revoke_session(self, session_hash: str) -> bool:
        """End a session; True if it was live."""
        return bool(self.redis.delete(self._key("session", session_hash)))

    # users --------------------------------------------------------------------
    def add_user(self, name: str, *, role: str, password_hash: str,
                 created_by: str = "") -> bool:
        """Create a user; False if the name is taken."""
        key = self._key("user", name)
        record: dict[FieldT, EncodableT] = {"name": name, "role": role,
                                            "password_hash": password_hash,
                  "created_at": repr(time.time()), "created_by": created_by}
        if not self.redis.hsetnx(key, "name", name):
            return False
        self.redis.hset(key, mapping=record)
        self.redis.sadd(self._key("users"), name)
        return True

    def get_user(self, name: str) -> dict[str, str] | None:
        """The user record (password hash included), or None."""
        raw = self.redis.hgetall(self._key("user", name))
        return _record(raw) if raw else None

    def set_password(self, name: str, password_hash: str) -> bool:
        """Replace a user's password hash; False if there is no such user."""
        key = self._key("user", name)
        if not self.redis.exists(key):
            return False
        self.redis.hset(key, "password_hash", password_hash)
        return True

    def set_role(self, name: str, role: str) -> bool:
        """Change a user's role; False if there is no such user."""
        key = self._key("user", name)
        if not self.redis.exists(key):
            return False
        self.redis.hset(key, "role", role)
        return True

    def list_users(self) -> list[dict[str, str]]:
        """Every user without the password hash, by name."""
        names = sorted(_text(n) for n in self.redis.smembers(self._key("users")))
        users = [self.get_user(n) for n in names]
        return [{k: v for k, v in u.items() if k != "password_hash"} for u in users if u]

    def remove_user(self, name: str) -> bool:
        """Delete a user; True if it existed."""
        pipe = self.redis.pipeline()
        pipe.delete(self._key("user", name))
        pipe.srem(self._key("users"), name)
        deleted, _ = pipe.execute()
        return bool(deleted)


def _public(record: dict[str, str]) -> dict[str, str]:
    """A token record without its hash."""
    return {k: v for k, v in record.items() if k != "hash"}
