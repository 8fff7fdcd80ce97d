"""`berth move` (a stateful instance to another agent, with its data) and
`berth volumes prune` (remove the left-over volumes moves and uninstalls leave)."""

from __future__ import annotations

import time
from typing import Any

import click

from .common import EXIT_FAILED, fail
from .plumbing import api_client, api_command, json_option, print_json, wait_option
from .remote import report_deployment
from .remote_cluster import volumes

PRUNE_WAIT = 300.0   # seconds `volumes prune` waits for the worker's answer


@click.command()
@click.argument("service")
@click.argument("instance")
@click.option("--to", "target", required=True, metavar="AGENT", help="The agent to move to.")
@click.option("--accept-empty", is_flag=True,
              help="Move even though its agent does not answer: it starts there with "
                   "EMPTY volumes (the data stays on the agent that does not answer).")
@wait_option
@json_option
@api_command
def move(service: str, instance: str, target: str, accept_empty: bool, wait: bool,
         as_json: bool) -> None:
    """Move INSTANCE of SERVICE to another agent with its data.

    The instance is stopped, every named volume is copied to AGENT (checked by
    checksums), it starts there and once it is healthy the old volumes are kept as
    left over, until `berth volumes prune`. If a step fails, it runs on its old
    agent again and nothing is deleted.
    """
    client = api_client()
    answer = client.move(service, instance, target, accept_empty=accept_empty)
    report_deployment(client, answer, as_json, wait, f"moving {instance} to {target}")


@volumes.command("prune")
@click.option("--service", help="Only this service's left-over volumes.")
@click.option("--agent", help="Only on this agent.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@api_command
def prune(service: str | None, agent: str | None, yes: bool, as_json: bool) -> None:
    """Remove left-over volumes (no container uses them, no instance is bound to them).

    Their data is deleted: left over are the old copies of moved instances and the
    volumes of services uninstalled without --delete-data.
    """
    client = api_client()
    listed = [v for v in client.volumes(service=service).get("volumes") or []
              if v.get("state") == "left over" and agent in (None, v.get("agent"))]
    if not listed:
        return print_json({"removed": [], "kept": []}) if as_json else click.echo(
            "no left-over volumes")
    names = ", ".join(f"{v['agent']}/{v['name']}" for v in listed)
    if not yes and not click.confirm(f"DELETE the data of {len(listed)} left-over volumes "
                                     f"({names})?"):
        fail("not confirmed", hint="pass --yes in scripts", code=EXIT_FAILED)
    record = _wait(client, client.prune_volumes(service=service, agent=agent)["prune"])
    if as_json:
        return print_json(record)
    for where in record.get("removed") or []:
        click.echo(f"removed {where}")
    for where in record.get("kept") or []:
        click.echo(f"kept {where} (agent away, or the volume is in use)", err=True)
    return None


def _wait(client: Any, record: dict[str, Any]) -> dict[str, Any]:
    """Poll a prune request until a worker has done it."""
    deadline = time.monotonic() + PRUNE_WAIT
    while record.get("status") != "done":
        if time.monotonic() > deadline:
            fail(f"volume prune {record['id']} not done after {PRUNE_WAIT:g} s",
                 hint="is a worker running?", code=EXIT_FAILED)
        time.sleep(0.5)
        record = client.prune(record["id"])
    return record


COMMANDS = (move,)
