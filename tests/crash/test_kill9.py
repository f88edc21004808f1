"""kill -9 a writer at random moments, then check that replay gives back exactly what it acked.

The writer (``_writer.py``) runs in its own process with the default fsync policy, writes
numbered columnar batches over many series with rules (and a chained tier), and prints each
batch number once ``madd`` has returned. The test SIGKILLs it — after a random number of
acknowledged batches, or right as a checkpoint starts — then opens a copy of the directory
(so the next writer restarts from the crashed state itself) and checks:

* every acknowledged batch is there, value for value (late overwrites included);
* the one batch in flight at the kill is there entirely or not at all, and nothing beyond it;
* each rollup destination's closed buckets equal the aggregate of the raw samples.

Also: a torn, corrupt or padded log tail opens with a warning and without garbage; a second
process (or a second open in this one) gets ``LockedError``.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib

import numpy as np
import pytest

import sensorium
from sensorium import LockedError

from . import _writer as w

WRITER = os.path.join(os.path.dirname(__file__), "_writer.py")
N_SERIES, K_ROWS = 16, 5
HEADER = struct.Struct("<II")  # WAL frame header: payload length, crc32 (docs/format/wal.md)


class Writer:
    """A running ``_writer.py``; its stdout lines arrive on a queue, its stderr in a file."""

    def __init__(self, path: str, first: int, *extra: str) -> None:
        # A file, not a pipe: a writer logging tracebacks must never block on a full pipe.
        self.stderr_path = f"{path}.stderr-{first}"
        with open(self.stderr_path, "w") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, WRITER, path, str(first), "--series", str(N_SERIES),
                 "--rows", str(K_ROWS), *extra],
                stdout=subprocess.PIPE, stderr=stderr, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.acked: list[int] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def next_line(self, timeout: float = 30.0) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            pytest.fail("the writer went silent")
        if line is None:
            self.proc.wait()
            assert self.proc.stdout is not None
            self.proc.stdout.close()
            with open(self.stderr_path) as f:
                err = f.read()
            pytest.fail(f"the writer died on its own:\n{err}")
        if line.startswith("ack "):
            self.acked.append(int(line.split()[1]))
        elif line.startswith("error"):
            pytest.fail(f"the writer had rejects: {line}")
        return line

    def wait_for(self, prefix: str) -> str:
        while not (line := self.next_line()).startswith(prefix):
            pass
        return line

    def kill(self) -> None:
        """SIGKILL, then collect every line it managed to print."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._reader.join(timeout=10)
        while (line := self.lines.get()) is not None:
            if line.startswith("ack "):
                self.acked.append(int(line.split()[1]))
        assert self.proc.stdout is not None
        self.proc.stdout.close()


# -- checks -----------------------------------------------------------------------------------
def raw_of(db: sensorium.Database) -> dict[str, list[tuple[int, float]]]:
    got = db.mrange("-", "+", ["kind=raw"])
    return {key: samples for entry in got for key, (_, samples) in entry.items()}


def check_raw(db: sensorium.Database, last_acked: int) -> int:
    """Checks the raw series against the batches; returns the last batch applied."""
    raw = raw_of(db)
    assert sorted(raw) == sorted(w.keys(N_SERIES))
    in_flight = last_acked + 1
    counts = {len(samples) for samples in raw.values()}
    assert len(counts) == 1, "batches are all-or-nothing across series"
    applied = counts.pop() // K_ROWS - 1
    assert applied in (last_acked, in_flight), (
        f"{applied + 1} batches stored; acknowledged {last_acked + 1}, one more may be in flight")
    for key, samples in raw.items():
        i = int(key[1:])
        ts = np.array([t for t, _ in samples], np.int64)
        assert (ts == np.arange((applied + 1) * K_ROWS)).all(), f"{key}: timestamps"
        want = w.expected_values(i, ts, K_ROWS, applied)
        assert ([v for _, v in samples] == want).all(), f"{key}: values"
    return applied


class DoubleCounted(AssertionError):
    """A tier bucket holds more samples than the raw series: the known checkpoint race."""


