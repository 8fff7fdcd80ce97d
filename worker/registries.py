"""Image registries: which registry an image comes from, and the credentials for it.

Docker's rule names the registry of an image reference: the part before the first
``/`` is a registry host when it holds a ``.`` or a ``:`` or is ``localhost``
(``127.0.0.1:5000/berth/hello:2.0.0``, ``ghcr.io/org/app``); any other reference is
on Docker Hub (``docker.io``). A registry host is ``name[:port]`` in lower case, the
same string in ``berth registries add`` and in the images of packages.

:func:`credentials_for` is what a worker asks before a pull: the username and the
opened password of the image's registry, or None when Berth keeps none for it (a
public image). The password is opened in memory only, for the engine's
``auth_config``; nothing here logs or records it.
"""

from __future__ import annotations

import re
from typing import cast

from catalog.errors import InvalidInput

from .pulls import DOCKER_HUB, image_registry, normalize_host
from .store import Store
from .store.crypto import DataKeys, is_sealed, require_keys

__all__ = ["DOCKER_HUB", "image_registry", "normalize_host", "host_problem",
           "credentials_for", "require_host"]

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]{{1,5}})?")
MAX_HOST = 255


def host_problem(value: object, path: str = "host") -> dict[str, str] | None:
    """Why ``value`` is not a registry host (``name[:port]``), or None when it is."""
    if not isinstance(value, str) or not value.strip():
        return {"path": path, "message": "give the registry's host, e.g. "
                                         "registry.example.com:5000"}
    host = value.strip().lower()
    if "://" in host or "/" in host:
        return {"path": path, "message": "a host and optional port only, without a "
                                         "scheme or path (e.g. registry.example.com:5000)"}
    if len(host) > MAX_HOST or not _HOST.fullmatch(host):
        return {"path": path, "message": "not a host name or address with an optional "
                                         "port (letters, digits, '-', '.', ':port')"}
    port = host.rpartition(":")[2] if ":" in host else ""
    if port and not 0 < int(port) < 65536:
        return {"path": path, "message": f"port {port} is out of range"}
    return None


def require_host(value: object, path: str = "host") -> str:
    """``value`` as a normalized registry host.

    :raises InvalidInput: naming the field and what is wrong.
    """
    problem = host_problem(value, path)
    if problem:
        raise InvalidInput("the registry host is invalid", details=[problem])
    return normalize_host(str(value))


def credentials_for(store: Store, keys: DataKeys | None, ref: str) -> dict[str, str] | None:
    """docker-py's ``auth_config`` for pulling ``ref``, or None when Berth keeps no
    credentials for its registry.

    :raises DataKeyError: the registry has a password and no data key opens it.
    """
    record = store.registries.get(image_registry(ref))
    if record is None or not record.get("username"):
        return None
    sealed = record.get("password")
    password = ""
    if is_sealed(sealed):
        opened = require_keys(keys, "open the registry password of "
                                    f"{record['host']}").open(cast(dict[str, str], sealed))
        password = str(opened or "")
    return {"username": str(record["username"]), "password": password}
