"""Field-by-field conversions of a Marathon app used by :mod:`catalog.dcos.convert`.

Each function reads one Marathon field, writes its Berth form into ``conv.spec`` and
records an unsupported reason (``conv.refuse``) for anything it cannot honour.
Marathon's own defaults are applied where Marathon applied them, so behaviour matches
(e.g. a health check without ``intervalSeconds`` is checked every 60 s, not Berth's 10 s).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

HANDLED = frozenset({
    "apps", "groups", "containers", "instances", "cpus", "mem", "gpus", "cmd", "args",
    "executor", "user", "container", "networks", "ipAddress", "portDefinitions", "ports",
    "env", "labels", "healthChecks", "constraints", "acceptedResourceRoles", "role",
    "upgradeStrategy", "readinessChecks", "dependencies", "secrets", "residency", "fetch",
    "uris", "check", "storeUrls",
})

# Marathon health-check defaults (Marathon 1.x app definition reference).
HEALTH_DEFAULTS = {"gracePeriodSeconds": 300, "intervalSeconds": 60, "timeoutSeconds": 20,
                   "maxConsecutiveFailures": 3}
HEALTH_PROTOCOLS = {"HTTP": "http", "MESOS_HTTP": "http", "TCP": "tcp", "MESOS_TCP": "tcp",
                    "COMMAND": "command"}
OPERATORS = {"UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER"}
ALIASES = {"IS": "CLUSTER"}  # Marathon 1.5: IS matches a value exactly, as CLUSTER does
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
_LABEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,127}")
_FIELD = re.compile(r"[A-Za-z0-9_.-]{1,64}")

# Fields whose presence alone means the app cannot run as written.
PRESENT_REASONS = {
    "readinessChecks": "waits for Marathon readiness checks during deployments",
    "dependencies": "waits for other Marathon apps it depends on",
    "residency": "keeps resident tasks on persistent local volumes",
    "check": "uses a Mesos task check",
    "storeUrls": "fetches artifacts into Marathon's artifact store",
}


def as_list(value: Any, path: str, conv: Any) -> list[Any]:
    """A list field's items; anything but a list (or absence) is refused."""
    if value is None:
        return []
    if not isinstance(value, list):
        conv.refuse(path, f"must be a list, not {type(value).__name__}")
        return []
    return value


def _text(value: Any) -> str:
    """A scalar as Marathon would pass it on (booleans as JSON spells them)."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def env(values: Any, conv: Any) -> None:
    """``env``: plain values copied; secret references refused."""
    if values is None:
        return
    if not isinstance(values, Mapping):
        conv.refuse("/env", "env must be an object")
        return
    out: dict[str, str] = {}
    for name, value in values.items():
        path = f"/env/{name}"
        if isinstance(value, Mapping):
            if "secret" in value:
                conv.refuse(path, f"env {name} comes from the DC/OS secret "
                                  f"{value['secret']!r}; Berth does not read DC/OS secrets")
            else:
                conv.refuse(path, f"env {name} is an object, not a value")
            continue
        if not _ENV_NAME.fullmatch(str(name)):
            conv.refuse(path, f"env name {name!r} is not a valid variable name")
            continue
        out[str(name)] = _text(value)
    if out:
        conv.spec["env"] = out


def labels(values: Any, conv: Any) -> None:
    """``labels``: string map copied (Cosmos required string values too)."""
    if not values:
        return
    if not isinstance(values, Mapping):
        conv.refuse("/labels", "labels must be an object")
        return
    out: dict[str, str] = {}
    for name, value in values.items():
        if not _LABEL_NAME.fullmatch(str(name)):
            conv.refuse(f"/labels/{name}", f"label name {name!r} is not allowed")
            continue
        out[str(name)] = _text(value)
    conv.spec["labels"] = out


def volumes(values: Any, conv: Any) -> None:
    """``container.volumes``: absolute host paths map; persistent, external, secret do not."""
    out = []
    for i, vol in enumerate(as_list(values, "/container/volumes", conv)):
        path = f"/container/volumes/{i}"
        if not isinstance(vol, Mapping):
            conv.refuse(path, "a volume must be an object")
            continue
        mapped = _volume(vol, path, conv)
        if mapped:
            out.append(mapped)
    if out:
        conv.spec["volumes"] = out


def _volume(vol: Mapping[str, Any], path: str, conv: Any) -> dict[str, Any] | None:
    target = str(vol.get("containerPath", ""))
    if "persistent" in vol:
        conv.refuse(path, f"persistent local volume at {target} (a Mesos disk reservation)")
    elif "external" in vol:
        conv.refuse(path, f"external volume at {target} (a DC/OS volume driver)")
    elif "secret" in vol:
        conv.refuse(path, f"DC/OS secret {vol['secret']!r} mounted at {target}")
    elif not str(vol.get("hostPath", "")).startswith("/"):
        conv.refuse(path, f"hostPath {vol.get('hostPath')!r} is not absolute "
                          "(relative paths live in the Mesos sandbox)")
    elif not target.startswith("/"):
        conv.refuse(path, f"containerPath {target!r} is relative to the Mesos sandbox")
    else:
        return {"containerPath": target, "hostPath": str(vol["hostPath"]),
                "readOnly": str(vol.get("mode", "RW")).upper() == "RO"}
    return None


# ports ----------------------------------------------------------------------------------
def _port_name(raw: Any, index: int, taken: set[str]) -> str:
    """A Berth port name (``^[a-z][a-z0-9-]{0,31}$``) from Marathon's, unique."""
    name = re.sub(r"[^a-z0-9-]+", "-", str(raw or "").lower()).strip("-")[:32]
    if not name or not name[0].isalpha():
        name = f"port{index}" if not name else f"p{name}"[:32]
    base, n = name, 2
    while name in taken:
        name = f"{base[:28]}-{n}"
        n += 1
    taken.add(name)
    return name


