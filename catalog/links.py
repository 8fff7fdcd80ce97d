"""Links between services: an option that names another installed service (pure).

A package asks for another installed service with a mark on a top-level string
option of its ``config.json``::

    "database": {"type": "string",
                 "x-berth-service": {"package": "postgres", "port": "postgres"}}

The option's value is the linked service's name. Where that service runs changes
(an instance is replaced, moved to another agent), so the template cannot be given
its address at install time: it gets ``links.<option>`` with ``name`` (the value)
and *placeholders* for ``host``, ``port``, ``address`` (``host:port``) and
``endpoints`` (every healthy ``host:port``, comma separated). The worker substitutes
them from the linked service's current healthy endpoints each time it creates a
container of the dependent service (``worker/links.py``).

Placeholders are ``@@berth-link:<option>:<field>@@``: ``@@`` starts no variable in
the shells, Compose files, Jinja, Go templates or ``${VAR}`` / ``%VAR%`` syntaxes
applications use, so an application's own text never matches by accident.

The rendered spec records its links (``"links": [{"option", "service", "port",
"onLinkChange"}]``); ``onLinkChange`` (in the mark: ``restart``, the default, or
``none``) says whether the dependent service is restarted when the linked service's
endpoints change.

A mark may name several packages (``"package": ["postgres", "mariadb"]``, a client
that speaks to either); ``port`` is then one port name for all or an object of
package → port name (``{"postgres": "postgres", "mariadb": "mysql"}``), and the
record's ``port`` is the one of the package the linked service is.

**Credentials.** A mark may ask for secrets the linked service holds::

    "x-berth-service": {"package": "postgres", "port": "postgres",
                        "credentials": {"password": "/auth/password"},
                        "requireCredentials": true}

``credentials`` maps names (``links.<option>.credentials.<name>`` in the template) to
option paths of the linked package that it marks ``x-secret`` (a generated password,
a key): only those can be asked for (:func:`credential_problems` checks them against
the linked package at lint and publish; the server checks them again against the
installed service's record). They are handed over only when the admin confirms it for
that option (the install request's ``handover``): then the template's fields are the
placeholders ``@@berth-link:<option>:credential.<name>@@``, the record carries
``credentials`` (and who confirmed, when: ``handover``), and the worker fills them
from the linked service's sealed values when it creates a container. Without the
confirmation the fields are ``""``; with ``requireCredentials`` the install is then
refused (a client that cannot start without them should not be installed broken).
A mark with several packages cannot ask for credentials: their paths differ.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, NotRequired, TypedDict

from .secret_options import path_text as _path_text
from .secret_options import secret_paths

__all__ = ["MARK", "FIELDS", "ON_CHANGE", "Link", "placeholder", "link_marks",
           "link_problems", "links_context", "spec_links", "PLACEHOLDER_RE",
           "mark_packages", "mark_port", "mark_credentials", "credential_problems",
           "CREDENTIAL"]

MARK = "x-berth-service"
FIELDS = ("host", "port", "address", "endpoints")
ON_CHANGE = ("restart", "none")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")   # used with fullmatch: no "\n" slips by
_PORT = re.compile(r"[a-z][a-z0-9-]{0,31}")
_OPTION = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_CREDENTIAL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_OPTION_PATH = re.compile(r"(/[^/\s]{1,128}){1,16}")
CREDENTIAL = "credential."   # the field prefix of a handed-over credential
MAX_CREDENTIALS = 16
MARK_FIELDS = ("package", "port", "onLinkChange", "credentials", "requireCredentials")
PLACEHOLDER_RE = re.compile(r"@@berth-link:([A-Za-z_][A-Za-z0-9_-]{0,63}):"
                            r"(host|port|address|endpoints|credential\.[A-Za-z_][A-Za-z0-9_]"
                            r"{0,63})@@")


class Handover(TypedDict):
    """Who confirmed handing a linked service's credentials over, and when."""

    by: str
    at: float


class Link(TypedDict):
    """One link of a rendered spec: option → linked service and its port name; with a
    confirmed handover, the credentials (name → the linked service's option path)."""

    option: str
    service: str
    port: str
    onLinkChange: str
    credentials: NotRequired[dict[str, str]]
    handover: NotRequired[Handover]


def placeholder(option: str, field: str) -> str:
    """The token the worker replaces with the linked service's current ``field``.

    >>> placeholder("database", "host")
    '@@berth-link:database:host@@'
    """
    return f"@@berth-link:{option}:{field}@@"


def link_marks(schema: Any) -> dict[str, Mapping[str, Any]]:
    """The marked top-level options of an options schema: ``{option: mark}``."""
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    if not isinstance(props, Mapping):
        return {}
    return {str(k): v[MARK] for k, v in props.items()
            if isinstance(v, Mapping) and isinstance(v.get(MARK), Mapping)}


