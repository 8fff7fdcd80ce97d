"""Numbers JSON cannot carry are refused wherever package JSON is read.

Python's ``json`` accepts ``NaN``, ``Infinity`` and ``1e999999`` (which overflows to
infinity) and later writes them back as non-standard ``Infinity``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalog import BundleInvalid, RenderError, RepositoryError
from catalog.bundle import build_bundle, package_from_bundle
from catalog.loader import lint_package_dir
from catalog.reading import loads_json
from catalog.render import _parse
from catalog.static_index import loads_bounded, parse_listing
from tests.unit.catalog.catalog_testkit import write_package

HUGE = ["1e999999", "-1e999999", "NaN", "Infinity", "-Infinity", "1E400"]


@pytest.mark.parametrize("literal", HUGE)
def test_loads_json_refuses_non_finite_numbers_with_their_place(literal: str) -> None:
    with pytest.raises(json.JSONDecodeError) as caught:
        loads_json('{\n  "note": "Infinity",\n  "x": ' + literal + "\n}")
    assert f"{literal} is not valid JSON: numbers must be finite" == caught.value.msg
    assert (caught.value.lineno, caught.value.colno) == (3, 8)


def test_loads_json_keeps_ordinary_numbers() -> None:
    assert loads_json(b'{"a": 1.5e300, "b": -2, "c": "NaN"}') == {"a": 1.5e300, "b": -2,
                                                                   "c": "NaN"}


@pytest.mark.parametrize("file", ["package.json", "config.json", "resource.json"])
def test_package_files_with_an_overflowing_number_do_not_lint(tmp_path: Path,
                                                              file: str) -> None:
    folder = write_package(tmp_path)
    text = (folder / file).read_text()
    (folder / file).write_text(text[:-1] + ', "x-big": 1e999999}')
    problems = lint_package_dir(folder)
    assert any(p["path"].endswith(file) and "finite" in p["message"] for p in problems), problems


def test_index_listing_with_infinity_is_refused() -> None:
    with pytest.raises(RepositoryError, match="finite"):
        parse_listing(b'{"indexVersion": 2, "packages": [], "x": 1e999999}')
    with pytest.raises(ValueError, match="finite"):
        loads_bounded(b"[Infinity]")


def test_bundle_with_an_overflowing_number_is_refused(tmp_path: Path) -> None:
    folder = write_package(tmp_path)
    text = (folder / "config.json").read_text()
    (folder / "config.json").write_text(text[:-1] + ', "x-big": 1e999999}')
    with pytest.raises(BundleInvalid) as caught:
        package_from_bundle(build_bundle(folder))
    assert any(e["path"] == "config.json" and "finite" in e["message"]
               for e in caught.value.details), caught.value.details


def test_rendered_spec_with_infinity_is_a_render_error() -> None:
    with pytest.raises(RenderError, match="finite"):
        _parse('{"image": "x", "mem": 1e999999}', "service.json.j2")


def test_dcos_files_with_infinity_are_refused(tmp_path: Path) -> None:
    from catalog.dcos.loader import load_version_dir

    source = Path(__file__).resolve().parents[2] / "data" / "dcos-hello" / "packages" / "D"
    version = next(p for p in (source / "dcos-hello").iterdir() if p.is_dir())
    copy = tmp_path / "0"
    copy.mkdir()
    for item in version.iterdir():
        (copy / item.name).write_bytes(item.read_bytes())
    meta = json.loads((copy / "package.json").read_text())
    (copy / "package.json").write_text(json.dumps(meta)[:-1] + ', "x-big": 1e999999}')
    package, problems = load_version_dir(copy, repository="dcos")
    assert package is None
    assert any("finite" in p["message"] for p in problems), problems


def test_api_body_with_an_overflowing_number_is_400() -> None:
    from server.api.common import BadRequest, parse_json

    for literal in HUGE:
        with pytest.raises(BadRequest):
            parse_json(b'{"instances": ' + literal.encode() + b"}")
