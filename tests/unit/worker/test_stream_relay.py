"""The pieces that let a volume copy or backup run at the speed of the engines: the archive
read ahead of the upload, the store's folders made without a container, and malloc kept
from giving a stream's chunks back page by page."""

from __future__ import annotations

import io
import os
import tarfile
import threading
from collections.abc import Iterator

import pytest

from worker.celery_app import keep_stream_buffers
from worker.volume_stream import folders_archive, read_ahead


class Source:
    """Chunks ``b"0"``, ``b"1"``…; counts what was read and whether it was closed, and in
    which thread."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count, self.fail_at = count, fail_at
        self.read = 0
        self.closed_in: str | None = None
        self.read_enough = threading.Event()
        self.enough = count

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self.read == self.fail_at:
            raise ConnectionError("the engine went away")
        if self.read >= self.count:
            raise StopIteration
        self.read += 1
        if self.read >= self.enough:
            self.read_enough.set()
        return str(self.read - 1).encode()

    def close(self) -> None:
        self.closed_in = threading.current_thread().name


def test_every_chunk_arrives_in_order_and_the_source_is_closed_by_its_reader() -> None:
    source = Source(50)
    assert list(read_ahead(source, 4)) == [str(n).encode() for n in range(50)]
    assert source.closed_in == "read-ahead"


def test_the_source_is_read_ahead_of_the_caller_but_no_further_than_the_depth() -> None:
    source = Source(100)
    source.enough = 5   # the first chunk, taken by the caller, and four more queued
    stream = read_ahead(source, 4)
    assert next(stream) == b"0"
    assert source.read_enough.wait(10), f"read {source.read} chunks ahead"
    stream.close()
    # one chunk may be in the reader's hands, waiting for room, when it is told to stop
    assert source.read <= 1 + 4 + 1
    assert source.closed_in == "read-ahead"


def test_what_reading_raises_reaches_the_caller_after_the_chunks_before_it() -> None:
    source = Source(10, fail_at=3)
    got: list[bytes] = []
    with pytest.raises(ConnectionError, match="went away"):
        for chunk in read_ahead(source, 2):
            got.append(chunk)
    assert got == [b"0", b"1", b"2"]
    assert source.closed_in == "read-ahead"


def test_nothing_is_read_before_the_stream_is_iterated() -> None:
    source = Source(10)
    stream = read_ahead(source, 4)
    assert source.read == 0
    stream.close()
    assert source.read == 0 and source.closed_in is None


def test_the_folders_archive_makes_each_folder_of_the_path_as_mkdir_p_as_root() -> None:
    with tarfile.open(fileobj=io.BytesIO(folders_archive("/b-123/db-data"))) as tar:
        members = tar.getmembers()
    assert [(m.name, m.isdir(), m.mode, m.uid, m.gid) for m in members] == [
        ("./b-123", True, 0o755, 0, 0), ("./b-123/db-data", True, 0o755, 0, 0)]


def test_malloc_is_tuned_unless_the_operator_tuned_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    for name in [n for n in os.environ if n.startswith("MALLOC_")]:
        monkeypatch.delenv(name)
    assert keep_stream_buffers() is True   # glibc (Debian): mallopt accepts both
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1048576")
    assert keep_stream_buffers() is False
    monkeypatch.delenv("GLIBC_TUNABLES")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert keep_stream_buffers() is False
