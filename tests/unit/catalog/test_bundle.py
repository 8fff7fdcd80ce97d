"""Package bundles: reproducible builds, and hostile bundles refused in memory."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import zlib
from pathlib import Path

import pytest

from catalog.bundle import (
    MANIFEST,
    BundleLimits,
    build_bundle,
    extracted,
    json_depth,
    read_bundle,
)
from catalog.errors import BundleInvalid


def _package(tmp_path: Path) -> Path:
    root = tmp_path / "hello" / "1.0.0"
    root.mkdir(parents=True)
    (root / "package.json").write_text(json.dumps({"name": "hello", "version": "1.0.0"}))
    (root / "config.json").write_text('{"type": "object"}')
    (root / "images").mkdir()
    (root / "images" / "icon.svg").write_text("<svg/>")
    return root


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]], *, manifest: bool = True,
         compress: bool = True) -> bytes:
    """A tar.gz of raw members plus a manifest listing the regular files' digests."""
    raw = io.BytesIO()
    entries = [{"path": info.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
               for info, data in members if data is not None and info.isreg()]
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
        if manifest:
            body = json.dumps({"bundleVersion": 1, "name": "x", "version": "1.0.0",
                               "files": entries}).encode()
            tar.addfile(_file(MANIFEST, body), io.BytesIO(body))
    return gzip.compress(raw.getvalue()) if compress else raw.getvalue()


def _file(name: str, data: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info


def _special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def _refused(data: bytes, limits: BundleLimits | None = None) -> BundleInvalid:
    with pytest.raises(BundleInvalid) as caught:
        read_bundle(data, limits=limits)
    return caught.value


def test_build_is_reproducible_and_reads_back(tmp_path: Path) -> None:
    root = _package(tmp_path)
    first, second = build_bundle(root), build_bundle(root)
    assert first == second
    files, manifest = read_bundle(first)
    assert set(files) == {"package.json", "config.json", "images/icon.svg"}
    assert files["images/icon.svg"] == b"<svg/>"
    assert (manifest["name"], manifest["version"]) == ("hello", "1.0.0")


def test_build_refuses_symlinks(tmp_path: Path) -> None:
    root = _package(tmp_path)
    os.symlink("/etc/passwd", root / "passwd")
    with pytest.raises(BundleInvalid) as caught:
        build_bundle(root)
    assert caught.value.details[0]["path"] == "passwd"


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil", "a/../../evil", "a//b",
                                  "-rf", "a\\b", "x/y/z/w/v"])
def test_unsafe_names_are_refused(name: str) -> None:
    error = _refused(_tar([(_file(name, b"x"), b"x")]))
    assert any("unsafe or disallowed name" in e["message"] for e in error.details)


@pytest.mark.parametrize(("info", "word"), [
    (_special("link", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
    (_special("hard", tarfile.LNKTYPE, "package.json"), "hard link"),
    (_special("dev", tarfile.CHRTYPE), "device file"),
    (_special("blk", tarfile.BLKTYPE), "device file"),
    (_special("fifo", tarfile.FIFOTYPE), "FIFO"),
])
def test_links_and_special_files_are_refused(info: tarfile.TarInfo, word: str) -> None:
    error = _refused(_tar([(info, None)]))
    assert any(word in e["message"] for e in error.details)


def test_oversized_body_file_and_count(tmp_path: Path) -> None:
    limits = BundleLimits(max_bundle=10_000, max_file=100, max_files=3)
    assert "limit" in _refused(b"\x1f\x8b" + b"0" * 20_000, limits).details[0]["message"]
    big = _refused(_tar([(_file("big.txt", b"x" * 101), b"x" * 101)]), limits)
    assert any(e["path"] == "big.txt" and "limit" in e["message"] for e in big.details)
    many = [(_file(f"f{i}.txt", b"x"), b"x") for i in range(5)]
    assert any("more than 3 entries" in e["message"] for e in _refused(_tar(many), limits).details)


def test_gzip_bomb_stops_at_the_cap() -> None:
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
    data = bomb.compress(b"\0" * (200 * 1024 * 1024)) + bomb.flush()  # ~200 KB on the wire
    assert len(data) < 1024 * 1024
    error = _refused(data, BundleLimits(max_unpacked=1024 * 1024))
    assert "unpacks to more than" in error.details[0]["message"]


def test_deep_json_is_refused() -> None:
    deep = b"[" * 500 + b"]" * 500
    error = _refused(_tar([(_file("config.json", deep), deep)]))
    assert any(e["path"] == "config.json" and "nested 500" in e["message"]
               for e in error.details)


def test_bad_digest_and_unlisted_files_are_refused() -> None:
    raw = io.BytesIO()
    manifest = json.dumps({"bundleVersion": 1, "files": [
        {"path": "package.json", "size": 2, "sha256": "0" * 64}]}).encode()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in (("package.json", b"{}"), ("extra.txt", b"x"), (MANIFEST, manifest)):
            tar.addfile(_file(name, data), io.BytesIO(data))
    error = _refused(gzip.compress(raw.getvalue()))
    messages = {e["path"]: e["message"] for e in error.details}
    assert "digest" in messages["package.json"]
    assert "not listed" in messages["extra.txt"]


def test_every_problem_is_reported_at_once() -> None:
    members = [(_file("../up", b"x"), b"x"), (_special("ln", tarfile.SYMTYPE, "/"), None)]
    assert len(_refused(_tar(members, manifest=False)).details) == 3  # two members + manifest


@pytest.mark.parametrize("data", [b"", b"plain text", b"\x1f\x8bnot gzip at all",
                                  gzip.compress(b"not a tar archive" * 40)])
def test_garbage_is_refused_cleanly(data: bytes) -> None:
    assert _refused(data).details


def test_not_gzip_and_truncated() -> None:
    good = _tar([(_file("a.txt", b"a"), b"a")])
    assert "not a gzip" in _refused(_tar([], compress=False)).details[0]["message"]
    assert "truncated" in _refused(good[: len(good) // 2]).details[0]["message"]


def test_nothing_is_written_until_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    _refused(_tar([(_file("../escape", b"x"), b"x")]))
    assert list(tmp_path.iterdir()) == []
    files, _ = read_bundle(build_bundle(_package(tmp_path / "src")))
    with extracted(files) as root:
        assert (root / "images" / "icon.svg").read_bytes() == b"<svg/>"
        assert root.is_relative_to(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["src"]


def test_json_depth_skips_brackets_in_strings() -> None:
    assert json_depth(b'{"a": "[[[[\\"[[", "b": [1, {"c": []}]}') == 4
