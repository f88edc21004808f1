"""Rollup streams: tiers (states and sketches) equal their re-aggregated raw data.

Every check compares a destination with a naive reference over the raw series' current
samples: plain Python for states, the ``ddsketch`` library itself for percentile buckets.
Scenarios: many series per batch (the in-place and the general feed), chained tiers, late
writes, overwrites, range deletes, backfill on createrule, restarts (checkpoint and log replay).
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
from ddsketch import DDSketch

import sensorium
from sensorium.engine import sketch as sk


@pytest.fixture
def db(tmp_path):
    with sensorium.open(str(tmp_path / "data"), background=False, fsync="none") as database:
        yield database


# -- references ---------------------------------------------------------------------------------
def naive(agg: str, values: list[float]) -> float:
    n = len(values)
    mean = sum(values) / n
    if agg.startswith("p"):
        return lib_quantile(values, float(agg[1:]) / 100)
    return {"avg": mean, "sum": sum(values), "min": min(values), "max": max(values),
            "count": float(n), "first": values[0], "last": values[-1],
            "var.p": sum((v - mean) ** 2 for v in values) / n}[agg]


def lib_quantile(values: list[float], q: float) -> float:
    """The library's DDSketch quantile, clamped to the exact min and max (as the engine)."""
    if q == 0.0:
        return min(values)
    if q == 1.0:
        return max(values)
    s = DDSketch(sk.RELATIVE_ACCURACY)
    for v in values:
        s.add(float(v))
    return min(max(s.get_quantile_value(q), min(values)), max(values))


