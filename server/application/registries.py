"""Image registries: the hosts Berth pulls images from with credentials.

An admin adds a registry's host with a username and password; the password is sealed
with the data key at once (``worker.store.crypto``) and stored beside the host
(``worker.store.registries``). Workers open it to pull a package's image from that
host (docker-py's ``auth_config``). Nothing here ever shows it back: a registry's view
is its host, its username and who changed it when.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.registries import host_problem, normalize_host, require_host
from worker.store.crypto import require_keys

from ..errors import Invalid

MAX_USERNAME = 255
MAX_PASSWORD = 4096


class RegistryManager:
    """List, add (or replace the credentials of) and remove image registries."""

    def __init__(self, berth: Any) -> None:
        self.berth = berth

    def views(self) -> list[dict[str, Any]]:
        """Every registry, by host, without its password."""
        return [registry_view(r) for r in self.berth.store.registries.list()]

    def add(self, fields: Mapping[str, Any], actor: str) -> tuple[dict[str, Any], bool]:
        """Store a registry's host and credentials (the password sealed); (its view,
        whether it is new). Adding a known host replaces its credentials.

        :raises Invalid: a field is wrong (every problem listed).
        :raises DataKeyError: a password is given and no data key is set.
        """
        host, username, password = _checked(fields)
        sealed = None
        if password is not None:
            keys = require_keys(self.berth.settings.data_keys(),
                                "store a registry password (it never keeps one in clear)")
            sealed = keys.seal(password)
        record, created = self.berth.store.registries.put(
            host, username=username, password=sealed, actor=actor)
        return registry_view(record), created

    def remove(self, host: str, actor: str) -> None:
        """Forget a registry and its credentials.

        :raises RegistryNotFound: when Berth has none for ``host``.
        """
        host = require_host(host, "host")
        registries = self.berth.store.registries
        registries.require(host)
        registries.remove(host, actor)


def registry_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """A registry as the API shows it: never the password, sealed or not."""
    return {"host": record.get("host"), "username": record.get("username"),
            "created_at": record.get("created_at"), "created_by": record.get("created_by"),
            "updated_at": record.get("updated_at"), "updated_by": record.get("updated_by")}


def _checked(fields: Mapping[str, Any]) -> tuple[str, str | None, str | None]:
    """(host, username, password) of a request, or every problem at once.

    :raises Invalid:
    """
    problems: list[dict[str, str]] = []
    host = fields.get("host")
    problem = host_problem(host, "host")
    if problem:
        problems.append(problem)
    username, password = fields.get("username"), fields.get("password")
    problems += _text_problems("username", username, MAX_USERNAME)
    problems += _text_problems("password", password, MAX_PASSWORD, printable=False)
    if (username is None) != (password is None):
        problems.append({"path": "password" if password is None else "username",
                         "message": "give both a username and a password, or neither"})
    if problems:
        raise Invalid("the registry is invalid", details=problems)
    return normalize_host(str(host)), username, password


def _text_problems(name: str, value: Any, limit: int, *,
                   printable: bool = True) -> list[dict[str, str]]:
    """What is wrong with an optional text field (never echoing a password)."""
    if value is None:
        return []
    if not isinstance(value, str) or not value:
        return [{"path": name, "message": "must be a non-empty string or null"}]
    if len(value) > limit:
        return [{"path": name, "message": f"at most {limit} characters"}]
    if any(ord(c) < 32 or ord(c) == 127 for c in value) or (
            printable and any(c.isspace() for c in value)):
        return [{"path": name, "message": "no control characters"
                 + (" or spaces" if printable else "")}]
    return []
