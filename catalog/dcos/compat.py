"""What in a Universe package cannot run on plain Docker hosts, with the exact reason.

Two moments:

- :func:`static_reasons` at load time, from the files alone: no Marathon template (a
  CLI-only package), or a template that starts a Mesos framework scheduler (the DC/OS
  SDK ``dcos-commons`` schedulers and other frameworks). These become
  ``Package.unsupported`` and the store front shows them.
- :func:`app_framework_reasons` at render time, on the rendered app (a framework can
  depend on options); :mod:`catalog.dcos.convert` adds every field it cannot honour.

A framework scheduler registers with a Mesos master and launches its own tasks through
the Mesos framework API; a Docker host has no Mesos master, so such a package would
start a scheduler that waits forever.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from catalog.errors import PackageInvalid

__all__ = ["static_reasons", "app_framework_reasons", "refuse_unsupported_package",
           "SDK_REASON", "FRAMEWORK_REASON", "CLI_ONLY_REASON", "NO_APP_REASON",
           "NO_IMAGE_REASON"]

SDK_REASON = ("a DC/OS SDK (dcos-commons) scheduler: it registers with a Mesos master "
              "and launches its own tasks through the Mesos framework API, which Docker "
              "hosts do not offer")
FRAMEWORK_REASON = ("a Mesos framework: it registers with a Mesos master as framework "
                    "{name!r} and launches its own tasks through the Mesos framework API, "
                    "which Docker hosts do not offer")
CLI_ONLY_REASON = ("a DC/OS CLI plugin only (command.json or resource.json 'cli', no "
                   "marathon.json.mustache): there is no service to run")
NO_APP_REASON = "no marathon.json.mustache: there is no service to run"
NO_IMAGE_REASON = ("no Docker image: the app runs a command in the Mesos sandbox (Mesos "
                   "containerizer) on the agent itself")

# Markers of a dcos-commons scheduler in a template or rendered app.
_SDK_MARKERS = ("DCOS_COMMONS_API_VERSION", "DCOS_COMMONS_UNINSTALL", "dcos-commons")
# Env that loads libmesos (a scheduler speaking the framework API) and Mesos master URLs.
_SCHEDULER_ENV = ("LIBMESOS_URI", "MESOS_NATIVE_JAVA_LIBRARY", "MESOS_NATIVE_LIBRARY")
_MASTER_RE = re.compile(r"mesos://|zk://[^\s\"]*/mesos\b|master\.mesos:5050")
# Env names that configure a Mesos framework registration (role, principal, master).
_FRAMEWORK_ENV_RE = re.compile(r"(^|_)MESOS_(ROLE|PRINCIPAL|MASTER)$|^MESOS_MASTER")
_FRAMEWORK_LABEL_RE = re.compile(r'"DCOS_PACKAGE_FRAMEWORK_NAME"\s*:\s*"([^"]*)"')
# Env that only a framework scheduler reads: Mesos authentication and its modules.
_MESOS_AUTH_ENV_RE = re.compile(r"^MESOS_(AUTHENTICATE|AUTHENTICATEE|HTTP_AUTHENTICATEE|"
                                r"MODULES|API_VERSION|FRAMEWORK_[A-Z_]+)$")
# Artifacts a scheduler is fetched as (the SDK's ``*scheduler.zip``, libmesos bundles).
_SCHEDULER_URI_RE = re.compile(r"scheduler[^/\s\"]*\.(zip|tgz|tar\.gz|jar)|libmesos",
                               re.IGNORECASE)
# What a template flagged ``"framework": true`` shows when it really is one: the Mesos
# master option, Mesos env, ZooKeeper or Mesos-master arguments or env, scheduler
# artifacts fetched into the sandbox.
_FLAGGED_SIGNS_RE = re.compile(
    r"mesos\.master|\"MESOS_[A-Z_]+\"\s*:|--(zk|zookeeper|master|mesos[-_]master)\b"
    r"|zk://|\"[A-Z_]*(ZK|ZOOKEEPER)[A-Z_]*\"\s*:|\"[A-Z_]*MESOS[A-Z_]*MASTER\"\s*:"
    r"|scheduler[^/\s\"]*\.(zip|tgz|tar\.gz|jar)|libmesos"
    # libprocess (the scheduler's RPC to the master), Flink's Mesos app master,
    # storm-mesos's launcher, Spark executors launched as Mesos tasks.
    r"|LIBPROCESS_|-Dmesos\.|mesos-[a-z-]+\.sh|run-with-marathon|\"SPARK_(EXECUTOR_"
    r"[A-Z_]+|CORES_MAX)\"", re.IGNORECASE)


def _framework_name(match: re.Match[str] | None, package_json: Mapping[str, Any]) -> str:
    name = match.group(1) if match else ""
    return name if name and "{{" not in name else str(package_json.get("name", ""))


def static_reasons(package_json: Mapping[str, Any], template: str | None,
                   cli_only: bool) -> list[str]:
    """Reasons known from the package files alone (empty = may be installable).

    A framework is recognised by the SDK's labels, by libmesos in its env or by a Mesos
    master URL. ``"framework": true`` in ``package.json`` alone is not enough: plain
    Docker apps (databases, directories, web apps) carry it too, for the DC/OS UI.
    Flagged packages are refused when the template shows what a scheduler does
    (:data:`_FLAGGED_SIGNS_RE`: the Mesos master, ZooKeeper, Mesos env, scheduler
    artifacts); the rendered app is checked again by :func:`app_framework_reasons`.
    Nor is the ``DCOS_PACKAGE_FRAMEWORK_NAME`` label, for the same reason.
    """
    if not template:
        return [CLI_ONLY_REASON if cli_only else NO_APP_REASON]
    if any(marker in template for marker in _SDK_MARKERS):
        return [SDK_REASON]
    label = _FRAMEWORK_LABEL_RE.search(template)
    scheduler = any(f'"{name}"' in template for name in _SCHEDULER_ENV)
    flagged = package_json.get("framework") is True and _FLAGGED_SIGNS_RE.search(template)
    if scheduler or _MASTER_RE.search(template) or flagged:
        return [FRAMEWORK_REASON.format(name=_framework_name(label, package_json))]
    # Options cannot add keys (their strings are JSON-escaped), so a template that never
    # names an image never renders one.
    if '"image"' not in template:
        return [NO_IMAGE_REASON]
    return []


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def app_framework_reasons(app: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(json-path, reason)`` when a rendered app is a framework scheduler."""
    labels = _mapping(app.get("labels"))
    env = _mapping(app.get("env"))
    name = str(labels.get("DCOS_PACKAGE_FRAMEWORK_NAME") or app.get("id", "")).strip("/")
    if any(marker in labels for marker in _SDK_MARKERS[:2]):
        yield "/labels/DCOS_COMMONS_API_VERSION", SDK_REASON
        return
    for key in _SCHEDULER_ENV:
        if key in env:
            yield f"/env/{key}", FRAMEWORK_REASON.format(name=name)
            return
    for key, value in env.items():
        if (_FRAMEWORK_ENV_RE.search(str(key)) or _MESOS_AUTH_ENV_RE.match(str(key))
                or _MASTER_RE.search(str(value))):
            yield f"/env/{key}", FRAMEWORK_REASON.format(name=name)
            return
    for path, uri in _fetched(app):
        if _SCHEDULER_URI_RE.search(uri):
            yield path, FRAMEWORK_REASON.format(name=name)
            return
    for key in ("cmd", "args"):
        if _MASTER_RE.search(str(app.get(key) or "")):
            yield f"/{key}", FRAMEWORK_REASON.format(name=name)
            return


def _fetched(app: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(json-path, uri)`` of what ``fetch`` and the older ``uris`` download."""
    fetch, uris = app.get("fetch"), app.get("uris")
    for i, item in enumerate(fetch if isinstance(fetch, list) else []):
        yield f"/fetch/{i}", str(_mapping(item).get("uri", ""))
    for i, item in enumerate(uris if isinstance(uris, list) else []):
        yield f"/uris/{i}", str(item)


def refuse_unsupported_package(package: Any) -> None:
    """Stop before rendering a package that cannot run at all.

    :raises PackageInvalid: listing ``package.unsupported``.
    """
    reasons = tuple(getattr(package, "unsupported", ()) or ())
    if reasons:
        raise PackageInvalid(
            f"{package.name} {package.version} cannot run on Docker hosts",
            package=package.name, version=package.version,
            details=[{"path": "marathon.json.mustache", "message": r} for r in reasons],
            hint="see docs/dcos-universe.md for what Berth can run")
