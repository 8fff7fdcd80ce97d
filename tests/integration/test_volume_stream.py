"""Named volumes streamed between the test bed's real engines: read, write, checksum on
the agent, copy checked by checksums, helper containers always removed."""

from __future__ import annotations

import io
import os
import tarfile
import uuid
from collections.abc import Iterable, Iterator

import pytest

from worker.docker_agent import DockerAgent
from worker.errors import (
    ContainerConflict,
    ContainerError,
    InvalidRequest,
    VolumeCopyFailed,
    VolumeExists,
    VolumeNotFound,
)
from worker.volume_stream import (
    DEFAULT_IMAGE,
    copy_volume,
    open_volume_archive,
    volume_checksum,
    write_volume_archive,
)

pytestmark = pytest.mark.integration

CASE = "berth-test.case"
BIG = os.urandom(3 * 1024 * 1024 + 17)      # several archive chunks
Member = tuple[tarfile.TarInfo, bytes | None]


def _tar(members: Iterable[Member]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes | None = None, *,
           uid: int = 0, mode: int = 0o644, target: str = "") -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.uid, info.gid, info.mode, info.linkname = kind, uid, uid, mode, target
    info.size = len(data) if data is not None else 0
    return info, data


SAMPLE = _tar([
    _entry("./db", tarfile.DIRTYPE, mode=0o750, uid=999),
    _entry("./db/big.bin", data=BIG, uid=999),
    _entry("./db/small.txt", data=b"hello\n", mode=0o600, uid=999),
    _entry("./empty", tarfile.DIRTYPE, mode=0o755),
    _entry("./current", tarfile.SYMTYPE, target="db/small.txt", mode=0o777),
])


def _members(chunks: Iterable[bytes]) -> dict[str, tuple[int, int, str, bytes]]:
    """name → (mode, uid, link target, contents) of a tar stream (the test reads it whole)."""
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        out = {}
        for m in tar.getmembers():
            data = tar.extractfile(m).read() if m.isfile() else b""  # type: ignore[union-attr]
            out[m.name.removeprefix("./") or "."] = (m.mode & 0o7777, m.uid, m.linkname, data)
        return out


def _helpers(agent: DockerAgent) -> list[str]:
    return [c["Id"] for c in agent.api.containers(all=True, filters={"label": "berth.toolbox"})]


@pytest.fixture
def agents(testbed) -> Iterator[tuple[DockerAgent, DockerAgent]]:
    """Agents 1 and 2; the volumes a test made (labelled ``berth-test.case``) go after."""
    pair = (testbed.agent(1), testbed.agent(2))
    yield pair
    for agent in pair:
        for volume in agent.list_volumes([CASE]):
            agent.remove_volume(volume.name)


def _volume(agent: DockerAgent, data: bytes = SAMPLE) -> str:
    name = f"stream-{uuid.uuid4().hex[:8]}"
    write_volume_archive(agent, name, [data[i:i + 65536] for i in range(0, len(data), 65536)],
                         labels={CASE: "1", "berth.service": "stream-test"})
    return name


def test_a_copy_keeps_names_modes_owners_links_and_contents(agents) -> None:
    src, dst = agents
    name = _volume(src)
    result = copy_volume(src, name, dst, name)
    assert result.checksum == volume_checksum(src, name) == volume_checksum(dst, name)
    assert result.bytes > len(BIG)
    copied = _members(open_volume_archive(dst, name))
    assert copied == _members(open_volume_archive(src, name))
    assert copied["db/big.bin"][3] == BIG
    assert copied["db/small.txt"][:2] == (0o600, 999)
    assert copied["current"][2] == "db/small.txt"
    assert "empty" in copied
    assert dst.volume_labels(name) == {CASE: "1", "berth.service": "stream-test"}
    assert _helpers(src) == [] and _helpers(dst) == []


def test_the_checksum_changes_with_one_byte_and_covers_a_sub_path(agents) -> None:
    src, _ = agents
    first, second = _volume(src), _volume(src, SAMPLE.replace(b"hello", b"hellp"))
    assert volume_checksum(src, first) != volume_checksum(src, second)
    assert volume_checksum(src, first, "/db") != volume_checksum(src, first)
    sub = _members(open_volume_archive(src, first, "db"))
    assert set(sub) == {".", "big.bin", "small.txt"}


def test_a_stream_into_a_sub_path_lands_there(agents) -> None:
    src, dst = agents
    name = _volume(src)
    target = _volume(dst, _tar([_entry("./keep.txt", data=b"kept")]))
    write_volume_archive(dst, target, open_volume_archive(src, name), path="/restore/here")
    assert volume_checksum(dst, target, "restore/here") == volume_checksum(src, name)
    assert _members(open_volume_archive(dst, target))["keep.txt"][3] == b"kept"


