"""The offline stages of ``berth package test``: lint, render, and the spec checks.

A maintainer runs them on a package folder (every version) or on one version folder:

1. **lint** — :func:`catalog.loader.lint_paths`, every problem of every file at once;
2. **render** — every version with its defaults (required options without a default
   get lint's placeholders) and with each options file of its ``examples/`` folder
   (``<package>/<version>/examples/*.json``: what an admin would pass to
   ``berth install --options FILE``);
3. **spec** — each rendered spec against what the package declares: every
   ``$PORT<n>`` / ``$PORT_<NAME>`` the command, args, env, health check or smoke test
   uses names a declared port; under host networking every fixed port number they
   name is declared (a listener Berth never reserved collides with the next instance
   on that agent); options that hold a password, token or key are marked
   ``x-secret``, and every secret is generated (``x-generate``) or required.

The checks of stage 3 live in :mod:`catalog.package_checks`. Each stage gives a
:class:`StageResult` whose problems name the file and the field
(``…/1.0.0/service.json.j2#/command``, ``…/examples/tls.json#/auth``). Nothing here
talks to a server; the cluster stages live in the CLI (``berth package test --cluster``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from json import JSONDecodeError
from pathlib import Path
from typing import Any

from .errors import CatalogError, Problem
from .generated_secrets import resolve_generated
from .lint import placeholders
from .loader import lint_paths, load_package_dir
from .model import Package
from .options import deep_merge, defaults_of
from .package_checks import secret_option_problems, spec_problems
from .reading import loads_json
from .render import render_service
from .version import parse_version

__all__ = ["EXAMPLES", "Rendered", "StageResult", "version_folders", "lint_stage",
           "render_stage", "spec_stage", "spec_problems", "secret_option_problems",
           "offline_stages", "example_files", "read_example"]

EXAMPLES = "examples"          # the folder of options files inside a version folder
MAX_EXAMPLE_BYTES = 256 * 1024



@dataclass(frozen=True)
class Rendered:
    """One render of one version: which options file (``None``: the defaults)."""

    package: Package
    folder: str
    example: str | None
    options: dict[str, Any]
    spec: dict[str, Any]

    @property
    def label(self) -> str:
        """``1.0.0 defaults`` or ``1.0.0 examples/tls.json``, for output lines."""
        return f"{self.package.version} {self.example or 'defaults'}"


@dataclass
class StageResult:
    """What one stage found: ``problems`` (each ``{path, message}``) and ``notes``
    (what was checked, for the output)."""

    name: str
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def status(self) -> str:
        """``passed``, ``failed`` or ``skipped``."""
        if self.skipped is not None:
            return "skipped"
        return "failed" if self.problems else "passed"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``--json``."""
        return {"name": self.name, "status": self.status, "problems": self.problems,
                "notes": self.notes, "skipped": self.skipped}


# --- which folders ------------------------------------------------------------------
def version_folders(path: str | os.PathLike[str]) -> list[str]:
    """The version folders under ``path``: itself when it holds ``package.json``, else
    its sub-folders that do (a package folder), oldest version first."""
    root = os.fspath(path).rstrip("/") or "/"
    if os.path.isfile(os.path.join(root, "package.json")):
        return [root]
    try:
        names = [n for n in os.listdir(root) if not n.startswith(".")]
    except OSError:
        return []
    folders = [f"{root}/{n}" for n in names
               if os.path.isfile(os.path.join(root, n, "package.json"))]
    return sorted(folders, key=_version_order)


def _version_order(folder: str) -> tuple[Any, ...]:
    """Semver order of a version folder's name (unparsable names last, by text)."""
    name = os.path.basename(folder)
    try:
        return (0, parse_version(name).key)
    except CatalogError:
        return (1, name)


# --- stage 1: lint ------------------------------------------------------------------
def lint_stage(folders: Sequence[str]) -> StageResult:
    """Every lint problem of every version folder."""
    result = StageResult("lint", problems=lint_paths(folders))
    result.notes.append(f"{len(folders)} version(s) linted")
    return result


# --- stage 2: render ----------------------------------------------------------------
def example_files(folder: str) -> list[str]:
    """The options files of a version folder (``examples/*.json``), sorted."""
    where = Path(folder, EXAMPLES)
    if not where.is_dir():
        return []
    return sorted(f"{EXAMPLES}/{p.name}" for p in where.iterdir()
                  if p.suffix == ".json" and not p.name.startswith("."))


