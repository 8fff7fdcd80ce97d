"""The checks only ``lint`` runs: defaults, files, and a real render with the defaults.

They cost milliseconds per version (a template compile and render), so they run when a
maintainer lints or publishes, not when a server loads a repository (see
``catalog.loader``). Each problem names the file and the JSON path inside it; problems
of the rendered spec point into ``service.json.j2`` with the path in its output.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .errors import CatalogError, Problem
from .model import Package
from .options import resolve_options, secret_problems
from .render import compile_template, render_service
from .schemas.validation import at, compiled, walk

__all__ = ["deep_problems", "default_problems", "file_problems", "template_problems",
           "render_problems"]

_IMAGE_TYPES = (".svg", ".png", ".jpg", ".jpeg", ".webp", ".gif")


def default_problems(schema: Mapping[str, Any], file: str) -> list[Problem]:
    """Every ``default`` that fails the schema it sits in, bad ``x-secret`` marks, and
    secret options that ship a value (package schemas are public)."""
    root = compiled(schema).python
    found: list[Problem] = [{"path": f"{file}#{loc}", "message": why}
                            for loc, why in secret_problems(schema)]
    for path, sub in walk(schema):
        if "x-secret" in sub and not isinstance(sub["x-secret"], bool):
            found.append({"path": at(file, (*path, "x-secret")), "message": "must be true "
                          "or false"})
        if sub.get("x-secret") is True and sub.get("default") not in (None, ""):
            found.append({"path": at(file, (*path, "default")), "message": "a secret option "
                          "must not ship a value: every viewer of the package can read its "
                          "default (leave it empty, require it, or generate one in the "
                          "template)"})
        if "default" not in sub:
            continue
        for error in root.evolve(schema=sub).iter_errors(sub["default"]):
            where = at(file, (*path, "default", *error.absolute_path))
            found.append({"path": where, "message": f"the default fails its own schema: "
                                                    f"{error.message}"})
    return found


def file_problems(package: Package, shown: str) -> list[Problem]:
    """Icon and screenshot files named in ``resource.json`` must be in the folder."""
    found: list[Problem] = []
    names = [("icon", package.icon)] + [(f"screenshots/{i}", s)
                                        for i, s in enumerate(package.screenshots)]
    for where, name in names:
        if not name or name.startswith(("http://", "https://")):
            continue
        path = f"{shown}/resource.json#/images/{where}"
        if not name.lower().endswith(_IMAGE_TYPES):
            found.append({"path": path, "message": f"{name!r} is not an image file type "
                                                   f"({', '.join(_IMAGE_TYPES)})"})
        target = os.path.join(shown, name)
        if os.path.islink(target) or not os.path.isfile(target):
            found.append({"path": path, "message": f"{name!r} is not a file in the package"})
        elif os.path.getsize(target) > 2 * 1024 * 1024:
            found.append({"path": path, "message": f"{name!r} is larger than 2 MiB"})
    return found


def _from_error(exc: CatalogError, shown: str, default_file: str) -> list[Problem]:
    problems = []
    for detail in exc.errors or [{"path": "", "message": exc.message}]:
        path = detail["path"]
        if path.startswith("spec"):
            path = f"{shown}/service.json.j2#{path[4:]}"
            message = f"rendered with the defaults: {detail['message']}"
        elif path.startswith("options"):
            path = f"{shown}/config.json"
            message = f"the defaults are not valid options: {detail['path']}: " \
                      f"{detail['message']}"
        else:
            path = f"{shown}/{path or default_file}"
            message = detail["message"]
        problems.append({"path": path, "message": message})
    return problems


def template_problems(package: Package, shown: str) -> list[Problem]:
    """Syntax errors of the template, with their line."""
    try:
        compile_template(package.template)
    except CatalogError as exc:
        return _from_error(exc, shown, "service.json.j2")
    return []


def render_problems(package: Package, shown: str) -> list[Problem]:
    """Render the template with the defaults to a valid, allowed spec."""
    try:
        options = resolve_options(package, {})
        render_service(package, options, service_name=package.name)
    except CatalogError as exc:
        return _from_error(exc, shown, "service.json.j2")
    return []


def deep_problems(package: Package, shown: str) -> list[Problem]:
    """Everything lint adds to the load checks (rendering only when the defaults and
    the template syntax are sound, so one fault is not reported twice)."""
    defaults = default_problems(package.config_schema, f"{shown}/config.json")
    syntax = template_problems(package, shown)
    found = defaults + syntax + file_problems(package, shown)
    if not defaults and not syntax:
        found.extend(render_problems(package, shown))
    return found
