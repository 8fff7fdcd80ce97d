"""marathon-lb labels → the spec's ``expose`` routes.

DC/OS packages ask marathon-lb (HAProxy fed from Marathon) for a virtual host with
labels on the app; Berth reads the same labels into ``expose`` so the proxies it
keeps in sync carry the route:

==============================  ==================================================
``HAPROXY_GROUP``               the route group of every port (``group``)
``HAPROXY_{n}_GROUP``           the group of service port ``n`` (overrides the above)
``HAPROXY_{n}_VHOST``           comma-separated host names of port ``n`` (``hosts``)
``HAPROXY_{n}_PATH``            path prefix of port ``n`` (``pathPrefix``)
``HAPROXY_{n}_SSL_CERT``,       HTTPS is wanted (``tls: true``)
``HAPROXY_{n}_REDIRECT_TO_HTTPS``
``HAPROXY_{n}_ENABLED``         ``false`` leaves port ``n`` unrouted
==============================  ==================================================

A port without a ``VHOST`` (or with an empty one, what most packages render by
default) gets no route. A host name or group that is not usable is a reason the app
cannot run as written, reported like any other field. The labels stay in ``labels``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["haproxy_routes"]

_VHOST = re.compile(r"HAPROXY_([0-9]{1,3})_VHOST")
_HOST = re.compile(r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}"
                   r"[a-z0-9])?")
_GROUP = re.compile(r"[a-z][a-z0-9-]{0,31}")
_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,199}")
_FALSE = ("false", "0", "no", "off")


def haproxy_routes(labels: Any, conv: Any) -> None:
    """Add ``expose`` to ``conv.spec`` from marathon-lb labels (see the module docstring)."""
    if not isinstance(labels, Mapping):
        return
    ports = conv.spec.get("ports") or []
    routes = []
    for key in sorted(labels, key=str):
        match = _VHOST.fullmatch(str(key))
        if match is None:
            continue
        index = int(match[1])
        route = _route(labels, index, ports, conv)
        if route:
            routes.append(route)
    if routes:
        conv.spec["expose"] = routes


def _label(labels: Mapping[str, Any], name: str) -> str:
    value = labels.get(name)
    return "" if value is None else str(value).strip()


def _route(labels: Mapping[str, Any], index: int, ports: list[dict[str, Any]],
           conv: Any) -> dict[str, Any] | None:
    """The route of service port ``index``, or None (no host, disabled, or refused)."""
    prefix = f"HAPROXY_{index}_"
    hosts = [h.strip().lower() for h in _label(labels, prefix + "VHOST").split(",") if h.strip()]
    if not hosts or _label(labels, prefix + "ENABLED").lower() in _FALSE:
        return None
    where = f"/labels/{prefix}"
    bad = [h for h in hosts if not _HOST.fullmatch(h) or len(h) > 253]
    if bad:
        conv.refuse(where + "VHOST", f"not a host name: {', '.join(bad)}")
        return None
    if index >= len(ports):
        conv.refuse(where + "VHOST", f"the app has no service port {index}")
        return None
    group = _label(labels, prefix + "GROUP") or _label(labels, "HAPROXY_GROUP") or "external"
    if not _GROUP.fullmatch(group):
        conv.refuse(where + "GROUP", f"group {group!r} is not a lower-case name")
        return None
    path = _label(labels, prefix + "PATH") or "/"
    if not _PATH.fullmatch(path):
        conv.refuse(where + "PATH", f"path {path!r} is not a URL path")
        return None
    tls = bool(_label(labels, prefix + "SSL_CERT")) or _label(
        labels, prefix + "REDIRECT_TO_HTTPS").lower() in ("true", "1", "yes")
    return {"portName": ports[index]["name"], "hosts": list(dict.fromkeys(hosts)),
            "pathPrefix": path, "tls": tls, "group": group}
