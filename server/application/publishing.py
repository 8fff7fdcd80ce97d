"""Publishing: storing a maintainer's bundle, yanking a version, and who owns a name.

A bundle is checked like ``berth lint`` checks a folder — every problem at once —
after :func:`catalog.bundle.read_bundle` has refused anything unsafe, all in memory.
An accepted version is stored in Redis in one atomic step (an existing version is
refused: published versions are immutable) and the catalog generation moves, so
every server process shows it at the next request.

Package names are owned: a name belongs to the repositories that may serve it and,
in ``hosted``, to the maintainers that may publish and yank it (the first one that
did). Tokens are named by id or, when exactly one token has it, by name.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from catalog.bundle import BundleLimits, lint_bundle, package_from_bundle
from catalog.errors import PackageInvalid
from catalog.links import credential_problems
from catalog.render import rendering_with

from ..errors import ApiError, Invalid

PACKAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # names in paths
OWNER_KINDS = ("token", "user", "repository")
MAX_VERSION = 128
MAX_REASON = 500  # characters of a yank reason


class OwnerNotFound(ApiError):
    code = "not_found"
    status = 404


class Publisher:
    """Publish and yank package versions; show and change who owns a name."""

    def __init__(self, berth: Any) -> None:
        self.berth = berth

    # versions ----------------------------------------------------------------------
    def limits(self) -> BundleLimits:
        """The bundle caps for this server (the compressed cap is ``BERTH_MAX_BODY``)."""
        return BundleLimits(max_bundle=min(self.berth.settings.max_body,
                                           BundleLimits().max_bundle))

    def publish(self, data: bytes, actor: str) -> dict[str, Any]:
        """Store a new version from a bundle; its public metadata.

        :raises PackageInvalid: listing every problem of the bundle.
        :raises VersionExists, NameOwned: the version or the name is taken.
        """
        limits = self.limits()
        with rendering_with(self.berth.renderer):  # lint renders maintainer code
            manifest, problems = lint_bundle(data, limits=limits)
        if problems:
            raise PackageInvalid(f"{manifest.get('name')} {manifest.get('version')} has "
                                 f"{len(problems)} problem(s)", package=manifest.get("name"),
                                 version=manifest.get("version"), details=problems,
                                 hint="run `berth lint DIR` on the package folder")
        package = package_from_bundle(data, repository="hosted", limits=limits)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        # Build the current catalog first: it claims every name the other repositories
        # serve (a remote refreshed a moment ago included) before this publish can.
        catalog = self.berth.catalog.get()
        _refuse_foreign_credentials(package, catalog)
        meta = self.berth.store.hosted.publish(
            package.name, package.version, data, digest=digest, actor=actor,
            extra={"title": package.title, "description": package.description[:500]})
        return {**published_view(meta), "repository": "hosted"}

    def yank(self, name: str, version: str, reason: str, actor: str, *,
             admin: bool) -> dict[str, Any]:
        """Yank a published version: no new installs or range matches, still listed.

        :raises Invalid: for a blank reason or a bad name or version.
        """
        if not reason.strip():
            raise Invalid("the request is invalid", details=[
                {"path": "body/reason", "message": "say why the version is yanked"}])
        if not PACKAGE_NAME.fullmatch(name) or len(version) > MAX_VERSION:
            raise Invalid("bad package name or version", details=[
                {"path": "path", "message": "name or version not allowed"}])
        meta = self.berth.store.hosted.yank(name, version, reason.strip(), actor, admin=admin)
        return published_view(meta)

    # owners ------------------------------------------------------------------------
    def owners(self, name: str) -> dict[str, Any]:
        """The repositories and maintainers a package name belongs to."""
        return self._owners_view(name, self._record(name))

    def add_owner(self, name: str, kind: str, value: str, actor: str) -> dict[str, Any]:
        """Share a name with a token, a user (both publish to ``hosted``) or a repository."""
        _check_name(name)
        self.berth.catalog.get()  # claims first: sharing adds to the first owner
        record = self.berth.store.owners.add(name, actor=actor,
                                             **self._owner_args(kind, value))
        return self._owners_view(name, record)

    def remove_owner(self, name: str, kind: str, value: str, actor: str) -> dict[str, Any]:
        """Stop sharing a name with a token, a user or a repository."""
        if kind not in OWNER_KINDS:
            raise OwnerNotFound(f"no owner kind {kind!r}", hint="token, user or repository")
        record = self._record(name)
        args = self._owner_args(kind, value, known=record)
        record = self.berth.store.owners.remove(name, actor=actor, **args)
        return self._owners_view(name, record)

    def transfer_owner(self, name: str, repository: str, actor: str) -> dict[str, Any]:
        """Give a name to one repository alone (new installs come from it from now on)."""
        _check_name(name)
        self.berth.catalog.get()
        record = self.berth.store.owners.transfer(name, self._repository(repository),
                                                  actor=actor)
        return self._owners_view(name, record)

    def _owners_view(self, name: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """A record as the API shows it: maintainers with their kind and name."""
        catalog = self.berth.catalog.get()
        try:
            resolves_to: str | None = catalog.origin(name)
        except Exception:  # noqa: BLE001 - a reserved name no repository serves yet
            resolves_to = None
        return {"name": name, "repositories": list(record.get("repositories") or []),
                "maintainers": [self._principal(m) for m in record.get("maintainers") or []],
                "resolves_to": resolves_to, "also_in": catalog.also_in(name, resolves_to),
                "changed_at": record.get("at"), "changed_by": record.get("by")}

    def _principal(self, actor: str) -> dict[str, str]:
        kind, _, ident = actor.partition(":")
        if kind == "token":
            token = self.berth.store.auth.get_token(ident)
            label = token.get("name", "") if token else "(revoked)"
        else:
            label = ident
        return {"id": actor, "kind": kind, "name": label}

    def _record(self, name: str) -> dict[str, Any]:
        """The name's record, after the current catalog has claimed what it serves."""
        _check_name(name)
        self.berth.catalog.get()
        record: dict[str, Any] | None = self.berth.store.owners.get(name)
        if record is None:
            raise OwnerNotFound(
                f"nobody owns package name {name!r} yet", hint="the first repository to "
                "serve it, or the first maintainer to publish it, will; an admin can reserve "
                f"it: berth package owners add {name} --token TOKEN")
        return record

    def _owner_args(self, kind: str, value: str,
                    known: Mapping[str, Any] | None = None) -> dict[str, str]:
        """``repository=`` or ``maintainer=`` for the store, checked (422 when unknown).

        With ``known`` (a removal), a value already in the record needs no other check,
        so a revoked token or removed user can still be taken off.
        """
        if kind == "repository":
            if known is None:
                return {"repository": self._repository(value)}
            if value not in known.get("repositories", ()):
                raise OwnerNotFound(f"{value!r} is not one of the name's repositories")
            return {"repository": value}
        actor = f"{kind}:{value}"
        if known is not None and actor in known.get("maintainers", ()):
            return {"maintainer": actor}
        principal = self._token(value) if kind == "token" else self._user(value)
        if known is not None and principal not in known.get("maintainers", ()):
            raise OwnerNotFound(f"{principal} is not one of the name's maintainers")
        return {"maintainer": principal}

    def _token(self, value: str) -> str:
        """``token:<id>`` for a token id, or a name exactly one token has."""
        auth = self.berth.store.auth
        if auth.get_token(value):
            return f"token:{value}"
        named = [t["id"] for t in auth.list_tokens() if t.get("name") == value]
        if len(named) == 1:
            return f"token:{named[0]}"
        message = (f"several tokens are named {value!r}; give the id" if named
                   else f"no token has the id or name {value!r}")
        raise Invalid("unknown token", details=[{"path": "body/token", "message": message}],
                      hint="see `berth admin token list`")

    def _user(self, value: str) -> str:
        if self.berth.store.auth.get_user(value) is None:
            raise Invalid("unknown user", details=[
                {"path": "body/user", "message": f"no user named {value!r}"}],
                hint="see `berth admin user list`")
        return f"user:{value}"

    def _repository(self, value: str) -> str:
        if self.berth.catalog.get().repository(value) is None:
            raise Invalid("unknown repository", details=[
                {"path": "body/repository", "message": f"no repository named {value!r}"}],
                hint="`GET /api/v1/repositories` lists them")
        return value


