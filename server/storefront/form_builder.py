"""The install form, generated from a package's config JSON Schema, and parsed back.

:func:`build_form` turns a schema (draft 2020-12 or DC/OS draft-04) and the current
values into a tree of :class:`FormField` that the ``_form.html`` macros render:
nested objects become groups (fieldsets), enums selects, booleans checkboxes,
numbers number inputs with bounds, ``x-secret`` strings password inputs, lists of
scalars a textarea with one item per line, anything else a JSON textarea.

Reading a posted form back into options, and putting the server's problems beside
their fields, live in :mod:`server.storefront.form_parser`.

Field names are ``opt:`` plus the JSON path of the option with ``/`` separators
(JSON-pointer escaping for keys that hold ``/`` or ``~``).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FormField", "build_form", "iter_fields", "field_name", "inline_refs", "PREFIX"]

PREFIX = "opt:"
SCALARS = ("string", "integer", "number", "boolean")
MAX_REF_DEPTH = 8


@dataclass
class FormField:
    """One field (or group of fields) of the generated form."""

    path: tuple[str, ...]
    kind: str  # group | select | checkbox | number | password | text | textarea | lines | json
    label: str
    help: str = ""
    required: bool = False
    value: Any = ""
    choices: list[tuple[str, str]] = field(default_factory=list)
    minimum: Any = None
    maximum: Any = None
    step: str | None = None
    json_type: str = "string"
    children: list[FormField] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    placeholder: str = ""
    enum_values: dict[str, Any] = field(default_factory=dict)
    install_url: str = ""   # a linked-service select: where to install one now
    handover: str = ""      # a link that asks for credentials: the paths, for the checkbox
    handover_checked: bool = False   # the admin confirmed handing them over

    @property
    def name(self) -> str:
        """The HTML ``name`` of the field."""
        return field_name(self.path)

    @property
    def id(self) -> str:
        """A valid, unique HTML id derived from the path."""
        safe = "-".join(re.sub(r"[^A-Za-z0-9_-]", "_", p) for p in self.path)
        return "opt-" + safe + "-" + format(zlib.crc32("/".join(self.path).encode()) % 65536, "x")

    @property
    def help_id(self) -> str:
        return self.id + "-help"

    @property
    def error_id(self) -> str:
        return self.id + "-error"

    @property
    def described_by(self) -> str:
        """The ``aria-describedby`` value: help text and errors when present."""
        ids = ([self.help_id] if self.help else []) + ([self.error_id] if self.errors else [])
        return " ".join(ids)


def field_name(path: Iterable[str]) -> str:
    """The form field name for an option path."""
    return PREFIX + "/".join(p.replace("~", "~0").replace("/", "~1") for p in path)


def build_form(
    schema: Mapping[str, Any] | None,
    values: Mapping[str, Any] | None = None,
    *,
    keep_secrets: bool = False,
) -> list[FormField]:
    """The fields for the options of ``schema``, filled from ``values`` or the defaults.

    Secret values are not written back unless ``keep_secrets`` (the install form that
    is shown again to the admin who typed them).
    """
    schema = inline_refs(schema or {})
    props = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    values = values if isinstance(values, Mapping) else {}
    return [
        _field((key,), sub, key in required, values.get(key, _MISSING), keep_secrets)
        for key, sub in props.items()
        if isinstance(sub, Mapping)
    ]


def inline_refs(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """The schema with local ``$ref`` s (``#/$defs/x``, ``#/definitions/x``) inlined.

    Recursive references stop at a fixed depth (the field becomes a JSON textarea).
    """
    root = schema if root is None else root
    if isinstance(schema, list):
        return [inline_refs(item, root, depth) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        if depth >= MAX_REF_DEPTH:
            return {"type": "object"}
        node: Any = root
        for raw in ref[2:].split("/"):
            node = (
                node.get(raw.replace("~1", "/").replace("~0", "~"))
                if isinstance(node, Mapping)
                else None
            )
        if isinstance(node, Mapping):
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return inline_refs({**node, **rest}, root, depth + 1)
    return {
        k: inline_refs(v, root, depth) if k not in ("$defs", "definitions") else v
        for k, v in schema.items()
    }


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


def _type_of(schema: Mapping[str, Any]) -> str:
    """The schema's main type (the first that is not ``null``)."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind is None:
        if "properties" in schema:
            return "object"
        if "enum" in schema and schema["enum"]:
            return _json_type(schema["enum"][0])
        return "string"
    return str(kind)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string"


def _label(key: str, schema: Mapping[str, Any]) -> str:
    title = schema.get("title")
    if isinstance(title, str) and title.strip():
        return title.strip()
    words = re.sub(r"[_\-.]+", " ", re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key)).strip()
    return words[:1].upper() + words[1:] if words else key


