"""Test-wide configuration: fixtures live in ``tests/fixtures/`` as plugins.

- ``fixtures/testbed.py``     — the real test bed (Redis, three Docker engines, a worker)
- ``fixtures/live_server.py`` — the Berth server on a loopback port against the test bed
"""

pytest_plugins = ["tests.fixtures.testbed", "tests.fixtures.live_server"]
