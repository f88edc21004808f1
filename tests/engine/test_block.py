"""Blocks: what is written is read back, bit for bit, for any series subset and time range."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as hs

from sensorium.engine import block


def _rows(lens, seed):
    rng = np.random.default_rng(seed)
    sids = np.repeat(np.arange(len(lens), dtype=np.int32) * 3, lens)
    ts = np.concatenate([np.cumsum(rng.integers(1, 2000, n)) for n in lens]).astype(np.int64)
    value = np.round(rng.normal(20, 5, len(ts)), 2)
    value[rng.random(len(ts)) < 0.01] = np.nan
    value[rng.random(len(ts)) < 0.01] = -0.0
    count = rng.integers(0, 10**12, len(ts))
    return sids, ts, {"value": value, "count": count}


@settings(max_examples=40, deadline=None)
@given(lens=hs.lists(hs.integers(1, 3000), min_size=1, max_size=6), seed=hs.integers(0, 99),
       rg=hs.sampled_from([700, 4096, 65_536]), pick=hs.integers(0, 63),
       window=hs.tuples(hs.integers(0, 3_000_000), hs.integers(0, 3_000_000)))
def test_any_subset_and_range_reads_back_exactly(tmp_path_factory, lens, seed, rg, pick, window):
    sids, ts, cols = _rows(lens, seed)
    path = str(tmp_path_factory.mktemp("b") / "block.parquet")
    meta = block.write_block(path, sids, ts, cols, row_group_rows=rg)
    want = np.unique(sids)[[bool(pick >> i & 1) for i in range(len(np.unique(sids)))]]
    lo, hi = min(window), max(window)
    cache = block.RowGroupCache(1 << 20) if pick % 2 else None
    for _ in range(2):  # twice: the second read may come from the cache
        s, t, got = block.read(meta, want, lo, hi, ("value", "count"), cache=cache)
        mask = np.isin(sids, want) & (ts >= lo) & (ts <= hi)
        assert s.tolist() == sids[mask].tolist() and t.tolist() == ts[mask].tolist()
        assert got["value"].view(np.int64).tolist() == cols["value"][mask].view(np.int64).tolist()
        assert got["count"].tolist() == cols["count"][mask].tolist()


def test_long_series_are_indexed_in_chunks(tmp_path):
    n = 86_400  # one day at 1 s
    ts = 1_700_000_000_000 + np.arange(n, dtype=np.int64) * 1000
    values = np.round(20 + np.sin(np.arange(n) / 600), 2)
    meta = block.write_block(str(tmp_path / "b.parquet"), np.zeros(n, np.int32), ts,
                             {"value": values})
    assert len(meta.index_sids) == -(-n // block.CHUNK_ROWS)
    assert (np.diff(meta.index_min_ts) > 0).all()
    hour = (int(ts[40_000]), int(ts[43_599]))
    s, t, got = block.read(meta, np.array([0]), *hour, ("value",))
    assert t.tolist() == ts[40_000:43_600].tolist()
    assert got["value"].tolist() == values[40_000:43_600].tolist()
    # chunk restarts cost little: realistic readings stay well under a byte a sample
    assert meta.size_bytes / n < 1.0


@settings(max_examples=60, deadline=None)
@given(lens=hs.lists(hs.integers(1, 5000), min_size=1, max_size=4), seed=hs.integers(0, 99),
       rg=hs.sampled_from([700, 1500, 65_536]), at=hs.floats(0, 1), width=hs.floats(0, 1),
       cached=hs.booleans())
def test_one_series_read_equals_the_general_read(tmp_path_factory, lens, seed, rg, at, width,
                                                 cached):
    """The single-series path (one row range, window cut by binary search) answers as the
    multi-series path does, windows included that start or end near row-group cuts."""
    sids, ts, cols = _rows(lens, seed)
    path = str(tmp_path_factory.mktemp("b") / "block.parquet")
    meta = block.write_block(path, sids, ts, cols, row_group_rows=rg)
    cache = block.RowGroupCache(1 << 20) if cached else None
    for sid in np.unique(sids).tolist():
        mine = ts[sids == sid]
        lo = int(mine[int(at * (len(mine) - 1))]) + (seed % 3 - 1)
        hi = lo + int(width * (int(mine[-1]) - int(mine[0]) + 2))
        for _ in range(2):  # twice: the second read may come from the cache
            s, t, got = block.read(meta, np.array([sid]), lo, hi, ("value", "count"), cache=cache)
            other = np.array([sid, 10**6], np.int32)  # two sids: the general path
            s2, t2, want = block.read(meta, other, lo, hi, ("value", "count"))
            assert s.tolist() == s2.tolist() and t.tolist() == t2.tolist()
            assert got["value"].view(np.int64).tolist() == want["value"].view(np.int64).tolist()
            assert got["count"].tolist() == want["count"].tolist()
            mask = (sids == sid) & (ts >= lo) & (ts <= hi)
            assert t.tolist() == ts[mask].tolist()
    s, t, got = block.read(meta, np.array([1]), 0, 2**62, ("value",))  # sids are multiples of 3
    assert len(s) == len(t) == len(got["value"]) == 0
