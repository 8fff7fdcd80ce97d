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

from .errors import CatalogError, PackageInvalid, Problem
from .generated_secrets import fill_generated, generate_value, mark_problems
from .model import Package
from .options import deep_merge, defaults_of, secret_problems
from .render import compile_template, render_service
from .schemas.validation import at, compiled, walk

__all__ = ["deep_problems", "default_problems", "file_problems", "placeholders",
           "template_problems", "render_problems"]

_IMAGE_TYPES = (".svg", ".png", ".jpg", ".jpeg", ".webp", ".gif")


def default_problems(schema: Mapping[str, Any], file: str) -> list[Problem]:
    """Every ``default`` that fails the schema it sits in, bad ``x-secret`` marks, and
    secret options that ship a value (package schemas are public). A group's default
    (``{}``) that lacks a required option without a default is no fault."""
    root = compiled(schema).python
    found: list[Problem] = [{"path": f"{file}#{loc}", "message": why}
                            for loc, why in secret_problems(schema)]
    for path, sub in walk(schema):
        if "x-secret" in sub and not isinstance(sub["x-secret"], bool):
            found.append({"path": at(file, (*path, "x-secret")), "message": "must be true "
                          "or false"})
        found.extend(_optional_mark_problems(sub, path, file))
        if sub.get("x-secret") is True and sub.get("default") not in (None, ""):
            found.append({"path": at(file, (*path, "default")), "message": "a secret option "
                          "must not ship a value: every viewer of the package can read its "
                          "default (leave it empty, require it, or generate one in the "
                          "template)"})
        found.extend(_generated_sample_problems(root, sub, path, file))
        if "default" not in sub or (sub.get("x-generate") and sub["default"] == ""):
            continue   # (empty is how a generated option says "make one at install")
        for error in root.evolve(schema=sub).iter_errors(sub["default"]):
            if _only_missing_required(error):
                continue
            where = at(file, (*path, "default", *error.absolute_path))
            found.append({"path": where, "message": f"the default fails its own schema: "
                                                    f"{error.message}"})
    return found


def _optional_mark_problems(sub: Mapping[str, Any], path: tuple[Any, ...],
                            file: str) -> list[Problem]:
    """``x-secret-optional`` says why an empty secret is safe (a token the software
    sends to an outside system that may not need one): a short text, on a secret option
    that is not also generated."""
    if "x-secret-optional" not in sub:
        return []
    where = at(file, (*path, "x-secret-optional"))
    reason = sub["x-secret-optional"]
    if not isinstance(reason, str) or not 10 <= len(reason.strip()) <= 300:
        return [{"path": where, "message": "must say, in 10 to 300 characters, why the "
                 "software is safe with this secret left empty"}]
    if sub.get("x-secret") is not True:
        return [{"path": where, "message": 'needs "x-secret": true on the same option'}]
    if "x-generate" in sub:
        return [{"path": where, "message": "a generated secret is never empty: drop one "
                 "of x-generate and x-secret-optional"}]
    return []


def _generated_sample_problems(root: Any, sub: Mapping[str, Any], path: tuple[Any, ...],
                               file: str) -> list[Problem]:
    """A value made as ``x-generate`` says must pass the option's own schema (a
    ``maxLength`` or ``pattern`` it cannot meet is found here, not at an install).
    No RSA key is made for this (it costs a second): a PEM key of 2048 bits is about
    1700 characters, so only a ``maxLength`` below that is reported."""
    mark = sub.get("x-generate")
    if sub.get("x-secret") is not True or not isinstance(mark, Mapping) or mark_problems(mark):
        return []   # misuse is reported by the load checks
    where = at(file, (*path, "x-generate"))
    if mark["kind"] == "rsa-key":
        least = 1700 * int(mark.get("length") or 2048) // 2048
        short = isinstance(sub.get("maxLength"), int) and sub["maxLength"] < least
        return [{"path": where, "message": f"a generated key is about {least} characters: "
                 "the option's maxLength is too small"}] if short else []
    sample = generate_value(str(mark["kind"]), mark.get("length"))
    return [{"path": where, "message": "a generated value fails the option's own schema: "
             f"{error.validator} {error.validator_value!r}"[:300]}
            for error in root.evolve(schema=sub).iter_errors(sample)]


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
    for detail in exc.details or [{"path": "", "message": exc.message}]:
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


