"""``berth backup create|list|show|delete|restore|download``: backups of services' volumes.

A backup copies every named volume of one instance of a service into the backup store
(a volume on the backup agent, or a directory the workers share); a restore writes one
back, into its own service or another (``--to``). Both are deployments of the service:
``--wait`` follows them to the end.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from .common import EXIT_FAILED, fail
from .plumbing import api_client, api_command, json_option, print_json, table, wait_option
from .remote import report_deployment


def _size(value: Any) -> str:
    """Bytes as people read them (``-`` when unknown)."""
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)


def _when(value: Any) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(value))) if value else "-"


@click.group("backup")
def backup() -> None:
    """Back up and restore services' named volumes."""


@backup.command("create")
@click.argument("service")
@click.option("--instance", help="The instance to copy (default: the oldest healthy one).")
@click.option("--keep", type=click.IntRange(1, 1000),
              help="Keep only this many of the service's newest backups (older ones are "
                   "deleted once this one succeeded).")
@wait_option
@json_option
@api_command
def create(service: str, instance: str | None, keep: int | None, wait: bool,
           as_json: bool) -> None:
    """Back up every named volume of SERVICE."""
    client = api_client()
    answer = client.create_backup(service, instance=instance, keep=keep)
    if not as_json:
        click.echo(f"backup {answer['backup']['id']} of {service} "
                   f"({answer['backup']['consistency']})")
    report_deployment(client, answer, as_json, wait, f"backing up {service}")


@backup.command("list")
@click.argument("service", required=False)
@json_option
@api_command
def list_(service: str | None, as_json: bool) -> None:
    """List backups, newest first (of SERVICE when given)."""
    items = api_client().backups(service)
    if as_json:
        return print_json(items)
    rows = [(b["id"], b["service"], f"{b['package']['name']}@{b['package']['version']}",
             b["generation"], b["status"], _size(b.get("size")), _when(b.get("created_at")))
            for b in items]
    click.echo(table(rows, ("ID", "SERVICE", "PACKAGE", "GEN", "STATUS", "SIZE", "TAKEN")))


@backup.command("show")
@click.argument("backup_id", metavar="ID")
@json_option
@api_command
def show(backup_id: str, as_json: bool) -> None:
    """Show one backup: what it holds, from where, its checksum."""
    b = api_client().backup(backup_id)
    if as_json:
        return print_json(b)
    where = b.get("store") or {}
    kept = (f"volume {where.get('volume')} on {where.get('agent')}"
            if where.get("kind") == "volume" else f"directory {where.get('path')}")
    for label, value in (
            ("id", b["id"]), ("service", b["service"]),
            ("package", f"{b['package']['name']}@{b['package']['version']}"),
            ("generation", b["generation"]), ("status", b["status"]),
            ("consistency", b.get("consistency")),
            ("instance", f"{b.get('instance')} on {b.get('agent')}"),
            ("size", _size(b.get("size"))), ("checksum", b.get("checksum") or "-"),
            ("taken", _when(b.get("created_at"))), ("kept in", kept),
            ("error", b.get("error"))):
        if value is not None:
            click.echo(f"{label + ':':13} {value}")
    for v in b.get("volumes") or []:
        click.echo(f"  volume {v['name']} ({v['container_path']}): {_size(v.get('size'))}, "
                   f"checksum {(v.get('checksum') or '-')[:16]}")
    click.echo(f"{'options:':13} {b.get('options')}")


@backup.command("delete")
@click.argument("backup_id", metavar="ID")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@api_command
def delete(backup_id: str, yes: bool, as_json: bool) -> None:
    """Delete a backup (its files in the store, then its record)."""
    if not yes and not click.confirm(f"Delete backup {backup_id}? Its data cannot be "
                                     "recovered."):
        fail("not confirmed", hint="pass --yes in scripts", code=EXIT_FAILED)
    answer = api_client().delete_backup(backup_id)
    if as_json:
        return print_json(answer)
    click.echo(f"deleting backup {backup_id}")


@backup.command("restore")
@click.argument("backup_id", metavar="ID")
@click.option("--to", "to", help="Restore into this service instead of the backup's own "
              "(its volumes are matched by mount path).")
@click.option("--agent", "agent", metavar="AGENT", help="Write the data onto this agent "
              "and run the service there (the old copy stays, marked left over).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@wait_option
@json_option
@api_command
def restore(backup_id: str, to: str | None, agent: str | None, yes: bool, wait: bool,
            as_json: bool) -> None:
    """Restore a backup: stop the service, replace its volumes' data, start it again.

    The data goes back onto the agents that held it; when one of them cannot take the
    service (unreachable, drained, full) the restore is refused and names it — pass
    --agent to restore onto another agent. When they are gone, it goes to any agent
    that fits. Either way the instances run where the data was written."""
    client = api_client()
    if not yes:
        target = to or client.backup(backup_id)["service"]
        if not click.confirm(f"Replace ALL the data of {target} with backup {backup_id}?"):
            fail("not confirmed", hint="pass --yes in scripts", code=EXIT_FAILED)
    answer = client.restore_backup(backup_id, to=to, agent=agent)
    report_deployment(client, answer, as_json, wait, f"restoring {backup_id}")


@backup.command("download")
@click.argument("backup_id", metavar="ID")
@click.option("-o", "--output", help="File to write ('-' for stdout; default ID.tar.gz).")
@api_command
def download(backup_id: str, output: str | None) -> None:
    """Download a backup as .tar.gz (admin)."""
    chunks = api_client().download_backup(backup_id)
    if output == "-":
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return
    path = Path(output or f"{backup_id}.tar.gz")
    with open(path, "wb") as out:
        for chunk in chunks:
            out.write(chunk)
    click.echo(f"wrote {path} ({_size(path.stat().st_size)})")


def register(cli: click.Group) -> None:
    """Add ``berth backup`` to the group."""
    cli.add_command(backup)
