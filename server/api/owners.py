"""``/packages/<name>/owners``: who a package name belongs to, and an admin's changes.

A name belongs to the repositories that may serve it (the first one that served it)
and, in ``hosted``, to the maintainers (tokens or users) that may publish and yank it
(the first one that published it). Anyone with the maintainer role may read a name's
owners, to know whom to ask; only an admin shares, unshares or transfers a name.
Tokens are named by id or, when exactly one token has it, by name; they are stored
by id (``token:<id>``), so a token that is revoked and created again must be shared
again.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, jsonify

from catalog.names import schema_pattern

from ..context import current_berth
from ..errors import ApiError, Invalid
from .common import allow, json_body

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
KINDS = ("token", "user", "repository")


class OwnerNotFound(ApiError):
    code = "not_found"
    status = 404


def register(bp: Blueprint) -> None:
    """Add the ownership routes to the API blueprint."""
    bp.add_url_rule("/packages/<name>/owners", view_func=show_owners, methods=["GET"])
    bp.add_url_rule("/packages/<name>/owners", view_func=add_owner, methods=["POST"])
    bp.add_url_rule("/packages/<name>/owners/<kind>/<value>", view_func=remove_owner,
                    methods=["DELETE"])
    bp.add_url_rule("/packages/<name>/owners/transfer", view_func=transfer_owner,
                    methods=["POST"])


def show_owners(name: str) -> Any:
    """The repositories and maintainers a package name belongs to."""
    allow("maintainer")
    return jsonify(owners_view(name, _record(name)))


def add_owner(name: str) -> Any:
    """Share a name with a token, a user (both publish to ``hosted``) or a repository."""
    actor = allow("admin")
    _check_name(name)
    current_berth().catalog.get()  # claims first: sharing adds to the first owner
    kind, value = _one_owner(json_body("OwnerRequest"))
    record = current_berth().store.owners.add(name, actor=actor, **_owner_args(kind, value))
    return jsonify(owners_view(name, record))


def remove_owner(name: str, kind: str, value: str) -> Any:
    """Stop sharing a name with a token, a user or a repository."""
    actor = allow("admin")
    if kind not in KINDS:
        raise OwnerNotFound(f"no owner kind {kind!r}", hint="token, user or repository")
    record = _record(name)
    args = _owner_args(kind, value, known=record)
    record = current_berth().store.owners.remove(name, actor=actor, **args)
    return jsonify(owners_view(name, record))


def transfer_owner(name: str) -> Any:
    """Give a name to one repository alone (new installs come from it from now on)."""
    actor = allow("admin")
    _check_name(name)
    current_berth().catalog.get()
    body = json_body("TransferRequest")
    repository = _repository(body["repository"])
    record = current_berth().store.owners.transfer(name, repository, actor=actor)
    return jsonify(owners_view(name, record))


# helpers -----------------------------------------------------------------------------
def owners_view(name: str, record: dict[str, Any]) -> dict[str, Any]:
    """A record as the API shows it: maintainers with their kind and name."""
    catalog = current_berth().catalog.get()
    try:
        resolves_to: str | None = catalog.origin(name)
    except Exception:  # noqa: BLE001 - a reserved name no repository serves yet
        resolves_to = None
    return {"name": name, "repositories": list(record.get("repositories") or []),
            "maintainers": [_principal(m) for m in record.get("maintainers") or []],
            "resolves_to": resolves_to, "also_in": catalog.also_in(name, resolves_to),
            "changed_at": record.get("at"), "changed_by": record.get("by")}


def _principal(actor: str) -> dict[str, str]:
    kind, _, ident = actor.partition(":")
    auth = current_berth().store.auth
    if kind == "token":
        token = auth.get_token(ident)
        label = token.get("name", "") if token else "(revoked)"
    else:
        label = ident
    return {"id": actor, "kind": kind, "name": label}


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise Invalid("bad package name", details=[
            {"path": "path/name", "message": "letters, digits, '.', '_' or '-'"}])


def _record(name: str) -> dict[str, Any]:
    """The name's record, after the current catalog has claimed what it serves."""
    _check_name(name)
    current_berth().catalog.get()
    record = current_berth().store.owners.get(name)
    if record is None:
        raise OwnerNotFound(
            f"nobody owns package name {name!r} yet", hint="the first repository to serve "
            "it, or the first maintainer to publish it, will; an admin can reserve it: "
            f"berth package owners add {name} --token TOKEN")
    return record


