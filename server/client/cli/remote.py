"""`berth` commands that talk to a Berth server through :class:`server.client.BerthClient`.

This module has the catalog and service commands; ``remote_cluster`` has deployments,
agents, repositories and ``login``; both use :mod:`.plumbing`.

Tables for people, ``--json`` for scripts. Errors are one line with the reason and a
hint, and an exit code from :mod:`server.client.cli.common`; ``install --wait`` exits 0 only
when the deployment succeeded.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from . import remote_cluster
from .common import EXIT_FAILED, EXIT_INVALID, EXIT_NOT_FOUND, fail
from .plumbing import (
    api_client,
    api_command,
    json_option,
    print_json,
    progress_line,
    table,
    wait_option,
)
from .secrets import echo_generated


def parse_set(pairs: Sequence[str], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """``a.b=c`` pairs merged into ``base``; values parse as JSON when they can."""
    options = dict(base or {})
    for pair in pairs:
        path, sep, raw = pair.partition("=")
        if not sep or not path or any(not p for p in path.split(".")):
            raise click.BadParameter(f"{pair!r} is not key.path=value", param_hint="--set")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        node = options
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
        node[parts[-1]] = value
    return options


def _read_options(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        value = json.loads(text)
    except (OSError, ValueError) as exc:
        fail(f"cannot read options from {path}: {exc}", code=EXIT_INVALID)
    if not isinstance(value, dict):
        fail(f"{path}: the options must be a JSON object", code=EXIT_INVALID)
    return value


def _split_ref(ref: str) -> tuple[str, str | None]:
    """``NAME@RANGE`` → (name, range or None)."""
    name, _, version = ref.partition("@")
    return name, version or None


def _constraints(values: Sequence[str]) -> list[list[str]]:
    parsed = []
    for value in values:
        parts = value.split(":")
        if len(parts) not in (2, 3) or not all(parts[:2]):
            raise click.BadParameter(f"{value!r} is not attribute:OPERATOR[:value]",
                                     param_hint="--constraint")
        parsed.append(parts)
    return parsed


# waiting --------------------------------------------------------------------------
def wait_and_report(client: Any, deployment: dict[str, Any], as_json: bool) -> None:
    """Wait for a deployment with a live progress line; exit non-zero unless it succeeded."""
    tty = sys.stderr.isatty() and not as_json
    last = [""]

    def show(d: dict[str, Any]) -> None:
        line = progress_line(d)
        if line == last[0] or as_json:
            return
        last[0] = line
        if tty:
            click.echo("\r\033[K" + line[:200], nl=False, err=True)
        else:
            click.echo(line, err=True)

    final = client.wait_for_deployment(deployment["id"], on_progress=show)
    if tty:
        click.echo("", err=True)
    if as_json:
        print_json(final)
    if final.get("status") != "succeeded":
        error = final.get("error")
        reason = error.get("message", "") if isinstance(error, dict) else str(error or "")
        fail(f"deployment {final['id']} {final.get('status')}" + (f": {reason}" if reason else ""),
             hint=f"see `berth deployments --id {final['id']}`", code=EXIT_FAILED)
    if not as_json:
        click.echo(f"deployment {final['id']} succeeded")


def report_deployment(client: Any, answer: dict[str, Any], as_json: bool, wait: bool,
                      what: str) -> None:
    """Print the deployment an answer started; with ``wait``, follow it to its end."""
    deployment = answer["deployment"]
    if wait:
        if not as_json:
            click.echo(f"{what}: deployment {deployment['id']}")
        wait_and_report(client, deployment, as_json)
    elif as_json:
        print_json(answer)
    else:
        click.echo(f"{what}: deployment {deployment['id']} {deployment.get('status', '')}")
        click.echo(f"follow it with `berth deployments --id {deployment['id']}`")


# catalog ----------------------------------------------------------------------------
@click.command()
@click.argument("query", required=False, default="")
@click.option("--tag", help="Only packages with this tag.")
@click.option("--page", type=click.IntRange(1), default=1)
@click.option("--per-page", type=click.IntRange(1, 100), default=24)
@json_option
@api_command
def search(query: str, tag: str | None, page: int, per_page: int, as_json: bool) -> None:
    """Search the catalog."""
    result = api_client().search(query, tag=tag, page=page, per_page=per_page)
    if as_json:
        return print_json(result)
    rows = [(p["name"], p["version"], (p.get("description") or "")[:60]) for p in result["items"]]
    click.echo(table(rows, ("NAME", "VERSION", "DESCRIPTION")))
    click.echo(f"{result['total']} package(s), page {result['page']}")


@click.command()
@click.argument("ref")
@json_option
@api_command
def show(ref: str, as_json: bool) -> None:
    """Show a package (NAME or NAME@VERSION)."""
    name, version = _split_ref(ref)
    client = api_client()
    pkg = client.package_version(name, version) if version else client.package(name)
    if as_json:
        return print_json(pkg)
    for label, key in (("name", "name"), ("version", "version"), ("title", "title"),
                       ("description", "description"), ("maintainer", "maintainer"),
                       ("website", "website"), ("repository", "repository")):
        if pkg.get(key):
            click.echo(f"{label + ':':13} {pkg[key]}")
    if pkg.get("format") and pkg["format"] != "berth":
        upstream = pkg.get("upstreamVersion")
        click.echo(f"{'format:':13} {pkg['format']}"
                   + (f" (upstream version {upstream})" if upstream else ""))
    if pkg.get("tags"):
        click.echo(f"{'tags:':13} {', '.join(pkg['tags'])}")
    if pkg.get("yanked"):
        click.echo(f"{'yanked:':13} {pkg['yanked']}")
    if pkg.get("also_in"):
        click.echo(f"{'also in:':13} {', '.join(pkg['also_in'])} (another package of this "
                   f"name; installs come from {pkg.get('repository')})")
    if pkg.get("versions"):
        click.echo(f"{'versions:':13} {', '.join(v['version'] for v in pkg['versions'][:10])}")
    if pkg.get("unsupported"):
        click.echo("cannot run on Docker hosts:")
        for reason in pkg["unsupported"]:
            click.echo(f"  - {reason}")


@click.command()
@click.argument("name")
@json_option
@api_command
def versions(name: str, as_json: bool) -> None:
    """List a package's versions, newest first."""
    items = api_client().versions(name)
    if as_json:
        return print_json(items)
    click.echo(table([(v["version"], v.get("yanked") or "", ", ".join(v.get("unsupported") or []))
                      for v in items], ("VERSION", "YANKED", "UNSUPPORTED")))


