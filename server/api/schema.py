"""The OpenAPI document and validators from its request schemas.

Publishing's modules add their own paths and schemas by exposing ``OPENAPI_PATHS`` /
``OPENAPI_SCHEMAS``; they are merged in here.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from catalog.schemas.validation import Re2Draft202012Validator

from .openapi import document


@cache
def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document, built once per process."""
    from . import owners, publish, repositories

    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for module in (publish, owners, repositories):
        paths.update(getattr(module, "OPENAPI_PATHS", {}) or {})
        schemas.update(getattr(module, "OPENAPI_SCHEMAS", {}) or {})
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
