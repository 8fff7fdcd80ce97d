"""The two building blocks every option rule shares: deep merge and schema defaults.

It sits below both option modules (:mod:`catalog.options` for native packages and
:mod:`catalog.dcos.options` for DC/OS ones), so neither has to import the other for
them; which rule a package's defaults follow is decided once, by
:func:`catalog.options.defaults_of`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_DEPTH", "deep_merge", "local_schema", "schema_defaults"]

MAX_DEPTH = 32


def deep_merge(base: Any, override: Any) -> Any:
    """``override`` merged over ``base``: objects key by key, anything else replaced."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = {k: copy.deepcopy(v) for k, v in base.items()}
        for key, value in override.items():
            merged[key] = deep_merge(merged[key], value) if key in merged else copy.deepcopy(
                value)
        return merged
    return copy.deepcopy(override)


def local_schema(schema: Mapping[str, Any], root: Mapping[str, Any],
                 depth: int) -> Mapping[str, Any]:
    """Follow a local ``$ref`` (``#/$defs/x``) if ``schema`` is one."""
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/") or depth > MAX_DEPTH:
        return schema
    node: Any = root
    for raw in ref[2:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        node = node.get(part) if isinstance(node, Mapping) else None
    return local_schema(node, root, depth + 1) if isinstance(node, Mapping) else schema


def _defaults(schema: Any, root: Mapping[str, Any], depth: int) -> Any:
    if not isinstance(schema, Mapping) or depth > MAX_DEPTH:
        return None
    schema = local_schema(schema, root, depth)
    nested: dict[str, Any] = {}
    props = schema.get("properties")
    if isinstance(props, Mapping):
        for key, sub in props.items():
            value = _defaults(sub, root, depth + 1)
            if value is not None:
                nested[key] = value
    if "default" in schema:
        explicit = copy.deepcopy(schema["default"])
        return deep_merge(nested, explicit) if isinstance(explicit, Mapping) else explicit
    return nested if nested or isinstance(props, Mapping) else None


def schema_defaults(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The options object a native (2020-12) schema's ``default`` s describe.

    Nested objects and local ``$ref`` s included.

    >>> schema_defaults({"properties": {"port": {"default": 80},
    ...                  "tls": {"properties": {"on": {"default": False}}}}})
    {'port': 80, 'tls': {'on': False}}
    """
    found = _defaults(schema, schema, 0)
    return found if isinstance(found, dict) else {}
