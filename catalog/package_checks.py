"""The checks of ``berth package test``'s spec stage: a rendered spec against what the
package declares (pure functions, no files).

- :func:`spec_problems` — every ``$PORT<n>`` / ``$PORT_<NAME>`` that the command, args,
  env, health check or smoke test uses names a declared port; under host networking,
  every fixed port number they listen on is declared (a listener Berth never reserved
  collides with the next instance on that agent);
- :func:`secret_option_problems` — options named like a credential are ``x-secret``, and
  every secret is generated (``x-generate``) or required, so that an install never
  starts with no credential or a well-known one.

Paths are relative to the version folder (``service.json.j2#/command``) or the file
given (``config.json#/properties/auth/properties/password``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .errors import Problem
from .schemas.validation import at, walk

__all__ = ["spec_problems", "secret_option_problems", "option_keys"]

# $PORT0, ${PORT1}, $PORT_HTTP, ${PORT_ADMIN_UI:-8080}; $PORT and $PORTS alone too.
_PORT_REF = re.compile(r"\$\{?PORT(?:(\d+)|_([A-Za-z0-9_]+)|(S)?)(?![A-Za-z0-9_])")
# Fixed port numbers in a listening context: ":9000", "0.0.0.0:9000", "localhost:80";
# an option or setting named *port* ("--port 27017", "--http-port=80", "x.port = 15692");
# "listen 80" (nginx, mosquitto).
_ADDRESS_PORT = re.compile(r"(?:^|(?<=[\s\"'=(,]))(?:localhost|\d{1,3}(?:\.\d{1,3}){3}|"
                           r"\[[0-9a-fA-F:]*\])?:(\d{1,5})(?![\d\w.])")
_NAMED_PORT = re.compile(r"(?i)(?<![a-z])(?:port|listen)\s*[= ]\s*[\"']?(\d{1,5})(?![\d\w.])")
# Option names that hold a credential: they must be marked x-secret.
_SECRET_NAME = re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key|private[_-]?key|"
                          r"credential)")


def option_keys(parts: Sequence[Any]) -> list[str] | None:
    """Option keys of a schema path made only of ``properties`` steps, else None."""
    if len(parts) % 2:
        return None
    pairs = list(zip(parts[::2], parts[1::2], strict=True))
    if any(step != "properties" for step, _ in pairs):
        return None
    return [str(key) for _, key in pairs]


def _texts(spec: Mapping[str, Any], smoke: Mapping[str, Any] | None
           ) -> Iterator[tuple[str, str, str]]:
    """``(file field, env name or "", text)`` of every string a program reads ports from."""
    if isinstance(spec.get("command"), str):
        yield "service.json.j2#/command", "", spec["command"]
    for index, arg in enumerate(spec.get("args") or []):
        yield f"service.json.j2#/args/{index}", "", str(arg)
    for key, value in (spec.get("env") or {}).items():
        yield f"service.json.j2#/env/{key}", key, str(value)
    check = spec.get("healthCheck") or {}
    if isinstance(check.get("command"), str):
        yield "service.json.j2#/healthCheck/command", "", check["command"]
    if smoke and isinstance(smoke.get("command"), str):
        yield "package.json#/tests/smoke/command", "", smoke["command"]


def _port_env_names(ports: Sequence[Mapping[str, Any]]) -> set[str]:
    """``PORT_<NAME>`` suffixes Berth sets for these ports (upper-cased, ``-`` → ``_``)."""
    return {re.sub(r"[^A-Z0-9]", "_", str(p["name"]).upper()) for p in ports}


def _reference_problems(text: str, ports: Sequence[Mapping[str, Any]]) -> list[str]:
    """Why each ``$PORT…`` reference in ``text`` names no declared port."""
    names = _port_env_names(ports)
    declared = ", ".join(str(p["name"]) for p in ports) or "none"
    found = []
    for match in _PORT_REF.finditer(text):
        index, name, plural = match.groups()
        ref = "$PORT" + (index or (f"_{name}" if name else "") or plural or "")
        if index is not None and int(index) >= len(ports):
            found.append(f"uses {ref} but the spec declares {len(ports)} port(s) "
                         f"({declared})")
        elif name is not None and name not in names:
            found.append(f"uses {ref} but no declared port is named "
                         f"{name.lower().replace('_', '-')} (declared: {declared})")
        elif index is None and name is None and not ports:
            found.append(f"uses {ref} but the spec declares no port")
    return found


def _fixed_ports(text: str, env_name: str) -> set[int]:
    """Fixed port numbers ``text`` names in a listening context (see the module doc)."""
    numbers = {int(m.group(1)) for m in _ADDRESS_PORT.finditer(text)}
    numbers |= {int(m.group(1)) for m in _NAMED_PORT.finditer(text)}
    if "PORT" in env_name.upper() and text.strip().isdigit():
        numbers.add(int(text.strip()))
    return {n for n in numbers if 1 <= n <= 65535}


def _declared_numbers(ports: Sequence[Mapping[str, Any]]) -> set[int]:
    """Port numbers the spec reserves: fixed host ports and container ports."""
    found: set[int] = set()
    for port in ports:
        for key in ("hostPort", "containerPort"):
            if isinstance(port.get(key), int) and port[key]:
                found.add(port[key])
    return found


def _smoke_port_problems(smoke: Mapping[str, Any] | None,
                         ports: Sequence[Mapping[str, Any]]) -> list[Problem]:
    if not smoke or smoke.get("protocol") != "http":
        return []
    if smoke.get("portName") in {p["name"] for p in ports}:
        return []
    declared = ", ".join(str(p["name"]) for p in ports) or "none"
    return [{"path": "package.json#/tests/smoke/portName",
             "message": f"{smoke.get('portName')!r} is not a port the spec declares "
                        f"(declared: {declared})"}]


def spec_problems(spec: Mapping[str, Any], smoke: Mapping[str, Any] | None = None
                  ) -> list[Problem]:
    """Ports the spec's programs use that it does not declare. Paths are relative to
    the version folder (``service.json.j2#/command``)."""
    ports = list(spec.get("ports") or [])
    host = spec.get("network") == "host"
    declared = _declared_numbers(ports)
    found: list[Problem] = _smoke_port_problems(smoke, ports)
    for where, env_name, text in _texts(spec, smoke):
        found.extend({"path": where, "message": why}
                     for why in _reference_problems(text, ports))
        if not host:
            continue
        for number in sorted(_fixed_ports(text, env_name) - declared):
            found.append({"path": where, "message": f"uses the fixed port {number} under "
                          "host networking, but no port declares it: Berth does not "
                          "reserve it, so two instances on one agent collide (declare it "
                          f"with \"hostPort\": {number}, or use an assigned $PORT_<NAME>)"})
    return found


def secret_option_problems(schema: Mapping[str, Any], file: str) -> list[Problem]:
    """Options that look like credentials but are not ``x-secret``, and secrets that are
    neither generated (``x-generate``) nor required (the admin must give one) nor say
    why they may stay empty (``x-secret-optional``: a token sent to an outside system
    that may not need one)."""
    found: list[Problem] = []
    for parts, node in walk(schema):
        keys = option_keys(parts)
        if not keys:
            continue
        secret = node.get("x-secret") is True
        kind = node.get("type")
        if not secret and kind == "string" and _SECRET_NAME.search(keys[-1]):
            found.append({"path": at(file, parts), "message": f"{keys[-1]!r} looks like a "
                          "credential but is not marked \"x-secret\": true, so Berth "
                          "shows it back and stores it in the clear"})
        if secret and not ({"x-generate", "x-secret-optional"} & set(node)) \
                and not _required(schema, parts):
            found.append({"path": at(file, parts), "message": "a secret must be generated "
                          "(\"x-generate\") or required (listed in its object's "
                          "\"required\", no default), or say why empty is safe "
                          "(\"x-secret-optional\"): left empty, the software starts "
                          "with no credential or a well-known one"})
    return found


def _required(schema: Mapping[str, Any], parts: Sequence[Any]) -> bool:
    """Whether the option at schema path ``parts`` is required with no default, or made
    required by an ``if``/``then`` of its object (a credential of an outside server,
    needed only when that server is used: ``then`` lists it in ``required`` and asks
    for a ``minLength``, since a default ``""`` would satisfy ``required`` alone)."""
    parent = _at(schema, parts[:-2])
    key = parts[-1]
    listed = parent.get("required")
    if isinstance(listed, list) and key in listed and "default" not in _at(schema, parts):
        return True
    then = parent.get("then")
    if not isinstance(then, Mapping) or "if" not in parent:
        return False
    wanted = then.get("required")
    least = _at(then, ("properties", key)).get("minLength")
    return isinstance(wanted, list) and key in wanted and isinstance(least, int) and least > 0


def _at(schema: Mapping[str, Any], parts: Sequence[Any]) -> Mapping[str, Any]:
    node: Any = schema
    for step in parts:
        node = node.get(step) if isinstance(node, Mapping) else {}
    return node if isinstance(node, Mapping) else {}
