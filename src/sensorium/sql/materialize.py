"""Engine rows → Arrow tables for DuckDB (read path, step 3).

Only the series and time range a query needs are read (``predicates`` finds them). The
engine's columns become Arrow columns without per-row Python work:

* ``value`` and the tier statistics are handed over as the engine's float64 arrays (no copy);
* ``time`` is the engine's int64 ms × 1000 as a microsecond TIMESTAMP (DuckDB's own
  timestamp type, so time filters reach the Arrow scan without a cast);
* ``key`` and the label columns are run-end encoded: rows come grouped by series, so a
  column costs one entry per series run, not per row.

Reads take the engine lock; Arrow building runs outside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ..engine import read
from ..engine.series import EMPTY_TS
from ..engine.states import STATE_COLUMNS
from ..engine.table import Rows, concat
from .catalog import Catalog, TierStreams

if TYPE_CHECKING:
    from ..engine.db import Engine

ALL_TIME = (0, 2**62)
_FAR = 2**62
_TS = pa.timestamp("us")


def _time(ms: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(ms, np.int64) * 1000, _TS)


def _runs(series: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(run ends, series of each run) of a column grouped by series."""
    n = len(series)
    if n == 0:
        return np.empty(0, np.int32), np.empty(0, np.int64)
    ends = np.flatnonzero(np.append(series[1:] != series[:-1], True)) + 1
    return ends.astype(np.int32), series[ends - 1]


def _label_columns(cat: Catalog, ends: np.ndarray, pos: np.ndarray) -> dict[str, pa.Array]:
    """``key`` and every label column: run ``i`` ends (exclusive) at row ``ends[i]`` and
    holds the series at catalog position ``pos[i]``."""
    run_ends = pa.array(ends, pa.int32())
    out = {"key": pa.RunEndEncodedArray.from_arrays(run_ends, cat.keys.take(pa.array(pos)))}
    for name, column in cat.columns.items():
        codes = cat.labels[name][pos]
        values = cat.label_values[name].take(pa.array(codes, mask=codes < 0))
        out[column] = pa.RunEndEncodedArray.from_arrays(run_ends, values)
    return out


def samples(engine: Engine, cat: Catalog, positions: np.ndarray, min_ms: int,
            max_ms: int) -> pa.Table:
    """Raw samples of the catalog's series at ``positions`` (sorted) in [min_ms, max_ms]."""
    with engine.lock:
        rows = read.raw_rows(engine, cat.sids[positions], max(min_ms, 0), max_ms)
    ends, run_sids = _runs(rows.sids)  # rows come grouped by series
    cols = _label_columns(cat, ends, cat.position(run_sids))
    cols["time"] = _time(rows.ts)
    cols["value"] = pa.array(rows.columns["value"])
    return pa.table(cols)


# The state columns each tier column is computed from.
TIER_INPUTS = {
    "count": ("count",), "sum": ("sum",), "min": ("min",), "max": ("max",),
    "avg": ("sum", "count"), "first": ("first",), "last": ("last",),
    "first_time": ("first_ts",), "last_time": ("last_ts",), "stddev": ("m2", "count"),
    "variance": ("m2", "count"), "m2": ("m2",),
}


def tier(engine: Engine, cat: Catalog, streams: TierStreams, chosen: np.ndarray,
         min_ms: int, max_ms: int, columns: set[str] | None = None) -> pa.Table:
    """Bucket states of tier ``streams`` entries ``chosen`` (indices into ``streams``) whose
    bucket start is in [min_ms, max_ms], closed buckets and each stream's open one.

    Only the state columns that ``columns`` (tier column names; None = all) need are
    decoded from blocks; the other statistics columns are NULL.
    """
    wanted = STATE_COLUMNS if columns is None else tuple(
        c for c in STATE_COLUMNS
        if c == "count" or any(c in TIER_INPUTS.get(x, ()) for x in columns))
    parts: list[Rows] = []
    series: list[np.ndarray] = []
    with engine.lock:
        for number in np.unique(streams.shard[chosen]).tolist():
            mine = chosen[streams.shard[chosen] == number]
            part, pos = _shard_states(engine, streams, mine, number, min_ms, max_ms, wanted)
            parts.append(part)
            series.append(pos)
    # Rows stay as read (by stream and time, open buckets last): SQL tables have no order,
    # and runs of one series keep the label columns short whatever the order.
    rows = concat(parts, (*wanted, "closed"))
    pos = np.concatenate(series) if series else np.empty(0, np.int64)
    return _tier_table(cat, rows, pos)


