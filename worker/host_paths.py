"""Check a spec's host folders on the agent itself, right before its container is made.

The catalog's rule (:func:`catalog.spec.check_policy`) already keeps every host path
to one folder ``<root>/<name>`` and never mounts a root, so no container can plant a
link that a mount source passes through. What the text cannot see is the agent's
file system: ``<root>/<name>`` may already be a link there (made on the host, by an
older Berth that allowed nested paths, or by anything else with host access), and
Docker follows links in a bind source. The worker's own file system says nothing
about a remote agent, so the check runs *on* the agent: a short-lived toolbox
container (no network, no capabilities) gets the root mounted at ``/r`` and runs
``check-host-folder <name>``, which refuses a link or a non-folder and creates a
missing folder (so Docker never creates one unchecked).

Exact read-only paths (``BERTH_READONLY_HOST_PATHS``, e.g. ``/proc``) are system
paths no container can write; they are not checked here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from catalog.errors import SpecRefused
from catalog.spec import check_policy, split_host_path

from .backend import Engine
from .errors import HostPathUnsafe

__all__ = ["host_folders", "check_host_folders", "policy_refusal", "CHECK_COMMAND",
           "MOUNT_POINT"]

CHECK_COMMAND = "/bin/check-host-folder"
MOUNT_POINT = "/r"


def host_folders(spec: Mapping[str, Any], roots: tuple[str, ...]
                 ) -> Iterator[tuple[int, str, str, str]]:
    """``(volume index, hostPath, root, name)`` of every host folder below a root."""
    for index, volume in enumerate(spec.get("volumes") or []):
        host = volume.get("hostPath")
        split = split_host_path(str(host), roots) if host else None
        if split is not None:
            yield index, str(host), *split


def policy_refusal(spec: Mapping[str, Any], *, roots: tuple[str, ...],
                   readonly: tuple[str, ...]) -> str | None:
    """Why the policy refuses ``spec`` today (every problem on one line), or None.

    The deployer checks a spec when a deployment starts; starts outside one (the
    reconciler's replacements) check again here, so a spec stored before the host-path
    rule, or before the allow-list was narrowed, never reaches Docker.
    """
    try:
        check_policy(spec, allowed_host_paths=roots, readonly_host_paths=readonly)
    except SpecRefused as refused:
        return "; ".join(f"{d['path']}: {d['message']}" for d in refused.details)
    return None


def check_host_folders(agent: Engine, spec: Mapping[str, Any], *,
                       roots: tuple[str, ...], image: str, agent_name: str = "") -> None:
    """Make sure every host folder of ``spec`` is a real folder on ``agent``.

    :raises HostPathUnsafe: naming the volume, the path, the agent and what is wrong.
    :raises AgentError: the toolbox container could not run.
    """
    where = agent_name or agent.url
    for index, host, root, name in host_folders(spec, roots):
        result = agent.run_toolbox(image, [CHECK_COMMAND, name],
                                   binds={root: {"bind": MOUNT_POINT, "mode": "rw"}})
        if result.exit_code == 0:
            continue
        lines = result.output.strip().splitlines()
        verdict = lines[-1] if lines else f"check failed (exit {result.exit_code})"
        field = f"spec/volumes/{index}/hostPath"
        message = f"{field}: {host} {verdict} on agent {where}; the container was not created"
        raise HostPathUnsafe(message, details=[{"path": field, "message": message}],
                             hint="make it a plain folder on the agent (no link), or "
                                  "remove it so that Berth creates it")
