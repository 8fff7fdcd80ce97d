"""The checksums moves and backups compute from the tar stream equal the ones computed on
an agent — the toolbox's ``/bin/volume-checksum`` and the listing script — run here with
Debian's busybox (the toolbox's own applets), for every kind of entry a volume holds."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from worker.volume_checksum import LISTING_SCRIPT, StreamChecksum

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "universe/images/toolbox/1.0.0/rootfs/bin/volume-checksum"


def script_checksum(folder: Path, tmp: Path, text: str | None = None) -> str:
    """``volume-checksum`` (or the script ``text``) over ``folder`` with busybox's find,
    stat, sort, sha256sum."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.fail("busybox is not installed (make deps installs busybox-static)")
    bindir = tmp / "bin"
    bindir.mkdir(exist_ok=True)
    for applet in ("find", "stat", "sort", "sha256sum"):
        if not (bindir / applet).exists():
            (bindir / applet).symlink_to(busybox)
    script = tmp / "volume-checksum"
    script.write_text((text or SCRIPT.read_text()).replace('root="/v${1:+/$1}"', 'root="$VROOT"'))
    result = subprocess.run([busybox, "sh", str(script)], capture_output=True, text=True,
                            env={"PATH": str(bindir), "VROOT": str(folder)}, check=True)
    return result.stdout.strip().splitlines()[-1]


def volume(folder: Path) -> Path:
    """Files, an empty one, a link, a hard link, a fifo, modes, a long name, a space."""
    (folder / "d" / "sp ace").mkdir(parents=True)
    (folder / "f").write_text("hi\n")
    (folder / "e").write_text("")
    (folder / "l").symlink_to("f")
    os.link(folder / "f", folder / "h")
    os.mkfifo(folder / "p")
    (folder / "d" / "big").write_bytes(os.urandom(300_000))
    (folder / "d" / "big").chmod(0o4755)
    (folder / "d").chmod(0o1777)
    (folder / "d" / "sp ace" / ("n" * 150)).write_text("long\n")
    return folder


@pytest.mark.parametrize("form", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_the_stream_checksum_is_the_agents_checksum(tmp_path: Path, form: int) -> None:
    folder = volume(tmp_path / "v")
    archive = tmp_path / "v.tar"
    with tarfile.open(archive, "w", format=form) as tar:
        tar.add(folder, arcname=".")
    data = archive.read_bytes()
    summed = StreamChecksum([data[i:i + 4099] for i in range(0, len(data), 4099)])
    assert b"".join(summed) == data     # passed through unchanged
    assert summed.hexdigest() == script_checksum(folder, tmp_path)
    assert summed.count == len(data)
    assert summed.listing() == script_checksum(folder, tmp_path, LISTING_SCRIPT)
    assert summed.listing() != summed.hexdigest()


def test_the_listing_sees_a_lost_file_and_a_changed_size_not_new_contents(
        tmp_path: Path) -> None:
    folder = volume(tmp_path / "v")
    before = script_checksum(folder, tmp_path, LISTING_SCRIPT)
    (folder / "d" / "big").write_bytes(os.urandom(300_000))   # same size, other bytes
    assert script_checksum(folder, tmp_path, LISTING_SCRIPT) == before
    (folder / "f").write_text("hi!\n")
    assert script_checksum(folder, tmp_path, LISTING_SCRIPT) != before
    changed = script_checksum(folder, tmp_path, LISTING_SCRIPT)
    (folder / "e").unlink()
    assert script_checksum(folder, tmp_path, LISTING_SCRIPT) != changed


def test_a_stream_it_cannot_read_gives_no_checksum() -> None:
    torn = StreamChecksum([b"x" * 1024])
    assert b"".join(torn) == b"x" * 1024
    assert torn.hexdigest() is None and torn.listing() is None
    cut = StreamChecksum([tarfile.TarInfo("./a").tobuf()])   # no end blocks
    list(cut)
    assert cut.hexdigest() is None
