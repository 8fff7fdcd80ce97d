"""Image folders: parsing with every problem at once, and a reproducible root file system."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from worker.errors import InvalidRequest
from worker.testbed.images import (
    build_rootfs,
    find_image_sources,
    load_image_source,
    shared_libraries,
)

REPO = Path(__file__).resolve().parents[3]


def write_image(folder: Path, **fields: object) -> Path:
    folder.mkdir(parents=True)
    (folder / "image.json").write_text(json.dumps(fields))
    return folder


def test_universe_hello_images_parse() -> None:
    refs = [s.ref for s in find_image_sources(REPO / "universe" / "images")]
    assert "berth/hello:1.0.0" in refs and "berth/hello:2.0.0" in refs


def test_every_problem_is_reported_with_its_json_path(tmp_path: Path) -> None:
    folder = write_image(tmp_path / "x", tag=3, applets=["sh", "../evil"], env="PATH=/bin")
    with pytest.raises(InvalidRequest) as caught:
        load_image_source(folder)
    paths = sorted(d["path"].split("#")[1] for d in caught.value.details)
    assert paths == ["/applets", "/env", "/repository", "/tag"]


def test_rootfs_has_busybox_applets_and_overlay_and_is_reproducible(tmp_path: Path) -> None:
    folder = write_image(tmp_path / "img", repository="r", tag="1", applets=["sh", "cat"])
    (folder / "rootfs" / "bin").mkdir(parents=True)
    start = folder / "rootfs" / "bin" / "start"
    start.write_text("#!/bin/sh\necho hi\n")
    start.chmod(0o755)
    (folder / "rootfs" / "bin" / "cat").write_text("overlay wins\n")
    source = load_image_source(folder)
    data = build_rootfs(source)
    assert data == build_rootfs(source)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["bin/sh"].issym() and members["bin/sh"].linkname == "busybox"
        assert members["bin/start"].mode == 0o755 and members["tmp"].mode == 0o1777
        assert tar.extractfile("bin/cat").read() == b"overlay wins\n"
        assert [n for n in members if n == "bin"] == ["bin"]   # no duplicate entries


def test_host_binaries_come_with_their_libraries_and_the_loader(tmp_path: Path) -> None:
    folder = write_image(tmp_path / "db", repository="r", tag="1", applets=["sh"],
                         binaries=["/usr/bin/redis-server", "/usr/bin/redis-cli"])
    source = load_image_source(folder)
    data = build_rootfs(source)
    assert data == build_rootfs(source)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        server = members["usr/bin/redis-server"]   # a link on the host, a file here
        assert server.isfile() and server.mode == 0o755
        assert tar.extractfile(server).read() == Path("/usr/bin/redis-server").read_bytes()
        for path in shared_libraries("/usr/bin/redis-server"):
            assert members[path.lstrip("/")].isfile(), path
        assert "lib64/ld-linux-x86-64.so.2" in members
        assert members["usr"].isdir() and members["usr/bin"].isdir()


def test_a_missing_host_binary_is_named(tmp_path: Path) -> None:
    folder = write_image(tmp_path / "db", repository="r", tag="1",
                         binaries=["/usr/bin/no-such-program-here"])
    with pytest.raises(InvalidRequest, match="no-such-program-here"):
        build_rootfs(load_image_source(folder))


def test_binaries_must_be_absolute_paths(tmp_path: Path) -> None:
    folder = write_image(tmp_path / "db", repository="r", tag="1",
                         binaries=["usr/bin/redis-cli", "/usr/../etc/shadow"])
    with pytest.raises(InvalidRequest) as caught:
        load_image_source(folder)
    assert [d["path"].split("#")[1] for d in caught.value.details] == ["/binaries"] * 2
