"""`berth` remote commands for the cluster: deployments, agents, repositories, login.

They share :mod:`.plumbing` with :mod:`.remote`: one-line errors with exit codes,
tables for people and ``--json`` for scripts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import click

from server.client.api import DEFAULT_URL, BerthClient, save_config

from .common import EXIT_AUTH, fail
from .plumbing import api_client, api_command, json_option, print_json, progress_line, table


@click.command()
@click.option("--service", help="Only this service's deployments.")
@click.option("--id", "deployment_id", help="Show one deployment with its steps.")
@click.option("--limit", type=click.IntRange(1, 500), default=20)
@json_option
@api_command
def deployments(service: str | None, deployment_id: str | None, limit: int,
                as_json: bool) -> None:
    """List recent deployments, or show one."""
    client = api_client()
    if deployment_id:
        d = client.deployment(deployment_id)
        if as_json:
            return print_json(d)
        click.echo(f"{d['id']} {d.get('kind', '')} {d.get('service', '')}: {d.get('status')}")
        click.echo(progress_line(d))
        click.echo(table([(s.get("name"), s.get("status"), s.get("message", ""))
                          for s in d.get("steps") or []], ("STEP", "STATUS", "MESSAGE")))
        return None
    items = client.deployments(service=service, limit=limit)
    if as_json:
        return print_json(items)
    rows = [(d["id"], d.get("service", ""), d.get("kind", ""), d.get("status", ""),
             d.get("actor", "")) for d in items]
    click.echo(table(rows, ("ID", "SERVICE", "KIND", "STATUS", "BY")))


@click.group(invoke_without_command=True)
@click.option("--service", help="Only this service's volumes.")
@json_option
@click.pass_context
@api_command
def volumes(ctx: click.Context, service: str | None, as_json: bool) -> None:
    """List Berth's named volumes by service and agent, in use or left over."""
    if ctx.invoked_subcommand is not None:
        return None
    result = api_client().volumes(service=service)
    if as_json:
        return print_json(result)
    rows = [(v.get("service", ""), v["name"], v.get("agent", ""), v.get("state", "") + (
             f" (moved to {v['moved_to']})" if v.get("moved_to") else ""),
             human_size(v.get("size"))) for v in result.get("volumes") or []]
    click.echo(table(rows, ("SERVICE", "VOLUME", "AGENT", "STATE", "SIZE")))
    for agent in result.get("unreachable") or []:
        click.echo(f"agent {agent} did not answer: its volumes are not listed", err=True)
    return None


def human_size(size: int | None) -> str:
    """Bytes for people (``12.0 MiB``); ``unknown`` when the engine did not say."""
    if size is None:
        return "unknown"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


# agents and repositories ---------------------------------------------------------------
@click.group(invoke_without_command=True)
@json_option
@click.pass_context
@api_command
def agents(ctx: click.Context, as_json: bool) -> None:
    """List agents, or add, drain and remove them."""
    if ctx.invoked_subcommand:
        return None
    items = api_client().agents()
    if as_json:
        return print_json(items)
    rows = []
    for a in items:
        cap, used = a.get("capacity") or {}, a.get("allocated") or {}
        rows.append((a["id"], a.get("url", ""), a.get("state", ""),
                     f"{used.get('cpus', 0)}/{cap.get('cpus', '')}",
                     f"{used.get('mem', 0)}/{cap.get('mem', '')}",
                     ",".join(f"{k}={v}" for k, v in (a.get("attributes") or {}).items())))
    click.echo(table(rows, ("ID", "URL", "STATE", "CPUS", "MEM (MiB)", "ATTRIBUTES")))


@agents.command("add")
@click.argument("url")
@click.option("--id", "agent_id")
@click.option("--attr", "attrs", multiple=True, help="key=value (repeatable).")
@click.option("--cpus", type=float)
@click.option("--mem", type=int, help="MiB")
@click.option("--ports", help="Host port range, e.g. 20000-20299.")
@json_option
@api_command
def agents_add(url: str, agent_id: str | None, attrs: Sequence[str], cpus: float | None,
               mem: int | None, ports: str | None, as_json: bool) -> None:
    """Register a Docker engine (tcp://…, unix://…, ssh://…) as an agent."""
    attributes = dict(a.split("=", 1) for a in attrs if "=" in a)
    capacity = {k: v for k, v in (("cpus", cpus), ("mem", mem)) if v is not None} or None
    port_range = None
    if ports:
        low, _, high = ports.partition("-")
        if not (low.isdigit() and high.isdigit()):
            raise click.BadParameter("like 20000-20299", param_hint="--ports")
        port_range = [int(low), int(high)]
    agent = api_client().add_agent(url, agent_id=agent_id, attributes=attributes,
                                capacity=capacity, port_range=port_range)
    print_json(agent) if as_json else click.echo(f"agent {agent['id']} added")


@agents.command("drain")
@click.argument("agent_id")
@api_command
def agents_drain(agent_id: str) -> None:
    """Place nothing new on an agent and move its instances away."""
    api_client().drain_agent(agent_id)
    click.echo(f"agent {agent_id} draining")


@agents.command("remove")
@click.argument("agent_id")
@click.option("--force", is_flag=True, help="Even if instances remain on it.")
@api_command
def agents_remove(agent_id: str, force: bool) -> None:
    """Remove an agent."""
    api_client().remove_agent(agent_id, force=force)
    click.echo(f"agent {agent_id} removed")


@click.command("list")
@json_option
@api_command
def repo_list(as_json: bool) -> None:
    """List repositories in priority order."""
    items = api_client().repositories()
    if as_json:
        return print_json(items)
    rows = [(r.get("name"), r.get("priority"), r.get("kind", ""), r.get("location") or
             r.get("url", ""), "stale" if r.get("stale") else "") for r in items]
    click.echo(table(rows, ("NAME", "PRIORITY", "KIND", "LOCATION", "")))


@click.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--priority", type=int, help="Lower wins a package name.")
@click.option("--format", "fmt", type=click.Choice(["berth", "dcos"]),
              help="berth: a Berth static index (default); dcos: a DC/OS Universe "
                   "repo-up-to-*.json.")
@click.option("--interval", type=float, help="Seconds between refreshes.")
@api_command
def repo_add(name: str, url: str, priority: int | None, fmt: str | None,
             interval: float | None) -> None:
    """Add a remote repository by URL."""
    answer = api_client().add_repository(name, url, priority=priority, format=fmt,
                                      interval=interval)
    line = f"repository {name} added"
    if isinstance(answer, dict) and answer.get("pending"):
        line += "; a worker fetches it now (`berth repo list` shows its state)"
    click.echo(line)


@click.command("remove")
@click.argument("name")
@api_command
def repo_remove(name: str) -> None:
    """Remove a repository."""
    api_client().remove_repository(name)
    click.echo(f"repository {name} removed")


@click.command()
@click.option("--url", help="Server URL (default: BERTH_URL or http://127.0.0.1:8080).")
@click.option("--token", help="API token (asked for when not given).")
@api_command
def login(url: str | None, token: str | None) -> None:
    """Check a token against the server and save URL and token for later commands."""
    url = url or os.environ.get("BERTH_URL") or DEFAULT_URL
    token = token or click.prompt("token", hide_input=True)
    me = BerthClient(url, token).whoami()
    if me.get("kind") == "anonymous":
        fail("the server did not accept the token", code=EXIT_AUTH)
    path = save_config(url, token)
    click.echo(f"logged in to {url} as {me['actor']} ({me['role']}); saved in {path}")


COMMANDS = (deployments, volumes, agents, login)
REPO_COMMANDS = (repo_list, repo_add, repo_remove)
