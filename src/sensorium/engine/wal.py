"""Write-ahead log: CRC-framed records in numbered segment files (write path, step 2).

A resolved batch is appended here (``records.encode_samples``) before the head is touched, and
the append returns only once the policy's durability holds, so an acknowledged write survives
``kill -9``. At startup the shard replays the log from its checkpoint's first segment. A crash
tears at most the last frame; its checksum fails, the segment is truncated there with a
warning, and startup goes on. Byte layout, policies and recovery rules: ``docs/format/wal.md``.

Call order: ``WAL.open`` (validates and repairs the last segment), then ``replay`` (once, at
startup) and ``append`` in any order; ``cut`` + ``remove_before`` at checkpoints; ``close``.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import struct
import threading
import zlib
from collections.abc import Generator, Iterator, Sequence

from ..errors import EngineClosed, InvalidArgument
from .fsync import fsync_dir

log = logging.getLogger("sensorium.wal")

Buffer = bytes | bytearray | memoryview
FSYNC_POLICIES = ("batch", "periodic", "none")
DEFAULT_SEGMENT_BYTES = 64 << 20
# Longer frames are a corrupt length field, not a record: replay reads a payload into memory
# in one piece, and 1 GiB is ~50M sample rows, far above any batch the head logs at once.
MAX_RECORD_BYTES = 1 << 30
_HEADER = struct.Struct("<II")  # payload length, zlib.crc32 of the payload
_SEGMENT_NAME = re.compile(r"^(\d{8,})\.wal$")
# os.writev takes at most IOV_MAX (1024 on Linux) buffers; append_many joins beyond that.
_MAX_IOV = 1024
# fdatasync still flushes the file size, which is all an appended log needs; macOS lacks it.
_fdatasync = getattr(os, "fdatasync", os.fsync)


def segment_name(number: int) -> str:
    """File name of segment ``number``, e.g. ``00000001.wal``."""
    return f"{number:08d}.wal"


class WAL:
    """An append-only log over a directory of numbered segments.

    Thread-safe: appends, ``cut`` and ``close`` are serialised by one lock; ``replay`` reads
    without it. Build with ``WAL.open``, never directly.
    """

    def __init__(self, path: str, fsync: str, segment_bytes: int, sync_interval_s: float,
                 segments: list[int], fd: int, size: int) -> None:
        self.path = path
        self._fsync = fsync
        self._segment_bytes = segment_bytes
        self._sync_interval_s = sync_interval_s
        self._segments = segments  # ascending; the last one is active (being appended to)
        self._fd = fd
        self._size = size  # bytes in the active segment, always at a frame boundary
        self._lock = threading.Lock()
        # Group commit: appends number their bytes; one fdatasync covers every append written
        # before it, so concurrent writers share a sync instead of queueing for one each.
        self._written = 0  # bytes appended since open (all segments)
        self._synced = 0  # of those, bytes known durable
        self._sync_lock = threading.Lock()
        self._closed = False
        self._dirty = False  # written since the last fsync ("periodic")
        self._failed: OSError | None = None  # after a failed fsync nothing is known: refuse
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None
        if fsync == "periodic":
            self._syncer = threading.Thread(target=self._sync_loop, daemon=True,
                                            name=f"sensorium-wal-sync {path}")
            self._syncer.start()

    @classmethod
    def open(cls, path: str, fsync: str = "batch", segment_bytes: int = DEFAULT_SEGMENT_BYTES,
             sync_interval_s: float = 1.0) -> WAL:
        """Open (or create) the log in directory ``path``, ready to append.

        The last segment is scanned and, if its tail is torn or corrupt, truncated after its
        last valid frame with a warning on ``sensorium.wal``; appends continue from there.
        Earlier segments are checked lazily, by ``replay``.

        Args:
            path: the log's directory; created (and its parent fsynced) if missing.
            fsync: ``"batch"`` syncs every append before it returns; ``"periodic"`` syncs
                from a thread every ``sync_interval_s`` (a power loss may lose that much);
                ``"none"`` syncs only at ``cut`` and ``close``. No policy loses an append
                to ``kill -9``: ``write`` has put it in the page cache.
            segment_bytes: an append that would grow the active segment past this starts a
                new one (a single larger frame gets a segment of its own).
            sync_interval_s: period of the ``"periodic"`` policy, in seconds.

        Raises:
            InvalidArgument: unknown policy, or a non-positive size or interval.
            OSError: the directory or a segment cannot be read or written.
        """
        if fsync not in FSYNC_POLICIES:
            raise InvalidArgument(f"fsync must be one of {FSYNC_POLICIES}, not {fsync!r}")
        if segment_bytes <= 0 or sync_interval_s <= 0:
            raise InvalidArgument("segment_bytes and sync_interval_s must be positive")
        if not os.path.isdir(path):
            os.makedirs(path, exist_ok=True)
            fsync_dir(os.path.dirname(os.path.abspath(path)))
        segments = _list_segments(path)
        if not segments:
            segments = [1]
            fd = _create_segment(path, 1)
            size = 0
        else:
            last = os.path.join(path, segment_name(segments[-1]))
            size = _repair_tail(last)
            fd = os.open(last, os.O_WRONLY | os.O_APPEND)
        return cls(path, fsync, segment_bytes, sync_interval_s, segments, fd, size)

    # -- writing --------------------------------------------------------------------------
    def append(self, record: Buffer, *, sync: bool = True) -> int:
        """Log one record; when this returns, it is as durable as the fsync policy promises.

        With ``sync=False`` the record is written (it survives ``kill -9``) but not fsynced
        yet: call ``sync(position)`` with the returned position before acknowledging it.

        Raises:
            InvalidArgument: the record is empty or longer than ``MAX_RECORD_BYTES``.
            EngineClosed: the log was closed.
            OSError: the write or fsync failed; the record is not acknowledged. After a failed
                fsync every later append raises too, until the log is reopened.
        """
        return self.append_many((record,), sync=sync)

    def append_many(self, records: Sequence[Buffer], *, sync: bool = True) -> int:
        """Log several records with one write and one fsync, all in the same segment.

        Returns the log position after them (see ``sync``). Raises as ``append``; on error
        none of the records is acknowledged.
        """
        bufs: list[Buffer] = []
        nbytes = 0
        for record in records:  # checksums outside the lock
            n = memoryview(record).nbytes
            if not 0 < n <= MAX_RECORD_BYTES:
                raise InvalidArgument(f"a log record must be 1..{MAX_RECORD_BYTES} bytes, not {n}")
            bufs += (_HEADER.pack(n, zlib.crc32(record)), record)
            nbytes += _HEADER.size + n
        if not bufs:
            return self._written
        if len(bufs) > _MAX_IOV:
            bufs = [b"".join(bufs)]
        with self._lock:
            self._check_writable()
            if self._size > 0 and self._size + nbytes > self._segment_bytes:
                self._cut_locked()
            self._write_locked(bufs, nbytes)
            self._dirty = True
            position = self._written
        if sync:
            self.sync(position)
        return position

    def sync(self, position: int) -> None:
        """Returns once the log is durable up to ``position`` under the fsync policy.

        Under ``"batch"`` this fsyncs unless a concurrent call already covered ``position``
        (group commit); other policies return at once.

        Raises:
            OSError: the fsync failed; the log refuses later appends.
        """
        if self._fsync != "batch" or self._synced >= position:
            return
        with self._sync_lock:
            if self._synced >= position:
                return  # another writer's fsync covered us while we waited
            with self._lock:
                self._check_writable()
                fd = os.dup(self._fd)  # earlier segments were synced when they were cut
                target = self._written
                self._dirty = False
            try:
                _fdatasync(fd)
            except OSError as exc:
                with self._lock:
                    self._failed = exc  # the kernel may have dropped dirty pages
                raise
            finally:
                os.close(fd)
            self._synced = max(self._synced, target)

    def cut(self) -> int:
        """Sync and close the active segment, start the next; return the new segment's number.

        Every record appended before the call lives in a segment below the returned number,
        so a checkpoint that has landed may ``remove_before`` it. If the active segment is
        still empty it stays active and its own number is returned.

        Raises:
            EngineClosed: the log was closed.
            OSError: syncing or creating a segment failed.
        """
        with self._lock:
            self._check_writable()
            if self._size > 0:
                self._cut_locked()
            return self._segments[-1]

    def remove_before(self, segment: int) -> None:
        """Delete the segments numbered below ``segment``; never the active one."""
        with self._lock:
            doomed = [n for n in self._segments[:-1] if n < segment]
            self._segments = [n for n in self._segments if n not in doomed]
        for number in doomed:
            try:
                os.remove(os.path.join(self.path, segment_name(number)))
            except FileNotFoundError:
                pass
        if doomed:
            fsync_dir(self.path)

    def close(self) -> None:
        """Stop the sync thread, fsync (under every policy) and close. Idempotent."""
        self._stop.set()
        if self._syncer is not None:
            self._syncer.join()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._failed is None:
                    _fdatasync(self._fd)
            finally:
                os.close(self._fd)

    def __enter__(self) -> WAL:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------------
    def replay(self, from_segment: int = 0) -> Iterator[bytes]:
        """Yield, in order, the payload of every record appended before this call that lives
        in a segment numbered ``from_segment`` or above.

        A bad frame in a closed segment (checksum mismatch, torn or absurd length) is logged
        as a warning naming the file and offset; the segment is truncated there, the rest of
        it is skipped and replay continues with the next segment. It never raises for corrupt
        data. Safe to run alongside appends, which it does not yield.

        Raises:
            EngineClosed: the log was closed.
        """
        with self._lock:
            if self._closed:
                raise EngineClosed()
            numbers = [n for n in self._segments if n >= from_segment]
            active, active_size = self._segments[-1], self._size
        return self._replay(numbers, active, active_size)

    def _replay(self, numbers: list[int], active: int, active_size: int) -> Iterator[bytes]:
        previous: int | None = None
        for number in numbers:
            if previous is not None and number != previous + 1:
                log.warning("%s: segments %d to %d are missing; their records are lost",
                            self.path, previous + 1, number - 1)
            previous = number
            path = os.path.join(self.path, segment_name(number))
            try:
                end, reason = yield from _frames(path, active_size if number == active else None)
            except FileNotFoundError:
                continue  # removed by remove_before while we replayed
            if reason is None:
                continue
            if number == active:
                # open() validated it and only this process appends to it since: the damage
                # is newer than open, and the next open will truncate it.
                log.warning("%s: %s at byte %d; replay stops there", path, reason, end)
                return
            log.warning("%s: %s at byte %d; truncating the segment there and going on with "
                        "the next one", path, reason, end)
            _truncate(path, end)

    # -- introspection ------------------------------------------------------------------------
    def segments(self) -> list[int]:
        """Numbers of the segments on disk, ascending; the last one is being appended to."""
        with self._lock:
            return list(self._segments)

    def size_bytes(self) -> int:
        """Bytes in all segments, frame headers included."""
        with self._lock:
            closed, size = self._segments[:-1], self._size
        for number in closed:
            try:
                size += os.stat(os.path.join(self.path, segment_name(number))).st_size
            except FileNotFoundError:
                pass
        return size

    # -- internals (call with the lock held) ---------------------------------------------
    def _check_writable(self) -> None:
        if self._closed:
            raise EngineClosed()
        if self._failed is not None:
            raise OSError(errno.EIO, f"{self.path}: log unusable after an I/O error; "
                                     "reopen it") from self._failed

    def _write_locked(self, bufs: list[Buffer], nbytes: int) -> None:
        try:
            written = os.writev(self._fd, bufs)
            if written < nbytes:  # short write (disk full, signal): finish or fail below
                rest = memoryview(b"".join(bufs))[written:]
                while rest:
                    rest = rest[os.write(self._fd, rest):]
        except OSError:
            # Never leave a partial frame for later frames to land behind: replay would stop
            # at it and lose them. If even that fails, refuse further appends.
            try:
                os.ftruncate(self._fd, self._size)
            except OSError as exc:
                self._failed = exc
            raise
        self._size += nbytes
        self._written += nbytes

    def _sync_locked(self) -> None:
        try:
            _fdatasync(self._fd)
        except OSError as exc:
            self._failed = exc  # the kernel may have dropped the dirty pages: nothing is known
            raise
        self._dirty = False
        self._synced = max(self._synced, self._written)  # earlier segments synced at cut

    def _cut_locked(self) -> None:
        self._sync_locked()  # only the last segment may ever be torn
        number = self._segments[-1] + 1
        fd = _create_segment(self.path, number)
        os.close(self._fd)
        self._fd, self._size, self._dirty = fd, 0, False
        self._segments.append(number)

    def _sync_loop(self) -> None:
        while not self._stop.wait(self._sync_interval_s):
            with self._lock:
                if self._closed or self._failed is not None or not self._dirty:
                    continue
                fd = os.dup(self._fd)  # sync outside the lock, so appends do not wait
                self._dirty = False
            try:
                _fdatasync(fd)
            except OSError as exc:
                log.error("%s: periodic fsync failed: %s", self.path, exc)
                with self._lock:
                    self._failed = exc
            finally:
                os.close(fd)


def _frames(path: str, limit: int | None) -> Generator[bytes, None, tuple[int, str | None]]:
    """Yield the payloads of the valid frames of a segment (its first ``limit`` bytes).

    Returns (offset just past the last valid frame, why reading stopped early or None).
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if limit is not None:
            size = min(size, limit)
        offset = 0
        while offset < size:
            header = f.read(_HEADER.size) if size - offset >= _HEADER.size else b""
            if len(header) < _HEADER.size:
                return offset, f"torn frame header ({size - offset} bytes left)"
            length, crc = _HEADER.unpack(header)
            if length == 0 or length > MAX_RECORD_BYTES:
                return offset, f"impossible frame length {length}"
            if length > size - offset - _HEADER.size:
                return offset, f"frame length {length} runs past the end of the file"
            payload = f.read(length)
            if len(payload) < length:
                return offset, "file shrank while reading"
            if zlib.crc32(payload) != crc:
                return offset, "checksum mismatch"
            yield payload
            offset += _HEADER.size + length
        return offset, None


def _repair_tail(path: str) -> int:
    """Validate a segment, truncating it after its last valid frame; return its new size."""
    frames = _frames(path, None)
    while True:
        try:
            next(frames)
        except StopIteration as stop:
            end, reason = stop.value
            break
    if reason is not None:
        log.warning("%s: %s at byte %d; truncating the torn or corrupt tail",
                    path, reason, end)
        _truncate(path, end)
    return int(end)


def _list_segments(path: str) -> list[int]:
    return sorted(int(m[1]) for name in os.listdir(path) if (m := _SEGMENT_NAME.match(name)))


def _create_segment(path: str, number: int) -> int:
    fd = os.open(os.path.join(path, segment_name(number)),
                 os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
    fsync_dir(path)  # the new name must survive a power loss before records go in it
    return fd


def _truncate(path: str, offset: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        return
    try:
        os.ftruncate(fd, offset)
        os.fsync(fd)
    finally:
        os.close(fd)
