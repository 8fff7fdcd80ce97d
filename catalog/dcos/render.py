"""Mustache rendering of a Universe package's ``marathon.json.mustache``, as Cosmos did it.

Cosmos rendered with mustache.java and these rules, which :func:`render_marathon` keeps:

- HTML escaping is off (Cosmos overrode the factory's ``encode``): ``{{x}}`` and ``{{{x}}}``
  print the same text.
- String values are JSON-string-encoded before they reach the template (quotes and
  backslashes escaped, the surrounding quotes dropped), so a value such as
  ``[["hostname", "UNIQUE"]]`` lands inside a JSON string literal intact.
- Numbers that are whole and fit a 32-bit int print as ints (``1024.0`` → ``1024``),
  others as doubles; booleans print ``true``/``false``; null prints nothing.
- The context is the merged options with ``resource`` (the parsed ``resource.json``)
  laid over them.

Partials are disabled (no file-system lookups) and the output must be a JSON object.

Older Cosmos versions did not JSON-encode strings, and a few old templates rely on that
(``"acceptedResourceRoles": [{{{roles}}}]`` with the default ``"*", "slave_public"``).
When the encoded rendering is not JSON, the raw rendering is tried, and used if it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pystache.renderer import Renderer

from catalog.dcos.compat import refuse_unsupported_package
from catalog.dcos.convert import convert_app
from catalog.dcos.options import resolve_dcos_options
from catalog.errors import RenderError
from catalog.reading import loads_json

__all__ = ["render_marathon", "mustache_context", "render_dcos_service", "MAX_TEMPLATE_BYTES"]

MAX_TEMPLATE_BYTES = 1_000_000  # the largest template in the public Universe is ~40 KB
_INT32 = (-(2**31), 2**31 - 1)


class _Number(float):
    """A non-integral number: always truthy in sections, printed like a Java double."""

    def __bool__(self) -> bool:
        return True

    def __str__(self) -> str:
        return repr(float(self))


class _Integer(int):
    """A whole number: always truthy in sections (mustache.java does not treat 0 as false)."""

    def __bool__(self) -> bool:
        return True

    def __str__(self) -> str:
        return int.__str__(self)


class _CosmosRenderer(Renderer):  # type: ignore[misc]  # pystache ships no types
    """pystache with Cosmos's value printing: no HTML escaping, Java-style literals."""

    def __init__(self) -> None:
        super().__init__(escape=lambda text: text, missing_tags="ignore", partials={})

    def str_coerce(self, val: Any) -> str:
        """Print booleans as JSON does and null as nothing."""
        if val is True:
            return "true"
        if val is False:
            return "false"
        if val is None:
            return ""
        return str(val)


def _to_mustache(value: Any, encode: bool = True) -> Any:
    """One JSON value as Cosmos handed it to mustache.java (see the module docstring)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)[1:-1] if encode else value
    if isinstance(value, int | float):
        whole = isinstance(value, int) or value.is_integer()
        if whole and _INT32[0] <= value <= _INT32[1]:
            return _Integer(int(value))
        return _Number(value)
    if isinstance(value, Mapping):
        return {str(k): _to_mustache(v, encode) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_mustache(v, encode) for v in value]
    return str(value)


def mustache_context(options: Mapping[str, Any], resource: Mapping[str, Any] | None, *,
                     encode: bool = True) -> dict[str, Any]:
    """The rendering context: the options with ``resource`` laid over them."""
    context = dict(options)
    if resource is not None:
        context["resource"] = resource
    converted: dict[str, Any] = _to_mustache(context, encode)
    return converted


def render_marathon(template: str, options: Mapping[str, Any],
                    resource: Mapping[str, Any] | None, *, source: str = "marathon.json.mustache",
                    ) -> dict[str, Any]:
    """Render the template with the options and parse the Marathon app it produces.

    :raises RenderError: the template does not render or does not give a JSON object.
    """
    if len(template.encode("utf-8", "replace")) > MAX_TEMPLATE_BYTES:
        raise RenderError(f"{source} is larger than {MAX_TEMPLATE_BYTES} bytes",
                          details=[{"path": source, "message": "template too large"}])
    text = _render_text(template, mustache_context(options, resource), source)
    try:
        return _parse_app(text, source)
    except RenderError:
        raw = _render_text(template, mustache_context(options, resource, encode=False), source)
        try:
            return _parse_app(raw, source)
        except RenderError:
            pass
        raise


def _render_text(template: str, context: dict[str, Any], source: str) -> str:
    """The template rendered to text.

    :raises RenderError: when pystache cannot parse the template.
    """
    try:
        text: str = _CosmosRenderer().render(template, context)
        return text
    except Exception as exc:  # noqa: BLE001 - pystache raises plain errors on bad templates
        raise RenderError(f"{source} does not render: {exc}",
                          details=[{"path": source, "message": str(exc)}]) from exc


def _parse_app(text: str, source: str) -> dict[str, Any]:
    """Parse the rendered text as one JSON object.

    :raises RenderError: with the line and column where the JSON breaks.
    """
    try:
        app = loads_json(text)
    except json.JSONDecodeError as exc:
        line = text.splitlines()[exc.lineno - 1] if text.splitlines() else ""
        message = f"rendered text is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        raise RenderError(f"{source}: {message}",
                          details=[{"path": f"{source}:{exc.lineno}:{exc.colno}",
                                   "message": f"{exc.msg}: {line.strip()[:200]}"}]) from exc
    if not isinstance(app, dict):
        raise RenderError(f"{source}: the rendered template must be a JSON object",
                          details=[{"path": source, "message": "not a JSON object"}])
    return app


def render_dcos_service(package: Any, options: Mapping[str, Any] | None, *,
                        service_name: str) -> dict[str, Any]:
    """Resolve options, render the Marathon app and convert it to a Berth service spec.

    The spec is not yet validated against the service schema (``catalog.render`` does that).

    :raises PackageInvalid: the package cannot run on Docker hosts at all.
    :raises OptionsInvalid: the options do not validate against ``config.json``.
    :raises RenderError: the template does not render to a JSON object.
    :raises SpecRefused: the rendered app needs what Docker hosts do not offer.
    """
    refuse_unsupported_package(package)
    merged = resolve_dcos_options(package, options or {})
    app = render_marathon(package.template or "", merged, package.resource)
    return convert_app(app, service_name=service_name, package=package)
