"""Swarm events: the manager's service and node events wake a refresh of the Swarm
services' instance records (``berth.reconcile``), so a drained node or a Swarm's own
update shows in Berth before the next periodic pass.

A task the Swarm replaces on a node emits no manager event (its container events are
the node's own); the periodic pass (``BERTH_RECONCILE_INTERVAL``) covers those.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from .swarm import SwarmBackend

__all__ = ["wakes", "follow"]

log = logging.getLogger("worker.swarm_events")

TYPES = ("service", "node")


def wakes(event: Mapping[str, Any]) -> bool:
    """Whether a manager event is worth a refresh: a Berth service's change, or any
    node's (availability, state, labels)."""
    kind = event.get("Type")
    attributes = (event.get("Actor") or {}).get("Attributes") or {}
    if kind == "node":
        return True
    return kind == "service" and str(attributes.get("name", "")).startswith("berth-")


def follow(backend: SwarmBackend, stop: threading.Event, on_event: Callable[[], None],
           keep: Callable[[], bool] = lambda: True) -> None:
    """Follow one manager's service and node events until ``stop`` or until ``keep()``
    says the cluster is gone; reconnects a second after a broken stream."""
    while not stop.is_set() and keep():
        try:
            with backend.manager._funnel("read events"):
                stream = backend.manager._side_client(None).events(
                    decode=True, filters={"type": list(TYPES)})
            try:
                for event in stream:
                    if stop.is_set():
                        return
                    if wakes(event):
                        on_event()
            finally:
                stream.close()
        except Exception:  # noqa: BLE001 - the manager away: try again shortly
            log.debug("event stream of %s broke", backend.url, exc_info=True)
        stop.wait(1.0)
