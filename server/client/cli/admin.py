"""`berth admin`: tokens and users, for operators.

These commands talk to Redis directly (``BERTH_REDIS_URL``), not to the API: they
are how the first admin token comes to exist. Token secrets are printed once, at
creation, and stored only as hashes.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from catalog.settings_table import ROLES

from .common import EXIT_INVALID, EXIT_NOT_FOUND, EXIT_UNAVAILABLE, fail
from .plumbing import table

F = TypeVar("F", bound=Callable[..., Any])


def _store() -> Any:
    # Imported when the command runs: the server's parts need Flask and Redis, which the
    # rest of the CLI must not load (tests/unit/test_code_checks.py blocks them).
    from server.context import connect_redis
    from server.settings import Settings  # (the same reason)
    from worker.store import Store  # (the same reason)

    settings = Settings.from_env()
    return Store(connect_redis(settings.redis_endpoint, settings.redis_timeout),
                 prefix=settings.prefix)


def redis_command(func: F) -> F:
    """Turn Redis trouble into one line and exit code 7."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import redis  # only when an admin command runs: the CLI imports no Redis

        try:
            return func(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            fail(f"cannot reach Redis: {exc}", hint="set BERTH_REDIS_URL",
                 code=EXIT_UNAVAILABLE)

    return wrapper  # type: ignore[return-value]


def _when(stamp: str) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.gmtime(float(stamp)))
    except ValueError:
        return ""


@click.group()
def admin() -> None:
    """Operator commands: API tokens and store-front users (talk to Redis)."""


@admin.group()
def token() -> None:
    """Create, list and revoke API tokens."""


@token.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", required=True, help="What the token is for (shown in lists and logs).")
@click.option("--raw", is_flag=True, help="Print only the token (for scripts).")
@redis_command
def token_create(role: str, name: str, raw: bool) -> None:
    """Create a token; its secret is printed once and never again."""
    from server.auth import create_token  # Flask-side code: only when the command runs

    record, secret = create_token(_store(), name=name, role=role, created_by="cli")
    if raw:
        click.echo(secret)
        return
    click.echo(f"token {record['id']} ({role}, {name}):")
    click.echo(secret)
    click.echo("keep it safe: it is shown only this once", err=True)


@token.command("list")
@click.option("--json", "as_json", is_flag=True)
@redis_command
def token_list(as_json: bool) -> None:
    """List tokens (never their secrets)."""
    items = _store().auth.list_tokens()
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    click.echo(table([(t["id"], t.get("name"), t.get("role"), _when(t.get("created_at", "")),
                       _when(t.get("last_used_at", ""))) for t in items],
                     ("ID", "NAME", "ROLE", "CREATED", "LAST USED")))


@token.command("revoke")
@click.argument("token_id")
@redis_command
def token_revoke(token_id: str) -> None:
    """Revoke a token by its id (the part after ``berth_``)."""
    if not _store().auth.revoke_token(token_id):
        fail(f"no token {token_id}", hint="see `berth admin token list`", code=EXIT_NOT_FOUND)
    click.echo(f"token {token_id} revoked")


@admin.group()
def user() -> None:
    """Store-front users (name and password)."""


def _password(stdin: bool) -> str:
    if stdin:
        value = sys.stdin.readline().rstrip("\n")
    else:
        value = click.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(value) < 8:
        fail("the password must have at least 8 characters", code=EXIT_INVALID)
    return value


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@redis_command
def user_add(name: str, role: str, password_stdin: bool) -> None:
    """Add a user."""
    from server.auth import hash_password  # Flask-side code: only when the command runs

    if not name or len(name) > 100 or not name.replace("-", "").replace(".", "").replace(
            "_", "").replace("@", "").isalnum():
        fail("a user name is 1-100 letters, digits, '-', '_', '.', '@'", code=EXIT_INVALID)
    secret = _password(password_stdin)
    if not _store().auth.add_user(name, role=role, password_hash=hash_password(secret),
                                  created_by="cli"):
        fail(f"user {name} exists", hint="use `berth admin user passwd`", code=EXIT_INVALID)
    click.echo(f"user {name} ({role}) added")


@user.command("list")
@click.option("--json", "as_json", is_flag=True)
@redis_command
def user_list(as_json: bool) -> None:
    """List users (never their password hashes)."""
    items = _store().auth.list_users()
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    click.echo(table([(u["name"], u.get("role"), _when(u.get("created_at", "")))
                      for u in items], ("NAME", "ROLE", "CREATED")))


@user.command("remove")
@click.argument("name")
@redis_command
def user_remove(name: str) -> None:
    """Remove a user (their sessions end at once)."""
    if not _store().auth.remove_user(name):
        fail(f"no user {name}", code=EXIT_NOT_FOUND)
    click.echo(f"user {name} removed")


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@redis_command
def user_passwd(name: str, password_stdin: bool) -> None:
    """Set a user's password (their other sessions end)."""
    from server.auth import hash_password  # Flask-side code: only when the command runs

    if not _store().auth.set_password(name, hash_password(_password(password_stdin))):
        fail(f"no user {name}", code=EXIT_NOT_FOUND)
    click.echo(f"password of {name} changed")


def register(cli: click.Group) -> None:
    """Add ``berth admin`` to the `berth` group."""
    cli.add_command(admin)