def check_rollups(db: sensorium.Database) -> None:
    """Closed buckets of every tier equal the aggregate of the raw samples in them."""
    raw = raw_of(db)
    for key, samples in raw.items():
        ts = np.array([t for t, _ in samples], np.int64)
        vs = np.array([v for _, v in samples])
        open1 = ts.max() // w.BUCKET_MS * w.BUCKET_MS
        b1 = ts // w.BUCKET_MS * w.BUCKET_MS
        closed1 = np.unique(b1[b1 < open1])
        counts = dict(db.range(f"{key}:count", "-", "+"))
        extra = {b: (counts[b], int((b1 == b).sum())) for b in closed1.tolist()
                 if counts.get(b, 0) > (b1 == b).sum()}
        if extra:
            raise DoubleCounted(f"{key}: (tier count, raw count) by bucket {extra}")
        for agg, fn in (("count", len), ("avg", np.mean), ("max", np.max)):
            got = db.range(f"{key}:{agg}", "-", "+")
            assert [t for t, _ in got] == closed1.tolist(), f"{key}:{agg} buckets"
            want = [fn(vs[b1 == b]) for b in closed1]
            bad = [(t, v, x) for (t, v), x in zip(got, want, strict=True)
                   if not np.isclose(v, x, rtol=1e-12, atol=1e-9)]
            assert not bad, f"{key}:{agg}: (bucket, tier, raw) {bad[:5]}"
        # The chained tier closes a bucket once t1 closed a bucket past it.
        open2 = closed1.max() // w.TIER2_MS * w.TIER2_MS if len(closed1) else -1
        b2 = ts // w.TIER2_MS * w.TIER2_MS
        closed2 = np.unique(b2[b2 < open2])
        got = db.range(f"{key}:sum", "-", "+")
        assert [t for t, _ in got] == closed2.tolist(), f"{key}:sum buckets"
        assert np.allclose([v for _, v in got], [vs[b2 == b].sum() for b in closed2],
                           rtol=1e-12, atol=1e-9), f"{key}:sum"


def verify_copy(path: str, scratch: str, last_acked: int) -> int:
    """Opens a copy of the crashed directory, checks it, returns the last applied batch."""
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(path, scratch)
    with sensorium.open(scratch, background=False) as db:
        applied = check_raw(db, last_acked)
        check_rollups(db)
    return applied


# -- kill -9 ----------------------------------------------------------------------------------
def test_kill9_at_random_moments_loses_no_acknowledged_batch(tmp_path):
    rnd = random.Random(os.environ.get("SENSORIUM_CRASH_SEED", "kill9"))
    path, scratch = str(tmp_path / "db"), str(tmp_path / "check")
    first, last_acked = 0, -1
    for round_no in range(5):
        extra = ["--checkpoint-every", str(rnd.randint(3, 9))]
        if round_no == 4:
            extra += ["--fsync", "periodic"]  # kill -9 loses nothing under it either
        writer = Writer(path, first, *extra)
        writer.wait_for("ready")
        for _ in range(rnd.randint(1, 25)):
            writer.wait_for("ack")
        time.sleep(rnd.uniform(0, 0.03))
        writer.kill()
        last_acked = max(writer.acked)
        applied = verify_copy(path, scratch, last_acked)
        first = applied + 1
    assert first > 10


def test_kill9_during_checkpoints(tmp_path):
    """Kills land inside checkpoint() (blocks, manifest, log cut) at varying depths."""
    rnd = random.Random("checkpoint")
    path, scratch = str(tmp_path / "db"), str(tmp_path / "check")
    first = 0
    for _ in range(4):
        writer = Writer(path, first, "--checkpoint-every", "2")
        writer.wait_for("ready")
        writer.wait_for("ack")
        writer.wait_for("checkpoint")
        time.sleep(rnd.uniform(0, 0.04))
        writer.kill()
        applied = verify_copy(path, scratch, max(writer.acked))
        first = applied + 1


# -- damaged log tails ----------------------------------------------------------------------
def frames(segment: str) -> list[tuple[int, int]]:
    """(offset, payload length) of each frame of a WAL segment."""
    out, off = [], 0
    with open(segment, "rb") as f:
        data = f.read()
    while off + HEADER.size <= len(data):
        length, crc = HEADER.unpack_from(data, off)
        assert zlib.crc32(data[off + HEADER.size : off + HEADER.size + length]) == crc
        out.append((off, length))
        off += HEADER.size + length
    assert off == len(data)
    return out


