"""The public API against RedisTimeSeries semantics (reference: shared/reference)."""

import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sensorium
from sensorium import (
    DuplicateSample,
    InvalidArgument,
    OutOfRetention,
    RuleError,
    SeriesExists,
    SeriesNotFound,
    TooOld,
)


@pytest.fixture
def db(tmp_path):
    with sensorium.open(str(tmp_path / "data"), background=False) as database:
        yield database


def test_create_add_range_get(db):
    db.create("t", labels={"zone": "A"})
    assert db.add("t", 1000, 1.5) == 1000
    assert db.add("t", 2000, 2.5) == 2000
    assert db.range("t", "-", "+") == [(1000, 1.5), (2000, 2.5)]
    assert db.revrange("t", "-", "+", count=1) == [(2000, 2.5)]
    assert db.get("t") == (2000, 2.5)
    with pytest.raises(SeriesExists):
        db.create("t")
    with pytest.raises(SeriesNotFound):
        db.range("missing", "-", "+")


def test_add_creates_series_with_options(db):
    db.add("auto", 5, 1.0, retention_msecs=100, labels={"a": "b"}, duplicate_policy="last")
    info = db.info("auto")
    assert info["retention_msecs"] == 100
    assert info["labels"] == {"a": "b"}
    assert info["duplicate_policy"] == "last"


@pytest.mark.parametrize(("policy", "expected"), [
    ("first", 1.0), ("last", 5.0), ("min", 1.0), ("max", 5.0), ("sum", 6.0)])
def test_duplicate_policies(db, policy, expected):
    db.create("d", duplicate_policy=policy)
    db.add("d", 10, 1.0)
    db.add("d", 10, 5.0)
    assert db.range("d", "-", "+") == [(10, expected)]


def test_block_policy_and_on_duplicate_override(db):
    db.create("b")
    db.add("b", 10, 1.0)
    with pytest.raises(DuplicateSample):
        db.add("b", 10, 2.0)
    db.add("b", 10, 3.0, on_duplicate="last")
    assert db.get("b") == (10, 3.0)


def test_retention_gate_and_visibility(db):
    # RETENTION 100, samples 1, 50, 200 → only 200 visible; 100 accepted, 99 refused.
    db.create("r", retention_msecs=100)
    for t in (1, 50, 200):
        db.add("r", t, float(t))
    info = db.info("r")
    assert info["total_samples"] == 1 and info["first_timestamp"] == 200
    assert db.add("r", 100, 1.0) == 100
    with pytest.raises(OutOfRetention):
        db.add("r", 99, 1.0)


def test_a_batch_judges_retention_in_arrival_order(db):
    """As one add after another: a row is old only next to the newest sample before it."""
    db.create("r", retention_msecs=100)
    db.create("q", retention_msecs=100)
    got = db.madd([("r", 1, 1.0), ("q", 500, 1.0), ("r", 500, 2.0), ("r", 2, 3.0),
                   ("q", 350, 1.0)])
    assert got[:3] == [1, 500, 500]
    assert all(isinstance(g, OutOfRetention) for g in got[3:])
    assert db.range("r", "-", "+") == [(500, 2.0)]  # 1 was accepted, then expired


def test_madd_reports_each_sample(db):
    db.create("a")
    db.create("b")
    db.add("a", 5, 1.0)
    got = db.madd([("a", 5, 2.0), ("b", 7, 3.0), ("missing", 1, 1.0), ("a", "x", 1.0)])
    assert isinstance(got[0], DuplicateSample)
    assert got[1] == 7
    assert isinstance(got[2], sensorium.InvalidSampleError)
    assert isinstance(got[3], sensorium.InvalidSampleError)
    assert db.get("b") == (7, 3.0)


def test_columnar_madd_creates_and_keeps_good_rows(db):
    keys = np.array(["s1", "s2", "s1", "s2"], dtype=object)
    res = db.madd(keys, np.array([1, 1, 2, -5]), np.array([1.0, 2.0, np.nan, 4.0]))
    assert res.status.tolist()[:2] == [0, 0]
    assert [i for i, _ in res.rejects()] == [2, 3]
    assert db.range("s1", "-", "+") == [(1, 1.0)]
    assert db.range("s2", "-", "+") == [(1, 2.0)]


def test_incrby_decrby(db):
    assert db.incrby("c", 5, timestamp=10) == 10
    db.incrby("c", 2, timestamp=10)
    db.decrby("c", 1, timestamp=20)
    assert db.range("c", "-", "+") == [(10, 7.0), (20, 6.0)]
    with pytest.raises(TooOld):
        db.incrby("c", 1, timestamp=5)


