"""`berth` commands: remote (placeholder until its owner fills it)."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Add this module's commands to the `berth` group."""