def read_example(folder: str, name: str) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The options object in ``folder/name``, or the problems that stop reading it."""
    shown = f"{folder}/{name}"
    path = Path(folder, name)
    if path.is_symlink() or not path.is_file():
        return None, [{"path": shown, "message": "not a regular file"}]
    if path.stat().st_size > MAX_EXAMPLE_BYTES:
        return None, [{"path": shown, "message": "file is larger than 256 KiB"}]
    try:
        data = loads_json(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        return None, [{"path": shown, "message": f"not UTF-8 text (byte {exc.start})"}]
    except JSONDecodeError as exc:
        return None, [{"path": shown, "message": f"malformed JSON at line {exc.lineno}, "
                                                 f"column {exc.colno}: {exc.msg}"}]
    except (ValueError, RecursionError) as exc:
        return None, [{"path": shown, "message": f"malformed JSON: {exc}"}]
    if not isinstance(data, dict):
        return None, [{"path": shown, "message": "must hold a JSON object of options"}]
    return data, []


def _render_one(package: Package, folder: str, example: str | None,
                given: Mapping[str, Any]) -> tuple[Rendered | None, list[Problem]]:
    """Resolve ``given`` and render; problems point into the example file or the
    template's output."""
    try:
        options, _made = resolve_generated(package, dict(given))  # as an install fills them
        spec = render_service(package, options, service_name=package.name)
    except CatalogError as exc:
        return None, _render_problems(exc, folder, example)
    return Rendered(package, folder, example, options, spec), []


def _render_problems(exc: CatalogError, folder: str, example: str | None) -> list[Problem]:
    """The errors of one render, each at the file and field it is about."""
    source = f"{folder}/{example}" if example else f"{folder}/config.json"
    why = f"rendered with {example}" if example else "rendered with the defaults"
    found: list[Problem] = []
    for detail in exc.details or [{"path": "", "message": exc.message}]:
        path = str(detail.get("path") or "")
        if path.startswith("options"):
            where = f"{source}#{path[len('options'):]}" if example else source
            found.append({"path": where, "message": f"{why}: {path}: {detail['message']}"})
        elif path.startswith("spec"):
            found.append({"path": f"{folder}/service.json.j2#{path[4:]}",
                          "message": f"{why}: {detail['message']}"})
        else:
            found.append({"path": f"{folder}/{path or 'service.json.j2'}",
                          "message": f"{why}: {detail['message']}"})
    return found


def _renders_of(folder: str) -> tuple[list[Rendered], list[Problem], list[str]]:
    """Every render of one version folder: defaults first, then each example."""
    try:
        package = load_package_dir(folder, strict=False)
    except CatalogError as exc:
        return [], [{"path": folder, "message": f"not rendered: the version does not load "
                     f"({len(exc.details or [])} problem(s), see lint)"}], []
    renders: list[Rendered] = []
    problems: list[Problem] = []
    defaults = deep_merge(defaults_of(package), placeholders(package.config_schema))
    todo: list[tuple[str | None, Mapping[str, Any] | None]] = [(None, defaults)]
    for name in example_files(folder):
        data, found = read_example(folder, name)
        problems.extend(found)
        if data is not None:
            todo.append((name, data))
    for example, given in todo:
        rendered, found = _render_one(package, folder, example, given or {})
        problems.extend(found)
        if rendered is not None:
            renders.append(rendered)
    labels = [f"{package.version} {e or 'defaults'}" for e, _ in todo]
    return renders, problems, labels


def render_stage(folders: Sequence[str]) -> tuple[StageResult, list[Rendered]]:
    """Render every version with its defaults and with each of its examples."""
    result = StageResult("render")
    renders: list[Rendered] = []
    for folder in folders:
        found, problems, labels = _renders_of(folder)
        renders.extend(found)
        result.problems.extend(problems)
        result.notes.extend(f"rendered {label}" for label in labels)
    return result, renders


# --- stage 3: the spec against what the package declares ------------------------------
def spec_stage(renders: Iterable[Rendered]) -> StageResult:
    """Check every render's spec, and each version's secret options once."""
    result = StageResult("spec")
    seen: set[str] = set()
    for rendered in renders:
        smoke = (rendered.package.tests or {}).get("smoke")
        problems = spec_problems(rendered.spec, smoke if isinstance(smoke, Mapping) else None)
        why = f"rendered with {rendered.example or 'the defaults'}"
        for problem in problems:
            result.problems.append({"path": f"{rendered.folder}/{problem['path']}",
                                    "message": f"{why}: {problem['message']}"})
        if rendered.folder not in seen:
            seen.add(rendered.folder)
            result.problems.extend(secret_option_problems(
                rendered.package.config_schema, f"{rendered.folder}/config.json"))
        result.notes.append(f"checked {rendered.label}")
    result.problems = _unique(result.problems)
    return result


def _unique(problems: list[Problem]) -> list[Problem]:
    """The same problem found in several renders of one version, once."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for problem in problems:
        key = (problem["path"], problem["message"].split(": ", 1)[-1])
        if key not in seen:
            seen.add(key)
            kept.append(problem)
    return kept


def offline_stages(path: str | os.PathLike[str]
                   ) -> tuple[list[StageResult], list[Rendered]]:
    """Stages 1–3 on ``path`` (a package folder or one version folder)."""
    folders = version_folders(path)
    if not folders:
        lint = StageResult("lint", problems=[{"path": os.fspath(path), "message":
                           "not a package folder or a package version folder (no "
                           "package.json in it or in its sub-folders)"}])
        return [lint, StageResult("render", skipped="nothing to render"),
                StageResult("spec", skipped="nothing rendered")], []
    lint = lint_stage(folders)
    render, renders = render_stage(folders)
    spec = spec_stage(renders)
    return [lint, render, spec], renders