def _one_owner(body: dict[str, Any]) -> tuple[str, str]:
    """The one ``token``, ``user`` or ``repository`` of a request body."""
    return next((k, str(body[k])) for k in KINDS if k in body)


def _owner_args(kind: str, value: str, known: dict[str, Any] | None = None) -> dict[str, str]:
    """``repository=`` or ``maintainer=`` for the store, checked (422 when unknown).

    With ``known`` (a removal), a value already in the record needs no other check, so
    a revoked token or removed user can still be taken off.
    """
    if kind == "repository":
        if known is None:
            return {"repository": _repository(value)}
        if value not in known.get("repositories", ()):
            raise OwnerNotFound(f"{value!r} is not one of the name's repositories")
        return {"repository": value}
    actor = f"{kind}:{value}"
    if known is not None and actor in known.get("maintainers", ()):
        return {"maintainer": actor}
    principal = _token(value) if kind == "token" else _user(value)
    if known is not None and principal not in known.get("maintainers", ()):
        raise OwnerNotFound(f"{principal} is not one of the name's maintainers")
    return {"maintainer": principal}


def _token(value: str) -> str:
    """``token:<id>`` for a token id, or a name exactly one token has."""
    auth = current_berth().store.auth
    if auth.get_token(value):
        return f"token:{value}"
    named = [t["id"] for t in auth.list_tokens() if t.get("name") == value]
    if len(named) == 1:
        return f"token:{named[0]}"
    message = (f"several tokens are named {value!r}; give the id" if named
               else f"no token has the id or name {value!r}")
    raise Invalid("unknown token", details=[{"path": "body/token", "message": message}],
                  hint="see `berth admin token list`")


def _user(value: str) -> str:
    if current_berth().store.auth.get_user(value) is None:
        raise Invalid("unknown user", details=[
            {"path": "body/user", "message": f"no user named {value!r}"}],
            hint="see `berth admin user list`")
    return f"user:{value}"


def _repository(value: str) -> str:
    if current_berth().catalog.get().repository(value) is None:
        raise Invalid("unknown repository", details=[
            {"path": "body/repository", "message": f"no repository named {value!r}"}],
            hint="`GET /api/v1/repositories` lists them")
    return value


def _openapi() -> tuple[dict[str, Any], dict[str, Any]]:
    """This module's paths and schemas for the API document."""
    from .openapi import _error_responses, _json, _path

    name = _path("name", {"type": "string", "pattern": schema_pattern(_NAME)})
    ok = _json("The name's owners", {"$ref": "#/components/schemas/Owners"})
    changes = "400 401 403 404 409 413 415 422 503"

    def op(op_id: str, summary: str, errors: str, body: str | None = None,
           params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        found: dict[str, Any] = {"operationId": op_id, "summary": summary,
                                 "parameters": [name, *(params or [])],
                                 "responses": {**ok, **_error_responses(errors)}}
        if body:
            found["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{body}"}}}}
        return found

    paths = {
        "/packages/{name}/owners": {
            "get": op("showOwners", "Who a package name belongs to (maintainer)",
                      "401 403 404 503"),
            "post": op("addOwner", "Share a name with a token, user or repository (admin)",
                       changes, "OwnerRequest")},
        "/packages/{name}/owners/{kind}/{value}": {"delete": op(
            "removeOwner", "Stop sharing a name (admin)", "401 403 404 409 503",
            params=[_path("kind", {"enum": list(KINDS)}), _path("value")])},
        "/packages/{name}/owners/transfer": {"post": op(
            "transferOwner", "Give a name to one repository alone (admin)", changes,
            "TransferRequest")},
    }
    text = {"type": "string", "minLength": 1, "maxLength": 100}
    schemas = {
        "OwnerRequest": {"type": "object", "additionalProperties": False,
                         "minProperties": 1, "maxProperties": 1,
                         "properties": {k: text for k in KINDS}},
        "TransferRequest": {"type": "object", "additionalProperties": False,
                            "required": ["repository"], "properties": {"repository": text}},
        "Owners": {"type": "object", "required": ["name", "repositories", "maintainers"],
                   "properties": {
                       "name": {"type": "string"},
                       "repositories": {"type": "array", "items": {"type": "string"}},
                       "maintainers": {"type": "array", "items": {
                           "type": "object", "properties": {
                               "id": {"type": "string"}, "kind": {"type": "string"},
                               "name": {"type": "string"}}}},
                       "resolves_to": {"type": ["string", "null"]},
                       "also_in": {"type": "array", "items": {"type": "string"}}}},
    }
    return paths, schemas


OPENAPI_PATHS, OPENAPI_SCHEMAS = _openapi()