def _shard_states(engine: Engine, streams: TierStreams, mine: np.ndarray, number: int,
                  min_ms: int, max_ms: int, wanted: tuple[str, ...]) -> tuple[Rows, np.ndarray]:
    """One shard's state rows (closed, then open buckets; ``closed`` column added) and the
    catalog position of each row."""
    shard = engine.shards[number]
    ids = streams.stream[mine]
    order = np.argsort(ids)
    ids, mine = ids[order], mine[order]
    # A bucket aligned to start before 0 holds samples from 0: a window from 0 includes it.
    # As Shard.read_closed_states, decoding only the wanted columns: stored buckets that
    # are not empty and not the open one (it lives in memory).
    closed = shard.rollup.read(ids.astype(np.int32), min_ms if min_ms > 0 else -_FAR, max_ms,
                               wanted)
    keep = (closed.columns["count"] > 0) & (closed.ts < shard.streams.open_bucket[closed.sids])
    if not keep.all():
        closed = closed.take(np.flatnonzero(keep))
    at = np.searchsorted(ids, closed.sids)
    o, open_ts, states = read.open_buckets(shard.streams, ids)
    inside = (open_ts <= max_ms) & ((open_ts >= min_ms) | (min_ms <= 0))
    o, open_ts = o[inside], open_ts[inside]
    opened = Rows(ids[o].astype(np.int32), open_ts, {k: states[k][inside] for k in wanted})
    rows = concat([closed, opened], wanted)
    at = np.concatenate([at, o])
    flag = np.concatenate([np.ones(len(closed), bool), np.zeros(len(o), bool)])
    # Retention as a range of the destination shows it: counted back from the newest closed
    # bucket, the one before the open bucket.
    ret = streams.retention_ms[mine][at]
    newest_open = shard.streams.open_bucket[ids]
    newest = np.where(newest_open != EMPTY_TS, newest_open - streams.bucket_ms, 0)[at]
    keep = (ret <= 0) | (rows.ts >= newest - ret)
    if not keep.all():
        idx = np.flatnonzero(keep)
        rows, at, flag = rows.take(idx), at[idx], flag[idx]
    rows.columns["closed"] = flag
    return rows, streams.series[mine][at]


def _tier_table(cat: Catalog, rows: Rows, pos: np.ndarray) -> pa.Table:
    c = rows.columns
    n = np.asarray(c["count"], np.int64)  # an empty read has float columns
    cols = _label_columns(cat, *_runs(pos))
    cols["time"] = _time(np.maximum(rows.ts, 0))
    have = set(c)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = c["m2"] / (n - 1) if "m2" in have else None
        make = {
            "count": lambda: pa.array(n), "sum": lambda: pa.array(c["sum"], pa.float64()),
            "min": lambda: pa.array(c["min"], pa.float64()),
            "max": lambda: pa.array(c["max"], pa.float64()),
            "avg": lambda: pa.array(c["sum"] / n, pa.float64()),
            "first": lambda: pa.array(c["first"], pa.float64()),
            "last": lambda: pa.array(c["last"], pa.float64()),
            "first_time": lambda: _time(c["first_ts"]), "last_time": lambda: _time(c["last_ts"]),
            "stddev": lambda: pa.array(np.sqrt(var), pa.float64(), mask=n < 2),
            "variance": lambda: pa.array(var, pa.float64(), mask=n < 2),
            "m2": lambda: pa.array(c["m2"], pa.float64()),
        }
        for name, inputs in TIER_INPUTS.items():
            if have.issuperset(inputs):
                cols[name] = make[name]()
            else:  # not read: the query does not use it
                cols[name] = pa.nulls(len(n), _TS if name.endswith("_time") else
                                      pa.int64() if name == "count" else pa.float64())
    cols["closed"] = pa.array(np.asarray(c["closed"], bool))
    return pa.table(cols)


def series(engine: Engine, cat: Catalog) -> pa.Table:
    """One row per raw series: key, labels, retention, newest sample, tiers it has."""
    table = cat.series_table()
    with engine.lock:
        reg = engine.registry
        ret = reg.retention_ms[cat.sids].copy()
        last_ts = reg.max_ts[cat.sids].copy()
        last_v = reg.last_value[cat.sids].copy()
    none = last_ts == EMPTY_TS
    tiers: list[list[str]] = [[] for _ in range(len(cat.sids))]
    for name, streams in cat.tiers.items():
        for p in streams.series.tolist():
            tiers[p].append(name)
    table = table.append_column("retention_ms", pa.array(ret))
    table = table.append_column("last_time", pa.array(np.where(none, 0, last_ts) * 1000, _TS,
                                                      mask=none))
    table = table.append_column("last_value", pa.array(last_v, mask=none))
    return table.append_column("tiers", pa.array(tiers, pa.list_(pa.string())))


def tiers(cat: Catalog) -> pa.Table:
    """One row per tier table: name, bucket size, series shown, longest retention."""
    names = list(cat.tiers)
    ts = [cat.tiers[n] for n in names]
    return pa.table({
        "name": pa.array(names, pa.string()),
        "bucket": pa.array([t.bucket_ms * 1000 for t in ts], pa.duration("us")),
        "bucket_ms": pa.array([t.bucket_ms for t in ts], pa.int64()),
        "series": pa.array([len(t.series) for t in ts], pa.int64()),
        "retention_ms": pa.array([0 if (t.retention_ms <= 0).any() or not len(t.retention_ms)
                                  else int(t.retention_ms.max()) for t in ts], pa.int64()),
    })
