"""The service spec: validation with defaults, the safety policy, masking for display.

The schema is ``catalog/schemas/service.schema.json``; :func:`validate_spec` adds the
checks a schema cannot express (one of command/args, unique port names, a health
check naming a declared port, constraint values) and fills defaults, so every later
reader sees every field. :func:`check_policy` refuses what would hand a container the
host: privileged mode, the Docker socket, host paths other than one folder
directly below an allowed root (see :func:`_host_path_problem` for why), and — as
the admin's :class:`ContainerPolicy` says — the host network and the root user.

The host network is refused unless allowed because a container on it reaches every
loopback port of its agent, where Berth's own Redis or a Docker engine may listen;
on ``bridge`` (the default) it reaches only what it publishes. The root user is an
admin's choice (``BERTH_REFUSE_ROOT_USER``): many images need it, and root inside a
container without privileged mode, host paths or the socket is not root on the host.
"""

from __future__ import annotations

import copy
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import Problem, SpecInvalid, SpecRefused
from .model import Package
from .names import PACKAGE_NAME
from .options import MASK, secret_paths, values_at_paths
from .schemas.validation import builtin, pointer, regex

__all__ = ["validate_spec", "check_policy", "mask_spec", "map_secret_strings", "secret_texts",
           "secret_leaks", "DEFAULT_ALLOWED_HOST_PATHS", "DOCKER_SOCKETS", "ContainerPolicy",
           "NO_SITE_POLICY", "split_host_path", "check_host_path_settings",
           "host_path_settings_problems"]

DEFAULT_ALLOWED_HOST_PATHS: tuple[str, ...] = ("/srv/berth",)
# one plain folder name below an allowed root: no '/', no leading '.' or '-', and
# nothing that Docker's "source:target:mode" bind syntax would split (':' or ',')
_HOST_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,254}")
DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock", "/var/run/docker",
                  "/run/docker", "/var/lib/docker", "/run/containerd",
                  "/var/run/containerd")
_TOP_DEFAULTS: dict[str, Any] = {
    "command": None, "args": [], "env": {}, "instances": 1, "cpus": 0.1, "mem": 128,
    "ports": [], "network": "bridge", "volumes": [], "labels": {}, "healthCheck": None,
    "constraints": [], "upgradeStrategy": {}, "privileged": False,
}
_HEALTH_DEFAULTS = {"intervalSeconds": 10, "timeoutSeconds": 5, "gracePeriodSeconds": 30,
                    "maxConsecutiveFailures": 3}
_NEEDS_VALUE = {"CLUSTER", "LIKE", "UNLIKE", "MAX_PER"}


def _p(parts: Iterable[Any], message: str) -> Problem:
    return {"path": "spec" + pointer(parts), "message": message}


def _fill(spec: dict[str, Any]) -> dict[str, Any]:
    filled = copy.deepcopy(spec)
    for key, value in _TOP_DEFAULTS.items():
        filled.setdefault(key, copy.deepcopy(value))
    for port in filled["ports"]:
        port.setdefault("hostPort", 0)
        port.setdefault("protocol", "tcp")
    for volume in filled["volumes"]:
        volume.setdefault("readOnly", False)
    strategy = filled["upgradeStrategy"]
    strategy.setdefault("minimumHealthCapacity", 1.0)
    strategy.setdefault("maximumOverCapacity", 1.0)
    health = filled["healthCheck"]
    if isinstance(health, dict):
        for key, value in _HEALTH_DEFAULTS.items():
            health.setdefault(key, value)
        if health["protocol"] == "http":
            health.setdefault("path", "/")
    return filled


