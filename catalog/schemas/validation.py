"""JSON Schema validation with a linear-time regex engine and compiled-once validators.

Why re2: ``jsonschema`` evaluates ``pattern`` and ``patternProperties`` with Python's
backtracking ``re``, so a maintainer's ``^(a+)+$`` plus a user's option value could
pin a CPU for hours. Here those keywords (and ``additionalProperties``, which consults
``patternProperties``) run on Google's RE2, which matches in linear time; a pattern RE2
cannot compile (back-references, look-arounds) is refused when the schema is checked.

Why two engines: ``jsonschema`` (Python) is the reference and writes every message;
``jsonschema-rs``, when installed, answers "valid?" first (its ``RegexOptions`` engine
is linear-time too), so the common case — a valid document — costs microseconds.
That is what lets a 50,000-version repository load in seconds.

Why bounds on reporting: see :mod:`catalog.schemas.bounds` — sizes first, at most
:data:`MAX_PROBLEMS` problems, echoes cut to :data:`MAX_ECHO` characters.

Why a cache: compiling a validator (meta-schema check, reference registry) costs far
more than using one, and the same schema object serves many validations. Validators
are cached by the identity of the schema object (the loader shares one object between
identical files), and schema checks by content hash.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import re2
from jsonschema import Draft4Validator, Draft202012Validator, ValidationError, validators
from jsonschema.protocols import Validator

from . import load
from .bounds import (
    MAX_ECHO,
    MAX_PROBLEMS,
    cut_parts,
    first_problems,
    message_of,
    more_problems,
    pointer,
    short_pointer,
    short_value,
    size_problems,
)

try:  # optional accelerator: the same verdicts ~100x faster; messages still come from
    import jsonschema_rs as _rs  # jsonschema, which runs only when rs finds a fault
except ImportError:  # pragma: no cover - exercised where jsonschema-rs is absent
    _rs = None  # type: ignore[assignment]

__all__ = [
    "Re2Draft202012Validator",
    "Re2Draft4Validator",
    "Checker",
    "compiled",
    "builtin",
    "pointer",
    "at",
    "problems_of",
    "schema_problems",
    "check_schema",
    "walk",
    "regex",
    "MAX_PROBLEMS",
    "MAX_ECHO",
    "size_problems",
    "first_problems",
    "more_problems",
    "message_of",
    "short_value",
    "short_pointer",
]

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_RE2_OPTIONS.max_mem = 8 << 20


@functools.lru_cache(maxsize=4096)
def regex(pattern: str) -> Any:
    """The compiled RE2 of a JSON Schema pattern.

    :raises ValueError: when RE2 cannot compile it (e.g. back-references).
    """
    if not isinstance(pattern, str) or len(pattern) > 2000:
        raise ValueError("pattern must be a string of at most 2000 characters")
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except Exception as exc:  # re2 raises its own error type
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(f"not a supported regular expression ({reason})") from None


def _search(pattern: str, text: str) -> bool:
    try:
        return regex(pattern).search(text) is not None
    except ValueError:
        return False


def _pattern(validator: Any, patrn: str, instance: Any, schema: Mapping[str, Any]
             ) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string"):
        try:
            matched = regex(patrn).search(instance) is not None
        except ValueError as exc:
            yield ValidationError(f"pattern {patrn!r} cannot be used: {exc}")
            return
        if not matched:
            yield ValidationError(f"{_short(instance)} does not match {patrn!r}")


def _pattern_properties(validator: Any, pp: Mapping[str, Any], instance: Any,
                        schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for patrn, subschema in pp.items():
        for key, value in instance.items():
            if _search(patrn, key):
                yield from validator.descend(value, subschema, path=key, schema_path=patrn)


def _additional(instance: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return [k for k in instance
            if k not in properties and not any(_search(p, k) for p in patterns)]


def _additional_properties(validator: Any, ap: Any, instance: Any, schema: Mapping[str, Any]
                           ) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    extras = _additional(instance, schema)
    if validator.is_type(ap, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], ap, path=extra)
    elif not ap and extras:
        names = ", ".join(short_value(e) for e in sorted(extras)[:10])
        more = f" and {len(extras) - 10} more" if len(extras) > 10 else ""
        yield ValidationError(f"unknown field(s) not allowed: {names}{more}")


_OVERRIDES = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
}
Re2Draft202012Validator = validators.extend(Draft202012Validator, _OVERRIDES)
Re2Draft4Validator = validators.extend(Draft4Validator, _OVERRIDES)
_CLASSES = {"2020-12": Re2Draft202012Validator, "draft4": Re2Draft4Validator}


_short = short_value
_message = message_of


class _IdentityCache:
    """A bounded LRU keyed by object identity that keeps its keys alive."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[int, tuple[Any, Any]] = OrderedDict()

    def get(self, obj: Any) -> Any:
        hit = self.items.get(id(obj))
        if hit is None or hit[0] is not obj:
            return None
        self.items.move_to_end(id(obj))
        return hit[1]

    def put(self, obj: Any, value: Any) -> None:
        self.items[id(obj)] = (obj, value)
        self.items.move_to_end(id(obj))
        while len(self.items) > self.size:
            self.items.popitem(last=False)


