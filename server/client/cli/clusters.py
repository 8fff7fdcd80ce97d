"""`berth clusters`: where services run — Berth's own agents (``default``) or a Swarm."""

from __future__ import annotations

import click

from .plumbing import api_client, api_command, json_option, print_json, table


@click.group(invoke_without_command=True)
@json_option
@click.pass_context
@api_command
def clusters(ctx: click.Context, as_json: bool) -> None:
    """List clusters, or add and remove Swarm clusters."""
    if ctx.invoked_subcommand:
        return None
    items = api_client().clusters()
    if as_json:
        return print_json(items)
    rows = [(c["name"], c.get("kind", ""), c.get("url") or "-", c.get("services", 0))
            for c in items]
    click.echo(table(rows, ("NAME", "KIND", "URL", "SERVICES")))
    return None


@clusters.command("list")
@json_option
@api_command
def clusters_list(as_json: bool) -> None:
    """List clusters (the same as `berth clusters`)."""
    items = api_client().clusters()
    if as_json:
        return print_json(items)
    rows = [(c["name"], c.get("kind", ""), c.get("url") or "-", c.get("services", 0))
            for c in items]
    click.echo(table(rows, ("NAME", "KIND", "URL", "SERVICES")))
    return None


@clusters.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--kind", type=click.Choice(["swarm"]), default="swarm", show_default=True)
@click.option("--ports", help="Host ports Berth assigns to tasks, e.g. 30000-30999.")
@json_option
@api_command
def clusters_add(name: str, url: str, kind: str, ports: str | None, as_json: bool) -> None:
    """Add a Swarm by its manager's URL (swarm://host:port, tcp://manager:2376, unix://…).

    TLS files are read as for agents: <BERTH_AGENT_TLS_DIR>/<NAME>/{ca,cert,key}.pem.
    """
    port_range = None
    if ports:
        low, _, high = ports.partition("-")
        if not (low.isdigit() and high.isdigit()):
            raise click.BadParameter("like 30000-30999", param_hint="--ports")
        port_range = [int(low), int(high)]
    record = api_client().add_cluster(name, url, kind=kind, port_range=port_range)
    print_json(record) if as_json else click.echo(f"cluster {record['name']} added")


@clusters.command("remove")
@click.argument("name")
@api_command
def clusters_remove(name: str) -> None:
    """Remove a Swarm cluster's record (refused while services are on it)."""
    api_client().remove_cluster(name)
    click.echo(f"cluster {name} removed")


def register(cli: click.Group) -> None:
    """Add `berth clusters` to the `berth` group."""
    cli.add_command(clusters)
