"""What every ``berth`` command that talks to the API shares.

The client from the environment (``BERTH_URL``, ``BERTH_TOKEN`` or ``berth login``),
API errors shown as one line with a hint and the exit code of
:func:`~server.client.cli.common.exit_code_for_api`, ``--json`` for scripts, plain
tables and the progress line of a deployment. ``remote`` and ``remote_cluster`` import
this; it imports neither.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import click

from server.client.api import BerthAPIError, BerthClient

from .common import exit_code_for_api, fail

F = TypeVar("F", bound=Callable[..., Any])

_HINTS = {401: "set BERTH_TOKEN or run `berth login`",
          403: "ask an admin for a token with a higher role",
          409: "see `berth deployments` or pick another name"}

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
wait_option = click.option("--wait", is_flag=True,
                           help="Wait for the deployment to end; the exit code says how.")


def api_client() -> BerthClient:
    """The client of the server and token this environment names."""
    return BerthClient.from_env()


def fail_api(error: BerthAPIError, hint: str | None = None) -> None:
    """Show an API error as one line (plus details and a hint) and exit with its code."""
    fail(error.message, hint=error.hint or hint, code=exit_code_for_api(error.code, error.status),
         details=error.details)


def api_command(func: F) -> F:
    """Turn API errors into one line, a hint and an exit code (no traceback)."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BerthAPIError as exc:
            fail_api(exc, _HINTS.get(exc.status))

    return wrapper  # type: ignore[return-value]


def print_json(value: Any) -> None:
    """Print a value as indented, key-sorted JSON (for scripts)."""
    click.echo(json.dumps(value, indent=2, sort_keys=True))


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> str:
    """Plain aligned columns."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]
    return "\n".join(lines)


def progress_line(d: dict[str, Any]) -> str:
    """One line of a deployment's progress: a bar, counts, status and current step."""
    p = d.get("progress") or {}
    total = int(p.get("total") or 0)
    healthy = int(p.get("healthy") or 0)
    width = 24
    filled = int(width * healthy / total) if total else 0
    # the step written last: a pull's step per agent is rewritten in place
    done = [s for s in d.get("steps") or [] if s.get("status") != "pending"]
    step: dict[str, Any] = max(reversed(done), key=lambda s: float(s.get("at") or 0),
                               default={})
    return (f"[{'#' * filled}{'.' * (width - filled)}] {healthy}/{total} healthy "
            f"(placed {p.get('placed', 0)}, started {p.get('started', 0)}) "
            f"{d.get('status', '')}: {step.get('name', '')} {step.get('message', '')}").rstrip()
