"""Generated secrets: made once at install (or at the upgrade that adds one), kept,
and shown to an admin on request, each showing written to the audit stream.

A package marks a secret option ``"x-generate": {"kind", "length"}``
(``catalog.generated_secrets``). When the admin leaves it empty,
``catalog.generated_secrets.resolve_generated`` fills it before the template renders:
with the value the service was given before (:func:`earlier_values`: the record's
``generated_secrets``, sealed) or, the first time, a new one. So an upgrade, a
rollback and an upgrade again, or an option sent back empty, never change the value.

The install answer carries the values made then, once (``generated_secrets``).
Afterwards only :func:`reveal` shows a service's secret values, and only to an admin
(the views check the role), writing a ``service.secrets_revealed`` event: who, when,
which service and option paths, never a value.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from catalog.generated_secrets import generators
from catalog.options import path_parts, path_text
from worker.store.crypto import DataKeys, has_sealed, require_keys

__all__ = ["kept_values", "earlier_values", "secret_values", "shown_once",
           "reveal", "REVEALED_EVENT"]

REVEALED_EVENT = "service.secrets_revealed"


def kept_values(service: Mapping[str, Any] | None, keys: DataKeys | None) -> dict[str, str]:
    """The values Berth made for ``service`` before, by path, opened in memory.

    :raises DataKeyError: without the data key that sealed them.
    """
    sealed = dict((service or {}).get("generated_secrets") or {})
    if not sealed:
        return {}
    if has_sealed(sealed):
        sealed = require_keys(keys, "open the service's generated secrets").open_tree(sealed)
    return {path: value for path, value in sealed.items() if isinstance(value, str)}


def earlier_values(package: Any, old_options: Mapping[str, Any], kept: Mapping[str, str]
                   ) -> tuple[dict[str, str], set[str]]:
    """What an upgrade reuses for an ``x-generate`` option left empty, and which such
    options it leaves empty.

    Reused: the value Berth made before, else the one the service ran with (an
    admin's own password is never swapped for a new one because a form sent it back
    empty). Left empty: an option the service already had, empty, from before it was
    generated: the software set itself up without it (a database initialised, clients
    connecting anonymously), and a value made now would be a password it never took
    or a lock-out of its clients. An option the new version adds is generated.
    """
    found, leave = dict(kept), set()
    for gen in generators(package):
        value: Any = old_options
        for part in gen.parts:
            value = value.get(part, _ABSENT) if isinstance(value, Mapping) else _ABSENT
        if isinstance(value, str) and value and gen.path not in found:
            found[gen.path] = value
        elif value is not _ABSENT and (value is None or value == "") and gen.path not in found:
            leave.add(gen.path)
    return found, leave


_ABSENT = object()


def shown_once(made: Mapping[str, str]) -> list[dict[str, str]]:
    """The install answer's ``generated_secrets``: ``[{"path", "value"}]``."""
    return [{"path": path, "value": value} for path, value in sorted(made.items())]


def _concrete(options: Any, parts: Sequence[str], done: tuple[str, ...] = ()
              ) -> Iterator[tuple[tuple[str, ...], Any]]:
    """``(path, value)`` of every value at ``parts`` (``*`` = every key or item)."""
    if not parts:
        if options is not None and options != "":
            yield done, options
        return
    head, rest = parts[0], parts[1:]
    if isinstance(options, Mapping):
        keys = list(options) if head == "*" else [head] if head in options else []
        for key in keys:
            yield from _concrete(options[key], rest, (*done, str(key)))
    elif isinstance(options, list):
        indexes = range(len(options)) if head == "*" else (
            [int(head)] if head.isdigit() and int(head) < len(options) else [])
        for index in indexes:
            yield from _concrete(options[index], rest, (*done, str(index)))


def secret_values(options: Mapping[str, Any], paths: Sequence[str]
                  ) -> list[tuple[str, Any]]:
    """``(path, value)`` of every non-empty value at the secret ``paths``, in order."""
    found: dict[str, Any] = {}
    for text in sorted(paths):
        for parts, value in _concrete(options, path_parts(text)):
            found.setdefault(path_text(parts), value)
    return sorted(found.items())


def reveal(store: Any, keys: DataKeys | None, service: Mapping[str, Any],
           actor: str) -> dict[str, Any]:
    """A service's secret option values in clear, for an admin; the reveal is audited.

    The event is written before the answer is built, so no value is ever shown
    without its record. Returns ``{"service", "generation", "secrets": [{"path",
    "value", "generated"}]}``.

    :raises DataKeyError: without the data key that sealed them.
    """
    name = str(service["name"])
    options = dict(service.get("options") or {})
    paths = list(service.get("secret_paths") or [])
    if has_sealed(options):
        options = require_keys(keys, "open the service's secret values").open_tree(options)
    shown = secret_values(options, paths)
    kept = kept_values(service, keys)
    store.state.publish_event(REVEALED_EVENT, name, actor, {
        "generation": service.get("generation"), "paths": [p for p, _v in shown]})
    return {"service": name, "generation": service.get("generation"),
            "secrets": [{"path": p, "value": v, "generated": kept.get(p) == v}
                        for p, v in shown]}