# services -----------------------------------------------------------------------------
@click.command()
@click.argument("ref")
@click.option("--name", help="Service name (default: the package name).")
@click.option("--options", "options_file", help="JSON file of options ('-' for stdin).")
@click.option("--set", "sets", multiple=True, help="An option as key.path=value (repeatable).")
@click.option("--instances", type=click.IntRange(0, 1000))
@click.option("--constraint", "constraints", multiple=True,
              help="attribute:OPERATOR[:value], added to the package's own (repeatable).")
@click.option("--cluster", help="Install onto this cluster (default: Berth's own agents; "
                                "`berth clusters` lists them).")
@click.option("--hand-over-credentials", "handover", multiple=True, metavar="OPTION",
              help="Confirm handing the linked service's credentials over for this linked "
                   "option (repeatable).")
@wait_option
@json_option
@api_command
def install(ref: str, name: str | None, options_file: str | None, sets: Sequence[str],
            instances: int | None, constraints: Sequence[str], cluster: str | None,
            handover: Sequence[str], wait: bool, as_json: bool) -> None:
    """Install NAME[@RANGE] as a service."""
    package, version = _split_ref(ref)
    options = parse_set(sets, _read_options(options_file))
    client = api_client()
    answer = client.install(package, version=version, name=name, options=options or None,
                            instances=instances, constraints=_constraints(constraints) or None,
                            cluster=cluster, handover=handover or None)
    service = answer.get("service") or {}
    what = f"installing {service.get('name', name or package)} " \
           f"({(service.get('package') or {}).get('version', version or '')})"
    if wait or not as_json:  # (--json without --wait prints the whole answer, them too)
        echo_generated(answer.get("generated_secrets") or ())
    report_deployment(client, answer, as_json, wait, what)


