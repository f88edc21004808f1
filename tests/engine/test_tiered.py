"""Stitched aggregation: tiers give raw's answers, and keep answering once raw has expired."""

import numpy as np
import pytest

import sensorium
from sensorium.errors import InvalidArgument

M, H = 60_000, 3_600_000
T0 = 1_000_000_860_000  # one minute past an hour
AGGREGATORS = ["avg", "max", "min", "sum", "count", "std.s", "var.p", "first", "last", "range"]


def _chained(db, key, raw_retention=0, minute_retention=0):
    """raw → 1 min (avg) → 1 h (max): a chain, so the open buckets of both tiers matter."""
    db.create(key, labels={"type": "t"}, retention_msecs=raw_retention)
    db.create(f"{key}:1m", retention_msecs=minute_retention)
    db.create(f"{key}:1h")
    db.createrule(key, f"{key}:1m", "avg", M)
    db.createrule(f"{key}:1m", f"{key}:1h", "max", H)


@pytest.fixture
def db(tmp_path):
    with sensorium.open(str(tmp_path / "db")) as d:
        yield d


def _load(db, keys, n, step=500, seed=1):
    """``n`` samples per key, written in time order in batches of 600 (as devices send)."""
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(n) * step
    values = {key: np.round(rng.normal(20, 3, n), 2) for key in keys}
    for at in range(0, n, 600):
        cut = slice(at, at + 600)
        db.madd(np.repeat(keys, len(ts[cut])), np.tile(ts[cut], len(keys)),
                np.concatenate([values[k][cut] for k in keys]))
    return ts, values


@pytest.mark.parametrize("bucket", [M, 5 * M, H, 2 * H])
def test_tiers_answer_exactly_what_raw_answers(db, bucket):
    for i in range(3):
        _chained(db, f"s{i}")
    _load(db, [f"s{i}" for i in range(3)], 3 * 7200 + 123)
    for agg in AGGREGATORS:
        res = db.aggregate(None, 0, "+", agg, bucket, filters=["type=t"])
        assert [r["key"] for r in res] == ["s0", "s1", "s2"]  # tiers are not listed
        for r in res:
            want = db.range(r["key"], r["from"], r["to"], aggregation_type=agg,
                            bucket_size_msec=bucket)
            assert r["timestamps"].tolist() == [t for t, _ in want]
            np.testing.assert_allclose(r["values"], [v for _, v in want], rtol=1e-9,
                                       atol=1e-9, err_msg=agg)
            source = r["sources"][0]
            assert source["key"] == (f"{r['key']}:1h" if bucket % H == 0 else f"{r['key']}:1m")
            assert source["exact"] and len(r["sources"]) == 1


def test_late_samples_and_the_open_buckets_stay_exact(db):
    _chained(db, "s")
    ts, _ = _load(db, ["s"], 7200)
    db.madd(["s", "s"], [int(ts[10]) + 1, int(ts[-1]) + 1], [1000.0, -5.0])  # late + newest
    for bucket in (M, H):
        got = db.aggregate(["s"], 0, "+", "max", bucket)[0]
        want = db.range("s", got["from"], got["to"], aggregation_type="max",
                        bucket_size_msec=bucket)
        assert got["values"].tolist() == [v for _, v in want]
    assert got["values"][0] == 1000.0


def test_expired_raw_is_answered_from_tiers_at_their_own_bucket(db):
    _chained(db, "s", raw_retention=2 * H, minute_retention=4 * H)
    ts, values = _load(db, ["s"], 12 * 3600, step=1000)
    got = db.aggregate(["s"], 0, "+", "avg", M)[0]
    sources = got["sources"]
    assert [(s["key"], s["exact"]) for s in sources] == [("s:1h", False), ("s:1m", True)]
    assert sources[0]["to"] + 1 == sources[1]["from"] and sources[1]["from"] % H == 0
    # Ground truth: the samples written, bucketed as each segment says.
    for s in sources:
        inside = (ts >= s["from"]) & (ts <= s["to"])
        buckets = ts[inside] // s["bucket_ms"] * s["bucket_ms"]
        keys, start = np.unique(buckets, return_index=True)
        want = np.add.reduceat(values["s"][inside], start) / np.diff(np.append(start,
                                                                              inside.sum()))
        at = (got["timestamps"] >= s["from"]) & (got["timestamps"] <= s["to"])
        assert got["timestamps"][at].tolist() == keys.tolist()
        np.testing.assert_allclose(got["values"][at], want, rtol=1e-12)
    # raw itself no longer has the old part; without stitching only exact tiers answer
    assert db.range("s", 0, "+")[0][0] > sources[1]["from"]
    exact_only = db.aggregate(["s"], 0, "+", "avg", M, stitch=False)[0]
    assert [s["key"] for s in exact_only["sources"]] == ["s:1m"]


def test_percentiles_are_read_from_raw_only(db):
    _chained(db, "s")
    _load(db, ["s"], 7200)
    got = db.aggregate(["s"], 0, "+", "p90", H)[0]
    want = db.range("s", got["from"], got["to"], aggregation_type="p90", bucket_size_msec=H)
    assert [s["key"] for s in got["sources"]] == ["s"]
    np.testing.assert_allclose(got["values"], [v for _, v in want])


def test_a_series_without_tiers_reads_raw_and_tiers_are_refused_as_keys(db):
    db.create("plain")
    db.add("plain", T0, 1.0)
    assert db.aggregate(["plain"], 0, "+", "sum", H)[0]["values"].tolist() == [1.0]
    _chained(db, "s")
    with pytest.raises(InvalidArgument, match="is a tier"):
        db.aggregate(["s:1m"], 0, "+", "avg", H)


def test_sources_only_list_segments_that_gave_buckets(db):
    _chained(db, "s", raw_retention=2 * H, minute_retention=4 * H)
    db.create("s:1d")
    db.createrule("s:1h", "s:1d", "avg", 24 * H)
    db.alter("s:1h", retention_msecs=24 * H)
    _load(db, ["s"], 12 * 3600, step=1000)
    got = db.aggregate(["s"], 0, "+", "avg", M)[0]
    # the planner also gives the 1-day tier the time before the 1-hour tier's retention,
    # where this series has no data: that segment is not listed
    assert [s["key"] for s in got["sources"]] == ["s:1h", "s:1m"]