def _refuse_foreign_credentials(package: Any, catalog: Any) -> None:
    """A link may only ask for secret options of the package it links to, as the
    catalog serves it (every version it has; ``catalog.links.credential_problems``).

    :raises PackageInvalid: naming ``config.json`` and the credential's field.
    """
    def linked(name: str) -> list[Any]:
        return [p.config_schema for p in catalog.versions(name)] if name in catalog else []

    problems = credential_problems(package.config_schema, linked)
    if problems:
        raise PackageInvalid(
            f"{package.name} {package.version} asks a linked service for options that "
            "are not its secrets", package=package.name, version=package.version,
            details=[{"path": "config.json#" + loc, "message": why} for loc, why in problems],
            hint="name only options the linked package marks x-secret")


def _check_name(name: str) -> None:
    if not PACKAGE_NAME.fullmatch(name):
        raise Invalid("bad package name", details=[
            {"path": "path/name", "message": "letters, digits, '.', '_' or '-'"}])


def published_view(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A published version's metadata as the API shows it."""
    yanked = meta.get("yanked") or None
    return {"name": meta["name"], "version": meta["version"], "digest": meta.get("digest"),
            "size": meta.get("size"), "published_at": meta.get("published_at"),
            "published_by": meta.get("published_by"),
            "yanked": yanked.get("reason") if isinstance(yanked, dict) else yanked,
            "yanked_at": yanked.get("at") if isinstance(yanked, dict) else None}
