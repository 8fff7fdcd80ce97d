"""Named volumes as tar streams between agents: read, write, checksum and copy.

A volume's files leave an agent as a tar stream read through the engine's archive
endpoint from a small helper container of the toolbox image (created, never started:
no network, the volume mounted read-only), and enter another agent the same way
(``put_archive`` into a helper that mounts the target volume). The stream passes
through the worker in chunks of :data:`worker.docker_agent.ARCHIVE_CHUNK` bytes: it is
never whole in memory nor on the worker's disk, so a volume larger than the worker's
memory copies as well as a small one.

A copy is checked by checksums of its files, and the volume is read once, by the
stream itself — neither agent reads it a second time:

- *the contents*: :class:`worker.volume_checksum.StreamChecksum` computes, from the
  stream as it passes the worker, the figure the toolbox's ``/bin/volume-checksum`` gives
  on an agent (names, types, modes, owners, link targets and SHA-256 of the contents,
  sorted). It is the copy's checksum (:attr:`CopyResult.checksum`): the bytes hashed are
  the very chunks handed to the target engine, which writes them or fails the request,
  and ``volume_checksum`` on either agent gives the same figure at any later time.
- *every entry, on both sides*: while the data streams, the source agent computes the
  checksum of the volume's *listing* (:func:`listing_checksum`: every entry's name, type,
  mode, owner, link target, and each file's size — ``stat`` only, no file is read); once
  the last byte is in, the target agent computes the same of the copy. Both must equal
  the listing computed from the stream: an entry the stream left out, a file lost, cut
  short or grown on the target, or landed with another mode or owner, fails the copy.

What is not checked is a same-size change of a file's bytes inside an engine (between
its disk and its archive endpoint, on either side): finding that needs a second full
read of a volume on an agent, after the last byte, which made a copy take two to three
times as long as the raw stream (``bench/RESULTS.md``, "Moving data"). When the worker
cannot read the stream (an unknown tar header), it falls back to that: both agents
compute the full checksum after the copy, and they must be equal.

Helper containers are removed when their stream ends, fails or is abandoned. Moves
(:mod:`worker.move`) and backups build on these functions.

Paths are folders inside the volume, ``/`` (the whole volume) by default; a path that
climbs out of the volume (``..``) is refused.
"""

from __future__ import annotations

import io
import posixpath
import queue
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from catalog.settings_table import default

from .containers import VOLUME_LABEL
from .docker_agent import VOLUME_MOUNT
from .errors import (
    AgentError,
    InvalidRequest,
    VolumeCopyFailed,
    VolumeExists,
    VolumeNotFound,
)
from .volume_checksum import LISTING_SCRIPT, StreamChecksum

if TYPE_CHECKING:
    from .backend import Engine
    from .containers import ExecResult

__all__ = ["CopyResult", "open_volume_archive", "write_volume_archive", "volume_checksum",
           "listing_checksum", "copy_volume", "volume_path", "read_ahead", "folders_archive",
           "CHECKSUM_COMMAND", "DEFAULT_IMAGE", "READ_AHEAD"]

CHECKSUM_COMMAND = "/bin/volume-checksum"
SHELL = "/bin/sh"
DEFAULT_IMAGE: str = default("BERTH_TOOLBOX_IMAGE")
# ``sh -c AFTER_SIGNAL SCRIPT FOLDER`` runs ``sh -c SCRIPT listing FOLDER`` on SIGUSR1
AFTER_SIGNAL = ('script=$0 folder=$1; work() { /bin/sh -c "$script" listing "$folder"; '
                'exit $?; }; trap work USR1; while :; do sleep 3600 & wait $!; done')
CHECKSUM_TIMEOUT = 3600.0   # seconds; sha256 of a large volume on a slow disk
T = TypeVar("T")


@dataclass(frozen=True)
class CopyResult:
    """A verified copy: tar bytes streamed, and the checksum both volumes share."""

    bytes: int
    checksum: str


