"""Range aggregation over many series at once (read path, after the merge of parts).

Input rows are sorted by (sid, ts). Raw samples are grouped by (sid, bucket) and turned into
bucket states; tier rows already are states and are merged by (sid, bucket). Either way one
``states.finalize`` gives the answer, so a tier and the raw data answer with the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidArgument
from ..model import percentile_of
from . import states as st
from .table import Rows


@dataclass(frozen=True, slots=True)
class Aggregation:
    """How to bucket a range: ``aggregator`` over ``bucket_ms`` buckets aligned to ``align_ms``.

    ``bucket_ts`` is "-" (bucket start), "+" (end) or "~" (middle); ``empty`` reports empty
    buckets between the first and last non-empty one.
    """

    aggregator: str
    bucket_ms: int
    align_ms: int = 0
    bucket_ts: str = "-"
    empty: bool = False

    def __post_init__(self) -> None:
        if self.bucket_ms <= 0:
            raise InvalidArgument("bucketDuration must be greater than zero")
        if self.bucket_ts not in ("-", "+", "~"):
            raise InvalidArgument("unknown BUCKETTIMESTAMP parameter")


@dataclass(frozen=True, slots=True)
class Series:
    """One series' answer: timestamps and values, ascending."""

    sid: int
    ts: np.ndarray
    values: np.ndarray


def split(sids: np.ndarray, ts: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> list[Series]:
    """Cuts (sid, ts)-sorted columns into one Series per wanted sid (empty ones included)."""
    lo = np.searchsorted(sids, wanted, "left")
    hi = np.searchsorted(sids, wanted, "right")
    return [Series(int(s), ts[a:b], values[a:b])
            for s, a, b in zip(wanted.tolist(), lo.tolist(), hi.tolist(), strict=True)]


def bucket_of(ts: np.ndarray, agg: Aggregation) -> np.ndarray:
    align = agg.align_ms % agg.bucket_ms
    return (ts - align) // agg.bucket_ms * agg.bucket_ms + align


def _group(sids: np.ndarray, buckets: np.ndarray) -> np.ndarray:
    n = len(sids)
    if n == 0:
        return np.empty(0, np.int64)
    change = np.empty(n, bool)
    change[0] = True
    change[1:] = (sids[1:] != sids[:-1]) | (buckets[1:] != buckets[:-1])
    return np.flatnonzero(change)


def aggregate_samples(rows: Rows, agg: Aggregation, window: tuple[int, int]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Aggregates raw samples of many series; returns (sid, bucket_start, value) rows."""
    b = bucket_of(rows.ts, agg)
    starts = _group(rows.sids, b)
    values = rows.columns["value"]
    q = percentile_of(agg.aggregator)
    if q is not None:
        out = st.quantile_samples(values, starts, q)
        return rows.sids[starts], b[starts], out
    states = st.aggregate_samples(rows.ts, values, starts)
    return rows.sids[starts], b[starts], _finalize(states, rows.sids[starts], b[starts], agg,
                                                   window)


def aggregate_states(rows: Rows, agg: Aggregation, window: tuple[int, int]
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merges tier state rows (ts = their bucket start) into coarser buckets."""
    if percentile_of(agg.aggregator) is not None:
        raise InvalidArgument("percentiles are answered from raw samples only")
    b = bucket_of(rows.ts, agg)
    starts = _group(rows.sids, b)
    states = st.reduce_states(dict(rows.columns), starts)
    return rows.sids[starts], b[starts], _finalize(states, rows.sids[starts], b[starts], agg,
                                                   window)


def _finalize(states: st.States, sids: np.ndarray, buckets: np.ndarray, agg: Aggregation,
              window: tuple[int, int]) -> np.ndarray:
    if agg.aggregator != "twa":
        return st.finalize(states, agg.aggregator)
    # Neighbours of a bucket are the last sample of the previous bucket and the first of the
    # next one, within the same series; edges of the query window have none here.
    n = len(sids)
    same_prev = np.zeros(n, bool)
    same_prev[1:] = sids[1:] == sids[:-1]
    same_next = np.zeros(n, bool)
    same_next[:-1] = sids[:-1] == sids[1:]
    prev_ts = np.roll(states["last_ts"], 1)
    prev_v = np.where(same_prev, np.roll(states["last"], 1), np.nan)
    next_ts = np.roll(states["first_ts"], -1)
    next_v = np.where(same_next, np.roll(states["first"], -1), np.nan)
    ws = np.maximum(buckets, window[0])
    we = np.minimum(buckets + agg.bucket_ms, window[1])
    return st.twa(states, ws, we, prev_ts, prev_v, next_ts, next_v)


def fill_empty(series: Series, agg: Aggregation) -> Series:
    """Adds the empty buckets between the first and last reported bucket."""
    if len(series.ts) < 2:
        return series
    all_b = np.arange(series.ts[0], series.ts[-1] + 1, agg.bucket_ms, dtype=np.int64)
    if len(all_b) == len(series.ts):
        return series
    idx = np.searchsorted(all_b, series.ts)
    a = agg.aggregator
    fill = 0.0 if a in ("sum", "count") else np.nan
    out = np.full(len(all_b), fill)
    out[idx] = series.values
    if a == "last":  # an empty bucket repeats the last value before it
        have = np.zeros(len(all_b), bool)
        have[idx] = True
        pos = np.maximum.accumulate(np.where(have, np.arange(len(all_b)), 0))
        out = out[pos]
    elif a == "twa":  # linear interpolation between the neighbouring buckets' values
        missing = np.isnan(out)
        out[missing] = np.interp(all_b[missing], series.ts, series.values)
    return Series(series.sid, all_b, out)


def stamp(series: Series, agg: Aggregation) -> Series:
    """Moves bucket starts to the reported bucket timestamp (start, end or middle)."""
    if agg.bucket_ts == "+":
        return Series(series.sid, series.ts + agg.bucket_ms, series.values)
    if agg.bucket_ts == "~":
        return Series(series.sid, series.ts + agg.bucket_ms // 2, series.values)
    return series


def reduce_group(members: list[Series], reducer: str) -> Series:
    """GROUPBY … REDUCE: per timestamp, reduces the values of a group's series."""
    if not members:
        return Series(-1, np.empty(0, np.int64), np.empty(0))
    ts = np.concatenate([m.ts for m in members])
    vals = np.concatenate([m.values for m in members])
    keep = ~np.isnan(vals)  # reducers skip NaN (e.g. EMPTY buckets), as RedisTimeSeries does
    ts, vals = ts[keep], vals[keep]
    order = np.argsort(ts, kind="stable")
    ts, vals = ts[order], vals[order]
    starts = _group(np.zeros(len(ts), np.int8), ts)
    states = st.aggregate_samples(ts, vals, starts)
    return Series(-1, ts[starts], st.finalize(states, reducer))
