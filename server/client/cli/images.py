"""`berth images load FILE` / `berth images push-local REF`: images without a registry.

For admins with no registry at all. ``load`` streams a ``docker save`` tarball to the
engine of every agent; ``push-local`` copies an image from a local engine (``--from``,
else ``DOCKER_HOST``, else ``/var/run/docker.sock``) to every agent that lacks it,
``docker save`` into ``docker load``. The agents come from the API (``berth agents``:
their engine URLs); the image goes from this machine straight to each engine, so it
runs where the engines are reachable (TLS agents: ``BERTH_AGENT_TLS_DIR``, as for the
workers). Unreachable agents are skipped and named; the exit code says whether every
agent has the image.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .common import EXIT_FAILED, EXIT_UNAVAILABLE, fail
from .plumbing import api_client, api_command, json_option, print_json, table

if TYPE_CHECKING:
    from worker.docker_agent import DockerAgent
    from worker.image_copy import Outcome

LOCAL_ENGINE = "unix:///var/run/docker.sock"
agent_option = click.option("--agent", "only", multiple=True,
                            help="Only this agent (repeatable); default every agent.")


@click.group()
def images() -> None:
    """Put images on the agents without a registry (a tarball, or a local engine)."""


@images.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@agent_option
@json_option
@api_command
def images_load(file: Path, only: Sequence[str], as_json: bool) -> None:
    """Load FILE, a `docker save` tarball, on every agent (streamed to each engine)."""
    from worker.image_copy import load_everywhere  # docker-py: only when a command runs

    engines, skipped = _engines(only)
    _report(load_everywhere(engines, file), skipped, as_json)


@images.command("push-local")
@click.argument("ref")
@click.option("--from", "source_url", help="The local engine's URL (default: DOCKER_HOST, "
              f"else {LOCAL_ENGINE}).")
@agent_option
@json_option
@api_command
def images_push_local(ref: str, source_url: str | None, only: Sequence[str],
                      as_json: bool) -> None:
    """Copy image REF from a local engine to every agent that lacks it."""
    from worker.image_copy import copy_everywhere  # docker-py: see images_load

    source = _source(source_url or os.environ.get("DOCKER_HOST") or LOCAL_ENGINE, ref)
    engines, skipped = _engines(only)
    _report(copy_everywhere(engines, source, ref), skipped, as_json)


def _source(url: str, ref: str) -> DockerAgent:
    """The local engine, which must hold ``ref``."""
    from worker.docker_agent import DockerAgent  # docker-py: see images_load
    from worker.errors import AgentError  # beside the funnel it names: see images_load

    source = DockerAgent(url, timeout=300)
    try:
        present = source.has_image(ref)
    except AgentError as error:
        fail(error.message, hint="give the local engine with --from (or DOCKER_HOST)",
             code=EXIT_UNAVAILABLE)
    if not present:
        fail(f"{url} has no image {ref}", hint="`docker images` lists what it has",
             code=EXIT_FAILED)
    return source


def _engines(only: Sequence[str]) -> tuple[list[tuple[str, DockerAgent]], list[str]]:
    """The engines of the agents to fill, and the ids of unreachable ones skipped."""
    from worker.errors import AgentError  # beside the funnel it names: see images_load
    from worker.image_copy import engines_of  # docker-py: see images_load

    agents: list[dict[str, Any]] = api_client().agents()
    unknown = sorted(set(only) - {str(a["id"]) for a in agents})
    if unknown:
        fail(f"no such agent: {', '.join(unknown)}", hint="`berth agents` lists them",
             code=EXIT_FAILED)
    wanted = [a for a in agents if not only or a["id"] in only]
    skipped = [str(a["id"]) for a in wanted if a.get("state") == "unreachable"]
    try:
        engines = engines_of([a for a in wanted if str(a["id"]) not in skipped],
                             os.environ.get("BERTH_AGENT_TLS_DIR", ""))
    except AgentError as error:
        fail(error.message, hint=error.hint, code=EXIT_FAILED, details=error.details)
    return engines, skipped


def _report(outcomes: list[Outcome], skipped: list[str], as_json: bool) -> None:
    """Print what happened on each agent; exit 1 unless every agent has the image."""
    rows = [(o.agent, "ok" if o.ok else "failed", o.message) for o in outcomes]
    rows += [(agent, "skipped", "unreachable") for agent in skipped]
    if as_json:
        print_json([{"agent": a, "status": s, "message": m} for a, s, m in rows])
    else:
        click.echo(table(rows, ("AGENT", "STATUS", "MESSAGE")))
    if skipped or not all(o.ok for o in outcomes) or not rows:
        raise SystemExit(EXIT_FAILED)


def register(cli: click.Group) -> None:
    """Add this module's commands to the `berth` group."""
    cli.add_command(images)