def test_delete_range(db):
    for t in range(10):
        db.add("x", t, float(t))
    assert db.delete("x", 3, 5) == 3
    assert [t for t, _ in db.range("x", "-", "+")] == [0, 1, 2, 6, 7, 8, 9]
    assert db.delete("x", 8, 100) == 2
    assert db.get("x") == (7, 7.0)


def test_aggregations_match_reference_numbers(db):
    for t, v in [(0, 1), (1, 2), (2, 4), (3, 8), (10, 1)]:
        db.add("g", t, float(v))
    want = {"avg": 3.75, "sum": 15, "range": 7, "count": 4, "std.p": 2.680951323690902,
            "std.s": 3.095695936834452, "var.p": 7.1875, "var.s": 9.583333333333334,
            "min": 1, "max": 8, "first": 1, "last": 8}
    for agg, value in want.items():
        got = db.range("g", 0, 9, aggregation_type=agg, bucket_size_msec=10)
        assert got == [(0, pytest.approx(value))], agg


def test_bucketing_align_timestamps_and_empty(db):
    for t, v in [(1000, 100), (1010, 110), (1020, 120), (2000, 200)]:
        db.add("s", t, float(v))
    assert db.range("s", "-", "+", aggregation_type="min", bucket_size_msec=20) == [
        (1000, 100.0), (1020, 120.0), (2000, 200.0)]
    assert db.range("s", "-", "+", aggregation_type="min", bucket_size_msec=20, align=10)[:2] \
        == [(990, 100.0), (1010, 110.0)]
    mid = db.range("s", "-", "+", aggregation_type="min", bucket_size_msec=20,
                   bucket_timestamp="~")
    assert mid[0] == (1010, 100.0)
    full = db.range("s", "-", "+", aggregation_type="count", bucket_size_msec=20, empty=True)
    assert len(full) == (2000 - 1000) // 20 + 1 and full[2] == (1040, 0.0)


def test_filters_before_aggregation(db):
    for t in range(10):
        db.add("f", t, float(t))
    assert db.range("f", "-", "+", filter_by_ts=[1, 3, 5]) == [(1, 1.0), (3, 3.0), (5, 5.0)]
    assert db.range("f", "-", "+", filter_by_min_value=2, filter_by_max_value=4,
                    aggregation_type="sum", bucket_size_msec=100) == [(0, 9.0)]


def test_percentile_from_raw(db):
    for t in range(101):
        db.add("p", t, float(t))
    assert db.range("p", "-", "+", aggregation_type="p95", bucket_size_msec=1000) == [
        (0, pytest.approx(95.0))]


def test_mrange_filters_labels_groupby(db):
    for i, (zone, kind) in enumerate([("A", "t"), ("A", "t"), ("B", "t"), ("A", "h")]):
        db.create(f"k{i}", labels={"zone": zone, "type": kind})
        db.add(f"k{i}", 10, float(i))
    got = db.mrange("-", "+", ["zone=A", "type=t"], with_labels=True)
    assert [list(r)[0] for r in got] == ["k0", "k1"]
    assert got[0]["k0"][0] == {"zone": "A", "type": "t"}
    grouped = db.mrange("-", "+", ["type=t"], groupby="zone", reduce="max")
    assert grouped == [{"zone=A": [{}, [(10, 1.0)]]}, {"zone=B": [{}, [(10, 2.0)]]}]
    assert db.queryindex(["zone=A"]) == ["k0", "k1", "k3"]
    mget = db.mget(["type=h"], select_labels=["zone"])
    assert mget == [{"k3": [{"zone": "A"}, 10, 3.0]}]
    with pytest.raises(InvalidArgument):
        db.mrange("-", "+", ["zone!=A"])


def test_rule_closes_buckets_and_latest(db):
    db.create("src")
    db.create("dst")
    db.createrule("src", "dst", "sum", 10)
    db.add("src", 1, 1.0)
    db.add("src", 5, 2.0)
    assert db.range("dst", "-", "+") == []
    assert db.range("dst", "-", "+", latest=True) == [(0, 3.0)]
    db.add("src", 12, 5.0)
    assert db.range("dst", "-", "+") == [(0, 3.0)]
    # out-of-order into a closed bucket is reconciled; RedisTimeSeries: 3 → 13
    db.add("src", 3, 10.0)
    assert db.range("dst", "-", "+") == [(0, 13.0)]
    db.delete("src", 0, 9)
    db.add("src", 25, 1.0)
    assert db.range("dst", "-", "+") == [(10, 5.0)]
    info = db.info("src")
    assert info["rules"] == [["dst", 10, "SUM", 0]]
    assert db.info("dst")["source_key"] == "src"


