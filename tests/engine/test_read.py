"""The read path: twa edges outside the window, percentiles from tier sketches, dest samples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ddsketch import DDSketch
from hypothesis import given, settings
from hypothesis import strategies as st

import sensorium
from sensorium.engine import sketch as sk


@pytest.fixture
def db(tmp_path):
    with sensorium.open(str(tmp_path / "data"), background=False, fsync="none") as database:
        yield database


def twa_reference(series: list[tuple[int, float]], start: int, dur: int,
                  window: tuple[int, int]) -> float | None:
    """RedisTimeSeries' twa (reference §4) of bucket [start, start+dur) ∩ window, from all
    samples of the series (the neighbours may lie outside the window)."""
    lo, hi = max(start, window[0]), min(start + dur - 1, window[1])
    inside = [(t, v) for t, v in series if lo <= t <= hi]
    if not inside:
        return None
    ws, we = max(start, window[0]), min(start + dur, window[1])
    prev = [(t, v) for t, v in series if t < inside[0][0]]
    nxt = [(t, v) for t, v in series if t > inside[-1][0]]
    area = sum((t1 - t0) * (v0 + v1) / 2
               for (t0, v0), (t1, v1) in zip(inside, inside[1:], strict=False))
    (ft, fv), (lt, lv) = inside[0], inside[-1]
    begin, end = ft, lt
    if prev and ft > ws:
        pt, pv = prev[-1]
        area += (ft - ws) * (pv + (fv - pv) * (ws - pt) / (ft - pt) + fv) / 2
        begin = ws
    if nxt and lt < we:
        nt, nv = nxt[0]
        area += (we - lt) * (lv + lv + (nv - lv) * (we - lt) / (nt - lt)) / 2
        end = we
    return area / (end - begin) if end > begin else sum(v for _, v in inside) / len(inside)


# -- twa --------------------------------------------------------------------------------------
def test_twa_reference_numbers(db):
    for ts, v in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (10, 1.0)]:
        db.add("g", ts, v)
    assert db.range("g", "-", "+", aggregation_type="twa", bucket_size_msec=10)[0] == (
        0, pytest.approx(4.2))
    # reference §4 [V]: the value at 5 is interpolated between (3, 8) and (10, 1)
    assert db.range("g", 0, 5, aggregation_type="twa", bucket_size_msec=10) == [
        (0, pytest.approx(4.9))]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 400_000), st.integers(-20, 20)),
                         max_size=25), min_size=1, max_size=4),
       st.integers(0, 400_000), st.integers(0, 200_000), st.sampled_from([1000, 7000, 60_000]))
def test_twa_of_many_series_uses_neighbours_far_outside_the_window(tmp_path_factory, data, lo,
                                                                   span, dur):
    """mrange twa over several series at once; neighbours may be minutes or days away (the
    widening search), or missing."""
    path = str(tmp_path_factory.mktemp("twa"))
    with sensorium.open(path, background=False, fsync="none") as db:
        series = []
        for i, rows in enumerate(data):
            key = f"s{i}"
            db.create(key, labels={"g": "x"}, duplicate_policy="last")
            model = dict((t * 37, v / 4) for t, v in rows)  # up to ~4 hours apart
            if model:
                db.madd([key] * len(model), list(model), list(model.values()))
            series.append(sorted(model.items()))
        hi = lo + span
        got = db.mrange(lo, hi, ["g=x"], aggregation_type="twa", bucket_size_msec=dur)
        for i, reply in enumerate(got):
            rows = reply[f"s{i}"][1]
            inside = [t for t, _ in series[i] if lo <= t <= hi]
            want = {b: twa_reference(series[i], b, dur, (lo, hi))
                    for b in sorted({t // dur * dur for t in inside})}
            assert [t for t, _ in rows] == list(want)
            for t, v in rows:
                assert v == pytest.approx(want[t], rel=1e-9, abs=1e-9)


def test_twa_empty_buckets_interpolate_between_the_samples_around_them(db):
    for ts, v in [(5, 0.0), (35, 30.0)]:
        db.add("e", ts, v)
    got = db.range("e", "-", "+", aggregation_type="twa", bucket_size_msec=10, empty=True)
    # The line through (5, 0) and (35, 30) has the value t - 5; an empty bucket reports its
    # mean over the bucket (its value at the middle).
    assert [t for t, _ in got] == [0, 10, 20, 30]
    assert got[1][1] == pytest.approx(10.0) and got[2][1] == pytest.approx(20.0)


def test_twa_rule_buckets_use_the_next_sample_and_do_not_depend_on_the_window(db):
    db.create("r")
    db.create("t")
    db.createrule("r", "t", "twa", 10)
    for ts, v in [(0, 0.0), (5, 10.0), (15, 0.0), (31, 4.0), (42, 0.0)]:
        db.add("r", ts, v)
    raw = db.range("r", "-", "+", aggregation_type="twa", bucket_size_msec=10)
    assert db.range("t", "-", "+") == raw[:-1]  # the open bucket [40, 50) is not shown
    assert db.range("t", "-", "+", latest=True) == raw
    assert db.range("t", 10, 30) == raw[1:3]  # neighbours outside the window still count


def test_twa_over_tier_states_interpolates_towards_buckets_outside_the_window(db):
    db.create("r")
    db.create("m")
    db.createrule("r", "m", "avg", 10)
    samples = [(2, 0.0), (8, 6.0), (14, 12.0), (27, 2.0), (33, 8.0), (55, 0.0)]
    for ts, v in samples:
        db.add("r", ts, v)
    # [10, 39] on the tier: buckets 10..30 merge; edges come from buckets 0 and 50 (open).
    got = db.range("m", 10, 39, aggregation_type="twa", bucket_size_msec=30, align=10)
    assert got == [(10, pytest.approx(twa_reference(samples, 10, 30, (10, 39))))]


# -- percentiles from sketches ------------------------------------------------------------------
def lib(values, q):
    if q in (0.0, 1.0):
        return (min if q == 0.0 else max)(values)
    s = DDSketch(sk.RELATIVE_ACCURACY)
    for v in values:
        s.add(float(v))
    return min(max(s.get_quantile_value(q), min(values)), max(values))


def tiered(db, n=4000):
    db.create("r")
    for name, agg in (("m_avg", "avg"), ("m_p99", "p99")):
        db.create(name)
        db.createrule("r", name, agg, 1000)
    rng = np.random.default_rng(8)
    ts = np.arange(0, n * 5, 5)
    vs = np.round(rng.gamma(2.0, 10.0, len(ts)), 2)
    db.madd(["r"] * len(ts), ts, vs)
    return ts, vs


@pytest.mark.parametrize("agg", ["p50", "p95", "p99.9", "p0", "p100"])
def test_tier_percentiles_equal_the_library_over_raw_and_are_within_one_percent(db, agg):
    ts, vs = tiered(db)
    q = float(agg[1:]) / 100
    closed = ts < ts[-1] // 1000 * 1000
    got = db.range("m_avg", "-", "+", aggregation_type=agg, bucket_size_msec=5000)
    assert len(got) == math.ceil(closed.sum() * 5 / 5000)
    for b, v in got:
        x = vs[closed & (ts >= b) & (ts < b + 5000)]
        assert v == lib(x.tolist(), q)
        exact = np.quantile(x, q, method="lower")
        assert abs(v - exact) <= sk.RELATIVE_ACCURACY * abs(exact) * (1 + 1e-12)
    raw = db.range("r", "-", "+", aggregation_type=agg, bucket_size_msec=5000)
    assert raw[0][1] == pytest.approx(np.quantile(vs[ts < 5000], q))  # raw: exact


def test_tier_percentiles_with_latest_and_mrange(db):
    ts, vs = tiered(db, 1100)
    for key in ("r", "m_avg", "m_p99"):
        db.alter(key, labels={"k": "x"})
    got = db.range("m_p99", "-", "+", latest=True)
    assert got[-1] == (5000, lib(vs[ts >= 5000].tolist(), 0.99))  # the open bucket
    replies = db.mrange("-", "+", ["k=x"], aggregation_type="p90", bucket_size_msec=2000,
                        latest=True)
    by_key = {k: v[1] for r in replies for k, v in r.items()}
    for b, v in by_key["m_avg"]:
        assert v == lib(vs[(ts >= b) & (ts < b + 2000)].tolist(), 0.9)
    assert by_key["r"][0][1] == pytest.approx(np.quantile(vs[ts < 2000], 0.9))


def test_percentile_of_a_tier_without_sketches_aggregates_its_values(db):
    db.create("r")
    db.create("m")
    db.createrule("r", "m", "max", 10)
    for t in range(100):
        db.add("r", t, float(t))
    # No percentile rule reads this stream: p50 is over the bucket values (9, 19, …, 89).
    assert db.range("m", "-", "+", aggregation_type="p50", bucket_size_msec=100) == [
        (0, pytest.approx(49.0))]


def test_destination_retention_hides_old_sketches(db):
    db.create("r")
    db.create("p", retention_msecs=20)
    db.createrule("r", "p", "p50", 10)
    for t in range(60):
        db.add("r", t, float(t))
    assert [t for t, _ in db.range("p", "-", "+")] == [20, 30, 40]
    got = db.range("p", "-", "+", aggregation_type="p0", bucket_size_msec=100)
    assert got == [(0, 20.0)]


# -- destination samples ------------------------------------------------------------------------
def test_a_bucket_aligned_before_epoch_is_reported_at_0(db):
    db.create("r")
    db.create("t")
    db.createrule("r", "t", "avg", 10, 5)  # buckets [-5, 5), [5, 15), …
    for ts in (1, 20, 40):
        db.add("r", ts, float(ts))
    assert db.range("t", "-", "+") == [(0, 1.0), (15, 20.0)]
    assert db.range("t", 0, 0) == [(0, 1.0)]


def test_mrange_over_several_shards_keeps_series_apart(tmp_path):
    with sensorium.open(str(tmp_path / "d"), background=False, shards=3) as db:
        keys = [f"k{i}" for i in range(12)]
        for i, k in enumerate(keys):
            db.create(k, labels={"a": "b"})
            db.madd([k, k], [1, 2], [float(i), float(i) + 0.5])
        got = db.mrange("-", "+", ["a=b"], aggregation_type="avg", bucket_size_msec=10)
        assert [r[k][1] for r, k in zip(got, sorted(keys), strict=True)] == [
            [(0, int(k[1:]) + 0.25)] for k in sorted(keys)]
