"""Embedded sink, history loads and live mode into a real database in ``tmp_path``."""

import io
import time

import numpy as np
import pytest

import sensorium
from sensorium.tools.generate import Generator, fleet
from sensorium.tools.load import load_history, run_live
from sensorium.tools.progress import Progress
from sensorium.tools.sinks import EmbeddedSink, line_protocol

START_MS = 1_700_006_400_000


def expected(f, start_ms, interval_ms, steps, seed, chunk_samples):
    """The samples a history load writes: the same generator, the same chunking."""
    g = Generator(f, start_ms, interval_ms, seed)
    per = max(1, chunk_samples // len(f))
    return np.concatenate([g.chunk(min(per, steps - lo)).values for lo in range(0, steps, per)],
                          axis=1)


def test_history_into_the_embedded_database(tmp_path):
    f = fleet(12)
    with sensorium.open(str(tmp_path / "db")) as db:
        sink = EmbeddedSink(db, batch_samples=1000)  # several madd calls per chunk
        report = load_history(Generator(f, START_MS, 60_000, seed=2), sink, 600,
                              chunk_samples=2_400, quiet=True)
        want = expected(f, START_MS, 60_000, 600, 2, 2_400)
        assert report.written.samples == report.generated == (~np.isnan(want)).sum()
        assert report.written.rejected == 0 and sink.written.extra["created"] == 12
        for s, key in enumerate(f.keys):
            got = db.range(key, "-", "+")
            present = ~np.isnan(want[s])
            assert [t for t, _ in got] == (START_MS + 60_000 * np.flatnonzero(present)).tolist()
            assert [v for _, v in got] == want[s][present].tolist()
            assert db.describe(key)["labels"] == f.labels[s]
        # loading the same history again: every sample is refused (duplicate policy BLOCK)
        again = EmbeddedSink(db)
        load_history(Generator(f, START_MS, 60_000, seed=2), again, 10, quiet=True)
        assert again.written.samples == 0 and again.written.rejected > 0
        assert "DUPLICATE_POLICY" in (again.written.first_error or "")
        assert again.written.extra["created"] == 0


def test_live_mode_emits_at_the_rate(tmp_path):
    f = fleet(20)
    out = io.StringIO()
    with sensorium.open(str(tmp_path / "db")) as db:
        before = int(time.time() * 1000)
        report = run_live(f, EmbeddedSink(db), rate=2_000, duration_s=1.5, seed=1,
                          dropouts_per_day=0, stream=out)
        assert report.written.samples == report.generated == 3_000
        assert 1.4 < report.elapsed_s < 3.0
        rows = db.mrange("-", "+", ["type=temperature"])
        ts = np.array([t for r in rows for _, (_, samples) in r.items() for t, _ in samples])
        assert len(ts) == 3_000 // 5 and ts.min() >= before
        # each sensor every 20 / 2000 s = 10 ms, in time order
        first = next(iter(rows[0].values()))[1]
        assert np.diff([t for t, _ in first]).tolist() == [10] * (len(first) - 1)
    assert "live:" in out.getvalue() and "target 2.0k/s" in out.getvalue()


class SlowSink(EmbeddedSink):
    """A sink that takes at most 2,000 samples/s."""

    def write_rows(self, *columns):
        time.sleep(len(columns[0]) / 2_000)
        super().write_rows(*columns)


def test_live_mode_stops_on_time_and_reports_the_shortfall(tmp_path):
    with sensorium.open(str(tmp_path / "db")) as db:
        report = run_live(fleet(50), SlowSink(db), rate=5_000, duration_s=1.0,
                          dropouts_per_day=0, quiet=True)
    assert report.elapsed_s < 2.3  # the write under way at 1 s ends; no catching up after
    assert report.written.samples == report.generated < 4_500
    assert report.behind == 5_000 - report.generated > 0


def test_live_mode_refuses_colliding_timestamps(tmp_path):
    with sensorium.open(str(tmp_path / "db")) as db, pytest.raises(ValueError, match="collide"):
        run_live(fleet(2), EmbeddedSink(db), rate=10_000, duration_s=0.1)


def test_line_protocol_text():
    series = np.array(["sensors,sensor_id=a,type=temperature", "sensors,sensor_id=b\\ c"],
                      object)
    body = line_protocol(series, np.array([0, 1, 0]), np.array([1, 2, 3]),
                         np.array([21.5, 1013.25, 20.0]))
    assert body == (b"sensors,sensor_id=a,type=temperature value=21.5 1\n"
                    b"sensors,sensor_id=b\\ c value=1013.25 2\n"
                    b"sensors,sensor_id=a,type=temperature value=20 3\n")


def test_progress_bar_text():
    out = io.StringIO()
    with Progress(1_000_000, "generate", "samples", stream=out) as bar:
        bar.update(250_000)
        assert bar.line().startswith("generate [#######.....................]  25% "
                                     "250.0k/1.0M samples")
        bar.update(750_000)
    assert out.getvalue().splitlines()[-1].startswith("generate [" + "#" * 28 + "] 100% 1.0M/1.0M")
    quiet = io.StringIO()
    with Progress(10, "x", stream=quiet, quiet=True) as bar:
        bar.update(10)
    assert quiet.getvalue() == ""