@click.command()
@json_option
@api_command
def services(as_json: bool) -> None:
    """List installed services."""
    items = api_client().services()
    if as_json:
        return print_json(items)
    rows = [(s["name"], (s.get("package") or {}).get("name", ""),
             (s.get("package") or {}).get("version", ""), s.get("status", ""),
             f"{(s.get('counts') or {}).get('healthy', 0)}/{s.get('instances', 0)}")
            for s in items]
    click.echo(table(rows, ("NAME", "PACKAGE", "VERSION", "STATUS", "HEALTHY")))


@click.command()
@click.argument("name")
@json_option
@api_command
def status(name: str, as_json: bool) -> None:
    """Show a service and each of its instances."""
    svc = api_client().service(name)
    if as_json:
        return print_json(svc)
    pkg = svc.get("package") or {}
    counts = svc.get("counts") or {}
    click.echo(f"{svc['name']}: {pkg.get('name', '')} {pkg.get('version', '')} "
               f"generation {svc.get('generation', '')}, {svc.get('status', '')}, "
               f"{counts.get('healthy', 0)}/{svc.get('instances', 0)} healthy")
    rows = [(i["id"], i.get("agent", ""), i.get("state", ""), i.get("health", ""),
             ",".join(f"{k}={v}" for k, v in (i.get("ports") or {}).items()),
             i.get("address", "")) for i in svc.get("instances_list") or []]
    click.echo(table(rows, ("INSTANCE", "AGENT", "STATE", "HEALTH", "PORTS", "ADDRESS")))


@click.command()
@click.argument("name")
@click.argument("instances", type=click.IntRange(0, 1000))
@wait_option
@json_option
@api_command
def scale(name: str, instances: int, wait: bool, as_json: bool) -> None:
    """Change a service's instance count."""
    client = api_client()
    scaled = {"deployment": client.scale(name, instances)["deployment"]}
    report_deployment(client, scaled, as_json, wait, f"scaling {name} to {instances}")


@click.command()
@click.argument("name")
@click.argument("range_", metavar="[@RANGE]", required=False)
@click.option("--options", "options_file", help="JSON file of options ('-' for stdin).")
@click.option("--set", "sets", multiple=True, help="An option as key.path=value (repeatable).")
@click.option("--repository", help="Move the service to this repository's package "
              "(by default an upgrade stays in the repository it was installed from).")
@click.option("--backup", is_flag=True, help="Back up the service's named volumes first; "
              "the upgrade starts only once the backup succeeded.")
@click.option("--hand-over-credentials", "handover", multiple=True, metavar="OPTION",
              help="Confirm handing the linked service's credentials over for this linked "
                   "option (repeatable; one confirmed before stays while it links the same "
                   "service).")
@wait_option
@json_option
@api_command
def upgrade(name: str, range_: str | None, options_file: str | None, sets: Sequence[str],
            repository: str | None, backup: bool, handover: Sequence[str], wait: bool,
            as_json: bool) -> None:
    """Upgrade a service to another version (newest by default) and/or options."""
    version = range_.lstrip("@") if range_ else None
    options = parse_set(sets, _read_options(options_file)) or None
    client = api_client()
    answer = client.upgrade(name, version=version, options=options, repository=repository,
                            backup=backup, handover=handover or None)
    report_deployment(client, answer, as_json, wait, f"upgrading {name}")


