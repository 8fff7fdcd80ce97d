"""The project's own code checks run with the tests, so CI keeps them: ruff over every
Python folder, and mypy over catalog, server and worker (``[tool.mypy]`` in
pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (make deps installs the test extras)",
                    pytrace=False)
    return found


def test_ruff_finds_nothing() -> None:
    result = subprocess.run([_tool("ruff"), "check", "--no-cache", "catalog", "server",
                             "worker", "tests", "bench"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@pytest.mark.timeout(300)
def test_mypy_finds_nothing(tmp_path: Path) -> None:
    result = subprocess.run([_tool("mypy"), "--cache-dir", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