class Checker:
    """A compiled schema: a fast ``is_valid`` and every problem with its path."""

    def __init__(self, schema: Mapping[str, Any], draft: str = "2020-12") -> None:
        self.schema = schema
        self.python: Validator = _CLASSES[draft](schema)
        self.fast = _fast_validator(schema, draft)

    def is_valid(self, instance: Any) -> bool:
        """True when ``instance`` satisfies the schema."""
        if self.fast is not None:
            try:
                return bool(self.fast.is_valid(instance))
            except Exception:  # noqa: BLE001 - e.g. values rs cannot convert
                self.fast = None
        return bool(self.python.is_valid(instance))

    def problems(self, instance: Any, file: str) -> list[dict[str, str]]:
        """Every violation as ``{"path": "file#/ptr", "message"}`` (empty when valid)."""
        if self.is_valid(instance):
            return []
        return problems_of(self.python, instance, file)


def _fast_validator(schema: Mapping[str, Any], draft: str) -> Any:
    if _rs is None:
        return None
    cls = _rs.Draft202012Validator if draft == "2020-12" else _rs.Draft4Validator
    try:
        return cls(dict(schema), pattern_options=_rs.RegexOptions())
    except Exception:  # noqa: BLE001 - fall back to the reference engine
        return None


_VALIDATORS = {draft: _IdentityCache(2048) for draft in _CLASSES}


def compiled(schema: Mapping[str, Any], *, draft: str = "2020-12") -> Checker:
    """A :class:`Checker` for ``schema`` (not checked against the meta-schema: see
    :func:`schema_problems`), compiled once per schema object."""
    cache = _VALIDATORS[draft]
    checker: Checker | None = cache.get(schema)
    if checker is None:
        checker = Checker(schema, draft)
        cache.put(schema, checker)
    return checker


@functools.cache
def builtin(name: str) -> Checker:
    """The checker of one of Berth's own schemas (``package``, ``resource``, ``service``)."""
    return Checker(load(name))


def problems_of(validator: Validator, instance: Any, file: str) -> list[dict[str, str]]:
    """The schema violations of ``instance`` as ``{"path": "file#/ptr", "message"}``:
    the sizes first (:func:`size_problems`), at most :data:`MAX_PROBLEMS`."""
    sized = size_problems(validator.schema, instance, lambda parts: at(file, parts))
    if sized:
        return sized
    errors, more = first_problems(validator.iter_errors(instance))
    found = sorted(({"path": at(file, cut_parts(error.absolute_path)),
                     "message": message_of(error)} for error in errors),
                   key=lambda p: p["path"])
    return found + [more_problems(file)] if more else found


def at(file: str, parts: Iterable[Any] = ()) -> str:
    """``file#/json/pointer`` (just ``file`` for the whole document)."""
    ptr = pointer(parts)
    return f"{file}#{ptr}" if ptr else file


# --- checking a maintainer's schema -------------------------------------------------

_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions",
                          "dependentSchemas"})
_SCHEMA_ARRAYS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems", "items"})
_SCHEMA_ONE = frozenset({"not", "if", "then", "else", "additionalProperties", "contains",
                         "propertyNames", "unevaluatedItems", "unevaluatedProperties",
                         "additionalItems", "items"})


def walk(schema: Any) -> Iterator[tuple[tuple[Any, ...], Mapping[str, Any]]]:
    """Every (sub)schema object of ``schema`` with its path, depth first (at most 64
    levels down)."""
    for link, node in _nodes(schema):
        yield _expand(link), node


def _nodes(schema: Any) -> Iterator[tuple[Any, Mapping[str, Any]]]:
    """Like :func:`walk`, with paths as cheap ``(parent, (key, ...))`` links."""
    stack: list[tuple[Any, Any, int]] = [(None, schema, 0)]
    while stack:
        link, node, depth = stack.pop()
        if not isinstance(node, Mapping) or depth > 64:
            continue
        yield link, node
        children: list[tuple[Any, Any, int]] = []
        for key, sub in node.items():
            if key in _SCHEMA_MAPS and isinstance(sub, Mapping):
                children.extend(((link, (key, name)), child, depth + 2)
                                for name, child in sub.items())
            elif key in _SCHEMA_ARRAYS and isinstance(sub, list):
                children.extend(((link, (key, i)), child, depth + 2)
                                for i, child in enumerate(sub))
            elif key in _SCHEMA_ONE and isinstance(sub, Mapping):
                children.append(((link, (key,)), sub, depth + 1))
        stack.extend(reversed(children))