def buckets_of(samples: dict[int, float], dur: int, align: int = 0) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for t in sorted(samples):
        out.setdefault((t - align) // dur * dur + align, []).append(samples[t])
    return out


def expected(samples: dict[int, float], agg: str, dur: int, open_ts: int | None,
             align: int = 0) -> list[tuple[int, float]]:
    """Closed buckets (before the one holding ``open_ts``) of a raw → dur rule."""
    ob = None if open_ts is None else (open_ts - align) // dur * dur + align
    return [(b, naive(agg, vs)) for b, vs in buckets_of(samples, dur, align).items()
            if ob is not None and b < ob]


def same(got, want):
    assert [t for t, _ in got] == [t for t, _ in want]
    for (t, g), (_, w) in zip(got, want, strict=True):
        assert g == pytest.approx(w, rel=1e-9, abs=1e-9), t


def stream_of(db, dest: str) -> int:
    return db.engine.rules[db.engine.registry.sid(dest)].stream


def streams(db):
    return db.engine.shards[0].streams


# -- topology -----------------------------------------------------------------------------------
def test_rules_with_the_same_bucket_share_one_stream(db):
    db.create("r")
    for agg in ("avg", "min", "max", "p95"):
        db.create(f"r:{agg}")
        db.createrule("r", f"r:{agg}", agg, 60_000)
    assert len({stream_of(db, f"r:{a}") for a in ("avg", "min", "max", "p95")}) == 1
    assert streams(db).sketched(stream_of(db, "r:avg"))


# -- in-order feeding, many series ------------------------------------------------------------
@pytest.mark.parametrize("per_batch", [1, 7])
def test_many_series_in_order(db, per_batch):
    """One sample per series per batch takes the in-place path; several, the general one."""
    rng = np.random.default_rng(per_batch)
    n_series, seconds = 60, 50
    keys = [f"s{i}" for i in range(n_series)]
    aggs = ("avg", "min", "max", "count", "first", "last", "var.p", "p90")
    for k in keys:
        db.create(k)
        for a in aggs:
            db.create(f"{k}:{a}")
            db.createrule(k, f"{k}:{a}", a, 10)
    model: dict[str, dict[int, float]] = {k: {} for k in keys}
    for start in range(0, seconds, per_batch):
        ts = np.arange(start, min(start + per_batch, seconds))
        kk = np.repeat(keys, len(ts))
        tt = np.tile(ts, n_series)
        vv = np.round(rng.normal(20, 5, len(kk)), 2)
        db.madd(kk, tt, vv)
        for k, t, v in zip(kk.tolist(), tt.tolist(), vv.tolist(), strict=True):
            model[k][t] = v
    for k in keys[:: max(1, n_series // 10)]:
        for a in aggs:
            same(db.range(f"{k}:{a}", "-", "+"), expected(model[k], a, 10, seconds - 1))


# -- chained tiers -------------------------------------------------------------------------------
def chain(db, aggs=(("t1", "p50", 10), ("t2", "p95", 100), ("t3", "p99", 1000))):
    db.create("r")
    src = "r"
    for name, agg, dur in aggs:
        db.create(name)
        db.createrule(src, name, agg, dur)
        src = name


def test_chained_percentile_tiers_merge_child_sketches(db):
    chain(db)
    rng = np.random.default_rng(3)
    ts = np.arange(0, 5000, 3)
    vs = np.round(rng.lognormal(3, 1, len(ts)), 3) * rng.choice([-1, 1, 1], len(ts))
    db.madd(["r"] * len(ts), ts, vs)
    model = dict(zip(ts.tolist(), vs.tolist(), strict=True))
    same(db.range("t1", "-", "+"), expected(model, "p50", 10, int(ts[-1])))
    # A coarser tier closes when the finer one closes a bucket after it.
    t1_open = int(ts[-1]) // 10 * 10
    same(db.range("t2", "-", "+"), expected(model, "p95", 100, t1_open - 1))
    same(db.range("t3", "-", "+"), expected(model, "p99", 1000, t1_open - 1))


def test_chained_states_equal_raw(db):
    chain(db, (("m", "avg", 10), ("h", "max", 100), ("d", "var.p", 1000)))
    rng = np.random.default_rng(4)
    ts = np.sort(rng.choice(4000, 1500, replace=False))
    vs = rng.normal(0, 3, len(ts))
    for part in np.array_split(np.arange(len(ts)), 20):
        db.madd(["r"] * len(part), ts[part], vs[part])
    model = dict(zip(ts.tolist(), vs.tolist(), strict=True))
    m_open = int(ts[-1]) // 10 * 10
    same(db.range("m", "-", "+"), expected(model, "avg", 10, int(ts[-1])))
    same(db.range("h", "-", "+"), expected(model, "max", 100, m_open - 1))
    same(db.range("d", "-", "+"), expected(model, "var.p", 1000, m_open - 1))


# -- late data, overwrites, deletes --------------------------------------------------------------
def test_late_writes_into_closed_buckets_of_many_series(db):
    """Late rows of many series in one batch: one vectorised revision, tiers and sketches."""
    keys = [f"s{i}" for i in range(40)]
    for k in keys:
        db.create(k, duplicate_policy="last")
        for name, agg, dur in ((":sum", "sum", 10), (":p50", "p50", 10)):
            db.create(k + name)
            db.createrule(k, k + name, agg, dur)
        db.create(k + ":h")
        db.createrule(k + ":sum", k + ":h", "sum", 100)
    rng = np.random.default_rng(5)
    model = {k: {} for k in keys}
    for t in range(0, 400, 2):
        vals = rng.normal(10, 2, len(keys)).round(2)
        db.madd(keys, [t] * len(keys), vals)
        for k, v in zip(keys, vals.tolist(), strict=True):
            model[k][t] = v
    # Late inserts and overwrites scattered over closed buckets, all series in one call.
    kk, tt, vv = [], [], []
    for k in keys:
        for t in rng.choice(390, 6, replace=False).tolist():
            v = round(float(rng.normal(50, 1)), 2)
            kk.append(k)
            tt.append(t)
            vv.append(v)
            model[k][t] = v
    db.madd(kk, tt, vv)
    for k in keys[::7]:
        same(db.range(k + ":sum", "-", "+"), expected(model[k], "sum", 10, 398))
        same(db.range(k + ":p50", "-", "+"), expected(model[k], "p50", 10, 398))
        same(db.range(k + ":h", "-", "+"), expected(model[k], "sum", 100, 389))


def test_overwrite_with_on_duplicate_recomputes(db):
    chain(db, (("m", "p50", 10), ("h", "sum", 100)))
    for t in range(0, 250, 5):
        db.add("r", t, float(t))
    db.add("r", 15, 1000.0, on_duplicate="last")
    model = {t: float(t) for t in range(0, 250, 5)}
    model[15] = 1000.0
    same(db.range("m", "-", "+"), expected(model, "p50", 10, 245))
    same(db.range("h", "-", "+"), [(0, sum(v for t, v in model.items() if t < 100)),
                                   (100, sum(v for t, v in model.items() if 100 <= t < 200))])


def test_delete_range_empties_buckets_and_their_sketches(db):
    chain(db, (("m", "p95", 10), ("h", "count", 100)))
    for t in range(0, 300, 2):
        db.add("r", t, float(t % 17))
    model = {t: float(t % 17) for t in range(0, 300, 2)}
    assert db.delete("r", 20, 45) == 13
    for t in range(20, 46, 2):
        del model[t]
    same(db.range("m", "-", "+"), expected(model, "p95", 10, 298))
    same(db.range("h", "-", "+"), [(0, 37.0), (100, 50.0)])
    # No bins are left for the emptied buckets.
    s = streams(db)
    bins = s.read_bins(np.array([stream_of(db, "m")]), 20, 30)
    assert len(bins) == 0


def test_late_revision_after_the_parents_open_bucket_arrives(db):
    chain(db, (("t1", "sum", 10), ("t2", "p50", 100)))
    for t in (5, 250):
        db.add("r", t, 1.0)
    db.add("r", 120, 3.0)  # revises t1 [120, 130): for t2 it is the first data of [100, 200)
    db.add("r", 350, 1.0)  # t1 [250, 260) closes: t2 closes [0, 100) and [100, 200)
    assert db.range("t1", "-", "+") == [(0, 1.0), (120, 3.0), (250, 1.0)]
    assert db.range("t2", "-", "+") == [(0, 1.0), (100, 3.0)]


# -- backfill ---------------------------------------------------------------------------------
def test_backfill_on_createrule_including_chains_and_late_sketches(db):
    db.create("r")
    rng = np.random.default_rng(9)
    ts = np.arange(0, 3000, 4)
    vs = rng.normal(5, 1, len(ts)).round(3)
    db.madd(["r"] * len(ts), ts, vs)
    model = dict(zip(ts.tolist(), vs.tolist(), strict=True))
    for name, src, agg, dur in (("m", "r", "avg", 10), ("h", "m", "max", 100)):
        db.create(name)
        db.createrule(src, name, agg, dur)
    same(db.range("m", "-", "+"), expected(model, "avg", 10, 2996))
    same(db.range("h", "-", "+"), expected(model, "max", 100, 2989))
    # A percentile rule on top of the existing chain: its inputs start keeping sketches,
    # computed for every closed bucket from the raw data.
    db.create("h95")
    db.createrule("m", "h95", "p95", 1000)
    s = streams(db)
    assert s.sketched(stream_of(db, "m")) and s.sketched(stream_of(db, "h95"))
    same(db.range("h95", "-", "+"), expected(model, "p95", 1000, 2989))
    same(db.range("m", "-", "+", aggregation_type="p50", bucket_size_msec=500),
         [(b, lib_quantile(v, 0.5)) for b, v in buckets_of(model, 500).items() if b < 2500]
         + [(2500, lib_quantile([v for t, v in model.items() if 2500 <= t < 2990], 0.5))])


def test_percentile_rule_dropped_then_added_again_drops_stale_bins(db):
    db.create("r")
    for name, agg in (("avg", "avg"), ("p", "p50")):
        db.create(name)
        db.createrule("r", name, agg, 10)
    for t in range(100):
        db.add("r", t, float(t))
    db.deleterule("r", "p")  # the stream stays (avg reads it) but stops sketching
    assert not streams(db).sketched(stream_of(db, "avg"))
    db.delete("r", 10, 19)  # its bucket [10, 20) empties while nobody keeps its sketch
    db.add("r", 15, 1000.0)
    db.delete_series("p")
    db.create("p2")
    db.createrule("r", "p2", "p50", 10)
    model = {t: float(t) for t in range(100) if not 10 <= t <= 19}
    model[15] = 1000.0
    same(db.range("p2", "-", "+"), expected(model, "p50", 10, 99))


def test_deleterule_keeps_percentile_values_as_samples(db):
    chain(db, (("m", "p90", 10),))
    for t in range(55):
        db.add("r", t, float(t * t))
    want = db.range("m", "-", "+")
    db.deleterule("r", "m")
    assert db.range("m", "-", "+") == want and len(want) == 5


# -- restart ----------------------------------------------------------------------------------
def sketches_persist(db) -> bool:
    shard = db.engine.shards[0]
    return getattr(shard, "sketch", None) is shard.streams.sketches


def test_restart_after_checkpoint_and_after_log_replay(tmp_path):
    path = str(tmp_path / "live")
    db = sensorium.open(path, background=False, fsync="none")
    chain(db, (("m", "avg", 10), ("h", "sum", 100)))
    db.create("m95")
    db.createrule("r", "m95", "p95", 10)
    model = {}
    for t in range(0, 500, 3):
        db.add("r", t, float(t % 23))
        model[t] = float(t % 23)
        if t == 300:
            db.checkpoint()
    db.add("r", 31, 99.0)  # a late write after the checkpoint: replayed from the log
    model[31] = 99.0
    shutil.copytree(path, str(tmp_path / "crashed"))  # what kill -9 leaves
    live = {k: db.range(k, "-", "+", latest=True) for k in ("m", "h", "m95")}
    db.close()
    for where in ("crashed", "live"):  # log replay, then a clean checkpointed close
        with sensorium.open(str(tmp_path / where), background=False) as again:
            for key in ("m", "h"):
                assert again.range(key, "-", "+", latest=True) == live[key]
            if sketches_persist(again):
                assert again.range("m95", "-", "+", latest=True) == live["m95"]
            same(again.range("m", "-", "+"), expected(model, "avg", 10, 498))


def test_stream_ids_and_input_only_streams_survive_restart(tmp_path):
    path = str(tmp_path / "d")
    with sensorium.open(path, background=False) as db:
        for k in ("r", "a", "b", "c"):
            db.create(k)
        db.createrule("r", "a", "avg", 10)
        db.createrule("r", "b", "sum", 20)
        db.createrule("a", "c", "max", 100)  # built on a's stream
        db.deleterule("r", "a")  # a's stream stays: c reads it
        db.deleterule("r", "b")  # b's stream (id 1) is dropped
        for t in range(0, 250, 5):
            db.add("r", t, 1.0)
        db.checkpoint()
    with sensorium.open(path, background=False) as db:
        db.add("r", 400, 1.0)  # closes a's bucket [240, 250): c's [200, 300) gets it
        assert db.range("c", "-", "+") == [(0, 1.0), (100, 1.0)]
        # LATEST adds the open buckets: c's own, and a's (sample 400) that c has not seen
        assert db.range("c", "-", "+", latest=True)[-2:] == [(200, 1.0), (400, 1.0)]
        db.create("e")
        db.createrule("r", "e", "count", 7)
        s = streams(db)
        assert stream_of(db, "e") == 3  # a fresh id, not the dropped stream's
        assert s.keys[1] is None


def test_no_nan_sketch_query_on_an_empty_stream(db):
    chain(db, (("m", "p50", 10),))
    assert db.range("m", "-", "+", aggregation_type="p50", bucket_size_msec=100) == []
    db.add("r", 1, 2.0)
    got = db.range("m", "-", "+", latest=True)
    assert got == [(0, 2.0)] and not math.isnan(got[0][1])


def test_stored_sketches_equal_sketches_recomputed_from_the_input(db):
    """Sketches built as buckets fill (open sketches, contributions passed up the chain)
    are exactly those computed from the input at close time."""
    chain(db, (("m", "p50", 10), ("h", "p90", 100)))
    keys = ["r"] + [f"x{i}" for i in range(5)]
    for k in keys[1:]:
        db.create(k)
        db.create(k + ":p")
        db.createrule(k, k + ":p", "p75", 10)
    rng = np.random.default_rng(12)
    for t in range(0, 700, 3):
        vals = rng.normal(0, 4, len(keys)) * rng.choice([1.0, 50.0], len(keys))  # overflow
        db.madd(keys, [t] * len(keys), vals)
    s = streams(db)
    ids = np.array(sorted({stream_of(db, d) for d in ("m", "h", "x0:p", "x4:p")}))
    stored = s.read_bins(ids, -(2**40), 2**40)
    bucket = sk.bucket_of_key(stored.ts)
    pairs = np.unique(np.stack([stored.sids.astype(np.int64), bucket]), axis=1)
    _, fresh = s._from_input(pairs[0], pairs[1], False, np.ones(pairs.shape[1], bool))
    assert np.array_equal(sk.pack(pairs[1][fresh.group], fresh.slot), stored.ts)
    assert np.array_equal(fresh.count, stored.columns["count"])
    assert len(np.unique(pairs[0])) == len(ids)