def _semantic_problems(spec: Mapping[str, Any]) -> list[Problem]:
    found: list[Problem] = []
    if spec.get("command") is not None and spec.get("args"):
        found.append(_p(["args"], "give either command or args, not both"))
    names: set[str] = set()
    fixed: set[tuple[int, str]] = set()
    for i, port in enumerate(spec.get("ports", [])):
        if port["name"] in names:
            found.append(_p(["ports", i, "name"], f"duplicate port name {port['name']!r}"))
        names.add(port["name"])
        number = port.get("hostPort", 0)
        hosts = {(number, p) for p in port.get("protocol", "tcp").split(",")}  # "tcp,udp"
        if number and hosts & fixed:
            found.append(_p(["ports", i, "hostPort"], f"host port {number} is used twice"))
        fixed |= hosts
    found.extend(_health_problems(spec.get("healthCheck"), names))
    for i, route in enumerate(spec.get("expose") or []):
        if route["portName"] not in names:
            found.append(_p(["expose", i, "portName"], f"no port is named {route['portName']!r}"))
    paths: set[str] = set()
    for i, volume in enumerate(spec.get("volumes", [])):
        target = posixpath.normpath(volume["containerPath"])
        if target in paths:
            found.append(_p(["volumes", i, "containerPath"], f"{target!r} is mounted twice"))
        paths.add(target)
    for i, constraint in enumerate(spec.get("constraints", [])):
        found.extend(_constraint_problems(i, constraint))
    for key in spec.get("labels", {}):
        if key.startswith("berth."):
            found.append(_p(["labels", key], "labels starting with 'berth.' are Berth's own"))
    return found


def _health_problems(health: Any, ports: set[str]) -> list[Problem]:
    if not isinstance(health, Mapping):
        return []
    protocol = health["protocol"]
    if protocol in ("http", "tcp"):
        name = health.get("portName")
        if name is None:
            return [_p(["healthCheck", "portName"], f"a {protocol} check needs a portName")]
        if name not in ports:
            return [_p(["healthCheck", "portName"], f"no port is named {name!r}")]
    elif not health.get("command"):
        return [_p(["healthCheck", "command"], "a command check needs a command")]
    return []


def _constraint_problems(i: int, constraint: Sequence[str]) -> list[Problem]:
    op = constraint[1]
    value = constraint[2] if len(constraint) > 2 else None
    if op in _NEEDS_VALUE and value is None:
        return [_p(["constraints", i], f"{op} needs a value")]
    if op == "UNIQUE" and value is not None:
        return [_p(["constraints", i, 2], "UNIQUE takes no value")]
    if op in ("MAX_PER", "GROUP_BY") and value is not None:
        if not value.isdigit() or int(value) < 1:
            return [_p(["constraints", i, 2], f"{op} needs a whole number of at least 1")]
    if op in ("LIKE", "UNLIKE") and value is not None:
        try:
            regex(value)
        except ValueError as exc:
            return [_p(["constraints", i, 2], str(exc))]
    return []


def validate_spec(spec: Any) -> dict[str, Any]:
    """The spec with defaults filled in.

    :raises SpecInvalid: with every problem at ``spec/<json-path>``.
    """
    problems = builtin("service").problems(spec, "spec")
    problems = [{"path": p["path"].replace("spec#", "spec"), "message": p["message"]}
                for p in problems]
    if not problems:
        problems = _semantic_problems(spec)
    if problems:
        raise SpecInvalid("the service spec is not valid", details=problems)
    return _fill(spec)


def _names_socket(path: str) -> bool:
    norm = posixpath.normpath(path)
    return norm.endswith("docker.sock") or any(
        norm == s or s.startswith(norm.rstrip("/") + "/") or norm.startswith(s + "/")
        for s in DOCKER_SOCKETS)


def _norm_root(path: str) -> str:
    """An allow-list entry without trailing slashes (``/srv/berth/`` → ``/srv/berth``)."""
    return posixpath.normpath(path) if path.startswith("/") else path


