"""Render a package version into a validated, policy-checked service spec.

Native packages: ``service.json.j2`` runs in :class:`catalog.sandbox.BerthSandbox`
(``ImmutableSandboxedEnvironment``, ``StrictUndefined``, bounded time and size; see
that module for why each bound is enforced where it is) with the context
``options``, ``resource``, ``package`` and ``service``; values should be emitted with
``|tojson``. DC/OS packages render through ``catalog.dcos.render`` (Mustache and the
Marathon conversion), imported only when such a package is rendered.

Servers render maintainer templates out of process: :func:`render_service` takes a
``renderer`` (:meth:`catalog.render_pool.RenderPool.render`), and code that reaches
``render_service`` through other layers (the publish-time lint) sets one for a block
with :func:`rendering_with`. Without either, templates render in this process.

The text is parsed as JSON, ``instances`` and extra ``constraints`` are applied, and
the result goes through :func:`catalog.spec.validate_spec` and
:func:`catalog.spec.check_policy`.
"""

from __future__ import annotations

import contextvars
import functools
import json
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from jinja2 import Template, TemplateSyntaxError

from .dcos.render import render_dcos_service
from .errors import CatalogError, PackageInvalid, RenderError
from .links import links_context, spec_links
from .model import Package
from .reading import loads_json
from .sandbox import TEMPLATE_FILE, BerthSandbox, LimitExceeded, Limits, limited
from .spec import (
    DEFAULT_ALLOWED_HOST_PATHS,
    NO_SITE_POLICY,
    ContainerPolicy,
    check_policy,
    validate_spec,
)

__all__ = ["render_service", "render_template", "compile_template", "template_context",
           "Limits", "Renderer", "rendering_with"]

TEMPLATE_NAME = "service.json.j2"

Renderer = Callable[[str, Mapping[str, Any], str], str]
"""Renders ``(source, context, file)`` to text, raising :class:`RenderError`."""

_RENDERER: contextvars.ContextVar[Renderer | None] = contextvars.ContextVar(
    "berth_renderer", default=None)


@contextmanager
def rendering_with(renderer: Renderer | None) -> Iterator[None]:
    """Render native templates with ``renderer`` inside the block (this context only)."""
    token = _RENDERER.set(renderer)
    try:
        yield
    finally:
        _RENDERER.reset(token)


def _in_process(source: str, context: Mapping[str, Any], file: str) -> str:
    return render_template(source, context, file=file)


@functools.cache
def _env() -> BerthSandbox:
    """The one sandbox, made on first use (nothing is built at import time)."""
    return BerthSandbox()


def _error(message: str, file: str, line: int | None = None, **kw: Any) -> RenderError:
    where = f"{file}:{line}" if line else file
    return RenderError(f"{file}: {message}", details=[{"path": where, "message": message}],
                       **kw)


@functools.lru_cache(maxsize=1024)
def _compile(source: str) -> Template | tuple[str, int | None]:
    try:
        with limited(Limits()):  # constant folding runs filters at compile time
            return _env().from_string(source)
    except TemplateSyntaxError as exc:
        return (f"template syntax error: {exc.message}", exc.lineno)
    except LimitExceeded as exc:
        return (str(exc), None)
    except (RecursionError, MemoryError):
        return ("the template is nested too deeply", None)
    except Exception as exc:  # noqa: BLE001 - any other compile fault is the template's
        return (f"the template cannot be compiled: {exc}", None)


def compile_template(source: str, *, file: str = TEMPLATE_NAME) -> Template:
    """The compiled template (cached by source).

    :raises RenderError: naming the file and line of a syntax error.
    """
    if not isinstance(source, str) or len(source) > 64 * 1024:
        raise _error("the template must be text of at most 64 KiB", file)
    compiled = _compile(source)
    if isinstance(compiled, tuple):
        raise _error(compiled[0], file, compiled[1])
    return compiled


def _template_line(exc: BaseException) -> int | None:
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == TEMPLATE_FILE:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render_template(source: str, context: Mapping[str, Any], *, file: str = TEMPLATE_NAME,
                    limits: Limits | None = None) -> str:
    """Render template text in the sandbox.

    :raises RenderError: for syntax errors, undefined variables, sandbox violations and
        exceeded limits, naming the file and line.
    """
    template = compile_template(source, file=file)
    limits = limits or Limits()
    chunks: list[str] = []
    size = 0
    try:
        with limited(limits):
            for chunk in template.generate(dict(context)):
                size += len(chunk)
                if size > limits.max_output:
                    raise LimitExceeded(f"the output is larger than {limits.max_output} "
                                        "characters")
                chunks.append(chunk)
    except LimitExceeded as exc:
        raise _error(str(exc), file, _template_line(exc)) from None
    except RecursionError as exc:
        raise _error("the template recurses too deeply", file, _template_line(exc)) from None
    except MemoryError:
        raise _error("the template used too much memory", file) from None
    except Exception as exc:  # noqa: BLE001 - undefined, security, type errors: template's
        name = type(exc).__name__
        raise _error(f"{name}: {exc}", file, _template_line(exc)) from None
    return "".join(chunks)


