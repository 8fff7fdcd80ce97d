"""Handing a linked service's credentials over: the admin's confirmation rule.

A link mark may ask for credentials of the linked service (``catalog.links``). They
reach the dependent service only when the admin confirms it, per option: the install
request's ``handover`` (a list of option names), the form's checkbox, or
``berth install --hand-over-credentials OPTION``. This module checks that request
against the package and the options, refuses an install whose package needs the
credentials (``requireCredentials``) without the confirmation, records who confirmed
and when on the spec's link, and writes the audit event.

Values never pass through here: the spec holds placeholders, and the worker opens the
linked service's sealed values when it creates a container (``worker/links.py``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from catalog.errors import OptionsInvalid
from catalog.links import link_marks, mark_credentials, mark_packages
from worker import links

from ..errors import Invalid

__all__ = ["HANDED_OVER_EVENT", "check_request", "linked_packages", "record",
           "publish", "kept", "problems_with_linked"]

HANDED_OVER_EVENT = "service.credentials_handed_over"


def check_request(handover: Any) -> list[str]:
    """The option names of a ``handover`` field (a list of strings, or absent).

    :raises Invalid: at ``handover`` when it is not a list of option names.
    """
    if handover is None:
        return []
    if not isinstance(handover, list | tuple) or not all(
            isinstance(o, str) and 0 < len(o) <= 64 for o in handover) or len(handover) > 50:
        raise Invalid("invalid handover", details=[{
            "path": "handover", "message": "a list of option names (the linked options "
                                           "whose credentials are handed over)"}])
    return sorted(set(handover))


def confirmed(package: Any, options: Mapping[str, Any], handover: Sequence[str]
              ) -> list[str]:
    """The confirmed options, checked: each must be a link that asks for credentials
    and names a service; a link whose package requires them must be confirmed.

    :raises OptionsInvalid: at ``handover`` (every problem at once).
    """
    marks = link_marks(package.config_schema)
    problems = []
    for option in handover:
        mark = marks.get(option)
        if mark is None or not mark_credentials(mark):
            problems.append({"path": "handover", "message": f"option {option!r} is not a "
                             "link that asks for credentials"})
        elif not options.get(option):
            problems.append({"path": "handover", "message": f"option {option!r} links to "
                             "no service: there is nothing to hand over"})
    for option, mark in sorted(marks.items()):
        if (mark.get("requireCredentials") and options.get(option)
                and option not in handover):
            problems.append({"path": "handover", "message": (
                f"{package.name} needs the credentials of {options[option]!r} "
                f"({', '.join(sorted(mark_credentials(mark).values()))}) for option "
                f"{option!r}: confirm handing them over, or leave {option!r} empty")})
    if problems:
        raise OptionsInvalid(f"the handover of credentials for {package.name}@"
                             f"{package.version} is not confirmed as it must be",
                             package=package.name, version=package.version,
                             details=problems)
    return list(handover)


def linked_packages(store: Any, package: Any, options: Mapping[str, Any]) -> dict[str, str]:
    """Option → the package of the installed service it links to (where there is one)."""
    found = {}
    for option in link_marks(package.config_schema):
        name = options.get(option)
        other = store.services.get(name) if isinstance(name, str) and name else None
        if other is not None:
            found[option] = str((other.get("package") or {}).get("name") or "")
    return found


def problems_with_linked(mark: Mapping[str, Any], link: Mapping[str, Any],
                         other: Mapping[str, Any]) -> str | None:
    """Why the installed service ``other`` cannot serve ``link`` (None: it can): not a
    package the mark names, no such port, or a credential asked for that its record
    does not keep secret."""
    wanted = mark_packages(mark)
    name = str(link["service"])
    got = (other.get("package") or {}).get("name")
    if got not in wanted:
        return f"service {name!r} is not a {' or '.join(wanted)} (it is a {got})"
    if link["port"] not in {p.get("name") for p in other["spec"].get("ports") or []}:
        return f"service {name!r} has no port named {link['port']!r}"
    secret = set(other.get("secret_paths") or ())
    missing = sorted(p for p in (link.get("credentials") or {}).values() if p not in secret)
    if missing:
        return (f"service {name!r} keeps no secret at {', '.join(missing)}: only its "
                "secret options can be handed over")
    return None


def record(spec: dict[str, Any], actor: str, now: float | None = None) -> None:
    """Write who confirmed the handover, and when, on each link that hands over."""
    at = time.time() if now is None else now
    for link in links.links_of(spec):
        if link.get("credentials") and "handover" not in link:
            link["handover"] = {"by": actor, "at": at}   # type: ignore[index]


def kept(package: Any, old_spec: Mapping[str, Any], options: Mapping[str, Any]
         ) -> list[str]:
    """The options whose handover an upgrade keeps: confirmed before, still linked to
    the same service, still asking for credentials in the new version (a link moved to
    another service is confirmed again)."""
    marks = link_marks(package.config_schema)
    return sorted(str(link["option"]) for link in links.links_of(old_spec)
                  if link.get("credentials") and options.get(link["option"]) == link["service"]
                  and mark_credentials(marks.get(str(link["option"])) or {}))


def carry(old_spec: Mapping[str, Any], spec: dict[str, Any]) -> None:
    """Keep the earlier confirmation record on the links an upgrade still hands over."""
    before = {str(link["option"]): link for link in links.links_of(old_spec)
              if link.get("handover")}
    for link in links.links_of(spec):
        old = before.get(str(link["option"]))
        if old and link.get("credentials") and old["service"] == link["service"]:
            link["handover"] = dict(old["handover"])   # type: ignore[index]


def publish(store: Any, name: str, spec: Mapping[str, Any], actor: str,
            generation: Any, only: Sequence[str] | None = None) -> None:
    """The audit event of each link that hands credentials over (which service's, which
    option paths: never a value); with ``only``, of those options alone."""
    for link in links.links_of(spec):
        if link.get("credentials") and (only is None or link["option"] in only):
            store.state.publish_event(HANDED_OVER_EVENT, name, actor, {
                "option": link["option"], "service": link["service"],
                "paths": sorted((link.get("credentials") or {}).values()),
                "generation": generation})
