"""A remote repository's fields: the one rule for them, and its JSON schema.

The API's ``RepositoryRequest`` schema (``openapi.json``) is :data:`REMOTE_SCHEMA`,
and :func:`check_remote_fields` is the check the server runs on every add, from the
API or the store front, reporting every problem at once. The URL's safety (which
addresses may be fetched) is the remote fetcher's policy, not a field rule.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from .names import SERVICE_NAME, is_service_name, schema_pattern

__all__ = ["FIELDS", "FORMATS", "RESERVED", "REMOTE_SCHEMA", "check_remote_fields"]

RESERVED = ("universe", "hosted")  # the built-in repositories' names
FORMATS = ("berth", "dcos")
FIELDS = ("name", "url", "priority", "format", "interval")
MAX_URL = 2000
DEFAULT_PRIORITY = 200
MAX_PRIORITY = 100000
INTERVAL = (10, 86400)

REMOTE_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["name", "url"], "additionalProperties": False,
    "properties": {"name": {"type": "string", "pattern": schema_pattern(SERVICE_NAME)},
                   "url": {"type": "string", "maxLength": MAX_URL},
                   "priority": {"type": "integer", "minimum": 0, "maximum": MAX_PRIORITY},
                   "format": {"enum": list(FORMATS)},
                   "interval": {"type": "number", "minimum": INTERVAL[0],
                                "maximum": INTERVAL[1]}}}


def check_remote_fields(fields: Mapping[str, Any], *, reserved: Collection[str] = ()
                        ) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The fields with defaults filled in, and every problem with them as
    ``{path, message}`` (paths under ``body/``).

    ``reserved`` adds names taken by configured repositories to :data:`RESERVED`.

    >>> check_remote_fields({"name": "extra", "url": "https://example.org/index.json"})[1]
    []
    >>> [p["path"] for p in check_remote_fields({"name": "hosted", "url": ""})[1]]
    ['body/name', 'body/url']
    """
    clean = dict(fields)
    problems = [{"path": f"body/{k}", "message": "unknown field"}
                for k in sorted(set(clean) - set(FIELDS))[:10]]
    name, url = clean.get("name"), clean.get("url")
    if not is_service_name(name):
        problems.append({"path": "body/name", "message": "lower-case letters, digits and "
                                                         "dashes, at most 40"})
    elif name in RESERVED or name in reserved:
        problems.append({"path": "body/name", "message": f"{name!r} is reserved"})
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        problems.append({"path": "body/url", "message": f"an http(s) URL of at most {MAX_URL} "
                                                        "characters"})
    priority = clean.setdefault("priority", DEFAULT_PRIORITY)
    if not _integer(priority) or not 0 <= priority <= MAX_PRIORITY:
        problems.append({"path": "body/priority", "message": f"an integer from 0 to "
                                                             f"{MAX_PRIORITY} (lower wins)"})
    if clean.setdefault("format", FORMATS[0]) not in FORMATS:
        problems.append({"path": "body/format", "message": "'berth' or 'dcos'"})
    interval = clean.get("interval")
    if interval is not None and (not _number(interval)
                                 or not INTERVAL[0] <= interval <= INTERVAL[1]):
        problems.append({"path": "body/interval", "message": "seconds from 10 to 86400"})
    return clean, problems


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
