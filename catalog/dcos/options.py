"""Install options of Universe packages with Cosmos's semantics.

Cosmos built the options of an install in two steps, kept here exactly:

1. defaults: every property of ``config.json`` with a ``default`` gives that value; a
   property without one that has ``properties`` of its own gives the object of *its*
   defaults (possibly empty); nothing else appears;
2. the user's options deep-merged over those defaults (objects merge key by key, any
   other value replaces), then the whole document validated against ``config.json``
   with JSON Schema draft-04 (``format`` is not asserted, as Cosmos's validator did not
   for these schemas).

Every problem is reported at once, each at ``options/<json-path>``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft4Validator
from jsonschema.exceptions import SchemaError

from catalog.errors import OptionsInvalid, PackageInvalid
from catalog.model import Package
from catalog.option_defaults import deep_merge
from catalog.schemas.validation import Re2Draft4Validator

__all__ = ["cosmos_defaults", "deep_merge", "resolve_dcos_options", "validate_dcos_options",
           "resolve_options", "upgrade_options",
           "check_config_schema", "upgrade_dcos_options"]


def cosmos_defaults(schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """The document of defaults a draft-04 ``config.json`` declares (Cosmos's rule)."""
    found: dict[str, Any] = {}
    properties = (schema or {}).get("properties")
    if not isinstance(properties, Mapping):
        return found
    for name, prop in properties.items():
        if not isinstance(prop, Mapping):
            continue
        if "default" in prop:
            found[name] = copy.deepcopy(prop["default"])
        elif "properties" in prop:
            found[name] = cosmos_defaults(prop)
    return found


def _json_path(parts: Any) -> str:
    """``["a", 0, "b"]`` → ``/a/0/b`` (JSON pointer, ``~`` and ``/`` escaped)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def check_config_schema(schema: Mapping[str, Any]) -> list[dict[str, str]]:
    """Problems with ``config.json`` itself as a draft-04 schema (empty when it is fine)."""
    try:
        Draft4Validator.check_schema(schema)
    except SchemaError as exc:
        return [{"path": "config.json#" + _json_path(exc.absolute_path),
                 "message": exc.message}]
    return []


def validate_dcos_options(schema: Mapping[str, Any] | None, options: Mapping[str, Any], *,
                          package: str | None = None, version: str | None = None) -> None:
    """Validate a whole options document against ``config.json`` (draft-04).

    :raises OptionsInvalid: with every problem at ``options/<json-path>``.
    :raises PackageInvalid: ``config.json`` is not a valid draft-04 schema.
    """
    if not schema or not options:
        # Cosmos validated only a non-empty document against an existing config.json
        if options:
            raise OptionsInvalid("this package takes no options", package=package,
                                 version=version,
                                 details=[{"path": "options", "message": "no options allowed"}])
        return
    problems = check_config_schema(schema)
    if problems:
        raise PackageInvalid("config.json is not a valid draft-04 schema", package=package,
                             version=version, details=problems)
    # RE2 for `pattern`s: maintainer-written regexes run in linear time (no ReDoS)
    errors = sorted(Re2Draft4Validator(schema).iter_errors(options),
                    key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        raise OptionsInvalid(
            f"{len(errors)} option value(s) do not match the package's config.json",
            package=package, version=version,
            details=[{"path": "options" + _json_path(e.absolute_path), "message": e.message}
                    for e in errors])


def resolve_dcos_options(package: Package, user_options: Mapping[str, Any] | None
                         ) -> dict[str, Any]:
    """Defaults deep-merged with the user's options, validated (Cosmos's semantics).

    :raises OptionsInvalid: the options are not an object or fail ``config.json``.
    """
    if user_options is None:
        user_options = {}
    if not isinstance(user_options, Mapping):
        raise OptionsInvalid("options must be a JSON object", package=package.name,
                             version=package.version,
                             details=[{"path": "options", "message": "not an object"}])
    schema = package.config_schema or {}
    merged: dict[str, Any] = deep_merge(cosmos_defaults(schema), user_options)
    validate_dcos_options(schema, merged, package=package.name, version=package.version)
    return merged


def upgrade_dcos_options(old_options: Mapping[str, Any], new_package: Package) -> dict[str, Any]:
    """Old options merged over the new version's defaults, unknown keys dropped."""
    schema = new_package.config_schema or {}
    upgraded: dict[str, Any] = deep_merge(cosmos_defaults(schema), _known(old_options, schema))
    return upgraded


def _known(options: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``options`` the schema's ``properties`` name, recursively."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return dict(options)
    kept: dict[str, Any] = {}
    for key, value in options.items():
        sub = properties.get(key)
        if not isinstance(sub, Mapping):
            continue
        kept[key] = _known(value, sub) if isinstance(value, Mapping) else value
    return kept


# The names ``catalog.options`` calls for packages of format "dcos".
resolve_options = resolve_dcos_options
upgrade_options = upgrade_dcos_options
