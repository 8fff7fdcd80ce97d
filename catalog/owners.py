"""Who a package name belongs to: the rules, pure (the records live in Redis).

A name belongs to the repositories that may serve it — the first one that served it,
plus any an admin shared it with — and, in the ``hosted`` repository, to the
principals (``token:<id>``, ``user:<name>``) that may publish and yank it: the one who
first published it, plus any an admin shared it with. Without this a maintainer could
publish ``postgres 99.0.0`` to hosted, whose priority wins, and every new install of
``postgres`` would run that maintainer's image (dependency confusion).

A record is ``{"repositories": [...], "maintainers": [...], "at", "by"}``.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from typing import Any

from .errors import NameOwned
from .repository import Repository

__all__ = ["HOSTED", "first_claims", "may_publish", "ownership", "refusal", "share_hint"]

HOSTED = "hosted"


def ownership(repositories: Iterable[str], maintainers: Iterable[str], *, by: str = "",
              at: float = 0.0) -> dict[str, Any]:
    """An ownership record (repositories and maintainers kept in first-come order)."""
    return {"repositories": list(dict.fromkeys(repositories)),
            "maintainers": list(dict.fromkeys(maintainers)), "at": at, "by": by}


def may_publish(record: Mapping[str, Any] | None, actor: str) -> bool:
    """True if ``actor`` owns the name in ``hosted`` (publish and yank there)."""
    if not record:
        return False
    return HOSTED in record.get("repositories", ()) and actor in record.get("maintainers", ())


def share_hint(name: str, actor: str) -> str:
    """The command an admin runs to let ``actor`` publish ``name``."""
    kind, _, ident = actor.partition(":")
    flag = f"--user {ident}" if kind == "user" else f"--token {ident or 'TOKEN_ID'}"
    return f"an admin can share it: berth package owners add {name} {flag}"


def refusal(name: str, record: Mapping[str, Any], actor: str, action: str) -> NameOwned:
    """The error for publishing or yanking a name ``actor`` does not own."""
    repositories = [r for r in record.get("repositories", ()) if r]
    maintainers = list(record.get("maintainers", ()))
    if HOSTED not in repositories:
        where = ", ".join(repr(r) for r in repositories) or "no repository"
        message = f"package name {name!r} belongs to repository {where}"
    else:
        whom = ", ".join(m or "(unnamed)" for m in maintainers) or "no maintainer yet"
        message = f"package name {name!r} in repository 'hosted' belongs to {whom}"
    verb = "publish" if action == "publish" else "yank versions of"
    return NameOwned(f"{message}; you ({actor or 'anonymous'}) may not {verb} it",
                     package=name, hint=share_hint(name, actor))


def first_claims(repositories: Iterable[Repository], owned: Container[str]) -> dict[str, str]:
    """Name → the repository that claims it, for every name not in ``owned``.

    The claim goes to the repository with the lowest priority number that holds the
    name, but a repository that is not ``hosted`` comes before ``hosted``: hosted
    names are claimed when they are published, so a hosted name with no claim was
    published before names had owners, and when another repository serves it too,
    the hosted one is the likelier takeover.
    """
    claims: dict[str, tuple[bool, int, str]] = {}
    for repo in repositories:
        rank = (repo.kind == "hosted", repo.priority, repo.name)
        for name in {p.name for p in repo.packages}:
            if name not in owned and (name not in claims or rank < claims[name]):
                claims[name] = rank
    return {name: rank[2] for name, rank in claims.items()}
