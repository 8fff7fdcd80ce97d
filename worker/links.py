"""Links between services, late bound: placeholders filled at container create.

A spec that links to other services (``spec["links"]``, written at render from the
options marked ``x-berth-service``, see ``catalog/links.py``) carries placeholders
``@@berth-link:<option>:<field>@@`` where the template used ``links.<option>.host``,
``.port``, ``.address`` or ``.endpoints``. The server cannot know where the linked
service will run, so the worker fills them from the linked service's *current*
healthy endpoints every time it creates a container of the dependent service
(:func:`open_links`, called by ``InstanceRunner`` right before ``run_instance``): a
restart or a replacement picks up a database that moved.

The chosen endpoint is recorded on the instance (``links``: ``{option: {"service",
"host", "port"}}``); :func:`stale_links` tells the reconciler when that endpoint no
longer serves the linked service while another one does, and the dependent service
is then restarted (unless every stale link says ``onLinkChange: none``).

A link the admin confirmed handing credentials over for (``credentials`` in its
record: name → the linked service's option path) also has placeholders
``@@berth-link:<option>:credential.<name>@@``. :func:`open_links` fills them from the
linked service's record: the value at that path of its options, which the record
keeps sealed, opened with the data keys in memory for the container's create only
(never written back, never on the instance record, never in an event or a log line).
A path the linked service's record does not list as secret is refused, so a spec
cannot be made to carry any other option out. A link without ``credentials`` fills
its credential placeholders with ``""`` (an option's own text that happens to look
like one gets nothing).

Pure parts (:func:`resolve`, :func:`substitute`, :func:`stale_reason`,
:func:`credential_values`) take plain mappings; the rest read the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from catalog.links import CREDENTIAL, PLACEHOLDER_RE
from catalog.secret_options import path_parts

from .endpoints import service_endpoints
from .errors import Conflict
from .records import Instance, Service
from .store import Store
from .store.crypto import DataKeys, is_sealed, require_keys

__all__ = ["LinkUnresolved", "ServiceLinked", "resolve", "substitute", "open_links",
           "dependents", "stale_reason", "stale_links", "links_of", "credential_values"]

Resolved = dict[str, dict[str, Any]]
Credentials = dict[str, dict[str, str]]   # option → credential name → value (in memory)


class LinkUnresolved(Conflict):
    """A linked service is missing or has no healthy endpoint on the linked port (a
    conflict with the cluster's state now: it resolves when the service serves)."""

    code = "link_unresolved"


class ServiceLinked(Conflict):
    """The service cannot go: other services link to it."""

    code = "service_linked"


def links_of(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The links a spec records (``[]`` for specs without any)."""
    return [link for link in spec.get("links") or [] if isinstance(link, Mapping)]


def resolve(spec: Mapping[str, Any], endpoints: Mapping[str, Mapping[str, Any] | None]
            ) -> Resolved:
    """Per option: the linked service's name, the endpoint chosen (the first healthy
    one, by instance id) and every healthy ``host:port``.

    ``endpoints`` maps service names to ``service_endpoints`` answers (None: no such
    service).

    :raises LinkUnresolved: naming the option and the service, when a linked service
        is gone or nothing healthy serves the linked port.
    """
    resolved: Resolved = {}
    for link in links_of(spec):
        option, name, port = str(link["option"]), str(link["service"]), str(link["port"])
        found = endpoints.get(name)
        if found is None:
            raise LinkUnresolved(f"option {option!r} links to service {name!r}, which is "
                                 "not installed", service=name, option=option)
        serving = list((found.get("ports") or {}).get(port) or [])
        if not serving:
            raise LinkUnresolved(f"option {option!r} links to service {name!r}, which has "
                                 f"no healthy endpoint on port {port!r} yet",
                                 service=name, option=option,
                                 hint="the instance is created again once it has one")
        chosen = serving[0]
        resolved[option] = {
            "service": name, "host": str(chosen["address"]), "port": int(chosen["port"]),
            "endpoints": ",".join(f"{e['address']}:{e['port']}" for e in serving)}
    return resolved


def _value(resolved: Resolved, credentials: Credentials, option: str, field: str) -> str:
    if field.startswith(CREDENTIAL):
        return (credentials.get(option) or {}).get(field[len(CREDENTIAL):], "")
    entry = resolved.get(option)
    if entry is None:
        return ""   # an option left empty links to nothing
    if field == "address":
        return f"{entry['host']}:{entry['port']}"
    return str(entry[field])


def _filled(tree: Any, resolved: Resolved, credentials: Credentials) -> Any:
    if isinstance(tree, str):
        return PLACEHOLDER_RE.sub(
            lambda m: _value(resolved, credentials, m.group(1), m.group(2)), tree)
    if isinstance(tree, Mapping):
        return {k: _filled(v, resolved, credentials) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_filled(v, resolved, credentials) for v in tree]
    return tree


CREDENTIAL_FIELDS = ("env", "command", "args")   # where a credential may be put


def substitute(spec: Mapping[str, Any], resolved: Resolved,
               credentials: Credentials | None = None) -> dict[str, Any]:
    """The spec with every link placeholder in its strings replaced (a new tree;
    the spec's own ``links`` record is kept as it is).

    A credential placeholder gets its value from ``credentials`` (option → name →
    value) in ``env``, ``command`` and ``args`` only, and ``""`` anywhere else: an image
    name, a label, a volume or a health check would carry it into an engine's error,
    an event or a record, where only the container was meant to see it."""
    given = credentials or {}
    return {k: (v if k == "links" else
                _filled(v, resolved, given if k in CREDENTIAL_FIELDS else {}))
            for k, v in spec.items()}


def _at(options: Any, path: str) -> Any:
    for part in path_parts(path):
        if not isinstance(options, Mapping):
            return None
        options = options.get(part)
    return options


def credential_values(spec: Mapping[str, Any], linked: Mapping[str, Mapping[str, Any] | None],
                      keys: DataKeys | None) -> Credentials:
    """The credentials each confirmed link hands over, opened: option → name → value.

    ``linked`` maps service names to their records (None: not installed). Only a path
    the linked record lists in ``secret_paths`` is read.

    :raises LinkUnresolved: a linked service is gone, or a path is not its secret.
    :raises DataKeyError: without the data key that sealed a value.
    """
    found: Credentials = {}
    for link in links_of(spec):
        wanted = link.get("credentials")
        if not isinstance(wanted, Mapping) or not wanted:
            continue
        option, name = str(link["option"]), str(link["service"])
        record = linked.get(name)
        if record is None:
            raise LinkUnresolved(f"option {option!r} links to service {name!r}, which is "
                                 "not installed", service=name, option=option)
        secret = set(record.get("secret_paths") or ())
        values: dict[str, str] = {}
        for label, path in sorted(wanted.items()):
            if path not in secret:
                raise LinkUnresolved(f"option {option!r} asks for {path!r} of service "
                                     f"{name!r}, which is not one of its secrets",
                                     service=name, option=option)
            value = _at(record.get("options") or {}, str(path))
            if is_sealed(value):
                value = require_keys(keys, "open the credentials a link hands over").open(
                    value)
            values[str(label)] = value if isinstance(value, str) else ""
        found[option] = values
    return found


def _endpoints_of(store: Store, names: Iterable[str]) -> dict[str, dict[str, Any] | None]:
    """The endpoints of each named service (None: not installed, or being removed)."""
    found: dict[str, dict[str, Any] | None] = {}
    for name in set(names):
        service = store.services.get(name)
        found[name] = (service_endpoints(service, store.instances.for_service(name))
                       if service is not None and service.get("status") != "deleting"
                       else None)
    return found


def open_links(store: Store, spec: Mapping[str, Any], keys: DataKeys | None = None
               ) -> tuple[dict[str, Any], Resolved]:
    """The spec with its link placeholders filled from the linked services' current
    endpoints (and the credentials handed over, opened with ``keys``), and the
    endpoints chosen (to record on the instance; never a credential).

    :raises LinkUnresolved: see :func:`resolve` and :func:`credential_values`.
    :raises DataKeyError: a handed-over credential cannot be opened.
    """
    links = links_of(spec)
    if not links:
        return dict(spec), {}
    names = {str(link["service"]) for link in links}
    resolved = resolve(spec, _endpoints_of(store, names))
    handing = {str(link["service"]) for link in links if link.get("credentials")}
    credentials = credential_values(
        spec, {n: store.services.get(n) for n in handing}, keys) if handing else {}
    return substitute(spec, resolved, credentials), resolved


def dependents(store: Store, name: str) -> list[str]:
    """The services (not being removed) whose spec links to ``name``, by name."""
    return sorted(s["name"] for s in store.services.list()
                  if s["name"] != name and s.get("status") != "deleting"
                  and any(link.get("service") == name for link in links_of(s.get("spec") or {})))


def stale_reason(spec: Mapping[str, Any], instances: Iterable[Mapping[str, Any]],
                 endpoints: Mapping[str, Mapping[str, Any] | None]) -> str | None:
    """Why a dependent service must restart, or None.

    A link is stale when an instance was created with an endpoint that no longer
    serves the linked port while another one does (with none at all, a restart
    could not start; the link waits). Links marked ``onLinkChange: none`` never are.
    """
    for link in links_of(spec):
        if link.get("onLinkChange") == "none":
            continue
        option, port = str(link["option"]), str(link["port"])
        found = endpoints.get(str(link["service"]))
        serving = list(((found or {}).get("ports") or {}).get(port) or [])
        if not serving:
            continue
        current = {(str(e["address"]), int(e["port"])) for e in serving}
        for instance in instances:
            used = (instance.get("links") or {}).get(option)
            if used and (str(used["host"]), int(used["port"])) not in current:
                return (f"linked service {link['service']!r} moved: "
                        f"{used['host']}:{used['port']} no longer serves {port!r}")
    return None


def stale_links(store: Store, service: Service, instances: list[Instance]) -> str | None:
    """:func:`stale_reason` for one service, reading the linked services' endpoints."""
    spec = service.get("spec") or {}
    links = links_of(spec)
    if not links:
        return None
    live = [i for i in instances if i.get("state") in ("running", "starting", "unhealthy")]
    return stale_reason(spec, live, _endpoints_of(store, (str(k["service"]) for k in links)))