def last_segment(path: str) -> str:
    wal = os.path.join(path, "shard-000", "wal")
    return os.path.join(wal, sorted(os.listdir(wal))[-1])


@pytest.fixture
def crashed(tmp_path):
    """A directory as kill -9 leaves it after batches 0..4, each its own log frame."""
    live = str(tmp_path / "live")
    db = sensorium.open(live, background=False)
    try:
        db.create("s")
        db.create("s:avg")
        db.createrule("s", "s:avg", "avg", 10)
        for b in range(5):
            db.madd(["s", "t"] * 5, [b * 10 + j // 2 for j in range(10)],
                    [float(b * 100 + j) for j in range(10)])
        copy = str(tmp_path / "crashed")
        shutil.copytree(live, copy)
    finally:
        db.close()
    return copy


def batches(n: int) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {"s": [], "t": []}
    for b in range(n):
        for j in range(10):
            out["st"[j % 2]].append((b * 10 + j // 2, float(b * 100 + j)))
    return out


def check_batches(db: sensorium.Database, n: int) -> None:
    want = batches(n)
    assert db.range("s", "-", "+") == want["s"]
    assert db.range("t", "-", "+") == want["t"]
    # s:avg closes a bucket per batch: buckets of all but the last batch.
    assert db.range("s:avg", "-", "+") == [
        (b * 10, float(np.mean([v for t, v in want["s"] if t // 10 == b])))
        for b in range(n - 1)]


def damage_last_frame(segment: str, how: str) -> None:
    off, length = frames(segment)[-1]
    with open(segment, "r+b") as f:
        if how == "torn payload":
            f.truncate(off + HEADER.size + length // 2)
        elif how == "torn header":
            f.truncate(off + 3)
        elif how == "flipped payload byte":
            f.seek(off + HEADER.size + length // 2)
            byte = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte[0] ^ 0x5A]))
        elif how == "absurd length":
            f.seek(off)
            f.write(HEADER.pack(2**31, 0))


@pytest.mark.parametrize("how", ["torn payload", "torn header", "flipped payload byte",
                                 "absurd length"])
def test_damaged_last_frame_is_dropped_with_a_warning(crashed, caplog, how):
    damage_last_frame(last_segment(crashed), how)
    with caplog.at_level(logging.WARNING, logger="sensorium"):
        db = sensorium.open(crashed, background=False)
    try:
        assert any("wal" in r.name and r.levelno == logging.WARNING for r in caplog.records)
        check_batches(db, 4)
        db.madd(["s", "t"], [45, 45], [1.0, 2.0])  # appends land after the repaired tail
    finally:
        db.close()
    with sensorium.open(crashed, background=False) as db:
        assert db.range("s", 40, "+") == [(45, 1.0)]
        assert db.range("t", 40, "+") == [(45, 2.0)]


def test_garbage_after_the_last_frame_is_dropped(crashed, caplog):
    with open(last_segment(crashed), "ab") as f:
        f.write(os.urandom(37))
    with caplog.at_level(logging.WARNING, logger="sensorium"):
        db = sensorium.open(crashed, background=False)
    with db:
        assert any(r.levelno == logging.WARNING for r in caplog.records)
        check_batches(db, 5)


def test_zeroed_tail_is_dropped(crashed, caplog):
    """ext4 after a power cut: the file grew but the data never landed (zeros)."""
    with open(last_segment(crashed), "ab") as f:
        f.write(bytes(4096))
    with caplog.at_level(logging.WARNING, logger="sensorium"):
        db = sensorium.open(crashed, background=False)
    with db:
        assert any(r.levelno == logging.WARNING for r in caplog.records)
        check_batches(db, 5)


def test_corrupt_frame_mid_segment_stops_replay_there_without_garbage(crashed, caplog):
    segment = last_segment(crashed)
    fr = frames(segment)
    off, length = fr[-3]  # the record of batch 2 (batch 4 is the last frame)
    with open(segment, "r+b") as f:
        f.seek(off + HEADER.size + 1)
        f.write(b"\xff\xff")
    with caplog.at_level(logging.WARNING, logger="sensorium"):
        db = sensorium.open(crashed, background=False)
    with db:
        assert any(r.levelno == logging.WARNING for r in caplog.records)
        check_batches(db, 2)  # what follows a bad frame cannot be trusted to apply in order


# -- the directory lock -----------------------------------------------------------------------
def test_second_open_in_the_same_process_is_refused(tmp_path):
    with sensorium.open(str(tmp_path / "db"), background=False):
        with pytest.raises(LockedError):
            sensorium.open(str(tmp_path / "db"), background=False)


def test_second_process_gets_locked_error_until_the_first_is_gone(tmp_path):
    path = str(tmp_path / "db")
    probe = ("import sys, sensorium\n"
             "try:\n"
             "    sensorium.open(sys.argv[1], background=False).close()\n"
             "except sensorium.LockedError as exc:\n"
             "    print('locked:', exc); sys.exit(3)\n")
    writer = Writer(path, 0)
    try:
        writer.wait_for("ack")
        res = subprocess.run([sys.executable, "-c", probe, path], capture_output=True,
                             text=True, timeout=60)
        assert res.returncode == 3, res.stderr
        assert "already open in another process" in res.stdout
    finally:
        writer.kill()
    # kill -9 releases the lock with the process: the next open just works.
    with sensorium.open(path, background=False) as db:
        assert db.get("s0") is not None


# -- regressions for bugs the kills found -------------------------------------------
def test_writes_during_a_checkpoint_are_not_counted_twice_in_tiers(tmp_path, monkeypatch):
    from sensorium.engine.shard import Shard

    live = sensorium.open(str(tmp_path / "live"), background=False)
    live.create("r")
    live.create("t")
    live.createrule("r", "t", "sum", 10)
    live.add("r", 1, 1.0)
    write_blocks = Shard.write_checkpoint

    def with_a_concurrent_write(self, cp):  # what a writer thread does while blocks are written
        live.add("r", 5, 2.0)
        return write_blocks(self, cp)

    monkeypatch.setattr(Shard, "write_checkpoint", with_a_concurrent_write)
    live.checkpoint()
    monkeypatch.undo()
    assert live.range("t", "-", "+", latest=True) == [(0, 3.0)]
    shutil.copytree(str(tmp_path / "live"), str(tmp_path / "crashed"))  # kill -9 now
    live.close()
    with sensorium.open(str(tmp_path / "crashed"), background=False) as db:
        assert db.range("r", "-", "+") == [(1, 1.0), (5, 2.0)]
        assert db.range("t", "-", "+", latest=True) == [(0, 3.0)]


def test_checkpoint_after_a_kill_between_rename_and_manifest(tmp_path, monkeypatch):
    from sensorium.engine.shard import Shard

    class Killed(BaseException):
        pass

    def killed(*args, **kwargs):
        raise Killed

    live = sensorium.open(str(tmp_path / "live"), background=False)
    live.add("r", 1, 1.0)
    monkeypatch.setattr(Shard, "commit_manifest", killed)
    with pytest.raises(Killed):
        live.checkpoint()  # ckpt-N is renamed into place; the manifest never names it
    shutil.copytree(str(tmp_path / "live"), str(tmp_path / "crashed"))
    monkeypatch.undo()
    db = sensorium.open(str(tmp_path / "crashed"), background=False)
    assert db.range("r", "-", "+") == [(1, 1.0)]
    db.add("r", 2, 1.0)
    db.checkpoint()
    db.close()


def test_a_failed_checkpoint_does_not_wedge_the_engine(tmp_path, monkeypatch):
    import errno

    from sensorium.engine.shard import Shard

    def disk_full(self, cp):
        raise OSError(errno.ENOSPC, "No space left on device")

    db = sensorium.open(str(tmp_path / "db"), background=False)
    db.add("r", 1, 1.0)
    monkeypatch.setattr(Shard, "write_checkpoint", disk_full)
    with pytest.raises(OSError):
        db.checkpoint()
    monkeypatch.undo()
    db.add("r", 2, 1.0)
    db.checkpoint()  # the disk has room again
    db.close()
    with sensorium.open(str(tmp_path / "db"), background=False) as again:
        assert again.range("r", "-", "+") == [(1, 1.0), (2, 1.0)]
