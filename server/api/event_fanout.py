"""One reader of the event stream per server process, fanned out to every ``/events``
listener of that process.

Before, each listener ran its own ``XREAD BLOCK`` loop on a Redis connection of its
own: 50 listeners held 50 connections and woke Redis 50 times per event. Now one
daemon thread per process (:class:`EventHub`) reads the stream after the newest id it
has seen and keeps the last :data:`KEEP` events in memory; listeners wait on a
condition variable and take what is newer than their own position. A listener that
starts further back than the memory reaches (``since=0``, an old ``Last-Event-ID``)
reads that part from Redis itself, without blocking, until it has caught up with the
memory, so the contract of ``/events`` (every event after the given id, in order) holds.

The reader runs while the process has listeners: it starts with the first and ends
after a read in which none is left. When Redis fails under it, the listeners waiting
then get :class:`StoreUnavailable` (their streams end, clients reconnect) and the next
listener starts a new reader.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from worker.store import RedisState

__all__ = ["EventHub", "Listener", "StoreUnavailable", "hub_for", "stream_key", "KEEP"]

log = logging.getLogger(__name__)

KEEP = 1000  # events kept in memory per process; older positions read from Redis
StreamKey = tuple[int, int]
_hubs_lock = threading.Lock()


class StoreUnavailable(Exception):
    """The hub's reader lost Redis; a listener's stream ends (its client retries)."""


def stream_key(stream_id: str) -> StreamKey:
    """A stream id (``"1764198000000-3"``, ``"1764198000000"``, ``"0"``) as a sortable
    pair, the way ``XREAD`` compares them (a missing sequence number is 0)."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


class EventHub:
    """The process's one stream reader and what it read lately (see the module)."""

    def __init__(self, state: RedisState, block_ms: int, keep: int = KEEP) -> None:
        self.state = state
        self.block_ms = max(1, block_ms)
        self._cond = threading.Condition()
        self._events: deque[tuple[StreamKey, dict[str, Any]]] = deque(maxlen=keep)
        self._floor: StreamKey | None = None  # every event after it is in _events
        self._listeners = 0
        self._failures = 0
        self._thread: threading.Thread | None = None
        self.reads = 0  # XREAD calls of the reader (for tests and diagnostics)

    @contextmanager
    def listen(self) -> Iterator[Listener]:
        """A listener for the time of one ``/events`` response."""
        with self._cond:
            self._listeners += 1
            failures = self._failures
            if self._thread is None:
                self._floor = None
                self._thread = threading.Thread(target=self._run, name="berth-events",
                                                daemon=True)
                self._thread.start()
        try:
            yield Listener(self, failures)
        finally:
            with self._cond:
                self._listeners -= 1

    @property
    def listeners(self) -> int:
        """How many listeners this process has now."""
        return self._listeners

    # the reader -------------------------------------------------------------------
    def _run(self) -> None:
        """Read the stream after the newest id into memory while anyone listens."""
        try:
            last = self.state.last_event_id()
        except Exception:  # noqa: BLE001 - Redis away: listeners end, clients retry
            self._fail()
            return
        with self._cond:
            self._events.clear()
            self._floor = stream_key(last)
            self._cond.notify_all()
        while True:
            with self._cond:
                if self._listeners <= 0:
                    self._thread = None
                    return
            try:
                self.reads += 1
                batch = self.state.read_events(last, count=100, block_ms=self.block_ms)
            except Exception:  # noqa: BLE001 - as above
                self._fail()
                return
            if batch:
                last = str(batch[-1]["id"])
                self._add(batch)

    def _add(self, batch: list[dict[str, Any]]) -> None:
        with self._cond:
            for event in batch:
                if len(self._events) == self._events.maxlen:
                    self._floor = self._events[0][0]  # that one leaves the memory now
                self._events.append((stream_key(str(event["id"])), event))
            self._cond.notify_all()

    def _fail(self) -> None:
        log.warning("the event stream reader lost Redis; open /events streams end",
                    exc_info=True)
        with self._cond:
            self._failures += 1
            self._thread = None
            self._floor = None
            self._cond.notify_all()

    # what listeners call ----------------------------------------------------------
    def _wait(self, failures: int, since: str, count: int,
              timeout: float) -> list[dict[str, Any]]:
        """Up to ``count`` events after ``since``, waiting up to ``timeout`` s for one."""
        after = stream_key(since)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._failures != failures:
                    raise StoreUnavailable
                floor = self._floor
                if floor is not None and after >= floor:
                    found = [e for k, e in self._events if k > after][:count]
                    if found:
                        return found
                elif floor is not None:
                    break  # further back than the memory: read that part from Redis
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self._cond.wait(left)
        try:
            found = self.state.read_events(since, count=count)
        except Exception as error:  # noqa: BLE001 - as the reader
            raise StoreUnavailable from error
        if found:
            return found
        # nothing in Redis after ``since`` (trimmed away): everything to come is in memory
        return self._wait(failures, f"{floor[0]}-{floor[1]}", count,
                          max(0.0, deadline - time.monotonic()))


class Listener:
    """One ``/events`` response's view of the hub."""

    def __init__(self, hub: EventHub, failures: int) -> None:
        self.hub = hub
        self.failures = failures

    def wait(self, since: str, count: int, timeout: float) -> list[dict[str, Any]]:
        """Up to ``count`` events after ``since`` (oldest first); ``[]`` when none came
        within ``timeout`` seconds. Raises :class:`StoreUnavailable` when Redis went."""
        return self.hub._wait(self.failures, since, count, timeout)


def hub_for(extensions: dict[str, Any], state: RedisState, block_ms: int) -> EventHub:
    """The app's hub in this process (a new one after a fork: threads do not survive it)."""
    key = f"berth.events_hub.{os.getpid()}"
    with _hubs_lock:
        hub = extensions.get(key)
        if hub is None:
            hub = extensions[key] = EventHub(state, block_ms)
        return hub  # type: ignore[no-any-return]
