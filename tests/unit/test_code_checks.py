"""The project's own code checks run with the tests, so CI keeps them: ruff over every
Python folder, and mypy over catalog, server and worker (``[tool.mypy]`` in
pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
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


STRICT_FLAGS = ("disallow_any_generics", "disallow_subclassing_any", "disallow_untyped_calls",
                "disallow_untyped_defs", "disallow_incomplete_defs", "check_untyped_defs",
                "disallow_untyped_decorators", "warn_unused_ignores", "warn_return_any",
                "no_implicit_reexport", "strict_equality", "extra_checks")


def test_mypy_is_strict_on_the_core() -> None:
    """``catalog`` is checked with every ``--strict`` flag mypy allows per module."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    overrides = config["tool"]["mypy"].get("overrides", [])
    core = [o for o in overrides if "catalog.*" in o.get("module", [])]
    assert core, "no [[tool.mypy.overrides]] for catalog.*"
    missing = [flag for flag in STRICT_FLAGS if core[0].get(flag) is not True]
    assert not missing, missing