def _placeholder(schema: Mapping[str, Any]) -> Any:
    """A stand-in value for a required option that has no default: something of the
    option's type (a string as long as ``minLength`` asks), so the template renders."""
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    if kind in ("integer", "number"):
        low = schema.get("minimum", 0)
        return low if isinstance(low, int | float) and not isinstance(low, bool) else 0
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    if kind == "object":
        return placeholders(schema)
    least = schema.get("minLength", 0)
    least = least if isinstance(least, int) and not isinstance(least, bool) else 0
    return ("lint-placeholder" * (least // 16 + 1))[:max(least, 16)]


def placeholders(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Stand-ins for every required option without a default, nested objects included
    (merged over the defaults, they give lint complete options to render with)."""
    found: dict[str, Any] = {}
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return found
    required = schema.get("required")
    for key, sub in properties.items():
        if not isinstance(sub, Mapping):
            continue
        if isinstance(required, list) and key in required and "default" not in sub:
            found[key] = _placeholder(sub)
        elif sub.get("type") == "object":
            inner = placeholders(sub)
            if inner:
                found[key] = inner
    return found


def _option_problems(package: Package, options: Any, shown: str) -> list[Problem]:
    """The defaults checked as complete options, except a missing required option with
    no default: that one the admin must give at install, and it is no fault."""
    checker = compiled(package.config_schema).python
    found: list[Problem] = []
    for error in checker.iter_errors(options):
        if _only_missing_required(error):
            continue
        where = "/".join(["options", *(str(p) for p in error.absolute_path)])
        found.append({"path": f"{shown}/config.json", "message": "the defaults are not "
                      f"valid options: {where}: {error.message}"})
    return found


def _only_missing_required(error: Any) -> bool:
    """Whether ``error`` is a ``required`` one about options that have no default at
    all: the admin must give those at install, so no default can hold them."""
    if error.validator != "required":
        return False
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    properties = schema.get("properties") or {}
    missing = [k for k in schema.get("required") or [] if k not in (error.instance or {})]
    return all(isinstance(properties.get(k), Mapping) and "default" not in properties[k]
               for k in missing)


def _with_generated(package: Package, defaults: dict[str, Any]) -> dict[str, Any]:
    """The defaults as an install fills them: each empty ``x-generate`` secret made
    (a misused mark is the load checks' to report: the defaults then stay as they are)."""
    try:
        return fill_generated(package, defaults)[0]
    except PackageInvalid:
        return defaults


def render_problems(package: Package, shown: str, *, check_defaults: bool = True
                    ) -> list[Problem]:
    """Render the template with the defaults to a valid, allowed spec.

    Required options without a default get a placeholder (:func:`placeholders`), and
    empty ``x-generate`` secrets a generated value, as at an install.
    The defaults are checked as options unless ``check_defaults`` is false (their
    own faults are reported already); rendering happens either way, so a broken
    default the template does not use cannot hide a template fault.
    """
    found: list[Problem] = []
    try:
        defaults = _with_generated(package, defaults_of(package))
        found = _option_problems(package, defaults, shown) if check_defaults else []
        options = deep_merge(defaults, placeholders(package.config_schema))
        render_service(package, options, service_name=package.name)
    except CatalogError as exc:
        return found + _from_error(exc, shown, "service.json.j2")
    except RecursionError:
        return [{"path": f"{shown}/config.json", "message": "not rendered: the options "
                 "schema is nested too deeply"}]
    return found


def deep_problems(package: Package, shown: str, *, unrenderable: str | None = None
                  ) -> list[Problem]:
    """Everything lint adds to the load checks, each file checked on its own.

    The template is rendered with the defaults even when a default is broken; it is
    skipped only when it cannot be (``unrenderable``, or a template that does not
    compile), and then a ``not rendered: <why>`` problem says so.
    """
    defaults = default_problems(package.config_schema, f"{shown}/config.json")
    syntax = template_problems(package, shown)
    found = defaults + syntax + file_problems(package, shown)
    reason = unrenderable or ("the template does not compile" if syntax else None)
    if reason is not None:
        found.append({"path": f"{shown}/service.json.j2", "message": f"not rendered: {reason}"})
    else:
        found.extend(render_problems(package, shown, check_defaults=not defaults))
    return found
