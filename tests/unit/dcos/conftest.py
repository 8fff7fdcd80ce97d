"""Fixtures of the DC/OS Universe tests: the real corpus and the test repository.

The corpus (real Universe packages, every revision) lives outside the repository; its
folder is ``BERTH_DCOS_CORPUS`` or ``/work/shared/corpus/dcos-universe``. Tests that need
it are skipped, saying so, when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
HELLO_REPO = ROOT / "tests" / "data" / "dcos-hello"
DEFAULT_CORPUS = Path("/work/shared/corpus/dcos-universe")


def corpus_dir() -> Path | None:
    """The Universe corpus folder, or None when it is not on this machine."""
    path = Path(os.environ.get("BERTH_DCOS_CORPUS", DEFAULT_CORPUS))
    return path if (path / "packages").is_dir() else None


@pytest.fixture(scope="session")
def corpus() -> Path:
    path = corpus_dir()
    if path is None:
        pytest.skip("the DC/OS Universe corpus is not here (set BERTH_DCOS_CORPUS)")
    return path


@pytest.fixture(scope="session")
def assessments(corpus: Path) -> list[Any]:
    """Every package version of the corpus walked through load → spec (once per run)."""
    from catalog.dcos.report import assess_dir

    return assess_dir(corpus)


def corpus_package(corpus: Path, name: str, revision: int | str) -> Any:
    """One revision of one corpus package, loaded."""
    from catalog.dcos.loader import load_version_dir

    folder = corpus / "packages" / name[0].upper() / name / str(revision)
    package, problems = load_version_dir(folder, repository="corpus")
    assert package is not None, problems
    return package
