"""The posted install form read back into options, and problems put beside fields.

:func:`parse_form` converts the fields :func:`~server.storefront.form_builder.build_form`
made back into an options object with the schema's types. It only converts; the
server's validation (``catalog.options.resolve_options``) is the authority, and its
problems are put beside their fields with :func:`attach_errors`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .form_builder import _MISSING, FormField, build_form, inline_refs, iter_fields

__all__ = ["parse_form", "attach_errors", "error_path", "defaults"]

_REQUIRED_MSG = re.compile(r"^'([^']+)' is a required property")


def parse_form(
    schema: Mapping[str, Any] | None, form: Mapping[str, Any]
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Read the posted option fields back into typed options.

    Empty inputs are left out (the defaults apply); empty groups are left out.
    Returns ``(options, problems)`` where problems name ``options/<path>``.
    """
    problems: list[dict[str, str]] = []
    options = _parse_group(build_form(schema), form, problems)  # build_form inlines refs
    return options, problems


def _parse_group(
    fields: list[FormField], form: Mapping[str, Any], problems: list[dict[str, str]]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields:
        if f.kind == "group":
            sub = _parse_group(f.children, form, problems)
            if sub:
                out[f.path[-1]] = sub
            continue
        try:
            value = _parse_value(f, form)
        except ValueError as exc:
            problems.append({"path": error_path(f.path), "message": str(exc)})
            continue
        if value is not _MISSING:
            out[f.path[-1]] = value
    return out


def _parse_value(f: FormField, form: Mapping[str, Any]) -> Any:
    """One field's typed value, or ``_MISSING`` when left empty.

    :raises ValueError: when the text does not parse as the field's type.
    """
    if f.kind == "checkbox":
        return f.name in form and str(form.get(f.name)) not in ("", "false", "off")
    raw = str(form.get(f.name, "") or "")
    if f.kind not in ("textarea", "password", "text", "lines", "json"):
        raw = raw.strip()
    if raw == "" or (f.kind == "lines" and not raw.strip()):
        return _MISSING
    if f.kind == "select":
        return _parse_enum(f, raw)
    if f.kind == "number":
        return _parse_number(raw, f.json_type)
    if f.kind == "lines":
        kind = f.json_type.split(":", 1)[1]
        return [_parse_scalar(line.strip(), kind) for line in raw.splitlines() if line.strip()]
    if f.kind == "json":
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc.msg} (line {exc.lineno})") from exc
    return raw


def _parse_enum(f: FormField, raw: str) -> Any:
    if raw in f.enum_values:
        return f.enum_values[raw]
    raise ValueError(f"{raw!r} is not one of the choices")


def _parse_number(raw: str, kind: str) -> int | float:
    try:
        if kind == "integer":
            number = float(raw)
            if not number.is_integer():
                raise ValueError
            return int(number)
        return int(raw) if re.fullmatch(r"-?\d+", raw) else float(raw)
    except (ValueError, OverflowError):
        what = "a whole number" if kind == "integer" else "a number"
        raise ValueError(f"{raw!r} is not {what}") from None


def _parse_scalar(raw: str, kind: str) -> Any:
    if kind in ("integer", "number"):
        return _parse_number(raw, kind)
    if kind == "boolean":
        if raw.lower() not in ("true", "false"):
            raise ValueError(f"{raw!r} is not true or false")
        return raw.lower() == "true"
    return raw


def error_path(path: Iterable[str]) -> str:
    """The ``options/<json-path>`` a problem of this field is reported at."""
    return "/".join(("options", *path))


def _path_of(problem_path: str) -> tuple[str, ...]:
    """Turn a server problem path (``options/a/b``, ``options.a.b``, ``#/a/b``) into keys."""
    text = problem_path.strip()
    for head in ("options", "#"):
        text = text.removeprefix(head)
    text = text.lstrip("#/.")
    if not text:
        return ()
    sep = "/" if "/" in text else "."
    return tuple(p.replace("~1", "/").replace("~0", "~") for p in text.split(sep) if p != "")


def attach_errors(fields: list[FormField], problems: Iterable[Mapping[str, Any]]) -> list[str]:
    """Put each problem beside its field; return the messages that fit no field."""
    by_path = {f.path: f for f in iter_fields(fields)}
    loose: list[str] = []
    for problem in problems:
        path = _path_of(str(problem.get("path", "")))
        message = str(problem.get("message", "is not valid"))
        match = _REQUIRED_MSG.match(message)
        if match and path + (match.group(1),) in by_path:
            path = path + (match.group(1),)
        target = by_path.get(path)
        while target is None and path:
            path = path[:-1]
            target = by_path.get(path)
        if target is None:
            loose.append(message if not problem.get("path") else f"{problem['path']}: {message}")
        else:
            target.errors.append(message)
    return loose


def defaults(schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """The defaults a schema declares, nested objects included (for the JSON view)."""
    out: dict[str, Any] = {}
    schema = inline_refs(schema or {})
    for key, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, Mapping):
            continue
        if "default" in sub:
            out[key] = sub["default"]
        elif isinstance(sub.get("properties"), Mapping):
            nested = defaults(sub)
            if nested:
                out[key] = nested
    return out
