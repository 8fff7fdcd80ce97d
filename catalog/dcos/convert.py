"""Marathon app definition → Berth service spec.

:func:`analyze_app` walks every field of a rendered Marathon app and either maps it to
the spec, ignores it for a documented reason (it does not change what runs, e.g.
``maintainer``, ``disk``, ``backoffSeconds``), or records an *unsupported reason*: a
field that changes behaviour and cannot be honoured on plain Docker hosts is never
dropped silently. :func:`convert_app` raises :class:`~catalog.errors.SpecRefused` with
those reasons. The table of fields is in ``docs/dcos-universe.md``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from catalog.dcos import fields as F
from catalog.dcos.compat import app_framework_reasons
from catalog.dcos.routes import haproxy_routes
from catalog.errors import SpecRefused

__all__ = ["Conversion", "analyze_app", "convert_app", "MARATHON_DEFAULTS"]

MARATHON_DEFAULTS = {"instances": 1, "cpus": 1.0, "mem": 128.0}
# service.schema.json's limit: the ports of one instance must fit an agent's default
# port range (worker.agents.DEFAULT_PORT_RANGE, 31000-31999).
MAX_PORTS = 1000

# Fields that do not change what runs on a Docker host; read and deliberately unused.
IGNORED = {
    "id": "the Berth service name replaces the Marathon app id",
    "maintainer": "not a Marathon field; informational",
    "disk": "a Mesos sandbox disk reservation; Docker hosts have no sandbox",
    "backoffSeconds": "Berth replaces failed instances with its own backoff",
    "backoffFactor": "Berth replaces failed instances with its own backoff",
    "maxLaunchDelaySeconds": "Berth replaces failed instances with its own backoff",
    "unreachableStrategy": "Berth replaces instances of unreachable agents on its own timeout",
    "killSelection": "Berth removes the newest instances first when scaling down",
    "taskKillGracePeriodSeconds": "Docker's stop timeout applies",
    "version": "Marathon bookkeeping",
    "versionInfo": "Marathon bookkeeping",
    "requirePorts": "read together with portDefinitions",
}


@dataclass
class Conversion:
    """The spec built so far and every reason the app cannot run as written."""

    spec: dict[str, Any] = field(default_factory=dict)
    reasons: list[dict[str, str]] = field(default_factory=list)

    def refuse(self, path: str, message: str) -> None:
        """Record that the field at ``path`` (JSON pointer in the app) cannot be honoured."""
        self.reasons.append({"path": f"marathon.json#{path}", "message": message})


def analyze_app(app: Mapping[str, Any]) -> Conversion:
    """Convert a rendered Marathon app; never raises, reasons collected instead."""
    conv = Conversion()
    for path, message in app_framework_reasons(app):
        conv.refuse(path, message)
    if "apps" in app or "groups" in app:
        conv.refuse("/apps", "a Marathon group of apps, not one app")
    if "containers" in app:
        conv.refuse("/containers", "a Marathon pod (several containers sharing a network)")
    _resources(app, conv)
    _command(app, conv)
    _container(app, conv)
    _ports(app, conv)
    F.env(app.get("env"), conv)
    F.labels(app.get("labels"), conv)
    haproxy_routes(app.get("labels"), conv)
    F.health_checks(app.get("healthChecks"), conv)
    F.constraints(app.get("constraints"), conv)
    F.roles(app, conv)
    F.upgrade_strategy(app.get("upgradeStrategy"), conv)
    _merge_parameter_maps(conv)
    F.refuse_present(app, conv)
    _unknown_fields(app, conv)
    return conv


def _merge_parameter_maps(conv: Conversion) -> None:
    """``--env``/``--label`` docker parameters override the app's env and labels."""
    for target in ("env", "labels"):
        extra = conv.spec.pop("_" + target, None)
        if extra:
            conv.spec[target] = {**conv.spec.get(target, {}), **extra}


