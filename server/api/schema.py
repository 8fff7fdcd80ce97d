"""The OpenAPI document and validators from its request schemas.

The core paths and schemas are in :mod:`.openapi`; the publishing modules
(``publish``, ``owners``, ``repositories``) add theirs by calling :func:`add_fragment`
when they are imported, so this module imports none of them.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from catalog.schemas.validation import Re2Draft202012Validator

from .openapi import document

_FRAGMENTS: list[tuple[dict[str, Any], dict[str, Any]]] = []


def add_fragment(paths: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Add a module's paths and component schemas to the document."""
    _FRAGMENTS.append((paths, schemas))
    openapi.cache_clear()
    validator.cache_clear()


@cache
def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document, built once per process (after every fragment)."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for fragment_paths, fragment_schemas in _FRAGMENTS:
        paths.update(fragment_paths)
        schemas.update(fragment_schemas)
    doc = document(paths)
    doc["components"]["schemas"] = {**doc["components"]["schemas"], **schemas}
    return doc


@cache
def validator(name: str) -> Draft202012Validator:
    """A validator for ``#/components/schemas/<name>``.

    Patterns run with RE2 (as the package schemas do): its ``$`` is the end of the
    text, where Python's ``re`` also accepts a trailing newline (``"web\\n"``).
    """
    schema = {"$ref": f"#/components/schemas/{name}", "components": openapi()["components"]}
    return Re2Draft202012Validator(schema)  # type: ignore[no-any-return]
