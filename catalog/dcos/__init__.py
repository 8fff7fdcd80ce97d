"""The DC/OS Universe format: read Universe packages as they are, run what Docker can.

- :mod:`.loader`  — the ``packages/<LETTER>/<name>/<revision>/`` folders and the built
  ``repo-up-to-*.json`` index → :class:`catalog.model.Package` (``format="dcos"``);
- :mod:`.options` — Cosmos's option semantics: defaults deep-merged, draft-04 validation;
- :mod:`.render`  — Mustache rendering as Cosmos did it, then :mod:`.convert`;
- :mod:`.convert` and :mod:`.fields` — Marathon app definition → Berth service spec;
- :mod:`.compat`  — what cannot run on Docker hosts, with the exact reason;
- :mod:`.report`  — the compatibility report of a whole Universe folder;
- :mod:`.build`   — a Universe folder → the ``repo-up-to-*.json`` index.

Pure: no I/O beyond reading the paths it is given.
"""

from __future__ import annotations

from catalog.dcos.build import build_repo_json
from catalog.dcos.compat import static_reasons
from catalog.dcos.convert import analyze_app, convert_app
from catalog.dcos.loader import (
    is_universe_dir,
    load_universe_dir,
    load_version_dir,
    packages_from_universe_entries,
    parse_repo_json,
)
from catalog.dcos.options import cosmos_defaults, resolve_dcos_options, upgrade_dcos_options
from catalog.dcos.render import render_dcos_service, render_marathon

__all__ = [
    "analyze_app",
    "build_repo_json",
    "convert_app",
    "cosmos_defaults",
    "is_universe_dir",
    "load_universe_dir",
    "load_version_dir",
    "packages_from_universe_entries",
    "parse_repo_json",
    "render_dcos_service",
    "render_marathon",
    "resolve_dcos_options",
    "static_reasons",
    "upgrade_dcos_options",
]