class ServiceName(str):
    """The service's name as template text; ``service.name`` works as well."""

    __slots__ = ()

    @property
    def name(self) -> str:
        """The name itself (for templates that write ``service.name``)."""
        return str(self)


def template_context(package: Package, options: Mapping[str, Any],
                     service_name: str, handover: Collection[str] = ()) -> dict[str, Any]:
    """What a template sees: ``options``, ``resource``, ``package``, ``service`` and
    ``links`` (the linked services' names and placeholders, ``catalog.links``; the
    credentials' placeholders only for the options in ``handover``)."""
    return {
        "options": options,
        "links": links_context(package.config_schema, options, handover),
        "resource": package.resource,
        "package": {"name": package.name, "version": package.version,
                    "title": package.title, "maintainer": package.maintainer,
                    "upstreamVersion": package.upstream_version,
                    "tags": list(package.tags), "images": package.images},
        "service": ServiceName(service_name),
    }


def _parse(text: str, file: str) -> Any:
    try:
        return loads_json(text)
    except json.JSONDecodeError as exc:
        lines = text.splitlines()
        shown = lines[exc.lineno - 1].strip()[:120] if 0 < exc.lineno <= len(lines) else ""
        raise _error(f"the template did not render valid JSON: {exc.msg} at output line "
                     f"{exc.lineno}, column {exc.colno} ({shown!r})", file,
                     hint="emit values with |tojson") from None
    except RecursionError:
        raise _error("the rendered JSON is nested too deeply", file) from None


def _render_native(package: Package, options: Mapping[str, Any], service_name: str,
                   renderer: Renderer | None, handover: Collection[str] = ()) -> Any:
    render = renderer or _RENDERER.get() or _in_process
    text = render(package.template,
                  template_context(package, options, service_name, handover), TEMPLATE_NAME)
    return _parse(text, TEMPLATE_NAME)


def _render_dcos(package: Package, options: Mapping[str, Any], service_name: str,
                 renderer: Renderer | None) -> Any:
    return render_dcos_service(package, options, service_name=service_name)


def render_service(package: Package, options: Mapping[str, Any], *, service_name: str,
                   instances: int | None = None, constraints: Iterable[Sequence[str]] = (),
                   allowed_host_paths: Sequence[str] = DEFAULT_ALLOWED_HOST_PATHS,
                   container: ContainerPolicy = NO_SITE_POLICY,
                   readonly_host_paths: Sequence[str] = (),
                   renderer: Renderer | None = None, handover: Collection[str] = (),
                   linked_packages: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The service spec of ``package`` with resolved ``options``.

    ``handover`` names the linked options whose credentials the admin confirmed
    handing over; ``linked_packages`` (option → the linked service's package) picks the
    port of a mark that names several packages (``catalog.links``).

    ``allowed_host_paths`` and ``container`` are the admin's policy
    (:func:`catalog.spec.check_policy`); without ``container``, no site policy applies.
    ``renderer`` renders a native template (default: the one :func:`rendering_with`
    set, else this process).

    :raises PackageInvalid: when the package cannot run on Docker hosts.
    :raises RenderError: when the template fails or does not render a JSON object.
    :raises SpecInvalid: when the spec does not validate.
    :raises SpecRefused: when the policy refuses it.
    """
    if package.unsupported:
        raise PackageInvalid(f"{package.name}@{package.version} cannot run on Docker hosts",
                             package=package.name, version=package.version,
                             details=[{"path": "package", "message": r}
                                     for r in package.unsupported])
    if package.format == "dcos":
        spec = _render_dcos(package, options, service_name, renderer)
    else:
        spec = _render_native(package, options, service_name, renderer, handover)
    if not isinstance(spec, dict):
        raise _error("the template must render a JSON object", TEMPLATE_NAME)
    if instances is not None:
        spec["instances"] = instances
    links = (spec_links(package.config_schema, options, handover, linked_packages)
             if package.format != "dcos" else [])
    spec.pop("links", None)   # only the marks say what a service links to
    if links:
        spec["links"] = [dict(link) for link in links]
    extra = [list(c) for c in constraints]
    if extra:
        spec["constraints"] = list(spec.get("constraints") or []) + extra
    try:
        spec = validate_spec(spec)
        check_policy(spec, allowed_host_paths=allowed_host_paths,
                     readonly_host_paths=readonly_host_paths, container=container,
                     package=package.name)
    except CatalogError as exc:
        exc.package, exc.version = package.name, package.version
        raise
    return spec
