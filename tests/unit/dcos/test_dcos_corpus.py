"""The real Universe corpus as a whole: every version loads, what Cosmos could install
renders, and every rendered app either converts to a valid spec or names why not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from catalog.dcos.compat import SDK_REASON
from catalog.dcos.loader import load_universe_dir, load_version_dir
from catalog.dcos.report import render_report
from catalog.spec import validate_spec

ROOT = Path(__file__).resolve().parents[3]


def version_dirs(corpus: Path) -> list[Path]:
    return sorted(corpus.glob("packages/*/*/*"))


def test_every_package_version_loads(corpus: Path) -> None:
    folders = version_dirs(corpus)
    assert len(folders) > 800
    broken = []
    for folder in folders:
        package, problems = load_version_dir(folder, repository="corpus")
        if package is None:
            broken.append((folder, problems))
    assert broken == []


def test_the_repository_offers_one_package_per_name_and_version(corpus: Path) -> None:
    repo, problems = load_universe_dir(corpus, name="universe")
    keys = [(p.name, p.version) for p in repo.packages]
    assert len(keys) == len(set(keys))
    superseded = [p for p in problems if "superseded" in p["message"]]
    assert len(repo.packages) + len(superseded) == len(version_dirs(corpus))
    assert all(p.format == "dcos" and isinstance(p.order, int) for p in repo.packages)


def test_what_cosmos_could_install_renders(assessments: list[Any]) -> None:
    # Cosmos installed with defaults when they validated; every one of those renders
    valid = [a for a in assessments if a.options]
    assert len(valid) > 700
    faults = [(a.name, a.revision, a.reasons) for a in valid if not a.renders]
    assert faults == []


def test_every_rendered_app_converts_or_names_what_is_unsupported(
        assessments: list[Any]) -> None:
    rendered = [a for a in assessments if a.renders]
    for a in rendered:
        if a.converts:
            validate_spec(a.spec)  # raises when the spec is not valid
        else:
            assert a.reasons or a.static, (a.name, a.revision)
            for reason in a.reasons:
                path, _, message = reason.partition(": ")
                assert path and message, reason


def test_a_fair_share_of_the_corpus_runs(assessments: list[Any]) -> None:
    installable = {a.name for a in assessments if a.installable}
    assert len(installable) >= 15
    assert {"nginx", "grafana", "redis", "confluent-rest-proxy"} <= installable


def test_sdk_frameworks_are_never_installable(assessments: list[Any], corpus: Path) -> None:
    for a in assessments:
        template = (corpus / "packages" / a.name[0].upper() / a.name / a.revision /
                    "marathon.json.mustache")
        if template.is_file() and "DCOS_COMMONS_API_VERSION" in template.read_text():
            assert a.static == [SDK_REASON], (a.name, a.revision)


def test_the_compatibility_report_in_docs_is_current(assessments: list[Any]) -> None:
    written = (ROOT / "docs" / "universe-compat.md").read_text(encoding="utf-8")
    assert written == render_report(assessments), \
        "regenerate: python -m catalog.dcos.report CORPUS > docs/universe-compat.md"
