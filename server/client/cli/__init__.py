"""The ``berth`` command line: one click group, commands grouped by area.

- ``local.py``   — ``lint``, ``render`` (work on a directory, no server)
- ``publish.py`` — ``package build``, ``publish``, ``yank``, ``repo index``
- ``remote.py``  — the API client commands (``search``, ``install``, ``status``, …)
- ``remote_cluster.py`` — ``deployments``, ``agents``, ``repo list|add|remove``, ``login``
- ``plumbing.py`` — what the API commands share (client, errors, ``--json``, tables)
- ``admin.py``   — ``admin token|user …`` (talk to Redis directly, for operators)
- ``dev.py``     — ``dev up|down|status`` (the local test bed)

Errors are shown as one line with the reason and a hint, never a traceback; the exit
codes come from one table in ``common.py`` and are listed in ``berth --help``.
"""

from __future__ import annotations

import click

from . import admin, dev, local, publish, remote
from .common import EXIT_HELP, run_main


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_HELP)
@click.version_option(package_name="berth")
def cli() -> None:
    """Berth: an app store for a cluster of Docker hosts."""


for _module in (local, publish, remote, admin, dev):
    _module.register(cli)


def main() -> None:
    """Console-script entry point."""
    run_main(cli)
