"""The checksum of a volume's files, computed from its tar stream as it passes the worker.

One place for the figure both moves (:func:`worker.volume_stream.copy_volume`) and
backups (:mod:`worker.backups`) compute from the stream. It is the same checksum the
toolbox's ``/bin/volume-checksum`` computes on an agent (see that script): for every
entry below the folder, sorted as bytes (``LC_ALL=C sort``), the lines

    entry <name> <type> <mode> <uid>:<gid>      (``stat -c 'entry %n %F %a %u:%g'``)
    link '<name>' -> '<target>'                 (``stat -c 'link %N'``, links only)
    file <sha256> <name>                        (``openssl dgst -sha256 -r``, files only)

and then SHA-256 of the sorted lines. Computing it here, from the bytes being copied,
costs the worker one pass of SHA-256 and no second read of the volume on either agent.

Beside it, :meth:`StreamChecksum.listing` is the checksum of the *listing* alone: the
``entry`` and ``link`` lines and, for files, ``size <bytes> <name>`` instead of the
contents' hash. The same listing is cheap to compute on an agent (:data:`LISTING_SCRIPT`:
``stat`` of each entry, no file is read), so the worker can check what landed on a
target — every entry, with its type, mode, owner, link target and size — right after
the last byte, without reading the copy back.

The tar is read as it streams (headers, PAX and GNU long names, contents, padding),
never held: :class:`StreamChecksum` passes the chunks through unchanged, counts them,
and hashes them in a thread of its own, a few chunks behind, so hashing and copying
overlap. A stream it cannot read (an unknown header) leaves ``hexdigest()`` and
``listing()`` None: the caller then asks the agent instead.
"""

from __future__ import annotations

import hashlib
import queue
import tarfile
import threading
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["StreamChecksum", "LISTING_SCRIPT"]

# The listing (see above) over the folder "$1" of the volume at /v, for ``sh -c``; its
# last line is the checksum. Exit 2: no such folder.
LISTING_SCRIPT = (
    'set -o pipefail; export LC_ALL=C PATH=/bin:/usr/bin; root="/v${1:+/$1}"; '
    'cd "$root" 2>/dev/null || { echo "no folder $root"; exit 2; }; '
    "sum=$({ find . -exec stat -c 'entry %n %F %a %u:%g' {} + && "
    "find . -type l -exec stat -c 'link %N' {} + && "
    "find . -type f -exec stat -c 'size %s %n' {} +; } | sort | sha256sum) || "
    '{ echo "listing failed"; exit 3; }; echo "${sum%% *}"')

BLOCK = tarfile.BLOCKSIZE
QUEUED = 8   # chunks (of about 1 MiB) the hashing thread may lag behind the stream
_TYPES = {tarfile.DIRTYPE: "directory", tarfile.SYMTYPE: "symbolic link",
          tarfile.CHRTYPE: "character special file", tarfile.BLKTYPE: "block special file",
          tarfile.FIFOTYPE: "fifo"}
_FILES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)


def _name(raw: str) -> str:
    """A tar name as ``find .`` prints it: ``./a/b``, and ``.`` for the folder itself."""
    name = raw.rstrip("/")
    if name in ("", "."):
        return "."
    return name if name.startswith("./") else "./" + name.lstrip("/")


