"""`berth dev up|down|status`: the local test bed (Redis, three Docker engines, a worker).

``make run`` is ``berth dev up --var var --serve`` (lane 0), ``make stop`` is
``berth dev down --var var``. Everything runs in the background with its logs in
``<var>/log/``; the state is in ``<var>/testbed.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from worker.errors import WorkerError

from .common import EXIT_FAILED, EXIT_UNAVAILABLE, fail

if TYPE_CHECKING:
    from worker.testbed.bed import Testbed  # docker-py and Redis: see the docstring

VAR_HELP = "folder for state, logs and data of the test bed"


def _testbed_class(ha: bool = False) -> type[Testbed]:
    """The test bed class, imported when a ``dev`` command runs (``ha``: the bed with
    three Redis under Sentinel, two servers and two workers, ``worker.testbed.ha``).

    The test bed drives Docker engines (docker-py) and Redis, which the rest of the CLI
    must not load: ``tests/unit/test_code_checks.py`` imports the CLI with them blocked.
    """
    if ha:
        from worker.testbed.ha import HaTestbed  # docker-py and Redis: see the docstring

        return HaTestbed
    from worker.testbed.bed import Testbed  # docker-py and Redis: see the docstring

    return Testbed


def _class_of(var: str) -> type[Testbed]:
    """The class of the bed ``var`` holds (its state file says whether it is HA)."""
    try:
        ha = bool(json.loads((Path(var) / "testbed.json").read_text()).get("ha"))
    except (OSError, ValueError):
        ha = False
    return _testbed_class(ha)


def _worker_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Show test-bed errors as one line with a hint, never a traceback."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except WorkerError as exc:
            fail(exc.message, hint=exc.hint, code=EXIT_UNAVAILABLE, details=exc.details)

    return run


def _running(var: str) -> Any:
    """The test bed of ``var`` when all its processes are alive, else None."""
    bed_class = _class_of(var)
    try:
        bed = bed_class.load(var)
    except Exception:  # no state, or unreadable state: not running
        return None
    states = bed.status()
    return bed if states and all(states.values()) else None


def _show(bed: Any) -> None:
    """Print where to reach the bed."""
    if bed.serving:
        for url in getattr(bed, "server_urls", None) or [bed.server_url]:
            click.echo(f"Berth store: {url}")
        if bed.admin_token:
            click.echo(f"admin token: {bed.admin_token}")
    click.echo(f"Redis: {bed.redis_url_shown}")
    for agent in bed.agents:
        click.echo(f"{agent.id}: {agent.url} on {agent.address}, "
                   f"ports {agent.port_range[0]}-{agent.port_range[1]}")
    click.echo(f"logs: {bed.log_dir}")
    click.echo("make stop to stop (berth dev down)")


@click.group("dev")
def dev() -> None:
    """Run Berth locally: Redis, three Docker engines as agents, a worker, the server."""


@dev.command("up")
@click.option("--var", "var", default="var", show_default=True, help=VAR_HELP)
@click.option("--lane", default=0, show_default=True, type=click.IntRange(0, 50),
              help="lane: 0 for `make run`, others for side-by-side test runs")
@click.option("--serve", is_flag=True, help="also start the Berth server (gunicorn)")
@click.option("--agents", "agent_urls", envvar="BERTH_AGENTS", default="",
              help="Docker engines to use as the agents, comma-separated URLs "
                   "(env BERTH_AGENTS); none: start three local engines")
@click.option("--agent-tls-dir", envvar="BERTH_AGENT_TLS_DIR", default="",
              help="client certificates of TLS agents: DIR/agent-N/{ca,cert,key}.pem "
                   "(env BERTH_AGENT_TLS_DIR)")
@click.option("--swarm", is_flag=True,
              help="also join the three engines into a Docker Swarm, the cluster `swarm`")
@click.option("--ha", is_flag=True,
              help="no single point of failure: three Redis under three Sentinels, two "
                   "servers and two workers (with --serve)")
@_worker_errors
def up(var: str, lane: int, serve: bool, agent_urls: str, agent_tls_dir: str,
       swarm: bool, ha: bool) -> None:
    """Start the test bed in the background (stops leftovers of an earlier run first)."""
    bed_class = _testbed_class(ha)
    urls = [u.strip() for u in agent_urls.split(",") if u.strip()]
    running = _running(var)
    if running is not None and urls and [a.url for a in running.agents] != urls:
        running.stop()  # other agents asked for: start afresh
        running = None
    if running is not None and type(running) is not bed_class:
        running.stop()  # the other kind of bed asked for: start afresh
        running = None
    if running is not None and running.lane == lane:
        click.echo("already running")
        if serve and not running.serving:
            running.start_server()
        _show(running)
        return
    if running is not None:   # another lane: start afresh
        running.stop()
    engines = f"the agents {', '.join(urls)}" if urls else "three Docker engines"
    parts = ("three Redis under three Sentinels, {engines}, two workers" if ha
             else "Redis, {engines} and a worker").format(engines=engines)
    click.echo(f"starting {parts} (lane {lane}) …")
    bed = bed_class(var, lane=lane, agent_urls=urls, agent_tls_dir=agent_tls_dir)
    try:
        bed.start(serve=serve)
        if swarm:
            _swarm_of(bed).start()
            (Path(var) / "swarm").touch()
            click.echo("Swarm: the three engines, cluster `swarm` "
                       "(berth install … --cluster swarm)")
    except BaseException:
        bed.stop()
        raise
    _show(bed)


def _swarm_of(bed: Any) -> Any:
    """The bed's Swarm (``worker.testbed.swarm``: docker-py, imported when used)."""
    from worker.testbed.swarm import SwarmBed  # noqa: PLC0415 - see the docstring

    return SwarmBed(bed)


@dev.command("down")
@click.option("--var", "var", default="var", show_default=True, help=VAR_HELP)
@_worker_errors
def down(var: str) -> None:
    """Stop everything `berth dev up` started."""
    bed_class = _class_of(var)
    if not (Path(var) / "testbed.json").is_file():
        click.echo(f"nothing to stop in {var}")
        return
    bed = bed_class.load(var)
    if (Path(var) / "swarm").is_file():   # `up --swarm`: leave the Swarm first
        _swarm_of(bed).stop()
        (Path(var) / "swarm").unlink()
    bed.stop()
    click.echo("stopped")


@dev.command("status")
@click.option("--var", "var", default="var", show_default=True, help=VAR_HELP)
@_worker_errors
def status(var: str) -> None:
    """Show which parts of the test bed run (exit 1 when one does not)."""
    bed_class = _class_of(var)
    bed = bed_class.load(var)
    states = bed.status()
    if not states:
        click.echo(f"nothing running from {var}")
    for name, alive in states.items():
        click.echo(f"{name:10} {'running' if alive else 'stopped'}")
    if bed.serving:
        click.echo(f"Berth store: {bed.server_url}")
    if not states or not all(states.values()):
        raise SystemExit(EXIT_FAILED)


def register(cli: click.Group) -> None:
    """Add this module's commands to the `berth` group."""
    cli.add_command(dev)
