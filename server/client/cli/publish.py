"""`berth` commands for maintainers and repository admins.

- ``berth package build DIR [-o FILE]`` — lint a package version folder and bundle it
- ``berth publish BUNDLE|DIR``           — send a bundle to the server (maintainer)
- ``berth yank NAME VERSION --reason``   — hide a published version from new installs
- ``berth package owners NAME``          — who a package name belongs to
- ``berth package owners add|remove NAME --token T|--user U|--repository R`` and
  ``berth package owners transfer NAME --repository R`` — an admin shares, unshares
  or gives away a name
- ``berth repo index DIR [-o OUT]``      — write a static index any web server can host
- ``berth repo refresh NAME``           — fetch a remote repository now (admin)

``berth repo list|add|remove`` live in ``remote.py``; both modules add to one ``repo``
group, whichever registers first creates it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from catalog.bundle import build_bundle, lint_bundle, read_bundle
from catalog.static_index import write_index
from server.client.api import BerthAPIError

from .common import EXIT_INVALID, EXIT_UNAVAILABLE, fail
from .plumbing import api_client, fail_api, print_json


def register(cli: click.Group) -> None:
    """Add this module's commands to the `berth` group."""
    cli.add_command(package_group)
    cli.add_command(publish)
    cli.add_command(yank)
    existing = cli.commands.get("repo")
    if isinstance(existing, click.Group):
        for command in repo_group.commands.values():
            existing.add_command(command)
    else:
        cli.add_command(repo_group)


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a client call, turning its errors into one-line failures."""
    try:
        return fn(*args, **kwargs)
    except BerthAPIError as exc:
        fail_api(exc)


def _bundle_of(path: Path) -> bytes:
    """The bundle at ``path``, or one built from a package folder (linted first)."""
    if path.is_dir():
        data = build_bundle(path)
        _, problems = lint_bundle(data)
        if problems:
            fail(f"{path} has {len(problems)} problem(s)", code=EXIT_INVALID, details=problems,
                 hint="fix them and run `berth lint` again")
        return data
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", code=EXIT_INVALID)
    return b""  # pragma: no cover - fail() exits


# package build --------------------------------------------------------------------------
@click.group("package")
def package_group() -> None:
    """Build package bundles; see and change who a package name belongs to."""


@package_group.command("build")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the bundle (default: NAME-VERSION.tar.gz here).")
def package_build(directory: Path, output: Path | None) -> None:
    """Lint a package version folder and write its bundle (.tar.gz with digests)."""
    data = _bundle_of(directory)
    _, manifest = read_bundle(data)
    target = output or Path(f"{manifest['name']}-{manifest['version']}.tar.gz")
    target.write_bytes(data)
    click.echo(f"wrote {target} ({len(data)} bytes, {len(manifest['files'])} files)")


# package owners -------------------------------------------------------------------------
class _ListByDefault(click.Group):
    """``berth package owners NAME`` lists; ``add``/``remove``/``transfer`` change."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["list", *args]
        return super().parse_args(ctx, args)


@package_group.group("owners", cls=_ListByDefault)
def owners_group() -> None:
    """Who a package name belongs to: ``berth package owners NAME``.

    A name belongs to the repository that first served it and, in the hosted
    repository, to the maintainers who first published it; only they publish or yank
    it. An admin shares a name (``add``), unshares it (``remove``) or gives it to
    another repository (``transfer``).
    """


def _owner_option(func: Any) -> Any:
    for option in (click.option("--repository", help="A repository (by name)."),
                   click.option("--user", help="A store-front user (publishes to hosted)."),
                   click.option("--token", help="A token id, or a name one token has "
                                "(publishes to hosted).")):
        func = option(func)
    return func


def _one_owner(token: str | None, user: str | None, repository: str | None) -> tuple[str, str]:
    given = [(k, v) for k, v in (("token", token), ("user", user),
                                 ("repository", repository)) if v]
    if len(given) != 1:
        fail("give exactly one of --token, --user or --repository", code=EXIT_INVALID)
    return given[0]


