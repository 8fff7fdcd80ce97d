"""What every ``berth`` command shares: error display and exit codes."""

from __future__ import annotations

import sys
from typing import Any

import click

from catalog.errors import CatalogError

# Exit codes: 0 ok, 1 the thing asked for failed (e.g. a deployment ended failed),
# 2 usage, 3 invalid input (lint, options), 4 not found, 5 conflict,
# 6 auth, 7 server or connection trouble.
EXIT_FAILED, EXIT_USAGE, EXIT_INVALID, EXIT_NOT_FOUND, EXIT_CONFLICT = 1, 2, 3, 4, 5
EXIT_AUTH, EXIT_UNAVAILABLE = 6, 7


def fail(message: str, *, hint: str | None = None, code: int = EXIT_FAILED,
         details: list[dict[str, str]] | None = None) -> None:
    """Print one error line (plus details and a hint) to stderr and exit."""
    click.secho(f"error: {message}", fg="red", err=True)
    for d in details or []:
        click.echo(f"  {d.get('path', '')}: {d.get('message', '')}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)
    sys.exit(code)


def exit_code_for(error: CatalogError) -> int:
    """Map a catalog error to an exit code."""
    from catalog import errors as e

    if isinstance(error, e.NotFound):
        return EXIT_NOT_FOUND
    if isinstance(error, e.Conflict):
        return EXIT_CONFLICT
    if isinstance(error, e.InvalidInput):
        return EXIT_INVALID
    return EXIT_FAILED


def run_main(cli: Any) -> None:
    """Run the click group, turning known errors into one-line messages."""
    try:
        cli.main(standalone_mode=True)
    except CatalogError as exc:  # raised by local commands
        fail(exc.message, hint=exc.hint, code=exit_code_for(exc), details=exc.details)
