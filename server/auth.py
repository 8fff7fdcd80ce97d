"""Who is asking, and may they: roles, API tokens, store-front sessions.

Roles are ordered ``viewer < maintainer < admin``: viewers browse, maintainers
publish, admins install and change services, agents and repositories. Anonymous
callers get ``BERTH_ANONYMOUS_ROLE`` (``viewer`` by default, or ``none``).

API calls carry ``Authorization: Bearer berth_<id>_<secret>``. Redis keeps only the
SHA-256 of a token (see ``worker.store.auth``) and the check compares hashes with
``hmac.compare_digest``. The store front logs in with a token or a user name and
password (scrypt hashes from ``werkzeug.security``) and keeps the identity and a
random session id in the signed session cookie. Redis keeps the session id's hash
until logout or expiry; both are re-checked on every request, so a revoked token, a
removed user or a logged-out session (even a replayed copy of its cookie) is
anonymous at once. An identity from the session (not from a bearer token) must send
the CSRF token with unsafe API calls; a blank ``Authorization`` header counts as
absent, so it cannot skip that check.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import g, request, session
from werkzeug.security import check_password_hash, generate_password_hash

from .context import current_berth
from .errors import ApiError
from .settings import ROLES

F = TypeVar("F", bound=Callable[..., Any])
RANK = {"none": 0, "viewer": 1, "maintainer": 2, "admin": 3}
TOKEN_PREFIX = "berth_"  # noqa: S105 - a prefix, not a secret
# A well-formed hash to check against when the user does not exist, so a wrong
# user name costs the same time as a wrong password.
_DUMMY_HASH = generate_password_hash("berth-not-a-password")


class Unauthorized(ApiError):
    """No identity, or credentials that do not check out (401)."""

    code = "unauthorized"
    status = 401


class TooManyAttempts(ApiError):
    """Too many failed password logins for one user name lately (429)."""

    code = "too_many_attempts"
    status = 429


MAX_FAILED_LOGINS = 10  # per user name ...
FAILED_LOGIN_WINDOW = 300  # ... in this many seconds


class Forbidden(ApiError):
    """An identity whose role is too low for the action (403)."""

    code = "forbidden"
    status = 403


@dataclass(frozen=True)
class Identity:
    """Who is asking: ``kind`` is ``token``, ``user`` or ``anonymous``."""

    kind: str
    name: str
    role: str
    id: str = ""
    by_session: bool = False  # from the store front's cookie: unsafe calls need CSRF

    @property
    def actor(self) -> str:
        """How records and events name this identity (``token:ab12cd34``, ``user:ann``)."""
        if self.kind == "token":
            return f"token:{self.id}"
        if self.kind == "user":
            return f"user:{self.name}"
        return "anonymous"

    @property
    def authenticated(self) -> bool:
        return self.kind != "anonymous"

    def allows(self, role: str) -> bool:
        """True if this identity's role is at least ``role``."""
        return RANK.get(self.role, 0) >= RANK[role]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "role": self.role, "actor": self.actor}


# tokens -------------------------------------------------------------------------
def hash_token(token: str) -> str:
    """SHA-256 hex of a token: enough for 256-bit random secrets (no guessing)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh ``(token_id, token)`` pair; the id is public, the token is the secret."""
    token_id = secrets.token_hex(4)
    return token_id, f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"


def create_token(store: Any, *, name: str, role: str, created_by: str = "") -> tuple[dict, str]:
    """Create and store a token; returns its record and the secret (shown once).

    :raises ValueError: when ``role`` is not a role.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    while True:
        token_id, token = new_token()
        if store.auth.get_token(token_id) is None:
            break
    record = store.auth.add_token(token_id, name=name, role=role,
                                  token_hash=hash_token(token), created_by=created_by)
    return record, token


def verify_token(store: Any, token: str) -> Identity | None:
    """The identity a token stands for, or None when it is unknown or malformed."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    token_id, _, secret = token[len(TOKEN_PREFIX):].partition("_")
    if not token_id or not secret:
        return None
    record = store.auth.get_token(token_id)
    expected = record.get("hash", "") if record else hash_token("")
    if not hmac.compare_digest(hash_token(token), expected) or record is None:
        return None
    return Identity("token", record.get("name", ""), record.get("role", "viewer"), token_id)


# passwords ----------------------------------------------------------------------
def hash_password(password: str) -> str:
    """A slow, salted hash (scrypt) of a password."""
    return generate_password_hash(password, method="scrypt")


def verify_password(store: Any, name: str, password: str) -> Identity | None:
    """The identity of a user whose password matches, or None."""
    user = store.auth.get_user(name) if 0 < len(name) <= 100 else None
    ok = check_password_hash(user["password_hash"] if user else _DUMMY_HASH, password)
    if not ok or user is None:
        return None
    return Identity("user", name, user.get("role", "viewer"))


# the current request ------------------------------------------------------------
def current_identity() -> Identity:
    """Who is asking in this request (cached on ``flask.g``).

    :raises Unauthorized: when a bearer token is sent but is not valid.
    """
    identity = g.get("berth_identity")
    if identity is None:
        identity = _resolve_identity()
        g.berth_identity = identity
    return identity


