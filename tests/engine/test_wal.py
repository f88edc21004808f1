"""Write-ahead log: framing, segments, torn and corrupt tails, fsync policies, kill -9."""

import errno
import inspect
import os
import random
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from sensorium.engine import records, wal
from sensorium.engine.wal import WAL, segment_name
from sensorium.errors import EngineClosed, InvalidArgument


def payloads(n, seed=0, max_bytes=120):
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(1, max_bytes)) for _ in range(n)]


def frame(payload):
    return struct.pack("<II", len(payload), zlib.crc32(payload)) + payload


def write_log(path, recs, **kw):
    with WAL.open(str(path), **kw) as log:
        for r in recs:
            log.append(r)


def replayed(path, from_segment=0, **kw):
    with WAL.open(str(path), **kw) as log:
        return list(log.replay(from_segment))


def seg(path, number=1):
    return Path(path) / segment_name(number)


def test_round_trip_and_frame_layout(tmp_path):
    recs = [b"a", b"hello", bytes(1000)]
    with WAL.open(str(tmp_path / "wal")) as log:  # creates the directory
        for r in recs:
            log.append(r)
        assert list(log.replay()) == recs
        assert log.segments() == [1]
        assert log.size_bytes() == sum(8 + len(r) for r in recs)
    # [u32 length][u32 crc32][payload], little-endian (docs/format/wal.md)
    assert seg(tmp_path / "wal").read_bytes() == b"".join(frame(r) for r in recs)
    assert replayed(tmp_path / "wal") == recs


def test_sample_records_survive_the_log(tmp_path):
    rng = np.random.default_rng(0)
    sids = rng.integers(0, 100_000, 10_000).astype(np.int32)
    ts = 1_700_000_000_000 + rng.integers(0, 10_000, 10_000)
    values = np.round(rng.normal(20, 5, 10_000), 2)
    write_log(tmp_path, [records.encode_samples(sids, ts, values),
                         records.encode_meta("series.delete", {"sid": 4})])
    samples, meta = (records.decode(r) for r in replayed(tmp_path))
    np.testing.assert_array_equal(samples.values, values)
    assert meta == records.MetaRecord("series.delete", {"sid": 4})


def test_rollover_keeps_order_and_segment_size(tmp_path):
    recs = payloads(500)
    write_log(tmp_path, recs, segment_bytes=1000)
    with WAL.open(str(tmp_path), segment_bytes=1000) as log:
        numbers = log.segments()
        assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) > 20
        assert all(seg(tmp_path, n).stat().st_size <= 1000 for n in numbers)
        assert list(log.replay()) == recs
        # replay(from_segment) starts at that segment's first record
        first_of_10 = sum(1 for n in numbers[:9] for _ in replayed_segment(tmp_path, n))
        assert list(log.replay(10)) == recs[first_of_10:]
        log.append(b"after reopen")
        assert list(log.replay())[-2:] == [recs[-1], b"after reopen"]


def replayed_segment(path, number):
    data = seg(path, number).read_bytes()
    off = 0
    while off < len(data):
        (n,) = struct.unpack_from("<I", data, off)
        yield data[off + 8:off + 8 + n]
        off += 8 + n


def test_oversized_record_gets_a_segment_of_its_own(tmp_path):
    with WAL.open(str(tmp_path), segment_bytes=100) as log:
        log.append(b"x" * 10)
        log.append(b"y" * 500)
        log.append(b"z" * 10)
        assert log.segments() == [1, 2, 3]
        assert list(log.replay()) == [b"x" * 10, b"y" * 500, b"z" * 10]


def test_append_many_is_one_write_in_one_segment(tmp_path):
    recs = payloads(1500)  # 3000 buffers: beyond IOV_MAX, joined
    with WAL.open(str(tmp_path), segment_bytes=1000) as log:
        log.append(b"first")
        log.append_many(recs[:3])
        log.append_many([])
        log.append_many(recs[3:])
        assert log.segments() == [1, 2]  # the 3 small ones fit; the big batch rolled over
        assert list(log.replay()) == [b"first", *recs]


def test_torn_tail_at_every_offset_of_the_last_frame(tmp_path, caplog):
    good = [b"one", b"two" * 7]
    last = b"three" * 5
    write_log(tmp_path / "src", [*good, last])
    data = seg(tmp_path / "src").read_bytes()
    start = len(data) - len(frame(last))
    for cut in range(start, len(data)):
        d = tmp_path / f"cut{cut}"
        d.mkdir()
        seg(d).write_bytes(data[:cut])
        caplog.clear()
        with WAL.open(str(d)) as log:
            assert seg(d).stat().st_size == start
            assert list(log.replay()) == good
            log.append(b"after")
        if cut > start:
            assert f"{seg(d)}: " in caplog.text and f"at byte {start}" in caplog.text
        else:
            assert not caplog.records
        assert replayed(d) == [*good, b"after"]


