"""catalog.dcos stays pure: importing it pulls in no server, worker or I/O library."""

from __future__ import annotations

import subprocess
import sys

BLOCKED = ("flask", "celery", "redis", "docker", "requests")

SCRIPT = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import catalog.dcos, catalog.dcos.report
print("ok")
"""


def test_catalog_dcos_imports_without_flask_celery_redis_docker_requests() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
