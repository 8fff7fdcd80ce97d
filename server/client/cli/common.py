"""What every ``berth`` command shares: error display and the one table of exit codes.

Every error Berth reports carries a stable ``code`` (``not_found``, ``conflict``,
``invalid``, ``unauthorized``, …). :data:`EXIT_CODES` maps those codes to exit codes,
once: an API error by its code, else by the family its HTTP status names; a local
error (``CatalogError``) by its class's code or the nearest parent class's code. The
same table is printed in ``berth --help`` (:data:`EXIT_HELP`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from catalog.errors import CatalogError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INVALID, EXIT_NOT_FOUND = 0, 1, 2, 3, 4
EXIT_CONFLICT, EXIT_AUTH, EXIT_UNAVAILABLE = 5, 6, 7

# What each exit code means, for ``berth --help``.
EXIT_MEANINGS: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "done"),
    (EXIT_FAILED, "what was asked for failed (e.g. a deployment ended failed)"),
    (EXIT_USAGE, "usage: a wrong command, option or argument"),
    (EXIT_INVALID, "invalid input (lint problems, options, a refused request)"),
    (EXIT_NOT_FOUND, "not found"),
    (EXIT_CONFLICT, "conflict (exists already, in progress, changed meanwhile)"),
    (EXIT_AUTH, "not signed in, or not allowed"),
    (EXIT_UNAVAILABLE, "server or connection trouble, or too many requests: try later"),
)

# Error code (a family's code) → exit code. The one place exit codes are chosen.
EXIT_CODES: dict[str, int] = {
    "bad_request": EXIT_INVALID,
    "invalid": EXIT_INVALID,
    "too_large": EXIT_INVALID,
    "unsupported_media_type": EXIT_INVALID,
    "not_found": EXIT_NOT_FOUND,
    "conflict": EXIT_CONFLICT,
    "unauthorized": EXIT_AUTH,
    "forbidden": EXIT_AUTH,
    "too_many_requests": EXIT_UNAVAILABLE,
    "unreachable": EXIT_UNAVAILABLE,
    "unavailable": EXIT_UNAVAILABLE,
    "internal": EXIT_UNAVAILABLE,
}

# The family an HTTP status names, for API error codes the table does not list
# (``package_not_found`` is a ``not_found``, ``options_invalid`` an ``invalid``).
_STATUS_FAMILY = {400: "bad_request", 401: "unauthorized", 403: "forbidden",
                  404: "not_found", 409: "conflict", 413: "too_large",
                  415: "unsupported_media_type", 422: "invalid",
                  429: "too_many_requests"}


def _exit_help() -> str:
    """The ``Exit codes`` epilog of ``berth --help`` (``\\b`` keeps click from rewrapping)."""
    lines = [f"  {code}  {meaning}" for code, meaning in EXIT_MEANINGS]
    return "\b\nExit codes:\n" + "\n".join(lines)


EXIT_HELP = _exit_help()


def exit_code_of(codes: Sequence[str], status: int | None = None) -> int:
    """The exit code of an error with these codes (most specific first) and HTTP status.

    ``status`` 0 means no answer came; 5xx and no answer are server trouble.
    """
    for code in codes:
        if code in EXIT_CODES:
            return EXIT_CODES[code]
    if status is None:
        return EXIT_FAILED
    family = _STATUS_FAMILY.get(status, "unavailable" if status == 0 or status >= 500 else "")
    return EXIT_CODES.get(family, EXIT_FAILED)


def exit_code_for(error: CatalogError) -> int:
    """The exit code of a local error: its class's code, else its nearest parent's."""
    codes = [str(cls.__dict__["code"]) for cls in type(error).__mro__ if "code" in cls.__dict__]
    return exit_code_of(codes)


def exit_code_for_api(code: str, status: int) -> int:
    """The exit code of an API error answer (or of no answer: ``status`` 0)."""
    return exit_code_of([code], status)


def fail(message: str, *, hint: str | None = None, code: int = EXIT_FAILED,
         details: list[dict[str, str]] | None = None) -> None:
    """Print one error line (plus details and a hint) to stderr and exit."""
    click.secho(f"error: {message}", fg="red", err=True)
    for d in details or []:
        click.echo(f"  {d.get('path', '')}: {d.get('message', '')}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)
    sys.exit(code)


def run_main(cli: Any) -> None:
    """Run the click group, turning known errors into one-line messages."""
    try:
        cli.main(standalone_mode=True)
    except CatalogError as exc:  # raised by local commands
        fail(exc.message, hint=exc.hint, code=exit_code_for(exc), details=exc.details)