def convert_app(app: Mapping[str, Any], *, service_name: str,
                package: Any = None) -> dict[str, Any]:
    """The Berth spec for a rendered Marathon app.

    :raises SpecRefused: naming every field that cannot run on Docker hosts.
    """
    conv = analyze_app(app)
    if conv.reasons:
        name = getattr(package, "name", None)
        raise SpecRefused(
            f"{name or service_name}: the Marathon app needs what Docker hosts do not offer",
            package=name, version=getattr(package, "version", None), details=conv.reasons,
            hint="see docs/dcos-universe.md for what Berth can run")
    return conv.spec


# resources and command ------------------------------------------------------------
def _number(app: Mapping[str, Any], key: str, conv: Conversion) -> float | None:
    value = app.get(key, MARATHON_DEFAULTS[key])
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        conv.refuse(f"/{key}", f"{key} must be a number, not {value!r}")
        return None
    return float(value)


def _resources(app: Mapping[str, Any], conv: Conversion) -> None:
    """``instances``, ``cpus``, ``mem`` (MiB, rounded up) and ``gpus``."""
    instances = _number(app, "instances", conv)
    if instances is not None:
        conv.spec["instances"] = int(instances)
    cpus = _number(app, "cpus", conv)
    if cpus is not None:
        if cpus <= 0:
            conv.refuse("/cpus", "cpus must be more than 0 on Docker hosts")
        conv.spec["cpus"] = cpus
    mem = _number(app, "mem", conv)
    if mem is not None:
        conv.spec["mem"] = max(4, math.ceil(mem))
    gpus = app.get("gpus", 0)
    if gpus:
        conv.refuse("/gpus", f"asks for {gpus} GPU(s); Berth does not schedule GPUs")


def _command(app: Mapping[str, Any], conv: Conversion) -> None:
    """``cmd`` (shell form) or ``args`` (appended to the image's entrypoint)."""
    cmd, args = app.get("cmd"), app.get("args")
    if cmd is not None and args is not None:
        conv.refuse("/cmd", "cmd and args are both set (Marathon accepts only one)")
    if cmd is not None:
        if isinstance(cmd, str):
            conv.spec["command"] = cmd
        else:
            conv.refuse("/cmd", "cmd must be a string")
    if args is not None:
        if isinstance(args, list):
            conv.spec["args"] = [str(a) for a in args]
        else:
            conv.refuse("/args", "args must be a list of strings")
    if app.get("executor"):
        conv.refuse("/executor", f"runs a custom Mesos executor ({app['executor']})")
    if app.get("user"):
        conv.spec["user"] = str(app["user"])


# container ---------------------------------------------------------------------------
def _container(app: Mapping[str, Any], conv: Conversion) -> None:
    """``container``: Docker image, network, privileged, parameters, volumes."""
    container = app.get("container") or {}
    if not isinstance(container, Mapping):
        conv.refuse("/container", "container must be an object")
        return
    docker = container.get("docker") or {}
    kind = str(container.get("type") or ("DOCKER" if docker else "")).upper()
    image = docker.get("image") if isinstance(docker, Mapping) else None
    if not image:
        where = f"the Mesos containerizer ({kind})" if kind else "the Mesos sandbox"
        conv.refuse("/container/docker/image",
                    f"no Docker image: the command runs in {where} on the agent itself")
    else:
        conv.spec["image"] = str(image)
    if isinstance(docker, Mapping):
        _docker_options(docker, conv)
    F.volumes(container.get("volumes"), conv)


def _docker_options(docker: Mapping[str, Any], conv: Conversion) -> None:
    if docker.get("privileged"):
        conv.spec["privileged"] = True
    for i, param in enumerate(F.as_list(docker.get("parameters"),
                                        "/container/docker/parameters", conv)):
        _docker_parameter(param, f"/container/docker/parameters/{i}", conv)
    if docker.get("pullConfig"):
        conv.refuse("/container/docker/pullConfig",
                    "pulls with registry credentials from a DC/OS secret")


# docker run parameters Berth can honour: env, label and user become spec fields; name
# and restart are Berth's own business (it names containers and replaces dead ones).
_PARAM_IGNORED = {"name", "restart"}


