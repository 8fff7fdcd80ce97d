"""Fixtures of the DC/OS Universe tests: the real corpus and the test repository.

The corpus (real Universe packages, every revision) lives outside the repository; its
folder is found by ``tests.fixtures.corpus`` (``BERTH_DCOS_CORPUS`` or
``shared/corpus/dcos-universe`` beside the checkout). Tests that need it fail, saying
where they looked, when it is absent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.corpus import require_corpus

ROOT = Path(__file__).resolve().parents[3]
HELLO_REPO = ROOT / "tests" / "data" / "dcos-hello"


@pytest.fixture(scope="session")
def corpus() -> Path:
    return require_corpus()


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