def volume_path(path: str) -> str:
    """``path`` as a folder below the volume's mount: ``""`` for the whole volume,
    else ``/a/b``.

    :raises InvalidRequest: the path climbs out of the volume (``..``).
    """
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidRequest(f"volume path {path!r} climbs out of the volume",
                             details=[{"path": "path", "message": "must not contain '..'"}])
    return posixpath.join("/", *parts) if parts else ""


def open_volume_archive(agent: Engine, volume: str, path: str = "/", *,
                        image: str = DEFAULT_IMAGE) -> Iterator[bytes]:
    """A tar stream of the files of ``volume`` (or its folder ``path``) on ``agent``.

    Entries are relative (``./…``), so :func:`write_volume_archive` puts them back at
    the same place. The volume must exist (a bind would create an empty one).

    :raises VolumeNotFound: ``volume`` is not on ``agent``.
    :raises AgentError: the engine failed or did not answer (also while streaming).
    """
    folder = volume_path(path)
    _require(agent, volume)
    return read_ahead(agent.read_volume_archive(image, volume, folder), READ_AHEAD)


def write_volume_archive(agent: Engine, volume: str, chunks: Iterable[bytes],
                         path: str = "/", *, labels: Mapping[str, str] | None = None,
                         image: str = DEFAULT_IMAGE) -> None:
    """Extract the tar stream ``chunks`` into ``volume`` (its folder ``path``) on ``agent``.

    A missing volume is created with ``labels`` — pass Berth's ``berth.service`` and
    ``berth.volume`` so that it is listed by service; without them it gets
    ``berth.volume=<volume>`` only. A missing folder is made, with its parents, by an
    archive of those folders (:func:`folders_archive`: root's, mode 0755, as ``mkdir -p``
    as root makes them; a folder of the path that exists takes that owner and mode). The
    folders are Berth's own (a backup store's ``<id>/<volume>``): no container is started
    to make them, which took a third of a second of each backup.

    :raises AgentError: the engine refused the archive or did not answer.
    """
    folder = volume_path(path)
    agent.ensure_volume(volume, dict(labels) if labels is not None else {VOLUME_LABEL: volume})
    if folder:
        agent.write_volume_archive(image, volume, "", [folders_archive(folder)])
    agent.write_volume_archive(image, volume, folder, chunks)


def folders_archive(folder: str) -> bytes:
    """A tar of the folders of ``folder`` and its parents (``/a/b`` → ``./a/``,
    ``./a/b/``), owned by root, mode 0755."""
    out = io.BytesIO()
    parts = folder.strip("/").split("/")
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for n in range(1, len(parts) + 1):
            info = tarfile.TarInfo("./" + "/".join(parts[:n]))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
            tar.addfile(info)
    return out.getvalue()


def volume_checksum(agent: Engine, volume: str, path: str = "/", *,
                    image: str = DEFAULT_IMAGE, timeout: float = CHECKSUM_TIMEOUT) -> str:
    """The checksum of the files of ``volume`` (or its folder ``path``), computed on
    ``agent`` (names, types, modes, owners, link targets and contents, sorted).

    :raises VolumeNotFound: ``volume`` is not on ``agent``.
    :raises VolumeCopyFailed: the checksum command failed or ran out of time.
    :raises AgentError: the engine failed or did not answer.
    """
    folder = volume_path(path)
    _require(agent, volume)
    output = _toolbox(agent, image, volume, [CHECKSUM_COMMAND, folder.lstrip("/")], "ro",
                      what="checksum", timeout=timeout, caps=("DAC_READ_SEARCH",))
    return output.strip().splitlines()[-1]


def listing_checksum(agent: Engine, volume: str, path: str = "/", *,
                     image: str = DEFAULT_IMAGE, timeout: float = CHECKSUM_TIMEOUT) -> str:
    """The checksum of the *listing* of ``volume`` (or its folder ``path``), computed on
    ``agent``: names, types, modes, owners, link targets and file sizes, not contents
    (:data:`worker.volume_checksum.LISTING_SCRIPT`; cheap: no file is read).

    :raises VolumeNotFound: ``volume`` is not on ``agent``.
    :raises VolumeCopyFailed: the listing failed or ran out of time.
    :raises AgentError: the engine failed or did not answer.
    """
    folder = volume_path(path)
    _require(agent, volume)
    output = _toolbox(agent, image, volume, [SHELL, "-c", LISTING_SCRIPT, "listing",
                                             folder.lstrip("/")], "ro",
                      what="listing", timeout=timeout, caps=("DAC_READ_SEARCH",))
    return output.strip().splitlines()[-1]