def _expand(link: Any) -> tuple[Any, ...]:
    parts: list[Any] = []
    while link is not None:
        link, keys = link
        parts[:0] = keys
    return tuple(parts)


def _resolves(schema: Mapping[str, Any], ref: str) -> bool:
    """True when a local reference (``#``, ``#/a/b``, ``#anchor``) names something."""
    if ref == "#":
        return True
    if not ref.startswith("#/"):
        return any(sub.get("$anchor") == ref[1:] for _, sub in walk(schema))
    node: Any = schema
    for raw in ref[2:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def _own_problems(schema: Mapping[str, Any], file: str) -> Iterator[dict[str, str]]:
    """Checks the meta-schema cannot express: local refs only, RE2 patterns."""
    uses_unevaluated = uses_patterns = False
    for link, sub in _nodes(schema):
        if _KEYWORDS_TO_CHECK.isdisjoint(sub):
            continue
        here = f"{file}#{pointer(_expand(link))}"
        for key in ("$ref", "$dynamicRef"):
            ref = sub.get(key)
            if isinstance(ref, str) and not (ref.startswith("#") and _resolves(schema, ref)):
                yield {"path": f"{here}/{key}",
                       "message": f"{ref!r}: only references inside this document "
                                  "(#/$defs/...) that exist are allowed"}
        if isinstance(sub.get("pattern"), str):
            yield from _regex_problem(sub["pattern"], f"{here}/pattern")
        if isinstance(sub.get("patternProperties"), Mapping):
            uses_patterns = True
            for patrn in sub["patternProperties"]:
                yield from _regex_problem(patrn, f"{here}/patternProperties{pointer([patrn])}")
        if sub.get("format") == "regex":
            yield {"path": f"{here}/format", "message": "format 'regex' is not supported"}
        uses_unevaluated = uses_unevaluated or "unevaluatedProperties" in sub
    if uses_unevaluated and uses_patterns:
        yield {"path": file, "message": "unevaluatedProperties together with "
               "patternProperties is not supported; use additionalProperties"}


_KEYWORDS_TO_CHECK = frozenset({"$ref", "$dynamicRef", "pattern", "patternProperties",
                                "format", "unevaluatedProperties"})


def _regex_problem(patrn: str, at: str) -> Iterator[dict[str, str]]:
    try:
        regex(patrn)
    except ValueError as exc:
        yield {"path": at, "message": f"pattern {patrn!r}: {exc}"}


def _meta_ok_fast(schema: Mapping[str, Any], draft: str) -> bool:
    if _rs is None or draft != "2020-12" or "$schema" in schema:
        return False
    try:
        return bool(_rs.meta.is_valid(dict(schema)))
    except Exception:  # noqa: BLE001
        return False


@functools.cache
def _meta(draft: str) -> Validator:
    cls = _CLASSES[draft]
    return cls(cls.META_SCHEMA)


_CHECKED: OrderedDict[str, list[dict[str, str]]] = OrderedDict()


def schema_problems(schema: Any, *, file: str = "config.json",
                    draft: str = "2020-12") -> list[dict[str, str]]:
    """Every reason ``schema`` is not a usable schema (meta-schema, refs, patterns)."""
    if not isinstance(schema, Mapping):
        return [{"path": file, "message": "a schema must be a JSON object"}]
    digest = hashlib.sha256(
        (draft + json.dumps(schema, sort_keys=True, default=str)).encode()).hexdigest()
    found = _CHECKED.get(digest)
    if found is None:
        found = _check_schema(schema, draft)
        _CHECKED[digest] = found
        while len(_CHECKED) > 8192:
            _CHECKED.popitem(last=False)
    return [{"path": file + p["path"], "message": p["message"]} for p in found]


def check_schema(schema: Any, draft: str = "2020-12") -> list[dict[str, str]]:
    """:func:`schema_problems` without its cache, paths relative (``#/...``): for
    callers that cache by file content themselves."""
    if not isinstance(schema, Mapping):
        return [{"path": "", "message": "a schema must be a JSON object"}]
    return _check_schema(schema, draft)


def _check_schema(schema: Mapping[str, Any], draft: str) -> list[dict[str, str]]:
    cls = _CLASSES[draft]
    found = [] if _meta_ok_fast(schema, draft) else problems_of(_meta(draft), schema, "")
    declared = schema.get("$schema")
    if draft == "2020-12" and declared not in (None, cls.META_SCHEMA["$id"]):
        found.append({"path": "#/$schema",
                      "message": f"must be {cls.META_SCHEMA['$id']!r} (draft 2020-12)"})
    found.extend(_own_problems(schema, ""))
    return found