def test_a_missing_source_is_refused_and_not_created(agents) -> None:
    src, dst = agents
    with pytest.raises(VolumeNotFound, match="stream-missing"):
        copy_volume(src, "stream-missing", dst, "stream-missing")
    with pytest.raises(VolumeNotFound):
        volume_checksum(src, "stream-missing")
    assert src.volume_labels("stream-missing") is None
    assert dst.volume_labels("stream-missing") is None


def test_an_existing_target_is_refused_untouched(agents) -> None:
    src, dst = agents
    name = _volume(src)
    old = _volume(dst, _tar([_entry("./old.txt", data=b"old copy")]))
    with pytest.raises(VolumeExists, match=old):
        copy_volume(src, name, dst, old)
    assert set(_members(open_volume_archive(dst, old))) == {".", "old.txt"}


def test_a_climbing_path_is_refused(agents) -> None:
    src, _ = agents

    with pytest.raises(InvalidRequest, match="climbs out"):
        volume_checksum(src, "any", "../etc")


def _without(data: bytes, suffix: str) -> list[Member]:
    """The members of the tar ``data`` but those whose name ends with ``suffix``."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(m, tar.extractfile(m).read() if m.isfile() else None)  # type: ignore[union-attr]
                for m in tar.getmembers() if not m.name.endswith(suffix)]


class _Lossy(DockerAgent):
    """A real engine whose incoming streams lose one file on the way (a bad copy)."""

    def write_volume_archive(self, image: str, volume: str, path: str,
                             chunks: Iterable[bytes]) -> None:
        kept = _without(b"".join(chunks), "small.txt")
        super().write_volume_archive(image, volume, path, [_tar(kept)])


class _LossyReader(DockerAgent):
    """A real engine whose outgoing streams leave one file out (a bad archive)."""

    def read_volume_archive(self, image: str, volume: str, path: str, *,
                            chunk_size: int = 1 << 20) -> Iterator[bytes]:
        data = b"".join(super().read_volume_archive(image, volume, path))
        yield _tar(_without(data, "small.txt"))


@pytest.mark.parametrize("bad_side, caught_by", [("target", "target's listing"),
                                                 ("source", "stream's listing")])
def test_a_copy_that_differs_from_its_source_fails_by_checksum(agents, bad_side: str,
                                                                caught_by: str) -> None:
    """A file lost on the way in (the target's listing differs from the stream's) or
    left out of the stream (the source agent's listing differs from it) fails the copy."""
    src, dst = agents
    name = _volume(src)
    lossy = _Lossy(dst.url) if bad_side == "target" else _LossyReader(src.url)
    pair = (src, lossy) if bad_side == "target" else (lossy, dst)
    try:
        with pytest.raises(VolumeCopyFailed, match=f"does not match its source.*{caught_by}"):
            copy_volume(pair[0], name, pair[1], name)
    finally:
        lossy.close()
    assert _helpers(src) == [] and _helpers(dst) == []


def test_helpers_are_removed_when_a_stream_fails_or_is_abandoned(agents) -> None:
    src, dst = agents
    name = _volume(src)
    with pytest.raises(ContainerError):
        write_volume_archive(dst, name, [b"this is not a tar archive" * 100], labels={CASE: "1"})
    stream = open_volume_archive(src, name)
    assert next(stream)
    assert len(_helpers(src)) == 1
    stream.close()   # type: ignore[attr-defined]
    assert _helpers(src) == [] and _helpers(dst) == []


def test_a_volume_held_by_a_left_over_toolbox_only_is_removed_with_it(agents) -> None:
    """A worker killed mid-copy leaves its toolbox containers mounting the volume: they
    do not keep the volume from being removed. A package's container does."""
    src, _ = agents
    name = _volume(src)
    binds = {name: {"bind": "/v", "mode": "ro"}}
    src.start_toolbox(DEFAULT_IMAGE, ["/bin/sh", "-c", "sleep 3600"], binds=binds)
    assert len(_helpers(src)) == 1
    assert src.remove_volume(name) and src.volume_labels(name) is None
    assert _helpers(src) == []
    held = _volume(src)
    package = src.api.create_container("berth/hello:1.0.0", host_config=src.api.create_host_config(
        binds={held: {"bind": "/v", "mode": "ro"}}))["Id"]
    try:
        with pytest.raises(ContainerConflict, match="in use"):
            src.remove_volume(held)
        assert src.volume_labels(held) is not None
    finally:
        src.remove(package)
