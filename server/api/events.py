"""``/events``: the state-change stream as server-sent events (the audit log).

Each event carries its Redis stream id as the SSE ``id``, so a client that
reconnects with ``Last-Event-ID`` resumes where it stopped. A response is bounded:
it ends after ``limit`` events or ``timeout`` seconds, and EventSource clients
reconnect by themselves (``retry`` is sent first). While no event comes, a comment
line (``: keep-alive``) is sent every ``BERTH_EVENTS_BLOCK_MS`` so proxies and
clients see the stream alive.

Listeners do not read Redis each on their own: one reader per server process
(:mod:`.event_fanout`) follows the stream and hands every listener of the process what
is newer than its position, so 50 listeners cost one ``XREAD BLOCK``, not 50. The
reader reads through the store's ``read_events`` on ``Berth.events_state``: the store's
keys on a client with its own pool whose socket timeout is longer than the ``XREAD
BLOCK``. On the request client (2 s timeout) an idle stream ended after two timed-out
attempts, about 4 s. Each open stream still holds one of the server's threads while it
waits, so gunicorn runs many (``server/gunicorn_conf.py``, ``BERTH_WEB_THREADS``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, request, stream_with_context

from ..context import current_berth
from .common import Invalid, allow, query_int, query_str
from .event_fanout import EventHub, StoreUnavailable, hub_for

STREAM_ID = re.compile(r"(\$|0|\d{1,20}-\d{1,20}|\d{1,20})")


def register(bp: Blueprint) -> None:
    """Add the event stream route to the API blueprint."""
    bp.add_url_rule("/events", view_func=events, methods=["GET"])


def events() -> Any:
    """Stream state changes as ``text/event-stream`` from ``Last-Event-ID`` on."""
    allow("viewer")
    berth = current_berth()
    settings = berth.settings
    since = request.headers.get("Last-Event-ID") or request.args.get("since") or "$"
    if not STREAM_ID.fullmatch(since):
        raise Invalid("Last-Event-ID is not a stream id",
                      details=[{"path": "Last-Event-ID", "message": "like 1764198000000-0"}])
    limit = query_int("limit", settings.events_max, low=1, high=settings.events_max)
    timeout = query_int("timeout", 60, low=0, high=600)
    prefix = query_str("type", max_length=100) or ""
    state = berth.events_state
    if since == "$":  # resolve "now" once, so a reconnect never misses what came between
        since = state.last_event_id()
    heartbeat = settings.events_block_ms / 1000
    hub = hub_for(current_app.extensions, state, settings.events_block_ms)
    stream = _stream(hub, since, limit, timeout, prefix, heartbeat)
    return Response(stream_with_context(stream), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _stream(hub: EventHub, since: str, limit: int, timeout: int,
            prefix: str, heartbeat: float) -> Iterator[str]:
    """SSE lines: events after ``since``, heartbeat comments while waiting."""
    yield "retry: 2000\n\n"
    with hub.listen() as listener:
        sent, deadline = 0, time.monotonic() + timeout
        while sent < limit:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                batch = listener.wait(since, count=min(100, limit - sent),
                                      timeout=min(left, heartbeat))
            except StoreUnavailable:  # Redis went away mid-stream: end it, client retries
                yield ": store unavailable\n\n"
                return
            if not batch:
                yield ": keep-alive\n\n"
                continue
            for event in batch:
                since = str(event["id"])
                if prefix and not str(event.get("type", "")).startswith(prefix):
                    continue
                sent += 1
                yield f"id: {since}\nevent: {event.get('type') or 'message'}\n" \
                      f"data: {json.dumps(event, separators=(',', ':'))}\n\n"
                if sent >= limit:
                    return