@click.command()
@click.argument("name")
@click.option("--generation", type=click.IntRange(1), help="Default: the previous one.")
@click.option("--restore-data", is_flag=True, help="Also restore that generation's newest "
              "backup into the service's volumes (e.g. the one upgrade --backup took).")
@wait_option
@json_option
@api_command
def rollback(name: str, generation: int | None, restore_data: bool, wait: bool,
             as_json: bool) -> None:
    """Return a service to an earlier generation."""
    client = api_client()
    answer = client.rollback(name, generation, restore_data=restore_data)
    report_deployment(client, answer, as_json, wait, f"rolling back {name}")


@click.command()
@click.argument("name")
@wait_option
@json_option
@api_command
def restart(name: str, wait: bool, as_json: bool) -> None:
    """Replace every instance of a service."""
    client = api_client()
    report_deployment(client, client.restart(name), as_json, wait, f"restarting {name}")


@click.command()
@click.argument("name")
@click.option("--delete-data", is_flag=True,
              help="Also remove the service's named volumes on every agent.")
@click.option("--force", is_flag=True,
              help="Uninstall even when other services link to it.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@wait_option
@json_option
@api_command
def uninstall(name: str, delete_data: bool, force: bool, yes: bool, wait: bool,
              as_json: bool) -> None:
    """Stop and remove every instance of a service, then the service.

    Its named volumes stay (listed as left over by `berth volumes`) unless
    --delete-data, which removes them on every agent once the containers are gone.
    """
    question = (f"Uninstall {name} and DELETE ITS DATA (every named volume, on every agent)?"
                if delete_data else f"Uninstall {name} and remove all its containers?")
    if not yes and not click.confirm(question):
        fail("not confirmed", hint="pass --yes in scripts", code=EXIT_FAILED)
    client = api_client()
    answer = client.uninstall(name, delete_data=delete_data, force=force)
    if not as_json:
        _say_volumes(answer)
    report_deployment(client, answer, as_json, wait, f"uninstalling {name}")


def _say_volumes(answer: dict[str, Any]) -> None:
    """Tell which volumes stay after an uninstall (or go, with --delete-data)."""
    volumes = answer.get("volumes") or []
    if not volumes:
        return
    where = ", ".join(f"{v['name']} on {v['agent']}" for v in volumes)
    if answer.get("delete_data"):
        click.echo(f"deleting volumes: {where}")
    else:
        click.echo(f"volumes stay: {where} (remove them with --delete-data next time, "
                   "or list them with `berth volumes`)")


@click.command()
@click.argument("name")
@click.argument("instance", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output.")
@click.option("--tail", type=click.IntRange(0, 10000), default=100)
@api_command
def logs(name: str, instance: str | None, follow: bool, tail: int) -> None:
    """Print an instance's output (the first instance by default)."""
    client = api_client()
    if not instance:
        found = client.service(name).get("instances_list") or []
        if not found:
            fail(f"service {name} has no instances", code=EXIT_NOT_FOUND)
        instance = found[0]["id"]
    out: Any = sys.stdout.buffer
    try:
        for chunk in client.logs(name, instance, tail=tail, follow=follow):
            out.write(chunk)
            out.flush()
    except KeyboardInterrupt:
        pass


COMMANDS = (search, show, versions, install, services, status, scale, upgrade, rollback,
            restart, uninstall, logs)


def register(cli: click.Group) -> None:
    """Add the remote commands to the `berth` group (``repo`` may exist already)."""
    for command in COMMANDS + remote_cluster.COMMANDS:
        cli.add_command(command)
    repo = cli.commands.get("repo")
    if not isinstance(repo, click.Group):
        repo = click.Group("repo", help="List, add and remove repositories.")
        cli.add_command(repo)
    for command in remote_cluster.REPO_COMMANDS:
        repo.add_command(command)