def _protocol(raw: Any, path: str, conv: Any) -> str:
    """``tcp``, ``udp`` or ``tcp,udp`` (Marathon's ``udp,tcp`` too): one port number
    bound for both protocols."""
    proto = str(raw or "tcp").lower().replace(" ", "")
    if proto in ("tcp,udp", "udp,tcp"):
        return "tcp,udp"
    if proto not in ("tcp", "udp"):
        conv.refuse(path, f"port protocol {proto!r}: Berth maps tcp, udp or tcp,udp")
        return "tcp"
    return proto


def _valid_port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535


def port_definitions(app: Mapping[str, Any], conv: Any) -> list[dict[str, Any]]:
    """Host networking: ``portDefinitions`` or legacy ``ports``; absent means one port.

    Marathon treats the numbers as service ports and assigns random host ports unless
    ``requirePorts`` is true, so without it every host port is 0 (assigned).
    """
    require = bool(app.get("requirePorts"))
    if app.get("portDefinitions") is not None:
        raw = as_list(app["portDefinitions"], "/portDefinitions", conv)
    elif app.get("ports") is not None:
        raw = [{"port": p} for p in as_list(app["ports"], "/ports", conv)]
    else:
        raw = [{"port": 0}]
    ports: list[dict[str, Any]] = []
    taken: set[str] = set()
    for i, pd in enumerate(raw):
        path = f"/portDefinitions/{i}"
        number = pd.get("port", 0) if isinstance(pd, Mapping) else None
        if not _valid_port(number):
            conv.refuse(path, f"port {number!r} is not a port number")
            continue
        ports.append({"name": _port_name(pd.get("name"), i, taken),
                      "hostPort": number if require else 0,
                      "protocol": _protocol(pd.get("protocol"), path, conv)})
    return ports


def port_mappings(raw: list[Any], conv: Any) -> list[dict[str, Any]]:
    """Bridge networking: ``portMappings`` (hostPort 0 or absent → assigned)."""
    ports: list[dict[str, Any]] = []
    taken: set[str] = set()
    for i, pm in enumerate(raw):
        path = f"/container/portMappings/{i}"
        if not isinstance(pm, Mapping):
            conv.refuse(path, "a port mapping must be an object")
            continue
        container_port, host_port = pm.get("containerPort", 0), pm.get("hostPort", 0)
        if not _valid_port(container_port) or container_port == 0:
            conv.refuse(path, f"containerPort {container_port!r}: Berth needs the port "
                              "the container listens on")
            continue
        if not _valid_port(host_port):
            conv.refuse(path, f"hostPort {host_port!r} is not a port number")
            continue
        ports.append({"name": _port_name(pm.get("name"), i, taken),
                      "containerPort": container_port, "hostPort": host_port,
                      "protocol": _protocol(pm.get("protocol"), path, conv)})
    return ports


# health checks ------------------------------------------------------------------------
def health_checks(values: Any, conv: Any) -> None:
    """``healthChecks`` → one Berth ``healthCheck`` (Marathon needs all to pass)."""
    checks = [c for c in as_list(values, "/healthChecks", conv) if isinstance(c, Mapping)]
    if not checks:
        return
    converted = [_health_check(c, f"/healthChecks/{i}", conv) for i, c in enumerate(checks)]
    distinct = {json.dumps(c, sort_keys=True) for c in converted if c}
    if len(distinct) > 1:
        conv.refuse("/healthChecks", f"{len(checks)} different health checks must all "
                                     "pass; Berth runs one per service")
    if converted[0]:
        conv.spec["healthCheck"] = converted[0]


