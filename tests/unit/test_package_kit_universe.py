"""``berth package test`` passes its offline stages (lint, render, spec) for every
universe package.

Every problem of every package fails it: lint, a render with the defaults or an
example, an undeclared port, a secret neither generated, required nor explained.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.package_test import offline_stages

PACKAGES = Path(__file__).resolve().parents[2] / "universe" / "packages"
NAMES = sorted(p.name for p in PACKAGES.iterdir() if p.is_dir())


def test_every_package_folder_is_tested() -> None:
    assert len(NAMES) >= 20


@pytest.mark.parametrize("name", NAMES)
def test_offline_stages_pass(name: str) -> None:
    stages, renders = offline_stages(PACKAGES / name)
    assert renders, f"{name}: nothing rendered"
    problems = [p for s in stages for p in s.problems]
    assert problems == [], "\n".join(f"{p['path']}: {p['message']}" for p in problems)
