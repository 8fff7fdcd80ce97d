"""What runs on an admin's, a maintainer's or a script's own machine, outside the server.

- ``api.py`` — :class:`BerthClient`, the Python client of the JSON API (``requests``)
- ``cli/``   — the ``berth`` command line (click)

Nothing here imports Flask, Celery, Redis or Docker when it is imported: the client
and the command line speak HTTP to a server, or work on local files (``lint``,
``render``). The few commands that act on a Redis or on this machine directly
(``berth admin``, ``berth dev``) import those parts when they run. A test imports this
package with flask, celery, redis and docker blocked
(``tests/unit/test_code_checks.py``).

``from server.client import BerthClient`` is the documented way in (docs/api.md).
"""

from __future__ import annotations

from .api import DEFAULT_URL, FINAL, BerthAPIError, BerthClient, load_config, save_config

__all__ = ["DEFAULT_URL", "FINAL", "BerthAPIError", "BerthClient", "load_config",
           "save_config"]