def test_rule_errors(db):
    db.create("a")
    db.create("b")
    db.create("c")
    with pytest.raises(RuleError):
        db.createrule("a", "a", "avg", 10)
    with pytest.raises(InvalidArgument):
        db.createrule("a", "b", "nope", 10)
    db.createrule("a", "b", "avg", 10)
    with pytest.raises(RuleError):
        db.createrule("c", "b", "avg", 10)
    with pytest.raises(RuleError):
        db.deleterule("a", "c")
    db.deleterule("a", "b")


def test_chained_tiers_are_exact_and_backfilled(db):
    db.create("raw")
    ts = np.arange(0, 7200_000, 1000)
    vals = np.round(np.sin(ts / 1e6) * 10 + 20, 2)
    db.madd(np.array(["raw"] * len(ts), dtype=object), ts, vals)
    # rules added to a series that holds data backfill from it; tiers chain
    for name in ("m_avg", "m_max", "h_avg", "h_max"):
        db.create(name)
    db.createrule("raw", "m_avg", "avg", 60_000)
    db.createrule("raw", "m_max", "max", 60_000)
    db.createrule("m_avg", "h_avg", "avg", 3_600_000)
    db.createrule("m_max", "h_max", "max", 3_600_000)
    # an hour closes when a minute of the next hour closes (as each tier closes on new input)
    db.add("raw", 7200_000, 1.0)
    db.add("raw", 7260_000, 1.0)
    assert db.range("h_avg", "-", "+") == [
        (0, pytest.approx(vals[:3600].mean())), (3_600_000, pytest.approx(vals[3600:].mean()))]
    assert [v for _, v in db.range("h_max", "-", "+")] == [vals[:3600].max(), vals[3600:].max()]
    # a 2-hour avg over the minute tier is the true mean, not a mean of means
    got = db.range("m_avg", 0, 7_199_999, aggregation_type="avg", bucket_size_msec=7_200_000)
    assert got == [(0, pytest.approx(vals.mean()))]


def test_survives_reopen(tmp_path):
    path = str(tmp_path / "d")
    with sensorium.open(path, background=False) as db:
        db.create("t", labels={"k": "v"}, retention_msecs=0)
        db.create("m")
        db.createrule("t", "m", "avg", 10)
        for t in range(25):
            db.add("t", t, float(t))
        db.checkpoint()
        db.add("t", 30, 30.0)
        db.add("t", 3, 100.0, on_duplicate="last")
    with sensorium.open(path, background=False) as db:
        assert len(db.range("t", "-", "+")) == 26
        assert db.range("t", 3, 3) == [(3, 100.0)]
        assert db.range("m", "-", "+") == [
            (0, pytest.approx((sum(range(10)) - 3 + 100) / 10)), (10, 14.5), (20, 22.0)]
        assert db.queryindex(["k=v"]) == ["t"]


def test_directory_lock(tmp_path):
    path = str(tmp_path / "d")
    with sensorium.open(path, background=False):
        with pytest.raises(sensorium.LockedError):
            sensorium.open(path, background=False)


def test_batch_is_one_durable_commit(tmp_path, monkeypatch):
    from sensorium.engine import wal

    syncs = []
    real = wal._fdatasync
    monkeypatch.setattr(wal, "_fdatasync", lambda fd: (syncs.append(fd), real(fd)))
    path = str(tmp_path / "data")
    with sensorium.open(path, background=False) as db:
        syncs.clear()
        with db.batch():
            for i in range(50):
                db.create(f"s{i}", labels={"n": str(i), "kind": "s"})
                db.create(f"s{i}:avg")
                db.createrule(f"s{i}", f"s{i}:avg", "avg", 60_000)
                db.add(f"s{i}", 1000, float(i))
        assert len(syncs) == 1
        syncs.clear()
        db.add("s0", 2000, 1.0)
        assert len(syncs) == 1
    with sensorium.open(path, background=False) as db:  # everything acknowledged is back
        assert len(db.queryindex(["kind=s", "n!="])) == 50
        assert db.range("s49", "-", "+") == [(1000, 49.0)]
        assert db.info("s49")["rules"][0][0] == "s49:avg"


def test_concurrent_writers_share_syncs(tmp_path):
    import threading

    path = str(tmp_path / "data")
    with sensorium.open(path, background=False) as db:
        def write(w):
            for i in range(40):
                db.madd([f"w{w}"] * 5, np.arange(5) + i * 5, np.full(5, float(w)))
        threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    with sensorium.open(path, background=False) as db:
        for w in range(4):
            got = db.range(f"w{w}", "-", "+")
            assert len(got) == 200 and {v for _, v in got} == {float(w)}


