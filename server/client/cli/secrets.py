"""`berth secrets show SERVICE`: a service's secret option values, for admins.

The server shows them only to the admin role and writes each showing to its audit
stream; the values Berth generated (``x-generate``) are marked. ``berth install``
prints the values generated at install once, with :func:`echo_generated`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import click

from .plumbing import api_client, api_command, json_option, print_json, table


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def echo_generated(generated: Iterable[Mapping[str, Any]]) -> None:
    """The secrets an install generated, to stderr, with the one-time warning."""
    items = list(generated)
    if not items:
        return
    click.echo("generated secrets (shown once; later: `berth secrets show SERVICE`, "
               "admins only):", err=True)
    for item in items:
        click.echo(f"  {item['path']}: {_text(item['value'])}", err=True)


@click.group()
def secrets() -> None:
    """Show a service's secret option values (admins; every showing is audited)."""


@secrets.command("show")
@click.argument("service")
@json_option
@api_command
def show(service: str, as_json: bool) -> None:
    """Show SERVICE's secret option values in clear, generated ones marked."""
    answer = api_client().secrets(service)
    if as_json:
        return print_json(answer)
    rows = [(s["path"], _text(s["value"]), "generated" if s.get("generated") else "given")
            for s in answer.get("secrets") or []]
    if not rows:
        click.echo(f"{answer.get('service', service)} has no secret values")
        return None
    click.echo(table(rows, ("OPTION", "VALUE", "SOURCE")))
    return None


def register(cli: click.Group) -> None:
    """Add ``secrets`` to the `berth` group."""
    cli.add_command(secrets)