def _health_check(check: Mapping[str, Any], path: str, conv: Any) -> dict[str, Any] | None:
    marathon = str(check.get("protocol", "HTTP")).upper()
    protocol = HEALTH_PROTOCOLS.get(marathon)
    if protocol is None:
        conv.refuse(path, f"health check protocol {marathon} is not supported "
                          "(Berth checks http, tcp and command)")
        return None
    out: dict[str, Any] = {"protocol": protocol}
    for key, default in HEALTH_DEFAULTS.items():
        value = check.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            conv.refuse(f"{path}/{key}", f"{key} must be a number, not {value!r}")
            value = default
        out[key] = value
    if out["maxConsecutiveFailures"] < 1:
        conv.refuse(path, "maxConsecutiveFailures 0 (never kill an unhealthy task)")
        out["maxConsecutiveFailures"] = 1
    if protocol == "command":
        command = check.get("command") or {}
        value = command.get("value") if isinstance(command, Mapping) else command
        if not isinstance(value, str) or not value:
            conv.refuse(path, "a COMMAND health check without a command")
            return None
        out["command"] = value
        return out
    if protocol == "http":
        out["path"] = str(check.get("path") or "/")
    port = _health_port(check, path, conv)
    if port:
        out["portName"] = port
    return out


def _health_port(check: Mapping[str, Any], path: str, conv: Any) -> str | None:
    """The Berth port name a check probes (``portIndex`` or a fixed ``port``)."""
    ports = conv.spec.get("ports") or []
    if "port" in check and check["port"] is not None:
        for p in ports:
            if check["port"] in (p.get("hostPort"), p.get("containerPort")):
                return str(p["name"])
        conv.refuse(path, f"health check probes fixed port {check['port']}, "
                          "which the app does not declare")
        return None
    index = check.get("portIndex", 0)
    if not isinstance(index, int) or not 0 <= index < len(ports):
        conv.refuse(path, f"health check portIndex {index!r} names no port of the app")
        return None
    return str(ports[index]["name"])


# placement and strategy -----------------------------------------------------------------
def constraints(values: Any, conv: Any) -> None:
    """``constraints``: Marathon operators kept as Marathon spelled them (IS → CLUSTER)."""
    out: list[list[str]] = []
    for i, raw in enumerate(as_list(values, "/constraints", conv)):
        path = f"/constraints/{i}"
        parts = raw.split(":", 2) if isinstance(raw, str) else raw
        if not isinstance(parts, list) or not 2 <= len(parts) <= 3:
            conv.refuse(path, f"constraint {raw!r} is not [field, operator, value?]")
            continue
        fld, op = str(parts[0]), ALIASES.get(str(parts[1]).upper(), str(parts[1]).upper())
        if op not in OPERATORS or not _FIELD.fullmatch(fld):
            conv.refuse(path, f"constraint {raw!r}: operator {parts[1]!r} is not supported")
            continue
        value = _text(parts[2]) if len(parts) == 3 and parts[2] is not None else ""
        if op in ("CLUSTER", "LIKE", "UNLIKE", "MAX_PER") and value == "":
            conv.refuse(path, f"constraint {raw!r}: {op} without a value (Marathon then "
                              "followed the first instance's agent; Berth needs the value)")
            continue
        out.append([fld, op] + ([value] if value != "" else []))
    if out:
        conv.spec["constraints"] = out


def roles(app: Mapping[str, Any], conv: Any) -> None:
    """``acceptedResourceRoles``/``role``: ``*`` is any agent; others become a constraint
    on the agent attribute ``role`` (agents carry it when an admin sets it)."""
    wanted = set()
    accepted = app.get("acceptedResourceRoles")
    if isinstance(accepted, list) and accepted and "*" not in accepted:
        wanted |= {str(r) for r in accepted}
    role = app.get("role")
    if isinstance(role, str) and role not in ("", "*"):
        wanted.add(role)
    if wanted:
        pattern = "|".join(sorted(re.escape(r) for r in wanted))
        conv.spec.setdefault("constraints", []).append(["role", "LIKE", pattern])


def upgrade_strategy(value: Any, conv: Any) -> None:
    """``upgradeStrategy``: both capacities copied (Marathon's defaults are 1 and 1)."""
    if not isinstance(value, Mapping):
        return
    out = {k: value[k] for k in ("minimumHealthCapacity", "maximumOverCapacity")
           if isinstance(value.get(k), int | float) and not isinstance(value.get(k), bool)}
    if out:
        conv.spec["upgradeStrategy"] = out


def _as_list(value: Any) -> list[Any]:
    if not value:
        return []
    return list(value) if isinstance(value, list) else [value]


def _uri(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("uri", ""))
    return str(value)


def refuse_present(app: Mapping[str, Any], conv: Any) -> None:
    """Fields that cannot be honoured at all: fetch/uris, secrets, readiness, residency."""
    for key, message in PRESENT_REASONS.items():
        if app.get(key):
            conv.refuse(f"/{key}", message)
    secrets = app.get("secrets")
    if secrets:
        names = ", ".join(sorted(map(str, secrets))) if isinstance(secrets, Mapping | list) \
            else str(secrets)
        conv.refuse("/secrets", f"reads DC/OS secrets ({names}); Berth does not read them")
    uris = [_uri(u) for key in ("fetch", "uris") for u in _as_list(app.get(key))]
    if uris:
        shown = ", ".join(uris[:3]) + (f" and {len(uris) - 3} more" if len(uris) > 3 else "")
        conv.refuse("/fetch", f"downloads {len(uris)} artifact(s) into the Mesos sandbox "
                              f"before start ({shown}); Docker images must carry what they run")