def copy_volume(src_agent: Engine, src_volume: str, dst_agent: Engine, dst_volume: str, *,
                labels: Mapping[str, str] | None = None,
                image: str = DEFAULT_IMAGE) -> CopyResult:
    """Copy every file of ``src_volume`` on ``src_agent`` into a new ``dst_volume`` on
    ``dst_agent``, streamed engine to engine through the worker, and check it.

    The target is created with ``labels`` (default: the source's labels). The source
    must not change during the copy (stop its containers first).

    :raises VolumeNotFound: the source volume is not there.
    :raises VolumeExists: the target volume is there already (a left-over copy).
    :raises VolumeCopyFailed: the copy's checksum differs from the source's.
    :raises AgentError: either engine failed or stopped answering.
    """
    src_labels = _require(src_agent, src_volume)
    if dst_agent.volume_labels(dst_volume) is not None:
        raise VolumeExists(
            f"volume {dst_volume} is already on the target agent",
            details=[{"path": "volume", "message": f"{dst_volume} exists on the target"}],
            hint="remove the old copy first (berth volumes prune removes left-over volumes)",
            volume=dst_volume)
    labels = dict(src_labels if labels is None else labels)
    # the target's listing waits in a container started now, for the copy's last byte:
    # the volume is there first, so that its bind does not make one without labels
    dst_agent.ensure_volume(dst_volume, labels)
    target = _TargetListing(dst_agent, dst_volume, image)
    try:
        source = _InThread(f"listing-{src_volume}",
                           lambda: listing_checksum(src_agent, src_volume, image=image))
        stream = StreamChecksum(open_volume_archive(src_agent, src_volume, image=image))
        try:
            write_volume_archive(dst_agent, dst_volume, stream, labels=labels, image=image)
        finally:
            stream.close()
            source.join()
        sent, listed = stream.hexdigest(), stream.listing()
        if sent is None or listed is None:   # a stream it cannot read: both agents read all
            sent = volume_checksum(src_agent, src_volume, image=image)
            _compare(src_volume, dst_volume, sent,
                     volume_checksum(dst_agent, dst_volume, image=image), "target")
            return CopyResult(bytes=stream.count, checksum=sent)
        _compare(src_volume, dst_volume, source.result(), listed, "stream's listing")
        _compare(src_volume, dst_volume, listed, target.result(), "target's listing")
        return CopyResult(bytes=stream.count, checksum=sent)
    finally:
        target.close()


def _compare(src_volume: str, dst_volume: str, expected: str, actual: str, where: str
             ) -> None:
    """:raises VolumeCopyFailed: ``actual`` (measured at ``where``) differs."""
    if actual != expected:
        raise VolumeCopyFailed(
            f"the copy of volume {src_volume} does not match its source "
            f"(checksum {actual[:12]}… of the {where}, {expected[:12]}… expected)",
            details=[{"path": "volume", "message": f"{dst_volume}: checksums differ"}],
            volume=dst_volume, expected=expected, actual=actual)


def _require(agent: Engine, volume: str) -> dict[str, str]:
    """The labels of ``volume`` on ``agent``; :raises VolumeNotFound: when it is not there."""
    labels = agent.volume_labels(volume)
    if labels is None:
        raise VolumeNotFound(f"volume {volume} is not on agent {agent.url}",
                             details=[{"path": "volume", "message": f"{volume}: not found"}],
                             volume=volume)
    return labels