@pytest.mark.parametrize("damage, reason", [
    (lambda data, at: data[:at + 12] + bytes([data[at + 12] ^ 1]) + data[at + 13:],
     "checksum mismatch"),
    (lambda data, at: data[:at] + struct.pack("<I", 0xFFFFFFF0) + data[at + 4:],
     "impossible frame length 4294967280"),
    (lambda data, at: data[:at] + struct.pack("<I", 10_000) + data[at + 4:],
     "frame length 10000 runs past the end of the file"),
])
def test_corrupt_frame_in_last_segment_is_truncated(tmp_path, caplog, damage, reason):
    recs = [b"r0" * 10, b"r1" * 10, b"r2" * 10]
    write_log(tmp_path, recs)
    data = seg(tmp_path).read_bytes()
    at = len(frame(recs[0]))
    seg(tmp_path).write_bytes(damage(data, at))
    assert replayed(tmp_path) == recs[:1]
    assert f"{seg(tmp_path)}: {reason}" in caplog.text and f"at byte {at};" in caplog.text
    assert seg(tmp_path).stat().st_size == at


@pytest.mark.parametrize("garbage", [b"\x00" * 4096, b"\xff" * 3, random.Random(1).randbytes(999)])
def test_garbage_after_the_last_frame_is_dropped(tmp_path, caplog, garbage):
    recs = payloads(5)
    write_log(tmp_path, recs)
    size = seg(tmp_path).stat().st_size
    with open(seg(tmp_path), "ab") as f:
        f.write(garbage)  # e.g. zeros an ext4 crash leaves in a grown file
    assert replayed(tmp_path) == recs
    assert seg(tmp_path).stat().st_size == size
    assert f"at byte {size}" in caplog.text


def test_bad_frame_in_an_older_segment_skips_the_rest_of_it(tmp_path, caplog):
    recs = payloads(60, max_bytes=40)
    write_log(tmp_path, recs, segment_bytes=500)
    data = seg(tmp_path, 1).read_bytes()
    in_seg1 = list(replayed_segment(tmp_path, 1))
    at = len(frame(in_seg1[0])) + len(frame(in_seg1[1]))
    seg(tmp_path, 1).write_bytes(data[:at + 8] + b"\x00" + data[at + 9:])  # damage record 2
    with WAL.open(str(tmp_path), segment_bytes=500) as log:
        assert list(log.replay()) == recs[:2] + recs[len(in_seg1):]
        assert seg(tmp_path, 1).stat().st_size == at
        assert f"{seg(tmp_path, 1)}: checksum mismatch at byte {at}" in caplog.text
        assert list(log.replay()) == recs[:2] + recs[len(in_seg1):]  # repaired: same again


def test_cut_remove_before_and_missing_segments(tmp_path, caplog):
    with WAL.open(str(tmp_path)) as log:
        assert log.cut() == 1  # empty active segment: no new file
        log.append(b"a")
        assert log.cut() == 2
        log.append(b"b")
        assert log.cut() == 3
        log.append(b"c")
        assert log.segments() == [1, 2, 3]
        assert log.size_bytes() == 3 * 9
        assert list(log.replay(2)) == [b"b", b"c"]
        log.remove_before(2)
        assert log.segments() == [2, 3] and not seg(tmp_path, 1).exists()
        log.remove_before(99)  # never the active segment
        assert log.segments() == [3]
        assert list(log.replay()) == [b"c"]
    seg(tmp_path, 5).write_bytes(frame(b"e"))
    assert replayed(tmp_path) == [b"c", b"e"]
    assert "segments 4 to 4 are missing" in caplog.text


def test_replay_yields_only_what_was_appended_before_the_call(tmp_path):
    with WAL.open(str(tmp_path), segment_bytes=30) as log:
        log.append(b"x" * 10)
        log.append(b"y" * 10)
        it = log.replay()
        log.append(b"z" * 10)
        log.cut()
        log.append(b"w" * 10)
        assert list(it) == [b"x" * 10, b"y" * 10]


def test_closed_log_refuses_work(tmp_path):
    log = WAL.open(str(tmp_path))
    log.close()
    log.close()
    with pytest.raises(EngineClosed):
        log.append(b"x")
    with pytest.raises(EngineClosed):
        log.replay()
    with pytest.raises(EngineClosed):
        log.cut()


