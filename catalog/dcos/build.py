"""Build the ``repo-up-to-*.json`` index of a Universe folder, as Universe's build did.

Each entry is ``package.json`` with ``releaseVersion`` (the revision folder),
``config``, ``resource``, ``command`` and ``marathon.v2AppMustacheTemplate`` (the
template in base64). Serving that one file over HTTP(S) is all a DC/OS repository
needs; Berth reads it back with :func:`catalog.dcos.loader.parse_repo_json`.

``python -m catalog.dcos.build UNIVERSE_DIR > repo-up-to-2.0.json``
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["build_repo_json", "main"]


def _entry(folder: Path) -> dict[str, Any] | None:
    """One revision folder as an index entry (None when package.json is unusable)."""
    try:
        entry = json.loads((folder / "package.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or not folder.name.isdigit():
        return None
    entry["releaseVersion"] = int(folder.name)
    for key in ("config", "resource", "command"):
        path = folder / f"{key}.json"
        if path.is_file():
            entry[key] = json.loads(path.read_text("utf-8"))
    template = folder / "marathon.json.mustache"
    if template.is_file():
        encoded = base64.b64encode(template.read_bytes()).decode("ascii")
        entry["marathon"] = {"v2AppMustacheTemplate": encoded}
    return entry


def build_repo_json(root: str | Path) -> dict[str, Any]:
    """``{"packages": [...]}`` of every revision under ``root/packages``."""
    folders = sorted(Path(root).glob("packages/*/*/*"))
    entries = [e for e in (_entry(f) for f in folders if f.is_dir()) if e is not None]
    return {"packages": entries}


def main(argv: list[str] | None = None) -> int:
    """Print the index of the folder given on the command line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not (Path(args[0]) / "packages").is_dir():
        print("usage: python -m catalog.dcos.build UNIVERSE_DIR", file=sys.stderr)
        return 2
    json.dump(build_repo_json(args[0]), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