def mark_packages(mark: Mapping[str, Any]) -> list[str]:
    """The package names a mark accepts (one string or a list of them).

    >>> mark_packages({"package": "postgres"}), mark_packages({"package": ["a", "b"]})
    (['postgres'], ['a', 'b'])
    """
    wanted = mark.get("package")
    return [str(p) for p in (wanted if isinstance(wanted, list) else [wanted])]


def mark_port(mark: Mapping[str, Any], package: str | None = None) -> str:
    """The port name a mark links to on a service of ``package`` (the first package's
    when ``package`` is not known yet: lint, a preview).

    >>> mark_port({"package": ["pg", "my"], "port": {"pg": "postgres", "my": "mysql"}}, "my")
    'mysql'
    """
    port = mark.get("port")
    if not isinstance(port, Mapping):
        return str(port)
    chosen = package if package in port else (mark_packages(mark) or [""])[0]
    return str(port.get(chosen, ""))


def mark_credentials(mark: Mapping[str, Any]) -> dict[str, str]:
    """``{name: option path of the linked package}`` a mark asks for (``{}``: none)."""
    wanted = mark.get("credentials")
    return {str(k): str(v) for k, v in wanted.items()} if isinstance(wanted, Mapping) else {}


def _package_problems(mark: Mapping[str, Any]) -> list[str]:
    wanted = mark.get("package")
    names = wanted if isinstance(wanted, list) else [wanted]
    if not names or len(names) > 16 or not all(
            isinstance(n, str) and _NAME.fullmatch(n) for n in names):
        return ["'package' must be the name of a package (lower case, e.g. 'postgres') "
                "or a list of 1 to 16 of them"]
    if len(set(names)) != len(names):
        return ["'package' names a package twice"]
    return []


def _port_problems(mark: Mapping[str, Any]) -> list[str]:
    port = mark.get("port")
    if isinstance(port, Mapping):
        bad = [k for k, v in port.items()
               if not isinstance(v, str) or not _PORT.fullmatch(v)]
        missing = [p for p in mark_packages(mark) if p not in port]
        extra = [k for k in port if k not in mark_packages(mark)]
        found = []
        if bad or not port:
            found.append("'port' must map each package to a port name of its spec")
        if missing:
            found.append(f"'port' has no port name for {', '.join(map(repr, missing))}")
        if extra:
            found.append(f"'port' names {', '.join(map(repr, extra))}, which 'package' "
                         "does not list")
        return found
    if not isinstance(port, str) or not _PORT.fullmatch(port):
        return ["'port' must be a port name of the linked service's spec (e.g. "
                "'postgres'), or an object of package → port name"]
    return []


def _credentials_problems(mark: Mapping[str, Any]) -> list[str]:
    if "credentials" not in mark:
        return (["'requireCredentials' needs 'credentials'"]
                if mark.get("requireCredentials") else [])
    wanted, found = mark["credentials"], []
    if not isinstance(wanted, Mapping) or not wanted or len(wanted) > MAX_CREDENTIALS:
        return [f"'credentials' must map 1 to {MAX_CREDENTIALS} names to option paths of "
                'the linked package, e.g. {"password": "/auth/password"}']
    for name, path in wanted.items():
        if not _CREDENTIAL_NAME.fullmatch(str(name)):
            found.append(f"credential name {name!r} must be letters, digits or '_' (it "
                         "becomes links.<option>.credentials.<name>)")
        if not isinstance(path, str) or not _OPTION_PATH.fullmatch(path) or "*" in path:
            found.append(f"credential {name!r}: {path!r} must be an option path of the "
                         "linked package, like '/auth/password'")
    if isinstance(mark.get("package"), list) and len(mark["package"]) > 1:
        found.append("'credentials' needs a single 'package': option paths differ "
                     "between packages")
    if "requireCredentials" in mark and not isinstance(mark["requireCredentials"], bool):
        found.append("'requireCredentials' must be true or false")
    return found


def _mark_problems(mark: Any) -> list[str]:
    """What is wrong with one mark's value (empty when it is usable)."""
    if not isinstance(mark, Mapping):
        return ['must be an object: {"package": NAME, "port": PORT-NAME}']
    found = []
    unknown = sorted(set(mark) - set(MARK_FIELDS))
    if unknown:
        found.append(f"unknown field(s) {', '.join(map(repr, unknown))}: allowed are "
                     + ", ".join(repr(f) for f in MARK_FIELDS))
    found.extend(_package_problems(mark))
    if not found:
        found.extend(_port_problems(mark))
    if "onLinkChange" in mark and mark["onLinkChange"] not in ON_CHANGE:
        found.append("'onLinkChange' must be 'restart' or 'none'")
    found.extend(_credentials_problems(mark))
    return found