def _field(
    path: tuple[str, ...], schema: Mapping[str, Any], required: bool, value: Any, keep: bool
) -> FormField:
    """Build one field (recursing into groups)."""
    kind = _type_of(schema)
    if value is _MISSING:
        value = schema.get("default", _MISSING)
    base = FormField(
        path=path,
        kind="text",
        label=_label(path[-1], schema),
        help=str(schema.get("description") or ""),
        required=required,
        json_type=kind,
    )
    if kind == "object" and isinstance(schema.get("properties"), Mapping):
        return _group(base, schema, value, keep)
    if "enum" in schema and isinstance(schema["enum"], list):
        return _select(base, schema, value)
    if kind == "boolean":
        base.kind = "checkbox"
        base.value = bool(value) if value is not _MISSING else False
        return base
    if kind in ("integer", "number"):
        return _number(base, schema, value, kind)
    if kind == "array" and _type_of(schema.get("items") or {}) in SCALARS:
        base.kind = "lines"
        items = value if isinstance(value, list) else []
        base.value = "\n".join(_scalar_text(v) for v in items)
        base.json_type = "array:" + _type_of(schema.get("items") or {})
        return base
    if kind in ("array", "object"):
        base.kind = "json"
        base.value = "" if value is _MISSING else json.dumps(value, indent=2)
        return base
    return _text(base, schema, value, keep)


def _group(base: FormField, schema: Mapping[str, Any], value: Any, keep: bool) -> FormField:
    base.kind = "group"
    values = value if isinstance(value, Mapping) else {}
    required = set(schema.get("required") or ())
    base.children = [
        _field(base.path + (key,), sub, key in required, values.get(key, _MISSING), keep)
        for key, sub in schema["properties"].items()
        if isinstance(sub, Mapping)
    ]
    return base


def _select(base: FormField, schema: Mapping[str, Any], value: Any) -> FormField:
    base.kind = "select"
    names = schema.get("x-enum-titles") or schema.get("enumNames") or []
    base.choices = [
        (_enum_key(v), str(names[i]) if i < len(names) else _scalar_text(v))
        for i, v in enumerate(schema["enum"])
    ]
    base.enum_values = {_enum_key(v): v for v in schema["enum"]}
    if not base.required and value is _MISSING:
        base.choices.insert(0, ("", "— not set —"))
    base.value = "" if value is _MISSING else _enum_key(value)
    return base


def _number(base: FormField, schema: Mapping[str, Any], value: Any, kind: str) -> FormField:
    base.kind = "number"
    base.minimum = schema.get("minimum", schema.get("exclusiveMinimum"))
    base.maximum = schema.get("maximum", schema.get("exclusiveMaximum"))
    if isinstance(base.minimum, bool):  # draft-04 exclusiveMinimum is a flag
        base.minimum = schema.get("minimum")
    if isinstance(base.maximum, bool):
        base.maximum = schema.get("maximum")
    step = schema.get("multipleOf")
    base.step = str(step) if step is not None else ("1" if kind == "integer" else "any")
    base.value = "" if value is _MISSING else _scalar_text(value)
    return base


def _text(base: FormField, schema: Mapping[str, Any], value: Any, keep: bool) -> FormField:
    secret = bool(schema.get("x-secret")) or schema.get("format") == "password"
    text = "" if value is _MISSING or value is None else _scalar_text(value)
    if secret:
        base.kind = "password"
        base.value = text if keep else ""
        if text and not keep:
            base.placeholder = "unchanged"
        elif not text and schema.get("x-generate"):
            base.placeholder = "generated by Berth if left empty"
        return base
    base.kind = "textarea" if "\n" in text or schema.get("format") == "textarea" else "text"
    base.value = text
    return base


def _enum_key(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def iter_fields(fields: Iterable[FormField]) -> Iterator[FormField]:
    """Every field of the tree, depth first (groups included)."""
    for f in fields:
        yield f
        yield from iter_fields(f.children)
