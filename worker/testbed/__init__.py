"""The local system and test bed: what runs Berth's parts on this machine.

- ``bed.py``       — :class:`~worker.testbed.bed.Testbed`: Redis, three Docker engines,
  the ``hello`` images and a worker, on a lane of its own (``berth dev up``, the tests)
- ``processes.py`` — start, wait for and stop child processes by pidfile; Debian
  packages through apt-get
- ``images.py``    — build the images of ``universe/images/`` from their folders and
  load them on agents

This package uses the worker's runtime (the Docker funnel, the store), never the other
way round: nothing the worker runs in production imports it (a test checks that).
"""