def _allows_string(sub: Mapping[str, Any]) -> bool:
    kind = sub.get("type")
    return kind == "string" or (isinstance(kind, list) and "string" in kind)


def _nested_marks(node: Any, loc: str, depth: int = 0) -> list[str]:
    """Locations of marks below the top level (where Berth does not look for them)."""
    if depth > 32:
        return []
    found = []
    if isinstance(node, Mapping):
        for key, value in node.items():
            where = f"{loc}/{key}"
            if key == MARK:
                found.append(where)
            found.extend(_nested_marks(value, where, depth + 1))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_nested_marks(value, f"{loc}/{index}", depth + 1))
    return found


def link_problems(schema: Any) -> list[tuple[str, str]]:
    """``(location in config.json, reason)`` for every ``x-berth-service`` Berth cannot
    honour: a malformed mark, a non-string option, an option name that cannot be a
    template variable, or a mark that is not on a top-level option."""
    if not isinstance(schema, Mapping):
        return []
    found: list[tuple[str, str]] = []
    props = schema.get("properties")
    top: set[str] = set()
    if isinstance(props, Mapping):
        for key, sub in props.items():
            if not isinstance(sub, Mapping) or MARK not in sub:
                continue
            where = f"/properties/{key}/{MARK}"
            top.add(where)
            found.extend((where, why) for why in _mark_problems(sub[MARK]))
            if not _allows_string(sub):
                found.append((where, "a linked service is given by its name: the option's "
                                     "type must be string"))
            if not _OPTION.fullmatch(str(key)):
                found.append((where, "the option's name must be letters, digits, '_' or "
                                     "'-' (it becomes links.<option> in the template)"))
    for where in _nested_marks(schema, ""):
        if where not in top:
            found.append((where, "x-berth-service is read on top-level options only "
                                 "(properties/<option>)"))
    return found


def credential_problems(schema: Any, linked: Callable[[str], Iterable[Any]]
                        ) -> list[tuple[str, str]]:
    """``(location in config.json, reason)`` for every credential a mark asks for that
    is not a secret option of the linked package.

    ``linked(package)`` gives the config schemas of the linked package's versions that
    are known (in the same repository, or the catalog a package is published to): the
    path must be an ``x-secret`` option of each of them. A package not known there is
    not checked here; the server checks every install against the linked service.
    """
    found: list[tuple[str, str]] = []
    for option, mark in sorted(link_marks(schema).items()):
        wanted = mark_credentials(mark)
        packages = mark_packages(mark)
        if not wanted or len(packages) != 1:
            continue
        schemas = list(linked(packages[0]))
        secret = [{_path_text(p) for p in secret_paths(s)} for s in schemas]
        for name, path in sorted(wanted.items()):
            if any(path not in paths for paths in secret):
                found.append((f"/properties/{option}/{MARK}/credentials/{name}",
                              f"{path!r} is not a secret option of {packages[0]} (only "
                              "options it marks x-secret can be handed over)"))
    return found


def links_context(schema: Any, options: Mapping[str, Any], handover: Collection[str] = ()
                  ) -> dict[str, dict[str, Any]]:
    """``links`` as a template sees it: per marked option its ``name`` (the option's
    value), ``package``, ``portName`` and the placeholders of ``host``, ``port``,
    ``address`` and ``endpoints``; ``credentials`` by name: the placeholders when the
    option is in ``handover`` (confirmed) and names a service, else ``""``."""
    context = {}
    for option, mark in link_marks(schema).items():
        entry: dict[str, Any] = {f: placeholder(option, f) for f in FIELDS}
        linked = bool(options.get(option)) and option in handover
        entry.update(name=str(options.get(option) or ""), package=",".join(mark_packages(mark)),
                     portName=mark_port(mark),
                     credentials={n: placeholder(option, CREDENTIAL + n) if linked else ""
                                  for n in mark_credentials(mark)})
        context[option] = entry
    return context


def spec_links(schema: Any, options: Mapping[str, Any], handover: Collection[str] = (),
               packages: Mapping[str, str] | None = None) -> list[Link]:
    """The links a spec records: one per marked option that names a service, with the
    port of the linked service's package (``packages``: option → package name, where
    known) and, for an option in ``handover``, the credentials asked for."""
    found = []
    for option, mark in sorted(link_marks(schema).items()):
        if not (isinstance(options.get(option), str) and options[option]):
            continue
        link = Link(option=option, service=str(options[option]),
                    port=mark_port(mark, (packages or {}).get(option)),
                    onLinkChange=str(mark.get("onLinkChange") or "restart"))
        if option in handover and mark_credentials(mark):
            link["credentials"] = mark_credentials(mark)
        found.append(link)
    return found
