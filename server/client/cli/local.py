"""`berth lint` and `berth render`: work on package folders, no server needed.

``lint`` prints every problem (``path: message``, one per line) and exits non-zero
when there is any. ``render`` resolves ``PACKAGE[@RANGE]`` in a local repository
(``--repo``, else ``$BERTH_UNIVERSE_DIR``, else the checkout's ``universe/``), merges
``--options FILE`` and ``--set key.path=value`` over the defaults and prints the spec.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from catalog import (
    Catalog,
    CatalogError,
    NotFound,
    Package,
    PackageInvalid,
    lint_paths,
    load_repository_dir,
    render_service,
)
from catalog.generated_secrets import resolve_generated
from catalog.options import deep_merge

from .common import EXIT_INVALID, EXIT_USAGE, exit_code_for, fail

_CHECKOUT_UNIVERSE = Path(__file__).resolve().parents[3] / "universe"


def default_repo() -> Path:
    """Where ``render`` looks for packages when ``--repo`` is not given."""
    return Path(os.environ.get("BERTH_UNIVERSE_DIR") or _CHECKOUT_UNIVERSE)


def parse_set(assignment: str) -> tuple[list[str], Any]:
    """``a.b=value`` → ``(["a", "b"], value)``; the value is JSON when it parses as
    JSON (numbers, booleans, objects), else the text itself.

    :raises click.BadParameter: when there is no ``=`` or an empty key.
    """
    key, sep, text = assignment.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise click.BadParameter(f"{assignment!r}: expected key.path=value", param_hint="--set")
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    return parts, value


def _nest(parts: list[str], value: Any) -> dict[str, Any]:
    nested: Any = value
    for part in reversed(parts):
        nested = {part: nested}
    return nested


def _read_options(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", code=EXIT_USAGE)
    except ValueError as exc:
        fail(f"{path} is not JSON: {exc}", code=EXIT_INVALID)
    if not isinstance(data, dict):
        fail(f"{path} must hold a JSON object of options", code=EXIT_INVALID)
    return data


def _split_ref(ref: str) -> tuple[str, str | None]:
    name, _, wanted = ref.partition("@")
    return name.strip(), (wanted.strip() or None)


def _show(error: CatalogError) -> None:
    fail(error.message, hint=error.hint, code=exit_code_for(error), details=error.details)


def _resolve(catalog: Catalog, name: str, wanted: str | None,
             problems: list[dict[str, str]]) -> Package:
    """Resolve, and when nothing matches say so with the problems of that package.

    :raises CatalogError: what ``Catalog.resolve`` raises, or ``PackageInvalid``.
    """
    try:
        return catalog.resolve(name, wanted)
    except NotFound:
        own = [p for p in problems if f"/packages/{name}/" in p["path"]]
        if not own:
            raise
        raise PackageInvalid(f"{name} has faulty versions that were left out",
                             package=name, details=own,
                             hint=f"run: berth lint <repository>/packages/{name}") from None


@click.command("lint")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def lint_command(paths: tuple[str, ...]) -> None:
    """Check package folders, package version folders or repositories.

    Prints every problem at once, one `file#/json/path: message` per line.
    """
    problems = lint_paths(paths)
    for problem in problems:
        click.echo(f"{problem['path']}: {problem['message']}")
    if problems:
        click.secho(f"{len(problems)} problem(s) found", fg="red", err=True)
        raise SystemExit(EXIT_INVALID)
    click.echo(f"ok: no problems in {', '.join(paths)}")


@click.command("render")
@click.argument("package")
@click.option("--repo", "repo", type=click.Path(file_okay=False),
              help="Repository folder (default: $BERTH_UNIVERSE_DIR or universe/).")
@click.option("--options", "options_file", type=click.Path(dir_okay=False),
              help="JSON file of options.")
@click.option("--set", "assignments", multiple=True, metavar="KEY.PATH=VALUE",
              help="Set one option (repeatable); VALUE is JSON or text.")
@click.option("--name", "service_name", default=None, help="Service name (default: package).")
@click.option("--instances", type=click.IntRange(0, 1000), default=None,
              help="Number of instances.")
def render_command(package: str, repo: str | None, options_file: str | None,
                   assignments: tuple[str, ...], service_name: str | None,
                   instances: int | None) -> None:
    """Print the service spec PACKAGE[@RANGE] renders to, as JSON."""
    options = _read_options(options_file)
    for assignment in assignments:
        options = deep_merge(options, _nest(*parse_set(assignment)))
    name, wanted = _split_ref(package)
    folder = Path(repo) if repo else default_repo()
    try:
        repository, problems = load_repository_dir(folder, name=folder.name or "local",
                                                   priority=0)
        found = _resolve(Catalog([repository]), name, wanted, problems)
        resolved, _made = resolve_generated(found, options)  # (made afresh, as at an install)
        spec = render_service(found, resolved, service_name=service_name or found.name,
                              instances=instances)
    except CatalogError as exc:
        _show(exc)
    click.echo(json.dumps(spec, indent=2))


def register(cli: click.Group) -> None:
    """Add this module's commands to the `berth` group."""
    cli.add_command(lint_command)
    cli.add_command(render_command)