def _show_owners(view: dict[str, Any]) -> None:
    click.echo(f"{'name:':13} {view['name']}")
    click.echo(f"{'repositories:':13} {', '.join(view.get('repositories') or []) or '-'}")
    people = [f"{m['id']} ({m.get('name') or '?'})" for m in view.get("maintainers") or []]
    click.echo(f"{'maintainers:':13} {', '.join(people) or '-'}")
    if view.get("resolves_to"):
        click.echo(f"{'installs from:':13} {view['resolves_to']}")
    if view.get("also_in"):
        click.echo(f"{'also in:':13} {', '.join(view['also_in'])}")


@owners_group.command("list")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def owners_list(name: str, as_json: bool) -> None:
    """Show the repositories and maintainers NAME belongs to."""
    view = _call(api_client().owners, name)
    if as_json:
        print_json(view)
    else:
        _show_owners(view)


@owners_group.command("add")
@click.argument("name")
@_owner_option
def owners_add(name: str, token: str | None, user: str | None,
               repository: str | None) -> None:
    """Share NAME with a token, a user or a repository (admin)."""
    kind, value = _one_owner(token, user, repository)
    _show_owners(_call(api_client().add_owner, name, **{kind: value}))


@owners_group.command("remove")
@click.argument("name")
@_owner_option
def owners_remove(name: str, token: str | None, user: str | None,
                  repository: str | None) -> None:
    """Stop sharing NAME with a token, a user or a repository (admin)."""
    kind, value = _one_owner(token, user, repository)
    _show_owners(_call(api_client().remove_owner, name, kind, value))


@owners_group.command("transfer")
@click.argument("name")
@click.option("--repository", required=True, help="The repository NAME goes to.")
def owners_transfer(name: str, repository: str) -> None:
    """Give NAME to one repository alone; new installs come from it (admin)."""
    _show_owners(_call(api_client().transfer_owner, name, repository))


# publish / yank -------------------------------------------------------------------------
@click.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
def publish(source: Path) -> None:
    """Publish a bundle (or a package version folder) to the server's hosted repository."""
    data = _bundle_of(source)
    answer = _call(api_client().publish, data)
    click.echo(f"published {answer['name']} {answer['version']} ({answer.get('digest')})")


@click.command()
@click.argument("name")
@click.argument("version")
@click.option("--reason", required=True, help="Why (shown beside the version).")
def yank(name: str, version: str, reason: str) -> None:
    """Yank a published version: no new installs or range matches; still listed.

    Only a maintainer the name belongs to, or an admin, may yank."""
    _call(api_client().yank, name, version, reason)
    click.echo(f"yanked {name} {version}: {reason}")


# repositories ---------------------------------------------------------------------------
@click.group("repo")
def repo_group() -> None:
    """Static repository indexes and the server's repositories."""


@repo_group.command("index")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              default=Path("berth-index"), show_default=True,
              help="Folder to write index.json and packages/ into.")
def repo_index(directory: Path, output: Path) -> None:
    """Write a static index of a repository folder for any web server to host."""
    if output.resolve() == directory.resolve():
        fail("write the index to another folder than the repository", code=EXIT_INVALID)
    summary = write_index(directory, output)
    for problem in summary["problems"][:50]:
        click.echo(f"skipped {problem.get('path')}: {problem.get('message')}", err=True)
    click.echo(f"{output}: {summary['packages']} packages, {summary['written']} files "
               f"written, {summary['removed']} removed")


@repo_group.command("refresh")
@click.argument("name")
def repo_refresh(name: str) -> None:
    """Fetch a remote repository now (admin)."""
    _show_refresh(_call(api_client().refresh_repository, name))


def _show_refresh(answer: dict[str, Any]) -> None:
    result = answer.get("refresh") or {}
    click.echo(f"{answer['name']}: {result.get('status')} ({answer.get('packages', 0)} "
               f"packages, {result.get('changed', 0)} changed)")
    if answer.get("stale"):
        fail(f"{answer['name']} is stale: {answer.get('error')}", code=EXIT_UNAVAILABLE,
             hint="its last good copy stays in the catalog")
