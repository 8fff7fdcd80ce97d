"""``berth package test DIR [--cluster URL] [--token T] [--json]``: the package test kit.

Offline, on a package folder (every version) or one version folder: lint, render every
version with its defaults and each ``examples/*.json``, check the rendered specs
against what the package declares (``catalog.package_test``). With ``--cluster``: also
install, wait healthy, smoke test, upgrade from the previous version and uninstall on
that Berth (``package_cluster``; an admin token). One line per stage, the problems
under it (``file#/field: why``); ``--json`` prints one document for scripts. Exit 0
when every stage passed or was skipped, 3 when an offline stage failed, 1 when a
cluster stage failed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from catalog.package_test import StageResult, offline_stages
from server.client.api import BerthClient

from .common import EXIT_FAILED, EXIT_INVALID
from .package_cluster import ClusterRun

_MARKS = {"passed": ("ok", "green"), "failed": ("FAILED", "red"), "skipped": ("skipped", "yellow")}


def register(cli: click.Group) -> None:
    """Add ``test`` to the ``berth package`` group (``publish`` registers the group)."""
    group = cli.commands.get("package")
    if not isinstance(group, click.Group):
        group = click.Group("package", help="Build, test and publish packages.")
        cli.add_command(group)
    group.add_command(package_test)


@click.command("test")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--cluster", "cluster", metavar="URL", default=None,
              help="A Berth to install, smoke test, upgrade and uninstall on (a test one).")
@click.option("--token", envvar="BERTH_TOKEN", default=None,
              help="An admin token of that Berth (env BERTH_TOKEN).")
@click.option("--timeout", type=click.FloatRange(1, 3600), default=300.0, show_default=True,
              help="Seconds each deployment and health wait may take.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document for scripts.")
def package_test(directory: Path, cluster: str | None, token: str | None, timeout: float,
                 as_json: bool) -> None:
    """Test a package folder (every version) or one version folder before publishing."""
    stages, renders = offline_stages(directory)
    offline_ok = all(s.status != "failed" for s in stages)
    if cluster and not offline_ok:
        stages += [StageResult(n, skipped="an offline stage failed")
                   for n in ("install", "smoke", "upgrade", "uninstall")]
    elif cluster:
        versions = _versions(renders)
        client = BerthClient(cluster, token, timeout=60)
        stages += ClusterRun(client, versions, timeout=timeout).stages()
    _report(directory, stages, as_json)
    if not offline_ok:
        raise SystemExit(EXIT_INVALID)
    if any(s.status == "failed" for s in stages):
        raise SystemExit(EXIT_FAILED)


def _versions(renders: list[Any]) -> list[tuple[Any, str]]:
    """``(package, folder)`` of each rendered version, oldest first, once each."""
    seen: dict[str, tuple[Any, str]] = {}
    for rendered in renders:
        seen.setdefault(rendered.folder, (rendered.package, rendered.folder))
    return sorted(seen.values(), key=lambda pair: pair[0].sort_key)


def _report(directory: Path, stages: list[StageResult], as_json: bool) -> None:
    passed = all(s.status != "failed" for s in stages)
    if as_json:
        click.echo(json.dumps({"path": os.fspath(directory), "passed": passed,
                               "stages": [s.to_dict() for s in stages]}, indent=2))
        return
    for stage in stages:
        mark, colour = _MARKS[stage.status]
        summary = stage.skipped or (f"{len(stage.problems)} problem(s)" if stage.problems
                                    else _notes(stage.notes))
        click.echo(f"{stage.name:10} {click.style(f'{mark:8}', fg=colour)} {summary}")
        for problem in stage.problems:
            click.echo(f"  {problem['path']}: {problem['message']}")
    verdict = "passed" if passed else "FAILED"
    click.secho(f"{directory}: {verdict}", fg="green" if passed else "red",
                err=not passed)


def _notes(notes: list[str]) -> str:
    """What a passed stage checked, on one line (the first four, and how many more)."""
    shown = "; ".join(notes[:4])
    return shown + (f"; and {len(notes) - 4} more" if len(notes) > 4 else "")
