"""Every query in docs/sql.md runs against the seeded data; several are checked with numpy."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from .conftest import DAY_MS, END_MS, GAP, HOUR_MS, MIN_MS

DOC = (Path(__file__).parents[2] / "docs" / "sql.md").read_text()
BLOCKS = {m.group(1): m.group(0)[len("```sql\n"):-len("```")]
          for m in re.finditer(r"```sql\n-- name: (\w+)\n.*?```", DOC, re.S)}


def test_every_sql_block_is_named():
    assert DOC.count("```sql\n") == len(BLOCKS) >= 25


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_doc_query_runs(seeded, name):
    result = seeded.query(BLOCKS[name])
    assert result.table.num_rows > 0, name


def _rows(seeded, name):
    return seeded.query(BLOCKS[name]).table.to_pylist()


def _ms(dt) -> int:  # noqa: ANN001
    return int(np.datetime64(dt, "ms").astype(np.int64))


def _window(seeded, keys, lo, hi=END_MS, inclusive_lo=False):
    ts = np.concatenate([seeded.samples[k][0] for k in keys])
    v = np.concatenate([seeded.samples[k][1] for k in keys])
    keep = ((ts >= lo) if inclusive_lo else (ts > lo)) & (ts <= hi)
    return ts[keep], v[keep]


def test_hourly_average_matches_numpy_and_the_tier(seeded):
    raw = _rows(seeded, "hourly_avg_raw")
    ts, v = _window(seeded, seeded.keys(type="temperature"), END_MS - 30 * DAY_MS)
    hours = ts // HOUR_MS * HOUR_MS
    want = {h: v[hours == h].mean() for h in np.unique(hours)}
    assert [_ms(r["hour"]) for r in raw] == sorted(want)
    np.testing.assert_allclose([r["avg_temperature"] for r in raw], list(want.values()),
                               rtol=1e-12)
    tier = _rows(seeded, "hourly_avg_tier")
    # The tier's buckets start at or after the window start; the raw query's first bucket
    # holds the samples after it: all buckets here are whole hours inside the data.
    assert [_ms(r["hour"]) for r in tier] == sorted(want)
    np.testing.assert_allclose([r["avg_temperature"] for r in tier], list(want.values()),
                               rtol=1e-12)


def test_hourly_view_from_tier_equals_raw(seeded):
    raw = _rows(seeded, "sensor_data_hourly")
    tier = _rows(seeded, "sensor_data_hourly_tier")
    # The tier shows whole buckets starting after the cutoff; raw buckets are cut at it.
    first = min(r["bucket"] for r in tier)
    raw = [r for r in raw if r["bucket"] >= first]
    assert len(raw) == len(tier) == 23 * len({r["sensor_id"] for r in tier})  # whole hours
    for a, b in zip(raw, tier, strict=True):
        assert a["reading_count"] == b["reading_count"]
        for col in ("avg_temperature", "min_temperature", "max_temperature", "avg_humidity"):
            assert a[col] == pytest.approx(b[col], rel=1e-12), col


def test_exact_percentiles_match_numpy(seeded):
    rows = _rows(seeded, "p99_latency_exact")
    for r in rows:
        keys = seeded.keys(type="latency_ms", endpoint=r["endpoint"])
        _, v = _window(seeded, keys, END_MS - HOUR_MS)
        assert r["request_count"] == len(v)
        assert r["p99_latency"] == pytest.approx(np.quantile(v, 0.99), rel=1e-12)
        assert r["p95_latency"] == pytest.approx(np.quantile(v, 0.95), rel=1e-12)
    approx = {r["endpoint"]: r for r in _rows(seeded, "p99_latency")}
    for r in rows:  # t-digest: close to exact on 720 samples
        assert approx[r["endpoint"]]["p99_latency"] == pytest.approx(r["p99_latency"], rel=0.02)


def test_three_sigma_anomalies_match_numpy(seeded):
    keys = seeded.keys(type="temperature")
    _, day = _window(seeded, keys, END_MS - DAY_MS)
    mean, sd = day.mean(), day.std(ddof=1)
    ts, v = _window(seeded, keys, END_MS - HOUR_MS)
    want = np.sort(ts[np.abs(v - mean) > 3 * sd])
    got = _rows(seeded, "anomalies_3sigma")
    assert len(want) >= 1
    assert [_ms(r["time"]) for r in got] == want.tolist()
    per_sensor = _rows(seeded, "anomalies_3sigma_per_sensor")
    assert {r["sensor_id"] for r in per_sensor} == {"sensor_003"}
    assert len(per_sensor) == 2  # the two spikes


def test_lag_price_change_matches_numpy(seeded):
    rows = _rows(seeded, "price_change")[::-1]  # oldest first
    ts, v = _window(seeded, ["AAPL:price"], END_MS - DAY_MS)
    b = ts // (15 * MIN_MS)
    means = np.array([v[b == x].mean() for x in np.unique(b)])
    np.testing.assert_allclose([r["avg_price"] for r in rows], means, rtol=1e-12)
    assert rows[0]["prev_price"] is None
    np.testing.assert_allclose([r["price_change"] for r in rows[1:]], np.diff(means),
                               rtol=1e-9, atol=1e-9)


def test_gap_filling_matches_numpy(seeded):
    rows = [r for r in _rows(seeded, "gapfill") if r["sensor_id"] == "sensor_001"]
    grid = np.array([_ms(r["bucket"]) for r in rows])
    assert len(grid) == 12
    known = np.array([r["avg_value"] is not None for r in rows])
    assert not known.all()  # the dropout leaves empty buckets
    gap = (grid >= GAP[0]) & (grid + 4 * MIN_MS <= GAP[1])  # every minute dropped
    assert (~known == gap).all()
    vals = np.array([r["avg_value"] if r["avg_value"] is not None else np.nan for r in rows])
    want = np.interp(grid, grid[known], vals[known])
    np.testing.assert_allclose([r["avg_interpolated"] for r in rows], want, rtol=1e-12)
    last = np.maximum.accumulate(np.where(known, np.arange(len(grid)), 0))
    np.testing.assert_allclose([r["avg_locf"] for r in rows], vals[last], rtol=0)


def test_timestream_interpolation_matches_numpy(seeded):
    points = [r["interpolated_values"] for r in _rows(seeded, "interpolation")]
    ts, v = seeded.samples["sensor_001:temperature"]
    grid = np.array([_ms(p["time"]) for p in points])
    assert len(grid) == 61 and grid[-1] == END_MS
    inside = grid <= ts[-1]
    np.testing.assert_allclose([p["value"] for p, i in zip(points, inside, strict=True) if i],
                               np.interp(grid[inside], ts, v), rtol=1e-12)
    assert all(p["value"] is None for p, i in zip(points, inside, strict=True) if not i)


def test_period_comparison_matches_numpy(seeded):
    (row,) = _rows(seeded, "period_comparison")
    keys = seeded.keys(type="temperature")
    _, cur = _window(seeded, keys, END_MS - HOUR_MS)
    _, prev = _window(seeded, keys, END_MS - 2 * HOUR_MS, END_MS - HOUR_MS, inclusive_lo=True)
    assert row["current_avg"] == pytest.approx(cur.mean(), rel=1e-12)
    assert row["previous_avg"] == pytest.approx(prev.mean(), rel=1e-12)


@pytest.fixture(scope="module")
def unpruned(seeded):
    from sensorium.sql import SqlEngine
    engine = SqlEngine(seeded.db, prune=False)
    yield engine
    engine.close()


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_pruned_reads_give_the_answers_of_whole_reads(seeded, unpruned, name):
    pruned = seeded.query(BLOCKS[name])
    whole = unpruned.query(BLOCKS[name], now_ms=END_MS)
    # Sums may add in another order; a t-digest depends on the order its input arrives in.
    rel = 0.02 if "approx" in BLOCKS[name] else 1e-9
    a, b = pruned.table.to_pylist(), whole.table.to_pylist()
    assert len(a) == len(b) and all(ra.keys() == rb.keys() for ra, rb in zip(a, b, strict=True))
    for ra, rb in zip(a, b, strict=True):
        for k, v in ra.items():
            assert v == (pytest.approx(rb[k], rel=rel) if isinstance(v, float) else rb[k]), k
    if any(pruned.stats.rows.values()):
        assert sum(pruned.stats.rows.values()) <= sum(whole.stats.rows.values())


def test_date_bin_counts_buckets_from_the_origin(seeded):
    rows = _rows(seeded, "date_bin")
    ts, v = _window(seeded, ["sensor_004:temperature"], END_MS - 2 * HOUR_MS)
    origin, width = 7 * MIN_MS, 15 * MIN_MS
    b = (ts - origin) // width * width + origin
    assert [_ms(r["quarter"]) for r in rows] == np.unique(b).tolist()
    assert [r["n"] for r in rows] == [int((b == x).sum()) for x in np.unique(b)]
    np.testing.assert_allclose([r["sd"] for r in rows],
                               [v[b == x].std(ddof=1) for x in np.unique(b)], rtol=1e-9)