def _toolbox(agent: Engine, image: str, volume: str, argv: list[str], mode: str, *,
             what: str, timeout: float = 60, caps: tuple[str, ...] = ()) -> str:
    """Run a toolbox command with ``volume`` at ``/v``; its output, or VolumeCopyFailed.

    The toolbox runs as root without capabilities; ``caps`` gives back the one a
    command needs to reach files of other owners (a database's files are its own).
    """
    binds = {volume: {"bind": VOLUME_MOUNT, "mode": mode}}
    return _output(agent, volume, what,
                   agent.run_toolbox(image, argv, binds=binds, timeout=timeout, cap_add=caps))


def _output(agent: Engine, volume: str, what: str, result: ExecResult) -> str:
    """The output of a toolbox command that succeeded; :raises VolumeCopyFailed: else."""
    if result.exit_code != 0:
        lines = result.output.strip().splitlines()
        reason = lines[-1] if lines else f"exit {result.exit_code}"
        raise VolumeCopyFailed(f"{what} of volume {volume} on {agent.url} failed: {reason}",
                               details=[{"path": "volume", "message": reason}],
                               volume=volume)
    return result.output


READ_AHEAD = 4   # chunks (of 1 MiB) a volume archive is read ahead of its reader
_END = object()


def read_ahead(chunks: Iterable[bytes], depth: int) -> Iterator[bytes]:
    """``chunks``, read in a thread of their own up to ``depth`` chunks ahead of the
    caller; what reading raises is raised to the caller in its place; closing this
    closes ``chunks`` (in the thread that reads them) once its read in progress ends.

    A copy relays one engine's archive into another's upload: read in the same thread
    as the upload is sent, one engine waits while the other works (the source's socket
    fills while a chunk is sent; the target idles while the next is read). Read ahead,
    both engines work at once.
    """
    pending: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                pending.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def fill() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
            put(_END)
        except BaseException as exc:  # handed to the reader's thread
            put(exc)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(target=fill, name="read-ahead", daemon=True)
    reader.start()
    try:
        while (item := pending.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


class _InThread(Generic[T]):
    """``work()`` run in a thread of its own (while the copy streams); its result, or
    what it raised, handed to the caller's thread."""

    def __init__(self, name: str, work: Callable[[], T]) -> None:
        self._outcome: list[T | BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(work,), name=name,
                                        daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], T]) -> None:
        try:
            self._outcome.append(work())
        except BaseException as exc:  # handed to the caller's thread by result()
            self._outcome.append(exc)

    def join(self) -> None:
        """Wait for the work to be done."""
        self._thread.join()

    def result(self) -> T:
        """What the work returned; re-raises what it raised."""
        self._thread.join()
        outcome = self._outcome[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class _TargetListing:
    """A volume's listing checksum computed on its agent by a container started (in a
    thread, while the copy streams) before the last byte is in, and signalled then
    (:meth:`DockerAgent.start_toolbox`): neither its start nor its end waits on the other."""

    def __init__(self, agent: Engine, volume: str, image: str) -> None:
        self._agent, self._volume = agent, volume
        self._read = False
        self._started = _InThread(f"target-listing-{volume}", lambda: agent.start_toolbox(
            image, [SHELL, "-c", AFTER_SIGNAL, LISTING_SCRIPT, ""],
            binds={volume: {"bind": VOLUME_MOUNT, "mode": "ro"}}, cap_add=("DAC_READ_SEARCH",)))

    def result(self, timeout: float = CHECKSUM_TIMEOUT) -> str:
        """The listing of the volume as it is now (the container goes).

        :raises VolumeCopyFailed: the listing failed or ran out of time.
        :raises AgentError: the container could not be started.
        """
        container = self._started.result()
        self._read = True
        output = _output(self._agent, self._volume, "listing",
                         self._agent.finish_toolbox(container, timeout=timeout))
        return output.strip().splitlines()[-1]

    def close(self) -> None:
        """Remove the container when its listing was never read (the copy failed)."""
        if self._read:
            return
        self._read = True
        try:
            container = self._started.result()
        except Exception:  # noqa: BLE001 - it never started: nothing to remove
            return
        try:
            self._agent.remove(container)
        except AgentError:
            pass   # the engine went away; a left-over toolbox container holds nothing
