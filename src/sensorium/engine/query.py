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
class Edges:
    """Per series (``sids`` sorted), the nearest samples outside a query window: the last
    one before it and the first one after it (value NaN when there is none). twa
    interpolates towards them at the window's edges, as RedisTimeSeries does."""

    sids: np.ndarray
    prev_ts: np.ndarray
    prev_v: np.ndarray
    next_ts: np.ndarray
    next_v: np.ndarray

    def of(self, sids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The edges of each of ``sids`` (NaN values for sids not listed)."""
        if len(self.sids) == 0:
            nan = np.full(len(sids), np.nan)
            zero = np.zeros(len(sids), np.int64)
            return zero, nan, zero, nan
        at = np.minimum(np.searchsorted(self.sids, sids), len(self.sids) - 1)
        known = self.sids[at] == sids
        return (self.prev_ts[at], np.where(known, self.prev_v[at], np.nan),
                self.next_ts[at], np.where(known, self.next_v[at], np.nan))


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


def aggregate_samples(rows: Rows, agg: Aggregation, window: tuple[int, int],
                      edges: Edges | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Aggregates raw samples of many series; returns (sid, bucket_start, value) rows.

    ``edges`` are the samples around ``window`` (twa only; None = no neighbours).
    """
    b = bucket_of(rows.ts, agg)
    starts = _group(rows.sids, b)
    values = rows.columns["value"]
    q = percentile_of(agg.aggregator)
    if q is not None:
        out = st.quantile_samples(values, starts, q)
        return rows.sids[starts], b[starts], out
    if agg.aggregator in _SIMPLE and len(starts) < len(values):
        states = _simple_states(rows.ts, values, starts, st.needs(agg.aggregator))
    else:
        states = st.aggregate_samples(rows.ts, values, starts)
    return _finish_states(states, rows.sids[starts], b[starts], agg, window, edges)


# Aggregators ``finalize`` answers from a few state columns: raw samples are reduced to those
# only (an avg needs 2 of the 10, and skips the variance's extra passes).
_SIMPLE = frozenset({"avg", "sum", "min", "max", "range", "count", "first", "last"})


def _simple_states(ts: np.ndarray, values: np.ndarray, starts: np.ndarray,
                   names: tuple[str, ...]) -> st.States:
    """The state columns ``names`` of groups of raw samples (as ``states.aggregate_samples``
    computes them, without the others)."""
    last = np.append(starts[1:], len(values)) - 1
    out: st.States = {"count": (last - starts + 1).astype(np.int64)}
    for name in names:
        if name == "sum":
            out[name] = np.add.reduceat(values, starts)
        elif name in ("min", "max"):
            out[name] = getattr(np, f"{name}imum").reduceat(values, starts)
        elif name in ("first", "first_ts"):
            out[name] = (values if name == "first" else ts)[starts]
        elif name in ("last", "last_ts"):
            out[name] = (values if name == "last" else ts)[last]
    return out


def aggregate_states(rows: Rows, agg: Aggregation, window: tuple[int, int],
                     edges: Edges | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merges tier state rows (ts = their bucket start) into coarser buckets.

    Percentiles are not in the states: ``read`` answers them from the tier's sketches.
    """
    if percentile_of(agg.aggregator) is not None:
        raise InvalidArgument("percentiles are answered from sketches, not states")
    b = bucket_of(rows.ts, agg)
    starts = _group(rows.sids, b)
    states = st.reduce_states(dict(rows.columns), starts)
    return _finish_states(states, rows.sids[starts], b[starts], agg, window, edges)


def _finish_states(states: st.States, sids: np.ndarray, buckets: np.ndarray, agg: Aggregation,
                   window: tuple[int, int], edges: Edges | None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if agg.aggregator == "twa" and agg.empty:
        # An empty twa bucket interpolates between the samples around it: it needs a row.
        states, sids, buckets = insert_empty(states, sids, buckets, agg.bucket_ms)
    return sids, buckets, _finalize(states, sids, buckets, agg, window, edges)


def insert_empty(states: st.States, sids: np.ndarray, buckets: np.ndarray, bucket_ms: int
                 ) -> tuple[st.States, np.ndarray, np.ndarray]:
    """Adds count-0 rows for the missing buckets between rows of the same series."""
    n = len(sids)
    if n < 2:
        return states, sids, buckets
    gap = np.zeros(n, np.int64)  # missing buckets before each row
    same = sids[1:] == sids[:-1]
    gap[1:] = np.where(same, (buckets[1:] - buckets[:-1]) // bucket_ms - 1, 0)
    total = int(gap.sum())
    if total == 0:
        return states, sids, buckets
    pos = np.arange(n) + np.cumsum(gap)  # where each old row lands
    out_n = n + total
    fresh = np.ones(out_n, bool)
    fresh[pos] = False
    out_states = st.empty_states(out_n)
    for name in st.STATE_COLUMNS:
        out_states[name][pos] = states[name]
    out_sids = np.empty(out_n, sids.dtype)
    out_b = np.empty(out_n, np.int64)
    out_sids[pos], out_b[pos] = sids, buckets
    # A missing bucket follows the nearest kept row before it: same series, next buckets.
    owner = np.maximum.accumulate(np.where(fresh, 0, np.arange(out_n)))
    step = np.arange(out_n) - owner
    out_sids[fresh] = out_sids[owner[fresh]]
    out_b[fresh] = out_b[owner[fresh]] + step[fresh] * bucket_ms
    return out_states, out_sids, out_b


def _finalize(states: st.States, sids: np.ndarray, buckets: np.ndarray, agg: Aggregation,
              window: tuple[int, int], edges: Edges | None = None) -> np.ndarray:
    if agg.aggregator != "twa":
        return st.finalize(states, agg.aggregator)
    # A bucket's neighbours are the last sample of the nearest non-empty bucket before it and
    # the first of the nearest after it, in the same series; at the series' first and last
    # buckets, the samples around the query window (``edges``).
    n = len(sids)
    idx = np.arange(n)
    full = states["count"] > 0
    before = np.full(n, -1)
    before[1:] = np.maximum.accumulate(np.where(full, idx, -1))[:-1]
    after = np.full(n, n)
    after[:-1] = np.minimum.accumulate(np.where(full, idx, n)[::-1])[::-1][1:]
    pb, nb = np.clip(before, 0, max(n - 1, 0)), np.clip(after, 0, max(n - 1, 0))
    has_prev = (before >= 0) & (sids[pb] == sids)
    has_next = (after < n) & (sids[nb] == sids)
    prev_ts = np.where(has_prev, states["last_ts"][pb], 0)
    prev_v = np.where(has_prev, states["last"][pb], np.nan)
    next_ts = np.where(has_next, states["first_ts"][nb], 0)
    next_v = np.where(has_next, states["first"][nb], np.nan)
    if edges is not None:
        e_pts, e_pv, e_nts, e_nv = edges.of(sids)
        prev_ts = np.where(has_prev, prev_ts, e_pts)
        prev_v = np.where(has_prev, prev_v, e_pv)
        next_ts = np.where(has_next, next_ts, e_nts)
        next_v = np.where(has_next, next_v, e_nv)
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
