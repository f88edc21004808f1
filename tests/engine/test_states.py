"""Bucket states: every aggregator against a naive per-group reference, exact merging, twa."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensorium.engine.states import (
    AGGREGATORS,
    STATE_COLUMNS,
    add_samples,
    aggregate_samples,
    empty_states,
    finalize,
    group_starts,
    merge_pairs,
    quantile_samples,
    reduce_states,
    twa,
)
from sensorium.errors import InvalidArgument

# RedisTimeSeries' verified example (reference §4): bucket [0, 10) holds the first four.
TS = np.array([0, 1, 2, 3, 10], np.int64)
VS = np.array([1.0, 2.0, 4.0, 8.0, 1.0])
NAN = float("nan")


def one_group(ts, vs):
    return aggregate_samples(np.asarray(ts, np.int64), np.asarray(vs, np.float64), np.array([0]))


def naive(agg, ts, vs):
    n = len(vs)
    if n == 0:
        return {"sum": 0.0, "count": 0.0}.get(agg, NAN)
    mean = sum(vs) / n
    m2 = sum((v - mean) ** 2 for v in vs)
    return {
        "avg": mean, "sum": sum(vs), "min": min(vs), "max": max(vs),
        "range": max(vs) - min(vs), "count": float(n), "first": vs[0], "last": vs[-1],
        "var.p": m2 / n, "std.p": math.sqrt(m2 / n),
        "var.s": m2 / (n - 1) if n > 1 else 0.0,
        "std.s": math.sqrt(m2 / (n - 1)) if n > 1 else 0.0,
    }[agg]


@pytest.mark.parametrize(("agg", "want"), [
    ("avg", 3.75), ("sum", 15.0), ("range", 7.0), ("count", 4.0), ("min", 1.0), ("max", 8.0),
    ("first", 1.0), ("last", 8.0), ("std.p", 2.680951323690902), ("std.s", 3.095695936834452),
    ("var.p", 7.1875), ("var.s", 9.583333333333334), ("AVG", 3.75),
])
def test_redistimeseries_verified_numbers(agg, want):
    got = finalize(one_group(TS[:4], VS[:4]), agg)
    assert got.dtype == np.float64
    assert got[0] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize(("window_end", "want"), [(10, 4.2), (5, 4.9)])
def test_twa_verified_numbers(window_end, want):
    got = twa(one_group(TS[:4], VS[:4]), np.array([0]), np.array([window_end]),
              np.array([0]), np.array([NAN]), np.array([10]), np.array([1.0]))
    assert got[0] == pytest.approx(want, rel=1e-12)


def twa1(ts, vs, ws, we, prev=None, nxt=None):
    p_ts, p_v = prev or (0, NAN)
    n_ts, n_v = nxt or (0, NAN)
    st_ = one_group(ts, vs) if len(ts) else empty_states(1)
    return twa(st_, np.array([ws]), np.array([we]), np.array([p_ts]), np.array([p_v]),
               np.array([n_ts]), np.array([n_v]))[0]


def test_twa_edges():
    # No neighbours: the window is cut at the first and last samples.
    assert twa1([2, 4], [1.0, 3.0], 0, 10) == pytest.approx(2.0)
    # A single sample without neighbours is its own value.
    assert twa1([5], [7.0], 0, 10) == 7.0
    # Prev before the window: interpolate at window start (line 0@-10 → 10@10 gives 5 at 0).
    assert twa1([10], [10.0], 0, 10, prev=(-10, 0.0)) == pytest.approx(7.5)
    # First sample on the window start: prev adds nothing.
    assert twa1([0, 10], [1.0, 3.0], 0, 10, prev=(-5, 100.0)) == pytest.approx(2.0)
    # Empty bucket: mean of the prev→next line over the window = its value at the midpoint.
    assert twa1([], [], 10, 20, prev=(0, 0.0), nxt=(40, 40.0)) == pytest.approx(15.0)
    assert math.isnan(twa1([], [], 10, 20, prev=(0, 0.0)))
    assert math.isnan(twa1([], [], 10, 20, nxt=(40, 40.0)))



@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.floats(-1e3, 1e3)), min_size=1, max_size=30)
       .map(lambda rows: sorted(dict(rows).items())),
       st.integers(1, 50), st.integers(0, 200), st.integers(0, 200))
def test_twa_matches_integral_of_the_interpolated_curve(samples, duration, a, b):
    """Every bucket of [from, to] (empty ones included) against a naive curve integral."""
    ts = np.array([t for t, _ in samples], np.int64)
    vs = np.array([v for _, v in samples])
    lo, hi = min(a, b), max(a, b)
    first_bucket, last_bucket = lo // duration, hi // duration
    for k in range(first_bucket, last_bucket + 1):
        ws, we = max(k * duration, lo), min((k + 1) * duration, hi)
        inside = (ts >= ws) & (ts <= we) & (ts < (k + 1) * duration)
        idx = np.flatnonzero(inside)
        if len(idx):
            i, j = idx[0] - 1, idx[-1] + 1
        else:
            j = int(np.searchsorted(ts, ws))
            i = j - 1
        prev = (ts[i], vs[i]) if i >= 0 else None
        nxt = (ts[j], vs[j]) if j < len(ts) else None
        got = twa1(ts[inside], vs[inside], ws, we, prev, nxt)
        # The curve exists on [ts[0], ts[-1]]: integrate it over its overlap with the window.
        start, end = max(ws, ts[0]), min(we, ts[-1])
        if not inside.any() and (prev is None or nxt is None):
            assert math.isnan(got)
            continue
        if end == start:
            want = np.interp(start, ts, vs)
        else:
            grid = np.concatenate(([start], ts[(ts > start) & (ts < end)], [end]))
            want = np.trapezoid(np.interp(grid, ts, vs), grid) / (end - start)
        assert got == pytest.approx(want, rel=1e-9, abs=1e-6), (k, ws, we)

def test_group_starts():
    assert group_starts(np.array([], np.int64)).tolist() == []
    assert group_starts(np.array([3, 3, 5, 7, 7, 7])).tolist() == [0, 2, 3]


def test_empty_inputs():
    empty = aggregate_samples(np.empty(0, np.int64), np.empty(0), np.empty(0, np.intp))
    assert tuple(empty) == STATE_COLUMNS and all(len(v) == 0 for v in empty.values())
    assert len(reduce_states(empty, np.empty(0, np.intp))["count"]) == 0
    assert len(quantile_samples(np.empty(0), np.empty(0, np.intp), 0.5)) == 0


@pytest.mark.parametrize("agg", AGGREGATORS)
def test_empty_bucket_values(agg):
    got = finalize(empty_states(2), agg)
    want = naive(agg, [], [])
    assert np.array_equal(got, [want, want], equal_nan=True)


def test_single_sample_sample_deviation_is_zero():
    assert finalize(one_group([1], [5.0]), "std.s")[0] == 0.0
    assert finalize(one_group([1], [5.0]), "var.s")[0] == 0.0


@pytest.mark.parametrize("agg", ["twa", "p50", "median", ""])
def test_unknown_aggregator(agg):
    with pytest.raises(InvalidArgument, match="Unknown aggregation type"):
        finalize(one_group([1], [5.0]), agg)


# Groups of strictly increasing timestamps and bounded values, as a series holds them.
groups = st.lists(
    st.lists(st.tuples(st.integers(0, 10_000), st.floats(-1e6, 1e6)), min_size=1, max_size=25)
    .map(lambda rows: sorted(dict(rows).items())),
    min_size=1, max_size=6,
)


def flatten(gs):
    ts = np.array([t for g in gs for t, _ in g], np.int64)
    vs = np.array([v for g in gs for _, v in g], np.float64)
    keys = np.repeat(np.arange(len(gs)), [len(g) for g in gs])
    return ts, vs, keys


@settings(max_examples=150, deadline=None)
@given(groups)
def test_every_aggregator_matches_naive(gs):
    ts, vs, keys = flatten(gs)
    states = aggregate_samples(ts, vs, group_starts(keys))
    for agg in AGGREGATORS:
        got = finalize(states, agg)
        for i, g in enumerate(gs):
            want = naive(agg, [t for t, _ in g], [v for _, v in g])
            assert got[i] == pytest.approx(want, rel=1e-9, abs=1e-6), agg
    for i, g in enumerate(gs):
        area = sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in zip(g, g[1:], strict=False))
        assert states["area"][i] == pytest.approx(area, rel=1e-9, abs=1e-3)


@settings(max_examples=200, deadline=None)
@given(groups, st.data())
def test_reduce_of_any_partition_equals_aggregate_of_union(gs, data):
    ts, vs, keys = flatten(gs)
    whole = aggregate_samples(ts, vs, group_starts(keys))
    # Split each group into consecutive runs at arbitrary cut points: the runs are the rows.
    cuts = np.array(data.draw(st.lists(st.booleans(), min_size=len(ts), max_size=len(ts))))
    run_id = np.cumsum(cuts | np.concatenate(([True], keys[1:] != keys[:-1])))
    rows = aggregate_samples(ts, vs, group_starts(run_id))
    merged = reduce_states(rows, group_starts(keys[group_starts(run_id)]))
    scale = np.array([np.abs(np.array([v for _, v in g])).max() + 1.0 for g in gs])
    span = np.array([g[-1][0] - g[0][0] + 1.0 for g in gs])
    sizes = np.array([len(g) for g in gs])
    abs_tol = {"sum": scale * sizes, "m2": scale**2 * sizes, "area": scale * span}
    for col in STATE_COLUMNS:
        assert merged[col].dtype == whole[col].dtype, col
        if col in ("count", "first_ts", "last_ts", "min", "max", "first", "last"):
            assert np.array_equal(merged[col], whole[col]), col
        else:
            err = np.abs(merged[col] - whole[col])
            assert np.all(err <= 1e-9 * np.abs(whole[col]) + 1e-12 * abs_tol[col]), col


def test_reduce_merges_minute_states_into_the_true_hourly_mean():
    rng = np.random.default_rng(7)
    ts = np.sort(rng.choice(3_600_000, 5_000, replace=False)).astype(np.int64)
    vs = rng.normal(20.0, 5.0, len(ts))
    minutes = aggregate_samples(ts, vs, group_starts(ts // 60_000))
    hour = reduce_states(minutes, np.array([0]))
    assert finalize(hour, "avg")[0] == pytest.approx(vs.mean(), rel=1e-12)
    assert finalize(hour, "std.s")[0] == pytest.approx(vs.std(ddof=1), rel=1e-12)
    assert hour["area"][0] == pytest.approx(np.trapezoid(vs, ts), rel=1e-12)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=20), min_size=1,
                max_size=6),
       st.floats(0.0, 1.0) | st.sampled_from([0.0, 0.25, 0.5, 0.99, 1.0]))
def test_quantile_matches_numpy_per_group(gs, q):
    vs = np.array([v for g in gs for v in g])
    keys = np.repeat(np.arange(len(gs)), [len(g) for g in gs])
    got = quantile_samples(vs, group_starts(keys), q)
    want = [np.quantile(np.array(g), q) for g in gs]
    assert np.allclose(got, want, rtol=1e-12, atol=1e-9)


def test_quantile_rejects_q_outside_unit_interval():
    with pytest.raises(InvalidArgument):
        quantile_samples(np.array([1.0]), np.array([0]), 1.5)


def close_states(a, b, scale):
    for col in STATE_COLUMNS:
        assert a[col].dtype == b[col].dtype, col
        assert np.allclose(a[col], b[col], rtol=1e-9, atol=1e-9 * scale), col


@settings(max_examples=150, deadline=None)
@given(groups, st.data())
def test_merge_pairs_and_add_samples_equal_reduce_states(gs, data):
    """The ingest kernels (row-wise merges) against the grouped reduction."""
    gs = [g for g in gs if len(g) >= 2]
    if not gs:
        return
    cuts = [data.draw(st.integers(1, len(g) - 1)) for g in gs]
    head = [g[:c] for g, c in zip(gs, cuts, strict=True)]
    tail = [g[c:] for g, c in zip(gs, cuts, strict=True)]
    ts_h, vs_h, k_h = flatten(head)
    ts_t, vs_t, k_t = flatten(tail)
    a = aggregate_samples(ts_h, vs_h, group_starts(k_h))
    b = aggregate_samples(ts_t, vs_t, group_starts(k_t))
    ts, vs, keys = flatten(gs)
    whole = aggregate_samples(ts, vs, group_starts(keys))
    scale = 1e6 * 1e6 * 30
    close_states(merge_pairs(a, b), whole, scale)
    # One more sample per group: add_samples changes only the columns it returns.
    one_t = np.array([g[0] for g in (t[0] for t in tail)], np.int64)
    one_v = np.array([g[1] for g in (t[0] for t in tail)])
    got = dict(a)
    got.update(add_samples(a, one_t, one_v))
    for i in range(len(gs)):
        rows = head[i] + [tail[i][0]]
        ref = aggregate_samples(np.array([t for t, _ in rows], np.int64),
                                np.array([v for _, v in rows]), np.array([0]))
        for col in STATE_COLUMNS:
            assert got[col][i] == pytest.approx(ref[col][0], rel=1e-9, abs=1e-9 * scale), col


def test_one_sample_groups_take_the_singleton_path():
    ts = np.array([5, 9, 12], np.int64)
    vs = np.array([1.5, -2.0, 3.0])
    got = aggregate_samples(ts, vs, np.arange(3))
    assert got["count"].tolist() == [1, 1, 1] and got["m2"].tolist() == [0.0] * 3
    assert got["first_ts"].tolist() == got["last_ts"].tolist() == [5, 9, 12]
    got["min"][0] = 99.0  # columns are independent arrays
    assert got["max"][0] == 1.5 and vs[0] == 1.5