def _docker_parameter(param: Any, path: str, conv: Conversion) -> None:
    """One ``docker run --key value``: mapped where Berth has the field, else refused."""
    if not isinstance(param, Mapping):
        conv.refuse(path, "a docker parameter must be {key, value}")
        return
    key, value = str(param.get("key", "")), str(param.get("value", ""))
    if key in ("env", "e", "label", "l"):
        name, sep, val = value.partition("=")
        target = "env" if key in ("env", "e") else "labels"
        # Docker reads `--label KEY` as an empty label; `--env NAME` copies the
        # variable from the docker client's environment, which Berth's worker lacks.
        if not name or (not sep and target == "env"):
            conv.refuse(path, f"docker parameter --{key} {value!r} is not NAME=VALUE")
            return
        conv.spec.setdefault("_" + target, {})[name] = val
    elif key in ("user", "u"):
        conv.spec["user"] = value
    elif key not in _PARAM_IGNORED:
        conv.refuse(path, f"passes the docker run parameter --{key} {value}; "
                          "Berth does not pass it")


# network and ports -----------------------------------------------------------------------
def _docker(app: Mapping[str, Any]) -> Mapping[str, Any]:
    """``container.docker`` when both are objects, else an empty mapping."""
    container = app.get("container")
    docker = container.get("docker") if isinstance(container, Mapping) else None
    return docker if isinstance(docker, Mapping) else {}


def _network(app: Mapping[str, Any], conv: Conversion) -> str:
    """``host`` or ``bridge`` from ``container.docker.network`` or ``networks``."""
    legacy = str(_docker(app).get("network") or "").upper()
    networks = app.get("networks")
    if app.get("ipAddress"):
        conv.refuse("/ipAddress", "asks for an IP address per task (Mesos CNI networking)")
    if networks:
        return _modern_network(networks, conv)
    if legacy in ("", "HOST"):
        return "host"
    if legacy == "BRIDGE":
        return "bridge"
    conv.refuse("/container/docker/network",
                f"network {legacy} (a user or virtual network) is not available on Docker hosts")
    return "host"


def _modern_network(networks: Any, conv: Conversion) -> str:
    if not isinstance(networks, list) or len(networks) != 1:
        conv.refuse("/networks", "joins several networks; Berth offers one, host or bridge")
        return "host"
    net = networks[0] if isinstance(networks[0], Mapping) else {}
    mode = str(net.get("mode", "")).lower()
    if mode == "host":
        return "host"
    if mode == "container/bridge":
        return "bridge"
    conv.refuse("/networks/0", f"joins the virtual network {net.get('name') or mode!r} "
                               "(one IP per container), which Docker hosts do not offer")
    return "host"


def _ports(app: Mapping[str, Any], conv: Conversion) -> None:
    """``portDefinitions``/``ports`` (host) or ``portMappings`` (bridge) → ``ports``."""
    network = _network(app, conv)
    conv.spec["network"] = network
    container = app.get("container")
    mappings = container.get("portMappings") if isinstance(container, Mapping) else None
    if mappings is None:
        mappings = _docker(app).get("portMappings")
    if mappings is not None and not isinstance(mappings, list):
        conv.refuse("/container/portMappings", "portMappings must be a list")
        mappings = []
    if network == "bridge":
        ports = F.port_mappings(mappings or [], conv)
    else:
        if mappings:
            conv.refuse("/container/portMappings", "portMappings need BRIDGE networking")
        ports = F.port_definitions(app, conv)
    if len(ports) > MAX_PORTS:
        conv.refuse("/portDefinitions", f"asks for {len(ports)} ports; a Berth service "
                                        f"has at most {MAX_PORTS}, the size of an agent's "
                                        "default port range (31000-31999)")
    conv.spec["ports"] = ports


def _unknown_fields(app: Mapping[str, Any], conv: Conversion) -> None:
    """Any field this module does not know is reported, never dropped."""
    for key in app:
        if key not in F.HANDLED and key not in IGNORED:
            conv.refuse("/" + re.sub("[~/]", "_", str(key)),
                        f"Marathon field {key!r} has no Berth equivalent")