def test_madd_with_series_ids(db):
    ids = db.series_ids(["a", "b", "c"])
    assert ids.dtype == np.int32 and len(set(ids.tolist())) == 3
    assert (db.series_ids(["a", "zz"], create=False) == [ids[0], -1]).all()
    res = db.madd(ids, [1, 2, 3], [1.0, 2.0, 3.0])
    assert res.ok and db.range("b", "-", "+") == [(2, 2.0)]
    db.delete_series("b")
    res = db.madd(np.array([ids[0], ids[1], 99]), [5, 5, 5], [1.0, 1.0, 1.0])
    assert res.status.tolist()[0] == 0 and res.rejects() == [
        (1, "the key is not a TSDB key"), (2, "the key is not a TSDB key")]


def test_create_many_with_labels_survives_restart(tmp_path):
    path = str(tmp_path / "data")
    with sensorium.open(path, background=False) as db:
        db.create("b", labels={"old": "1"})
        n = db.create_many(["a", "b", "c", "a"], [{"z": "1"}, {"z": "2"}, {"z": "3"}, {"z": "4"}],
                           retention_msecs=500)
        assert n == 2
        assert db.queryindex(["z=(1,3)"]) == ["a", "c"]
        assert db.info("b")["labels"] == {"old": "1"}  # existing series untouched
    with sensorium.open(path, background=False) as db:
        assert db.queryindex(["z=(1,3)"]) == ["a", "c"]
        assert db.info("c")["retention_msecs"] == 500
        db.madd(["a", "c"], [1, 1], [1.0, 2.0])
        assert db.range("c", "-", "+") == [(1, 2.0)]


def test_tier_percentiles_survive_checkpoint_and_restart(tmp_path):
    path = str(tmp_path / "data")
    with sensorium.open(path, background=False) as db:
        db.create("s")
        db.create("p")
        db.createrule("s", "p", "p95", 60_000)
        ts = np.arange(0, 600_000, 1000)
        db.madd(["s"] * len(ts), ts, np.arange(len(ts), dtype=float))
        before = db.range("p", "-", "+")
        db.checkpoint()
    with sensorium.open(path, background=False) as db:
        after = db.range("p", "-", "+")
    assert len(before) == 9 and after == before
    assert abs(before[0][1] - 56) / 56 < 0.02  # p95 of 0..59, within the sketch's 1 %


@pytest.mark.parametrize("shards", [1, 2])
def test_a_deleted_series_stays_deleted_when_its_key_comes_back_after_a_restart(
        tmp_path, shards):
    """Was: the highest sid, deleted before a checkpoint, was handed out again after a
    restart, and its old rows (still in a block) showed in the new series."""
    path = str(tmp_path / "db")
    with sensorium.open(path, shards=shards, background=False) as db:
        db.create("a")
        db.madd(["d"], [1], [0.0])
        db.delete_series("d")
        db.checkpoint()
    with sensorium.open(path, background=False) as db:
        db.madd(["d"], [0], [5.0])
        assert db.range("d", "-", "+") == [(0, 5.0)]


def test_range_columns_are_range_as_arrays(db):
    db.madd(["c"] * 5, [1, 2, 3, 4, 5], [1.0, 2.0, 3.0, 4.0, 5.0])
    ts, values = db.range_columns("c", "-", "+")
    assert list(zip(ts.tolist(), values.tolist(), strict=True)) == db.range("c", "-", "+")
    ts, values = db.range_columns("c", 0, 10, aggregation_type="sum", bucket_size_msec=2)
    assert list(zip(ts.tolist(), values.tolist(), strict=True)) == db.range(
        "c", 0, 10, aggregation_type="sum", bucket_size_msec=2)
    with pytest.raises(TypeError, match="unknown range option"):
        db.range_columns("c", "-", "+", agregation_type="sum")


def test_madd_creates_missing_series_with_new_labels(db):
    db.create("old", labels={"zone": "A"})
    asked = []

    def labels(new):
        asked.append(new)
        return [{"zone": "B", "key": k} for k in new]

    keys = np.array(["old", "n1", "n2", "n1"], object)
    res = db.madd(keys, [1, 1, 1, 2], [1.0, 2.0, 3.0, 4.0], new_labels=labels)
    assert res.ok and asked == [["n1", "n2"]]
    assert db.describe("old")["labels"] == {"zone": "A"}  # existing series keep theirs
    assert db.describe("n1")["labels"] == {"zone": "B", "key": "n1"}
    assert db.range("n1", "-", "+") == [(1, 2.0), (2, 4.0)]
    none = db.madd(np.array(["n3"], object), [1], [1.0], create=False, new_labels=labels)
    assert not none.ok and not db.exists("n3")


