"""The ``berth`` command line: one click group, commands grouped by area.

- ``local.py``   — ``lint``, ``render`` (work on a directory, no server)
- ``publish.py`` — ``package build``, ``publish``, ``yank``, ``repo index``
- ``package_test.py`` — ``package test`` (the package test kit; ``package_cluster.py``
  holds its cluster stages)
- ``remote.py``  — the API client commands (``search``, ``install``, ``status``, …)
- ``remote_cluster.py`` — ``deployments``, ``agents``, ``repo list|add|remove``, ``login``
- ``routing.py`` — ``endpoints``, ``routes``, ``proxies list|add|remove``
- ``moves.py``   — ``move`` (an instance to another agent, with its data), ``volumes prune``
- ``backup.py``  — ``backup create|list|show|delete|restore|download``
- ``plumbing.py`` — what the API commands share (client, errors, ``--json``, tables)
- ``secrets.py`` — ``secrets show SERVICE`` (an admin sees a service's secret values)
- ``admin.py``   — ``admin token|user …`` (talk to Redis directly, for operators)
- ``dev.py``     — ``dev up|down|status`` (the local test bed)
- ``registries.py`` — ``registries list|add|remove`` (image registries with credentials)
- ``images.py``  — ``images load FILE``, ``images push-local REF`` (no registry at all)

Errors are shown as one line with the reason and a hint, never a traceback; the exit
codes come from one table in ``common.py`` and are listed in ``berth --help``.
"""

from __future__ import annotations

import click

from . import (
    admin,
    backup,
    clusters,
    dev,
    images,
    local,
    moves,
    package_test,
    publish,
    registries,
    remote,
    routing,
    secrets,
)
from .common import EXIT_HELP, run_main


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_HELP)
@click.version_option(package_name="berth")
def cli() -> None:
    """Berth: an app store for a cluster of Docker hosts."""


for _module in (local, publish, package_test, remote, secrets, routing, backup, admin, dev,
                registries, images, clusters):
    _module.register(cli)
for _command in moves.COMMANDS:
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    run_main(cli)
