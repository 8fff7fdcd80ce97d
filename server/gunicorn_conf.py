"""gunicorn's settings for Berth's server: ``gunicorn -c python:server.gunicorn_conf
server.wsgi:app`` (the image, ``make run``, the test bed and the benchmarks start it so).

Threads (``gthread``), many of them: every open ``/events`` stream holds one thread of
its process while it waits for the next event (for up to its ``timeout``), so with a
handful of threads a few listeners starved every other request and the rest of the
listeners sat in the accept queue. Waiting threads cost little: the process's one event
reader (``server/api/event_fanout.py``) does the Redis reads for all of them.
``BERTH_WEB_WORKERS`` processes × ``BERTH_WEB_THREADS`` threads (2 × 64 by default) is
how many requests, streams included, are served at once. The bind address is given
on the command line (``--bind``).
"""

from __future__ import annotations

import os

from catalog.settings_table import by_name, parse


def _setting(name: str) -> int:
    """A ``BERTH_*`` number from the environment, checked by the settings table."""
    return int(parse(by_name(name), os.environ.get(name, by_name(name).default)))


worker_class = "gthread"
workers = _setting("BERTH_WEB_WORKERS")
threads = _setting("BERTH_WEB_THREADS")
timeout = 120
graceful_timeout = 20
