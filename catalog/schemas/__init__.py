"""The JSON Schemas Berth validates against, kept beside the code that uses them.

- ``package.schema.json``  — ``package.json`` of a package version
- ``resource.schema.json`` — ``resource.json`` (icon, screenshots, Docker images)
- ``service.schema.json``  — the service spec a template renders

``load(name)`` returns a parsed schema (cached: treat the result as read-only).
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

__all__ = ["load", "names"]


def names() -> list[str]:
    """The schema names this package holds, e.g. ``service`` for ``service.schema.json``."""
    files = resources.files(__name__).iterdir()
    return sorted(f.name.removesuffix(".schema.json") for f in files
                  if f.name.endswith(".schema.json"))


@functools.cache
def load(name: str) -> dict[str, Any]:
    """The parsed schema ``<name>.schema.json`` (``name`` may carry the suffix).

    :raises FileNotFoundError: when there is no such schema.
    """
    base = name.removesuffix(".json").removesuffix(".schema")
    if "/" in base or "\\" in base or base.startswith("."):
        raise FileNotFoundError(name)
    text = resources.files(__name__).joinpath(f"{base}.schema.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data