_batches = st.lists(st.tuples(
    st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 120),
                       st.integers(-40, 40).map(lambda i: i / 4)), max_size=40),
    st.sampled_from(["none", "freeze", "checkpoint"])), max_size=6)


@settings(max_examples=40, deadline=None)
@given(batches=_batches, windows=st.lists(st.tuples(st.integers(-5, 125), st.integers(0, 130)),
                                          min_size=1, max_size=4))
def test_one_key_range_equals_written_samples(batches, windows):
    """``range`` of one key (the single-series read over blocks, parts and the unsorted head)
    shows the last write of every timestamp, for any window, across checkpoints, and agrees
    with the multi-series read of ``mrange``."""
    with tempfile.TemporaryDirectory() as tmp, \
            sensorium.open(tmp, background=False, fsync="none") as db:
        for key in "ab":
            db.create(key, labels={"g": "x"}, duplicate_policy="last")
        truth: dict[str, dict[int, float]] = {"a": {}, "b": {}}
        for batch, after in batches:
            if batch:
                keys, ts, vals = zip(*batch, strict=True)
                db.madd(np.array(keys, dtype=object), np.array(ts), np.array(vals))
                for k, t, v in batch:
                    truth[k][t] = v
            if after == "freeze":
                for t in db.engine.shards[0].raw, db.engine.shards[0].rollup:
                    t.freeze()
            elif after == "checkpoint":
                db.checkpoint()
        for a, b in windows:
            lo, hi = max(a, 0), max(a, b, 0)
            multi = {next(iter(e)): next(iter(e.values()))[1]
                     for e in db.mrange(lo, hi, ["g=x"])}
            for key in "ab":
                want = sorted((t, v) for t, v in truth[key].items() if lo <= t <= hi)
                assert db.range(key, lo, hi) == want
                assert db.revrange(key, lo, hi) == want[::-1]
                ts, vals = db.range_columns(key, lo, hi)
                assert list(zip(ts.tolist(), vals.tolist(), strict=True)) == want
                assert multi[key] == want


def test_mrange_columns_equal_mrange(db):
    for key, zone in (("m1", "A"), ("m2", "A"), ("m3", "B")):
        db.create(key, labels={"zone": zone, "type": "t"})
        db.madd([key] * 50, list(range(0, 50_000, 1000)), [float(i % 7) for i in range(50)])
    for options in ({}, {"aggregation_type": "avg", "bucket_size_msec": 10_000, "count": 3},
                    {"groupby": "zone", "reduce": "max", "with_labels": True}):
        for reverse in (False, True):
            want = (db.mrevrange if reverse else db.mrange)("-", "+", ["type=t"], **options)
            got = db.mrange_columns("-", "+", ["type=t"], reverse=reverse, **options)
            assert [list(e) for e in got] == [list(e) for e in want]
            for g, w in zip(got, want, strict=True):
                (labels, (ts, values)), = g.values()
                assert [labels, list(zip(ts.tolist(), values.tolist(), strict=True))] == \
                    next(iter(w.values()))
    with pytest.raises(TypeError):
        db.mrange_columns("-", "+", ["type=t"], bucket=5)


def test_info_reports_each_series_own_bytes(db):
    """memory_usage counts a series' unflushed rows; disk_bytes shares each block out by rows,
    so after a checkpoint the series' shares add up to the raw blocks' size."""
    db.create("big")
    db.create("small")
    db.madd(["big"] * 3000 + ["small"] * 1000, np.r_[np.arange(3000), np.arange(1000)],
            np.round(np.random.default_rng(1).normal(20, 1, 4000), 2))
    big, small = db.info("big"), db.info("small")
    assert big["memory_usage"] == 3 * small["memory_usage"] > 0
    assert big["disk_bytes"] == small["disk_bytes"] == 0
    db.checkpoint()
    big, small = db.info("big"), db.info("small")
    assert big["memory_usage"] == small["memory_usage"] == 0
    blocks = sum(b.size_bytes for s in db.engine.shards for b in s.raw.blocks)
    assert abs(big["disk_bytes"] - 3 * small["disk_bytes"]) <= 3
    assert abs(big["disk_bytes"] + small["disk_bytes"] - blocks) <= 1
    db.add("small", 5000, 1.0)
    assert db.info("small")["memory_usage"] > 0 and db.info("big")["memory_usage"] == 0