@pytest.mark.parametrize("kw", [{"fsync": "always"}, {"segment_bytes": 0},
                                {"sync_interval_s": 0}])
def test_bad_options(tmp_path, kw):
    with pytest.raises(InvalidArgument):
        WAL.open(str(tmp_path), **kw)


def test_bad_records(tmp_path, monkeypatch):
    monkeypatch.setattr(wal, "MAX_RECORD_BYTES", 10)
    with WAL.open(str(tmp_path)) as log:
        for bad in (b"", b"x" * 11):
            with pytest.raises(InvalidArgument):
                log.append(bad)
        log.append(b"x" * 10)
        assert list(log.replay()) == [b"x" * 10]


def count_syncs(monkeypatch):
    calls = []
    real = wal._fdatasync
    monkeypatch.setattr(wal, "_fdatasync", lambda fd: (calls.append(fd), real(fd)))
    return calls


def test_batch_policy_syncs_every_append(tmp_path, monkeypatch):
    calls = count_syncs(monkeypatch)
    with WAL.open(str(tmp_path), fsync="batch") as log:
        log.append(b"a")
        log.append_many([b"b", b"c"])
        assert len(calls) == 2


def test_periodic_policy_syncs_in_the_background(tmp_path, monkeypatch):
    calls = count_syncs(monkeypatch)
    with WAL.open(str(tmp_path), fsync="periodic", sync_interval_s=0.05) as log:
        log.append(b"a")
        assert calls == []
        deadline = time.monotonic() + 5
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(calls) == 1
        time.sleep(0.2)
        assert len(calls) == 1  # nothing new written: no sync
    assert len(calls) == 2  # close


def test_none_policy_syncs_only_on_cut_and_close(tmp_path, monkeypatch):
    calls = count_syncs(monkeypatch)
    with WAL.open(str(tmp_path), fsync="none") as log:
        log.append(b"a")
        assert calls == []
        log.cut()
        assert len(calls) == 1
    assert len(calls) == 2


def test_failed_fsync_makes_the_log_refuse_appends(tmp_path, monkeypatch):
    log = WAL.open(str(tmp_path))

    def fail(fd):
        raise OSError(errno.EIO, "disk on fire")

    monkeypatch.setattr(wal, "_fdatasync", fail)
    with pytest.raises(OSError, match="disk on fire"):
        log.append(b"a")
    with pytest.raises(OSError, match="unusable"):
        log.append(b"b")
    log.close()  # does not sync again
    monkeypatch.undo()
    assert replayed(tmp_path) == [b"a"]  # written, just never acknowledged


def test_concurrent_appends_are_never_interleaved(tmp_path):
    n_threads, per_thread = 8, 200
    with WAL.open(str(tmp_path), fsync="none", segment_bytes=4096) as log:
        def work(t):
            for i in range(per_thread):
                log.append(f"{t}:{i}:".encode() + bytes([t]) * (i % 50))

        threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    got = replayed(tmp_path)
    assert len(got) == n_threads * per_thread
    for t in range(n_threads):  # each writer's records intact and in its own order
        mine = [r for r in got if r.startswith(f"{t}:".encode())]
        assert mine == [f"{t}:{i}:".encode() + bytes([t]) * (i % 50) for i in range(per_thread)]


def crash_record(i):
    """8 B to 256 KiB: a kill during a large write() can leave a torn frame (Linux does)."""
    return i.to_bytes(8, "little") * (1 + i * 7919 % 32768)


CRASH_WRITER = """
import sys
from sensorium.engine.wal import WAL
log = WAL.open(sys.argv[1], fsync="batch", segment_bytes=4 << 20)
i = 0
while True:
    log.append(record(i))
    i += 1
    print(i, flush=True)
"""


@pytest.mark.parametrize("run", range(3))
def test_kill_9_loses_no_acknowledged_append(tmp_path, run):
    src = Path(wal.__file__).parents[2]  # the sensorium under test
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    script = inspect.getsource(crash_record).replace("crash_record", "record") + CRASH_WRITER
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)],
                            stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"1"  # running
    time.sleep(0.3 + 0.1 * run)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    out = proc.stdout.read()
    proc.stdout.close()
    lines = [int(x) for x in out.split(b"\n")[:-1]]  # only complete lines
    acked = lines[-1] if lines else 1
    assert proc.returncode == -signal.SIGKILL and acked > 10
    got = replayed(tmp_path)
    assert acked <= len(got) <= acked + 1
    for i, rec in enumerate(got):
        assert rec == crash_record(i)