class StreamChecksum:
    """Pass a tar stream through, computing the checksum of the files in it."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()
        self._lines: list[bytes] = []     # the checksum's lines
        self._listing: list[bytes] = []   # the listing's lines
        self._files: dict[str, tuple[int, str]] = {}   # name → (size, sha256) for hard links
        self._pax: dict[str, str] = {}
        self._long: dict[str, str] = {}
        self._content: tuple[str, int, Any] | None = None   # name, bytes left, digest
        self._skip = 0
        self._ended = False
        self._thread: threading.Thread | None = None
        self.failed = False
        self.count = 0   # bytes passed through

    def __iter__(self) -> Iterator[bytes]:
        """The chunks, unchanged; a thread of its own reads and hashes them meanwhile
        (SHA-256 releases the GIL), at most :data:`QUEUED` chunks behind."""
        pending: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUED)
        self._thread = threading.Thread(target=self._consume, args=(pending,),
                                        name="stream-checksum", daemon=True)
        self._thread.start()
        try:
            for chunk in self._chunks:
                self.count += len(chunk)
                pending.put(chunk)
                yield chunk
        finally:
            pending.put(None)

    def close(self) -> None:
        """End the source stream early (a generator's helper container goes with it)."""
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()

    def _consume(self, pending: queue.Queue[bytes | None]) -> None:
        while (chunk := pending.get()) is not None:
            if self.failed:
                continue
            try:
                self._feed(chunk)
            except (tarfile.TarError, ValueError, UnicodeError, KeyError):
                self.failed = True

    def hexdigest(self) -> str | None:
        """The checksum, or None when the stream could not be read to its end (waits
        for the hashing thread to catch up)."""
        return self._digest(self._lines)

    def listing(self) -> str | None:
        """The listing's checksum (entries, links, file sizes), or None like
        :meth:`hexdigest`."""
        return self._digest(self._listing)

    def _digest(self, lines: list[bytes]) -> str | None:
        if self._thread is not None:
            self._thread.join()
        if self.failed or not self._ended:
            return None
        digest = hashlib.sha256()
        for line in sorted(lines):
            digest.update(line + b"\n")
        return digest.hexdigest()

    # parsing ---------------------------------------------------------------------------
    def _feed(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            if self._content is not None:
                view = self._take_content(view)
            elif self._skip:
                cut = min(self._skip, len(view))
                self._skip -= cut
                view = view[cut:]
            elif self._ended:
                return
            else:
                need = BLOCK - len(self._buffer)
                self._buffer += view[:need]
                view = view[need:]
                if len(self._buffer) == BLOCK:
                    block, self._buffer = bytes(self._buffer), bytearray()
                    self._header(block)

    def _take_content(self, view: memoryview) -> memoryview:
        assert self._content is not None
        name, left, digest = self._content
        cut = min(left, len(view))
        digest.update(view[:cut])
        left -= cut
        self._content = (name, left, digest) if left else None
        if not left:
            self._done_file(name, digest)
        return view[cut:]

    def _header(self, block: bytes) -> None:
        if block == b"\0" * BLOCK:
            self._ended = True   # the end blocks (what follows is padding)
            return
        info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        size = int(self._pax.get("size", info.size))
        if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME,
                         tarfile.GNUTYPE_LONGLINK):
            meta, collect = f"\0meta:{info.type.decode()}", _Collect()
            self._skip = (-size) % BLOCK
            if size:
                self._content = (meta, size, collect)
            else:
                self._done_file(meta, collect)
            return
        name = _name(self._pax.pop("path", self._long.pop("name", info.name)))
        target = self._pax.pop("linkpath", self._long.pop("link", info.linkname))
        uid, gid = int(self._pax.pop("uid", info.uid)), int(self._pax.pop("gid", info.gid))
        self._pax.pop("size", None)
        self._pax.clear()
        self._entry(info, name, target, size, f"{uid}:{gid}")

    def _entry(self, info: tarfile.TarInfo, name: str, target: str, size: int,
               owner: str) -> None:
        mode = format(info.mode & 0o7777, "o")
        if info.type in _FILES:
            kind = "regular file" if size else "regular empty file"
            self._line(f"entry {name} {kind} {mode} {owner}")
            self._listing_line(f"size {size} {name}")
            self._files[name] = (size, "")
            self._skip = (-size) % BLOCK
            if size:
                self._content = (name, size, hashlib.sha256())
            else:
                self._done_file(name, hashlib.sha256())
        elif info.type == tarfile.LNKTYPE:   # a hard link: the file it names, again
            size_of, digest = self._files[_name(target)]
            kind = "regular file" if size_of else "regular empty file"
            self._line(f"entry {name} {kind} {mode} {owner}")
            self._files[name] = (size_of, digest)
            self._listing_line(f"size {size_of} {name}")
            self._line(f"file {digest} {name}", listing=False)
        elif info.type in _TYPES:
            self._line(f"entry {name} {_TYPES[info.type]} {mode} {owner}")
            if info.type == tarfile.SYMTYPE:
                self._line(f"link '{name}' -> '{target}'")
            self._skip = (-size) % BLOCK + size if info.type != tarfile.SYMTYPE else 0
        else:
            raise ValueError(f"tar entry type {info.type!r} of {name}")

    def _done_file(self, name: str, digest: object) -> None:
        if isinstance(digest, _Collect):
            self._meta(name, digest.data)
            return
        hexdigest = digest.hexdigest()  # type: ignore[attr-defined]
        self._files[name] = (self._files.get(name, (0, ""))[0], hexdigest)
        self._line(f"file {hexdigest} {name}", listing=False)

    def _meta(self, name: str, data: bytes) -> None:
        kind = name.rsplit(":", 1)[1].encode()
        if kind == tarfile.XHDTYPE:
            self._pax.update(_pax_records(data))
        elif kind == tarfile.GNUTYPE_LONGNAME:
            self._long["name"] = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
        elif kind == tarfile.GNUTYPE_LONGLINK:
            self._long["link"] = data.rstrip(b"\0").decode("utf-8", "surrogateescape")

    def _line(self, text: str, *, listing: bool = True) -> None:
        """A line of the checksum, and of the listing too unless ``listing`` is False."""
        line = text.encode("utf-8", "surrogateescape")
        self._lines.append(line)
        if listing:
            self._listing.append(line)

    def _listing_line(self, text: str) -> None:
        self._listing.append(text.encode("utf-8", "surrogateescape"))


class _Collect:
    """Collects a (small) metadata entry's data: a PAX header, a GNU long name."""

    def __init__(self) -> None:
        self.data = b""

    def update(self, data: bytes | memoryview) -> None:
        if len(self.data) + len(data) > 1 << 20:
            raise ValueError("a tar metadata entry over 1 MiB")
        self.data += bytes(data)


def _pax_records(data: bytes) -> dict[str, str]:
    """``"<len> key=value\\n"`` records of a PAX header."""
    records: dict[str, str] = {}
    position = 0
    while position < len(data) and data[position:position + 1] != b"\0":
        space = data.index(b" ", position)
        length = int(data[position:space])
        key, _, value = data[space + 1:position + length - 1].partition(b"=")
        records[key.decode("utf-8")] = value.decode("utf-8", "surrogateescape")
        position += length
    return records
