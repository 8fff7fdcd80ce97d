"""The compatibility report of a Universe folder: what Berth can run, and why not.

``python -m catalog.dcos.report CORPUS_DIR`` prints Markdown: for every package version
(every revision, superseded ones included) whether it loads, whether its default
options validate, whether the template renders, whether the Marathon app converts to a
valid Berth spec — and otherwise the exact reasons. :func:`assess` is the same walk for
one package; the corpus tests use it.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog.dcos.convert import analyze_app
from catalog.dcos.loader import load_version_dir
from catalog.dcos.options import defaults_of, validate_dcos_options
from catalog.dcos.render import render_marathon
from catalog.errors import CatalogError

__all__ = ["Assessment", "assess", "assess_dir", "render_report", "main"]

SERVICE_NAME = "report"


@dataclass
class Assessment:
    """One package version's way through load → options → render → convert → spec."""

    name: str
    revision: str
    version: str = ""
    loads: bool = False
    options: bool | None = None
    renders: bool | None = None
    converts: bool | None = None
    static: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    app: dict[str, Any] | None = None
    spec: dict[str, Any] | None = None

    @property
    def installable(self) -> bool:
        """Runs on Docker hosts with its default options."""
        return bool(self.options and self.converts) and not self.static

    @property
    def cosmos_installable(self) -> bool:
        """Cosmos could have installed it with its defaults (options valid, renders)."""
        return bool(self.options and self.renders)

    @property
    def status(self) -> str:
        if not self.loads:
            return "broken"
        if self.installable:
            return "installable"
        if self.options is False:
            return "needs options"
        if self.renders is False:
            return "template fault"
        return "unsupported"


def _validate_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec checked as the install path checks it (schema, then policy).

    :raises CatalogError: what ``catalog.spec`` raises.
    """
    try:
        from catalog import spec as spec_module
    except ImportError:  # the spec module is not there yet: the schema alone
        return _schema_only(spec)
    checked = spec_module.validate_spec(spec)
    spec_module.check_policy(checked)
    return checked


def _schema_only(spec: dict[str, Any]) -> dict[str, Any]:
    """Validate against ``service.schema.json`` without ``catalog.spec``.

    :raises SpecInvalid: with every problem.
    """
    from jsonschema import Draft202012Validator

    from catalog.errors import SpecInvalid
    from catalog.schemas import load

    errors = list(Draft202012Validator(load("service")).iter_errors(spec))
    if errors:
        raise SpecInvalid("spec invalid", details=[
            {"path": "spec/" + "/".join(map(str, e.absolute_path)), "message": e.message}
            for e in errors])
    return spec


def _error_lines(exc: CatalogError) -> list[str]:
    return [f"{d['path']}: {d['message']}" for d in exc.details] or [exc.message]


def assess(package: Any, *, revision: str = "") -> Assessment:
    """Walk one loaded package through options, render, convert and spec validation."""
    a = Assessment(name=package.name, revision=revision or str(package.order),
                   version=package.version, loads=True, static=list(package.unsupported))
    if not package.template:
        return a
    options = defaults_of(package.config_schema)
    try:
        validate_dcos_options(package.config_schema, options, package=package.name)
        a.options = True
    except CatalogError as exc:
        a.options = False
        a.reasons += _error_lines(exc)
    try:
        a.app = render_marathon(package.template, options, package.resource)
        a.renders = True
    except CatalogError as exc:
        a.renders = False
        a.reasons += _error_lines(exc)
        return a
    _convert(a)
    return a


def _convert(a: Assessment) -> None:
    conv = analyze_app(a.app or {})
    if conv.reasons:
        a.converts = False
        a.reasons += [f"{r['path']}: {r['message']}" for r in conv.reasons
                      if r["message"] not in a.static]
        return
    try:
        a.spec = _validate_spec(conv.spec)
        a.converts = True
    except CatalogError as exc:
        a.converts = False
        a.reasons += _error_lines(exc)


def assess_dir(root: str | Path) -> list[Assessment]:
    """Every revision folder under ``root/packages`` assessed, in folder order."""
    base = Path(root) / "packages"
    found = []
    for version_dir in sorted(base.glob("*/*/*"), key=_dir_key):
        package, problems = load_version_dir(version_dir, repository="report")
        if package is None:
            found.append(Assessment(name=version_dir.parent.name, revision=version_dir.name,
                                    reasons=[f"{p['path']}: {p['message']}" for p in problems]))
            continue
        found.append(assess(package, revision=version_dir.name))
    return found


def _dir_key(path: Path) -> tuple[str, int, str]:
    rev = path.name
    return (path.parent.name, int(rev) if rev.isdigit() else -1, rev)


def _mark(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "–"}[value]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_report(assessments: list[Assessment], *, title: str = "DC/OS Universe") -> str:
    """The Markdown report: summary counts, then one row per package version."""
    status = Counter(a.status for a in assessments)
    names = {a.name for a in assessments}
    runnable = {a.name for a in assessments if a.installable}
    lines = [f"# {title}: compatibility with Berth", "",
             "Generated by `python -m catalog.dcos.report CORPUS_DIR` (do not edit by hand).",
             "Each package version is loaded, its default options are validated (draft-04),",
             "its `marathon.json.mustache` is rendered and the Marathon app is converted to a",
             "Berth service spec and validated. See docs/dcos-universe.md for the rules.", "",
             "## Summary", "",
             f"- package versions: {len(assessments)} of {len(names)} packages",
             f"- load: {sum(a.loads for a in assessments)}",
             f"- default options validate: {sum(bool(a.options) for a in assessments)}",
             f"- render: {sum(bool(a.renders) for a in assessments)}",
             f"- convert to a valid spec: {sum(bool(a.converts) for a in assessments)}",
             f"- installable on Docker hosts: {status['installable']} versions "
             f"of {len(runnable)} packages", ""]
    lines += [f"- {key}: {count}" for key, count in sorted(status.items())]
    lines += ["", "## Reasons, most frequent first", ""]
    why = Counter(_reason_kind(r) for a in assessments if not a.installable
                  for r in (a.static + a.reasons)[:1])
    lines += [f"- {count} × {_cell(kind)}" for kind, count in why.most_common(25)]
    lines += ["", "## Per package version", "",
              "| package | revision | version | loads | options | renders | converts "
              "| status | why not |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for a in assessments:
        why_not = "; ".join(a.static + a.reasons[:4])
        lines.append(f"| {a.name} | {a.revision} | {_cell(a.version)} | {_mark(a.loads)} "
                     f"| {_mark(a.options)} | {_mark(a.renders)} | {_mark(a.converts)} "
                     f"| {a.status} | {_cell(why_not)} |")
    return "\n".join(lines) + "\n"


def _reason_kind(reason: str) -> str:
    """A reason without its specifics, for counting (``path: message`` → message head)."""
    head, sep, rest = reason.partition(": ")
    message = rest if sep and " " not in head else reason
    return message.split(" (")[0].split(": ")[0][:90]


def main(argv: list[str] | None = None) -> int:
    """Print the report of the Universe folder given on the command line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not (Path(args[0]) / "packages").is_dir():
        print("usage: python -m catalog.dcos.report CORPUS_DIR (holding packages/)",
              file=sys.stderr)
        return 2
    sys.stdout.write(render_report(assess_dir(args[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
