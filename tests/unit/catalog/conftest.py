"""Fixtures of the catalog core's tests: small package folders written on the fly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from catalog_testkit import write_package


@pytest.fixture
def make_package(tmp_path: Path) -> Callable[..., Path]:
    """``make_package(name, version, **changes)`` writes a package under ``tmp_path``."""

    def make(name: str = "demo", version: str = "1.0.0", **changes: Any) -> Path:
        return write_package(tmp_path, name, version, **changes)

    return make


@pytest.fixture
def universe_dir() -> Path:
    """The shipped default repository."""
    return Path(__file__).resolve().parents[3] / "universe"
