"""`berth endpoints NAME`, `berth routes`, `berth proxies list|add|remove`: reaching
what was installed. Thin clients of the API, like the other remote commands."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from .plumbing import api_client, api_command, json_option, print_json, table


@click.command()
@click.argument("name")
@click.option("--wait", type=click.FloatRange(0, 30), default=None,
              help="Wait up to this many seconds for the endpoints to change.")
@click.option("--etag", help="With --wait: the ETag of the endpoints already known.")
@json_option
@api_command
def endpoints(name: str, wait: float | None, etag: str | None, as_json: bool) -> None:
    """The healthy instances of a service, per port name."""
    found = api_client().endpoints(name, wait=wait, etag=etag)
    if as_json:
        return print_json(found)
    if found.get("unchanged"):
        click.echo(f"unchanged ({found['etag']})")
        return None
    rows = [(port, f"{e['address']}:{e['port']}", e["agent"], e["generation"], e["instance"])
            for port, eps in sorted((found.get("ports") or {}).items()) for e in eps]
    click.echo(table(rows, ("PORT", "ADDRESS", "AGENT", "GENERATION", "INSTANCE")))
    click.echo(f"etag {found['etag']}")
    return None


@click.command()
@json_option
@api_command
def routes(as_json: bool) -> None:
    """Every route (a service's `expose`), with the service it goes to and its state."""
    items = api_client().routes()
    if as_json:
        return print_json(items)
    rows = [(",".join(r["hosts"]), r.get("pathPrefix", "/"), r["service"], r["portName"],
             r.get("group", ""), len(r.get("upstreams") or []), _state(r))
            for r in items]
    click.echo(table(rows, ("HOSTS", "PATH", "SERVICE", "PORT", "GROUP", "UPSTREAMS",
                            "STATE")))
    return None


def _state(route: dict[str, Any]) -> str:
    """A route's state; one in conflict names the route the proxies serve instead."""
    clash = route.get("conflict") or {}
    if route.get("state") != "conflict" or not clash:
        return str(route.get("state", ""))
    prefix = clash.get("pathPrefix") or "/"
    where = f"{clash.get('other_host')}{'' if prefix == '/' else prefix}"
    return f"conflict with {clash.get('service')} ({clash.get('route')}: {where})"


def _when(stamp: Any) -> str:
    if not stamp:
        return "never"
    return datetime.fromtimestamp(float(stamp), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@click.group(invoke_without_command=True)
@json_option
@click.pass_context
@api_command
def proxies(ctx: click.Context, as_json: bool) -> None:
    """List the proxies Berth keeps in sync, or add and remove them."""
    if ctx.invoked_subcommand:
        return None
    _list(as_json)
    return None


def _tls(proxy: dict[str, Any]) -> str:
    """``127.0.0.1:8443 (internal)``, or ``-`` for a proxy without an HTTPS listener."""
    if not proxy.get("listen_tls"):
        return "-"
    return f"{proxy['listen_tls']} ({proxy.get('tls_issuer') or 'internal'})"


def _list(as_json: bool) -> None:
    items = api_client().proxies()
    if as_json:
        return print_json(items)
    rows = [(p["name"], p["kind"], p["admin_url"], p["listen"], _tls(p), p.get("group", ""),
             (p.get("sync") or {}).get("state", ""), _when((p.get("sync") or {}).get(
                 "last_sync_at")), (p.get("sync") or {}).get("error") or "")
            for p in items]
    click.echo(table(rows, ("NAME", "KIND", "ADMIN URL", "LISTEN", "TLS", "GROUP", "SYNC",
                            "LAST SYNC", "ERROR")))
    return None


@proxies.command("list")
@json_option
@api_command
def proxies_list(as_json: bool) -> None:
    """List the proxies with their sync state."""
    _list(as_json)


@proxies.command("add")
@click.argument("name")
@click.option("--kind", type=click.Choice(["caddy"]), required=True)
@click.option("--admin-url", required=True, help="e.g. http://127.0.0.1:2019")
@click.option("--listen", required=True, help="Address Berth's routes listen on, "
                                               "e.g. 127.0.0.1:8088")
@click.option("--listen-tls", help="Address the routes with tls: true are served on over "
                                   "HTTPS, e.g. 127.0.0.1:8443 (without it they are not "
                                   "served by this proxy).")
@click.option("--tls-issuer", type=click.Choice(["internal", "acme"]), default=None,
              help="Who signs the HTTPS certificates: Caddy's local CA (internal, the "
                   "default) or an ACME CA such as Let's Encrypt (acme).")
@click.option("--acme-email", help="With --tls-issuer acme: the address the CA may write to.")
@click.option("--group", help="Route group it serves (default: external).")
@json_option
@api_command
def proxies_add(name: str, kind: str, admin_url: str, listen: str, listen_tls: str | None,
                tls_issuer: str | None, acme_email: str | None, group: str | None,
                as_json: bool) -> None:
    """Register a proxy; a worker loads the routes into it."""
    proxy = api_client().add_proxy(name, kind=kind, admin_url=admin_url, listen=listen,
                                   group=group, listen_tls=listen_tls, tls_issuer=tls_issuer,
                                   acme_email=acme_email)
    print_json(proxy) if as_json else click.echo(f"proxy {proxy['name']} added")


@proxies.command("remove")
@click.argument("name")
@api_command
def proxies_remove(name: str) -> None:
    """Forget a proxy (what Berth loaded into it stays until it is reconfigured)."""
    api_client().remove_proxy(name)
    click.echo(f"proxy {name} removed")


COMMANDS = (endpoints, routes, proxies)


def register(cli: click.Group) -> None:
    """Add the routing commands to the `berth` group."""
    for command in COMMANDS:
        cli.add_command(command)