def _inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies below it (both normalized)."""
    return path == folder or folder == "/" or path.startswith(folder + "/")


def _setting_problem(entry: str) -> str | None:
    """What is wrong with one allow-list entry, or None."""
    if not entry.startswith("/"):
        return f"{entry!r} is not an absolute path"
    if ".." in entry.split("/"):
        return f"{entry!r} must not contain '..'"
    if posixpath.normpath(entry) == "/":
        return "'/' cannot be allowed: it would let a spec mount any host folder"
    if _names_socket(entry):
        return f"{entry!r} would expose the Docker socket"
    return None


def host_path_settings_problems(allowed_host_paths: Sequence[str],
                                readonly_host_paths: Sequence[str] = ()) -> list[str]:
    """Every problem of the host-path settings (empty when they are sound).

    Allowed roots must not nest inside each other, nor inside or around an exact
    read-only path: a mount that reaches into a folder another mount lets a container
    write is how a link planted by one service would be followed for another.
    """
    problems = [p for p in map(_setting_problem, [*allowed_host_paths, *readonly_host_paths])
                if p]
    if problems:
        return problems
    entries = [("BERTH_ALLOWED_HOST_PATHS", _norm_root(e)) for e in allowed_host_paths]
    entries += [("BERTH_READONLY_HOST_PATHS", _norm_root(e)) for e in readonly_host_paths]
    for i, (where, one) in enumerate(entries):
        for other_where, other in entries[i + 1:]:
            if _inside(one, other) or _inside(other, one):
                problems.append(f"{one!r} ({where}) and {other!r} ({other_where}) nest: "
                                "allowed host paths must not lie inside one another")
    return problems


def check_host_path_settings(allowed_host_paths: Sequence[str],
                             readonly_host_paths: Sequence[str] = ()) -> None:
    """Refuse unsound host-path settings.

    :raises ValueError: naming every problem.
    """
    problems = host_path_settings_problems(allowed_host_paths, readonly_host_paths)
    if problems:
        raise ValueError("; ".join(problems))


def split_host_path(path: str, allowed_host_paths: Sequence[str]) -> tuple[str, str] | None:
    """``(root, name)`` when ``path`` is exactly ``<root>/<name>`` of an allowed root.

    >>> split_host_path("/srv/berth/media", ["/srv/berth"])
    ('/srv/berth', 'media')
    >>> split_host_path("/srv/berth/media/sub", ["/srv/berth"]) is None
    True
    """
    parent, name = posixpath.split(path)
    for root in allowed_host_paths:
        if parent == _norm_root(root) and _HOST_NAME.fullmatch(name):
            return _norm_root(root), name
    return None


def _host_path_problem(path: str, read_only: bool, allowed: Sequence[str],
                       readonly: Sequence[str]) -> str | None:
    """Why ``path`` may not be mounted, or None.

    A host path is exactly one plain folder directly below an allowed root, or an
    exact read-only path mounted read-only. Nothing deeper: a container writing in
    ``<root>/a`` could make ``<root>/a/x`` a link to ``/``, and Docker follows links
    in a mount's source on the agent. The roots themselves are never mounted, so no
    container ever writes the folder in which a mount source is looked up.
    """
    if ".." in path.split("/"):
        return f"{path!r}: host paths must not contain '..'"
    norm = posixpath.normpath(path)
    if _names_socket(norm):
        return f"{path!r} would expose the Docker socket"
    roots = [_norm_root(r) for r in allowed]
    exact = {_norm_root(r) for r in readonly}
    if norm not in exact and not any(_inside(norm, r) for r in roots):
        every = ", ".join([*allowed, *readonly]) or "none"
        return f"{path!r} is outside the allowed host paths ({every})"
    if path != norm:
        return f"{path!r} is not a plain path (write it as {norm!r})"
    if norm in exact:
        return None if read_only else f"{path!r} may only be mounted read-only"
    if split_host_path(norm, allowed) is not None:
        return None
    root = next(r for r in roots if _inside(norm, r))
    if norm == root:
        return f"{path!r} is an allowed root itself; mount one folder inside it ({root}/<name>)"
    return (f"{path!r} is not directly inside {root}: a host path must be one folder "
            f"{root}/<name>, <name> made of letters, digits, '.', '_' and '-' (a deeper "
            "path could pass through a link that another container made)")


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class ContainerPolicy:
    """What the admin lets a container have beyond Berth's fixed refusals.

    ``host_network``: True lets every spec use ``network: host``, a set of package
    names lets those packages only, False (the default) refuses it everywhere.
    ``refuse_root_user``: refuse ``user: root`` or ``0`` (off by default).
    """

    host_network: bool | frozenset[str] = False
    refuse_root_user: bool = False

    @classmethod
    def from_settings(cls, allow_host_network: str = "",
                      refuse_root_user: bool = False) -> ContainerPolicy:
        """The policy of ``BERTH_ALLOW_HOST_NETWORK`` (``true``/``false`` or package
        names, comma separated) and ``BERTH_REFUSE_ROOT_USER``.

        :raises ValueError: naming the variable when a package name is not one.
        """
        raw = allow_host_network.strip()
        if raw.lower() in _TRUE or raw.lower() in _FALSE:
            return cls(raw.lower() in _TRUE, refuse_root_user)
        names = frozenset(n.strip() for n in raw.split(",") if n.strip())
        bad = sorted(n for n in names if not PACKAGE_NAME.fullmatch(n))
        if bad:
            raise ValueError(f"BERTH_ALLOW_HOST_NETWORK: {', '.join(bad)} are not package "
                             "names (true, false, or names separated by commas)")
        return cls(names, refuse_root_user)

    def allows_host_network(self, package: str) -> bool:
        """Whether a spec of ``package`` ("" for a spec of no package) may use it."""
        if isinstance(self.host_network, bool):
            return self.host_network
        return bool(package) and package in self.host_network


def _is_root(user: str) -> bool:
    """Whether ``user[:group]`` names the root user (by name or uid 0)."""
    name = user.partition(":")[0]
    return name == "root" or (name.isdigit() and int(name) == 0)


def _container_problems(spec: Mapping[str, Any], policy: ContainerPolicy,
                        package: str) -> list[Problem]:
    """The network and user refusals of ``policy``."""
    found: list[Problem] = []
    if spec.get("network") == "host" and not policy.allows_host_network(package):
        whose = f" for {package}" if package else ""
        found.append(_p(["network"], f"the host network is not allowed{whose}: a container "
                                     "on it reaches every port of the agent's loopback; "
                                     "use bridge"))
    user = spec.get("user")
    if policy.refuse_root_user and user is not None and _is_root(str(user)):
        found.append(_p(["user"], f"{user!r}: containers may not run as root here"))
    return found


# What a caller that gives no site policy gets (lint, previews, reports): the package's
# own spec judged by the fixed rules. The server and the workers always pass the
# admin's policy (``Settings.container_policy``), which refuses the host network unless
# BERTH_ALLOW_HOST_NETWORK allows it.
NO_SITE_POLICY = ContainerPolicy(host_network=True)


def check_policy(spec: Mapping[str, Any], *,
                 allowed_host_paths: Sequence[str] = DEFAULT_ALLOWED_HOST_PATHS,
                 readonly_host_paths: Sequence[str] = (),
                 container: ContainerPolicy = NO_SITE_POLICY, package: str = "") -> None:
    """Refuse specs that would give a container the host.

    ``allowed_host_paths`` are roots: a spec may mount ``<root>/<name>`` (one folder,
    read-only or read-write). ``readonly_host_paths`` may be mounted exactly, and only
    read-only (``/proc`` for a metrics exporter). ``container`` is the admin's network
    and user policy; ``package`` the name of the package the spec comes from ("" for
    none), for a per-package host-network allowance.

    :raises SpecRefused: listing every reason.
    :raises ValueError: when the settings themselves are unsound (nested roots).
    """
    check_host_path_settings(allowed_host_paths, readonly_host_paths)
    found = _container_problems(spec, container, package)
    if spec.get("privileged"):
        found.append(_p(["privileged"], "privileged containers are not allowed"))
    for i, volume in enumerate(spec.get("volumes") or []):
        host = volume.get("hostPath")
        if host is not None:
            reason = _host_path_problem(str(host), bool(volume.get("readOnly")),
                                        tuple(allowed_host_paths), tuple(readonly_host_paths))
            if reason:
                found.append(_p(["volumes", i, "hostPath"], reason))
        if str(volume.get("containerPath", "")).endswith("docker.sock") or str(
                volume.get("name", "")).endswith("docker.sock"):
            found.append(_p(["volumes", i], "volumes must not name the Docker socket"))
    if found:
        raise SpecRefused("the service spec asks for more than Berth allows", details=found,
                          hint="Berth refuses privileged mode, the Docker socket, host "
                               "paths other than one folder <root>/<name> of "
                               "BERTH_ALLOWED_HOST_PATHS, and the host network unless "
                               "BERTH_ALLOW_HOST_NETWORK allows it")


_SEALABLE = ("env", "labels", "command", "args")


def secret_texts(options: Any, paths: Iterable[Sequence[str] | str]) -> list[str]:
    """Every secret value at ``paths`` in ``options`` as text, longest first (the string
    leaves of a secret object or list count one by one)."""
    texts: set[str] = set()

    def collect(value: Any) -> None:
        if isinstance(value, Mapping):
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)
        elif isinstance(value, str | int | float) and not isinstance(value, bool) and str(value):
            texts.add(str(value))

    for value in values_at_paths(options, paths):
        collect(value)
    return sorted(texts, key=len, reverse=True)


def _holds(text: str, secrets: Sequence[str]) -> bool:
    return any(text == s or (len(s) >= 4 and s in text) for s in secrets)


def _mask_text(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if text == secret or (len(secret) >= 4 and secret in text):
            text = MASK if text == secret else text.replace(secret, MASK)
    return text


def map_secret_strings(spec: Mapping[str, Any], secrets: Sequence[str],
                       change: Callable[[str], Any]) -> dict[str, Any]:
    """A copy of ``spec`` where every ``env``/``labels`` value, ``command`` and ``args``
    item holding a secret is replaced by ``change(text)`` (masked, or sealed at rest)."""
    changed = copy.deepcopy(dict(spec))
    if not secrets:
        return changed

    def one(value: Any) -> Any:
        return change(value) if isinstance(value, str) and _holds(value, secrets) else value

    for key in ("env", "labels"):
        if isinstance(changed.get(key), dict):
            changed[key] = {k: one(v) for k, v in changed[key].items()}
    if isinstance(changed.get("command"), str):
        changed["command"] = one(changed["command"])
    if isinstance(changed.get("args"), list):
        changed["args"] = [one(a) for a in changed["args"]]
    return changed


def secret_leaks(spec: Mapping[str, Any], secrets: Sequence[str]) -> list[Problem]:
    """Spec fields other than ``env``, ``labels``, ``command`` and ``args`` that hold a
    secret value: Berth keeps only those four sealed, so a spec like this is refused."""
    found: list[Problem] = []

    def scan(value: Any, parts: tuple[Any, ...]) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                scan(item, (*parts, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                scan(item, (*parts, index))
        elif isinstance(value, str) and _holds(value, secrets):
            found.append(_p(parts, "holds a secret option's value: only env, labels, "
                                   "command and args may use secret options"))

    if secrets:
        for key, value in spec.items():
            if key not in _SEALABLE:
                scan(value, (key,))
    return found


def mask_spec(spec: Mapping[str, Any], package: Package | None, options: Any, *,
              paths: Iterable[Sequence[str] | str] | None = None) -> dict[str, Any]:
    """A copy of ``spec`` with secret option values masked in ``env``, ``command``,
    ``args`` and ``labels``; the secret paths are ``paths`` when given (a service
    record's own), else the package's schema's."""
    if paths is None:
        paths = list(secret_paths(package.config_schema if package else {}))
    secrets = secret_texts(options, paths)
    return map_secret_strings(spec, secrets, lambda text: _mask_text(text, secrets))
