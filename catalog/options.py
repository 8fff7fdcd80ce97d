"""Install options: defaults merged deeply, validated, secrets masked, carried over.

A package's ``config.json`` is a JSON Schema (draft 2020-12; draft-04 for DC/OS
packages, handled by ``catalog.dcos.options``). Users give a partial object; the
defaults found in the schema fill the rest, then the whole is validated and every
problem is reported at ``options/<json-path>``. Values under ``"x-secret": true`` are
never shown back: :func:`mask_secrets` replaces them with :data:`MASK` (the secret
paths live in :mod:`catalog.secret_options`; they are re-exported here).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .dcos import options as dcos_options
from .errors import OptionsInvalid, PackageInvalid
from .model import Package
from .option_defaults import MAX_DEPTH, deep_merge, local_schema, schema_defaults
from .schemas.bounds import first_problems, message_of, more_problems, short_pointer, size_problems
from .schemas.validation import compiled, schema_problems
from .secret_options import (
    MASK,
    apply_at_paths,
    covers,
    mask_secrets,
    package_secret_paths,
    path_parts,
    path_text,
    secret_paths,
    secret_problems,
    values_at_paths,
)

__all__ = ["resolve_options", "validate_options", "defaults_of", "schema_defaults",
           "mask_secrets", "upgrade_options", "deep_merge", "secret_paths", "secret_problems",
           "package_secret_paths", "apply_at_paths", "values_at_paths", "path_text",
           "path_parts", "MASK"]


def defaults_of(package: Package) -> dict[str, Any]:
    """The options ``package`` installs with when its user gives none.

    The one place that knows which rule a format follows: a native schema's nested
    ``default`` s (local ``$ref`` s followed), or Cosmos's rule for DC/OS packages.
    The server's install path and the store front's install form both use it, so the
    form shows the defaults the server resolves.

    >>> defaults_of(Package("x", "1.0.0", config_schema={"properties": {
    ...     "port": {"default": 80}, "tls": {"properties": {"on": {"default": False}}}}}))
    {'port': 80, 'tls': {'on': False}}
    """
    if package.format == "dcos":
        return dcos_options.cosmos_defaults(package.config_schema)
    return schema_defaults(package.config_schema)


def _draft(package: Package) -> str:
    return "draft4" if package.format == "dcos" else "2020-12"


def _masked_message(message: str, instance: Any, secret: bool) -> str:
    if secret and isinstance(instance, (str, int, float)) and not isinstance(instance, bool):
        message = message.replace(repr(instance), repr(MASK))
    return message


def validate_options(package: Package, options: Any) -> None:
    """Validate complete options against the package's schema.

    :raises OptionsInvalid: with every problem at ``options/<json-path>``.
    :raises PackageInvalid: when the package's own schema is unusable.
    """
    draft = _draft(package)
    broken = schema_problems(package.config_schema, file="config.json", draft=draft)
    if broken:
        raise PackageInvalid(f"{package.name}@{package.version} has an invalid options schema",
                             package=package.name, version=package.version, details=broken)
    checker = compiled(package.config_schema, draft=draft)
    if checker.is_valid(options):
        return
    problems = size_problems(package.config_schema, options,
                             lambda parts: "options" + short_pointer(parts))
    if not problems:
        problems = _problems(package, checker, options)
    raise OptionsInvalid(f"the options for {package.name}@{package.version} are not valid",
                         package=package.name, version=package.version, details=problems)


def _problems(package: Package, checker: Any, options: Any) -> list[dict[str, str]]:
    """The first :data:`MAX_PROBLEMS` violations, secrets masked, echoes cut short."""
    secrets = set(secret_paths(package.config_schema))
    errors, more = first_problems(checker.python.iter_errors(options))
    problems = []
    for error in errors:
        parts = tuple(str(p) for p in error.absolute_path)
        secret = any(covers(s, parts) for s in secrets)
        message = _masked_message(error.message, error.instance, secret)
        problems.append({"path": "options" + short_pointer(parts),
                         "message": message_of(error, message)})
    problems.sort(key=lambda p: p["path"])
    return problems + [more_problems("options")] if more else problems


def resolve_options(package: Package, user_options: Any = None) -> dict[str, Any]:
    """The options to render with: the defaults deep-merged under ``user_options``.

    :raises OptionsInvalid: with every problem at ``options/<json-path>``.
    :raises PackageInvalid: when the package's own schema is unusable.
    """
    if package.format == "dcos":
        return dcos_options.resolve_dcos_options(package, user_options)
    if user_options is None:
        user_options = {}
    if not isinstance(user_options, Mapping):
        raise OptionsInvalid("options must be a JSON object", package=package.name,
                             version=package.version,
                             details=[{"path": "options", "message": "must be an object"}])
    try:
        merged: dict[str, Any] = deep_merge(defaults_of(package), user_options)
        validate_options(package, merged)
    except RecursionError:
        raise OptionsInvalid("the options are nested too deeply", package=package.name,
                             version=package.version,
                             details=[{"path": "options", "message": "nested too deeply"}],
                             ) from None
    return merged


def _prune(options: Any, schema: Any, root: Mapping[str, Any], depth: int) -> Any:
    """Drop keys the schema does not know (no property, pattern or open additional)."""
    if not isinstance(options, Mapping) or not isinstance(schema, Mapping) or depth > MAX_DEPTH:
        return copy.deepcopy(options)
    schema = local_schema(schema, root, depth)
    props = schema.get("properties")
    if not isinstance(props, Mapping):
        return copy.deepcopy(options)
    extra = schema.get("additionalProperties", False) is not False or bool(
        schema.get("patternProperties"))
    kept = {}
    for key, value in options.items():
        if key in props:
            kept[key] = _prune(value, props[key], root, depth + 1)
        elif extra:
            kept[key] = copy.deepcopy(value)
    return kept


def upgrade_options(old_options: Mapping[str, Any] | None, new_package: Package) -> dict[str, Any]:
    """Old options merged over the NEW version's defaults; keys it does not know dropped.

    >>> from catalog.model import Package
    >>> new = Package("x", "2.0.0", config_schema={"properties": {
    ...     "port": {"default": 80}, "tls": {"default": True}}})
    >>> upgrade_options({"port": 8080, "gone": 1}, new)
    {'port': 8080, 'tls': True}
    """
    if new_package.format == "dcos":
        return dcos_options.upgrade_dcos_options(dict(old_options or {}), new_package)
    schema = new_package.config_schema
    kept = _prune(dict(old_options or {}), schema, schema, 0)
    upgraded: dict[str, Any] = deep_merge(defaults_of(new_package), kept)
    return upgraded
