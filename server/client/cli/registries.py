"""`berth registries list|add|remove`: image registries Berth pulls from with credentials.

``add HOST --username U --password-stdin`` reads the password from standard input (one
line; a prompt without echo when stdin is a terminal), so it never sits in the shell's
history or the process list. The server seals it at once and never shows it back:
``list`` prints hosts and usernames. Admin tokens only.
"""

from __future__ import annotations

import sys

import click

from .plumbing import api_client, api_command, json_option, print_json, table


@click.group(invoke_without_command=True)
@json_option
@click.pass_context
@api_command
def registries(ctx: click.Context, as_json: bool) -> None:
    """List image registries (host and username), or add and remove them."""
    if ctx.invoked_subcommand:
        return None
    return _list(as_json)


@registries.command("list")
@json_option
@api_command
def registries_list(as_json: bool) -> None:
    """List image registries: host and username, never a password."""
    _list(as_json)


def _list(as_json: bool) -> None:
    items = api_client().registries()
    if as_json:
        return print_json(items)
    click.echo(table([(r.get("host"), r.get("username") or "(none)", r.get("updated_by", ""))
                      for r in items], ("HOST", "USERNAME", "CHANGED BY")))
    return None


@registries.command("add")
@click.argument("host")
@click.option("--username", "-u", help="The registry user Berth pulls as.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from standard input (one line).")
@json_option
@api_command
def registries_add(host: str, username: str | None, password_stdin: bool,
                   as_json: bool) -> None:
    """Add registry HOST (name[:port]) or replace its credentials.

    Without --username Berth pulls from HOST anonymously.
    """
    password = _password(username, password_stdin)
    view = api_client().add_registry(host, username=username, password=password)
    if as_json:
        return print_json(view)
    who = f" as {view.get('username')}" if view.get("username") else " (no credentials)"
    click.echo(f"registry {view.get('host')} added{who}")
    return None


def _password(username: str | None, from_stdin: bool) -> str | None:
    """The password to send: read from stdin, prompted for, or None without a user."""
    if username is None:
        if from_stdin:
            raise click.UsageError("--password-stdin needs --username")
        return None
    if from_stdin:
        if sys.stdin.isatty():
            return str(click.prompt("Password", hide_input=True))
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise click.UsageError("no password on standard input")
        return line
    return str(click.prompt(f"Password for {username}", hide_input=True))


@registries.command("remove")
@click.argument("host")
@api_command
def registries_remove(host: str) -> None:
    """Forget registry HOST and its credentials."""
    api_client().remove_registry(host)
    click.echo(f"registry {host} removed")


def register(cli: click.Group) -> None:
    """Add this module's commands to the `berth` group."""
    cli.add_command(registries)
