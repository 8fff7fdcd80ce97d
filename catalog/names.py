"""The naming rules Berth's names follow, written once.

Every check uses :meth:`re.Pattern.fullmatch`: with ``match`` and a ``$`` anchor, a
name with a trailing newline (``"web\\n"``) passes, because ``$`` also matches just
before a final ``\\n``. The patterns here carry no anchors; :func:`schema_pattern`
adds them for JSON Schema documents (``openapi.json``), whose validators search.

- :data:`SERVICE_NAME` — services, agents and repositories: 1-40 lower-case letters,
  digits and ``-``, starting and ending with a letter or digit (a DNS label, so it
  can name containers and networks).
- :data:`INDEX_NAME` — package names in a static repository index: up to 128
  characters, ``.`` and ``_`` allowed inside (DC/OS Universe names use them).
"""

from __future__ import annotations

import re
from typing import Any

from .errors import InvalidInput

__all__ = [
    "SERVICE_NAME",
    "SERVICE_NAME_RULE",
    "INDEX_NAME",
    "is_service_name",
    "service_name_problem",
    "require_service_name",
    "PACKAGE_NAME",
    "schema_pattern",
]

SERVICE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
SERVICE_NAME_RULE = ("1-40 characters: lower-case letters, digits and '-', "
                     "starting and ending with a letter or digit")
INDEX_NAME = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,126}[a-z0-9])?")
PACKAGE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")  # package.schema.json


def is_service_name(value: Any) -> bool:
    """True when ``value`` is a string that is a whole service name.

    >>> is_service_name("web-1"), is_service_name("web\\n"), is_service_name("-web")
    (True, False, False)
    """
    return isinstance(value, str) and SERVICE_NAME.fullmatch(value) is not None


def service_name_problem(value: Any, path: str = "name") -> dict[str, str] | None:
    """``{path, message}`` saying what is wrong with a service name, or None if it is fine.

    Each layer raises its own error with this as a detail, so the rule and its
    wording stay in one place.
    """
    if is_service_name(value):
        return None
    return {"path": path, "message": SERVICE_NAME_RULE}


def require_service_name(value: Any, path: str = "name",
                         message: str = "invalid service name") -> str:
    """``value`` if it is a valid service name: the one check the server and the
    workers both run, with one error class.

    :raises InvalidInput: ``message``, with the rule at ``path``.
    """
    problem = service_name_problem(value, path)
    if problem:
        raise InvalidInput(message, details=[problem])
    return str(value)


def schema_pattern(rule: re.Pattern[str]) -> str:
    """The anchored form of ``rule`` for a JSON Schema ``pattern`` (which searches).

    >>> schema_pattern(SERVICE_NAME)
    '^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$'
    """
    return f"^{rule.pattern}$"