def _resolve_identity() -> Identity:
    berth = current_berth()
    header = request.headers.get("Authorization", "").strip()
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <token>'")
        identity = verify_token(berth.store, token.strip())
        if identity is None:
            raise Unauthorized("the token is not valid (revoked or mistyped)",
                               hint="create one with `berth admin token create`")
        return identity
    identity = _session_identity(berth.store)
    if identity is not None:
        return identity
    return Identity("anonymous", "", berth.settings.anonymous_role)


def _session_identity(store: Any) -> Identity | None:
    """The identity in the store front's session, re-checked against Redis."""
    saved = session.get("identity")
    if not isinstance(saved, dict):
        return None
    if not store.auth.session_alive(_session_hash(saved)):
        pass  # logged out, expired, or a cookie from before session ids
    elif saved.get("kind") == "token":
        record = store.auth.get_token(str(saved.get("id", "")))
        if record:
            return Identity("token", record.get("name", ""), record.get("role", "viewer"),
                            record["id"], by_session=True)
    elif saved.get("kind") == "user":
        user = store.auth.get_user(str(saved.get("name", "")))
        if user and hmac.compare_digest(_password_mark(user), str(saved.get("mark", ""))):
            return Identity("user", user["name"], user.get("role", "viewer"), by_session=True)
    session.pop("identity", None)
    return None


def _session_hash(saved: dict[str, Any]) -> str:
    """The hash Redis keeps of a session's id ("" when the cookie carries none)."""
    sid = saved.get("sid")
    return hash_token(sid) if isinstance(sid, str) and sid else ""


def _password_mark(user: dict[str, str]) -> str:
    """A short digest of the password hash: changing the password ends old sessions."""
    return hashlib.sha256(user.get("password_hash", "").encode()).hexdigest()[:16]


def require_role(role: str) -> Callable[[F], F]:
    """Decorate a view so it runs only for identities with at least ``role``."""
    if role not in RANK:
        raise ValueError(f"unknown role {role!r}")

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            check_role(role)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def check_role(role: str) -> Identity:
    """The current identity if it has ``role``.

    :raises Unauthorized: for anonymous callers.
    :raises Forbidden: for identities with a lower role.
    """
    identity = current_identity()
    if identity.allows(role):
        return identity
    if not identity.authenticated:
        raise Unauthorized(f"this needs the {role} role: log in or send a token",
                           hint="set BERTH_TOKEN or run `berth login`")
    raise Forbidden(f"this needs the {role} role; {identity.actor} is {identity.role}")


def login_with_token(token: str) -> Identity:
    """Log the store front's session in with an API token.

    :raises Unauthorized: when the token is not valid.
    """
    identity = verify_token(current_berth().store, token.strip())
    if identity is None:
        raise Unauthorized("the token is not valid (revoked or mistyped)")
    _start_session({"kind": "token", "id": identity.id}, identity.actor)
    return identity


def login_with_password(name: str, password: str) -> Identity:
    """Log the store front's session in with a user name and password.

    Failed attempts are counted per user name in Redis (shared by every server):
    after :data:`MAX_FAILED_LOGINS` within :data:`FAILED_LOGIN_WINDOW` seconds the
    name is locked out until the window passes.

    :raises Unauthorized: when they do not match (same message either way).
    :raises TooManyAttempts: when the name is locked out.
    """
    store = current_berth().store
    attempts_key = store.state.key("login_failures", name[:100])
    if int(store.redis.get(attempts_key) or 0) >= MAX_FAILED_LOGINS:
        raise TooManyAttempts("too many failed logins for this user; try again later")
    identity = verify_password(store, name, password)
    if identity is None:
        pipe = store.redis.pipeline()
        pipe.incr(attempts_key)
        pipe.expire(attempts_key, FAILED_LOGIN_WINDOW)
        pipe.execute()
        raise Unauthorized("unknown user or wrong password")
    _start_session({"kind": "user", "name": name,
                    "mark": _password_mark(store.auth.get_user(name) or {})}, identity.actor)
    return identity


def _start_session(saved: dict[str, str], actor: str) -> None:
    """Begin a fresh session: a new random id, recorded in Redis for its lifetime."""
    berth = current_berth()
    _end_stored_session()
    session.clear()
    sid = secrets.token_urlsafe(32)
    berth.store.auth.add_session(hash_token(sid), actor=actor,
                                 lifetime=berth.settings.session_lifetime)
    session["identity"] = {**saved, "sid": sid}
    session.permanent = True
    g.pop("berth_identity", None)


def _end_stored_session() -> None:
    """Revoke the current session's id in Redis, if the cookie carries one."""
    saved = session.get("identity")
    if isinstance(saved, dict) and _session_hash(saved):
        current_berth().store.auth.revoke_session(_session_hash(saved))


def logout() -> None:
    """End the store front's session: its id is revoked, so a replayed cookie is void."""
    _end_stored_session()
    session.clear()
    g.pop("berth_identity", None)
