"""Small package folders for the catalog core's tests (imported by tests and conftest)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

GOOD_CONFIG: dict[str, Any] = {
    "type": "object",
    "properties": {
        "port": {"type": "integer", "minimum": 0, "maximum": 65535, "default": 0},
        "message": {"type": "string", "default": "hello", "maxLength": 100},
        "password": {"type": "string", "x-secret": True, "default": ""},
        "tuning": {"type": "object", "properties": {
            "workers": {"type": "integer", "minimum": 1, "default": 2}}},
    },
    "additionalProperties": False,
}
GOOD_TEMPLATE = """{
  "image": {{ resource.assets.container.docker.app | tojson }},
  "env": {"MESSAGE": {{ options.message | tojson }}, "PASSWORD": {{ options.password | tojson }},
          "WORKERS": {{ options.tuning.workers | string | tojson }}},
  "ports": [{"name": "http", "hostPort": {{ options.port | tojson }}}],
  "volumes": [{"containerPath": "/data", "name": {{ (service ~ "-data") | tojson }}}],
  "healthCheck": {"protocol": "http", "portName": "http", "path": "/"}
}
"""


def write_package(root: Path, name: str = "demo", version: str = "1.0.0", *,
                  meta: dict[str, Any] | None = None, config: Any = None,
                  resource: Any = None, template: str | None = None,
                  raw: dict[str, str] | None = None, extra_meta: dict[str, Any] | None = None,
                  ) -> Path:
    """Write ``root/packages/<name>/<version>/`` with good files unless told otherwise."""
    folder = root / "packages" / name / version
    folder.mkdir(parents=True, exist_ok=True)
    meta = meta if meta is not None else {
        "name": name, "version": version, "description": f"The {name} service.",
        "maintainer": "maintainers@example.org", "tags": ["demo", "web"],
        "title": name.title(), **(extra_meta or {})}
    files = {
        "package.json": json.dumps(meta),
        "config.json": json.dumps(GOOD_CONFIG if config is None else config),
        "resource.json": json.dumps(resource if resource is not None else {
            "images": {"icon": "icon.svg"},
            "assets": {"container": {"docker": {"app": f"example/{name}:{version}"}}}}),
        "service.json.j2": GOOD_TEMPLATE if template is None else template,
        "README.md": f"# {name}\n",
        "icon.svg": "<svg xmlns='http://www.w3.org/2000/svg'/>",
    }
    files.update(raw or {})
    for file, text in files.items():
        (folder / file).write_text(text)
    return folder
