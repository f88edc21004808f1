"""Mergeable bucket states and aggregators (read path and downsampling).

A *States* is a ``dict[str, np.ndarray]`` holding one row per bucket (or group), rows ordered by
time, with the columns of ``STATE_COLUMNS``:

    count     int64    number of samples
    sum       float64  sum of values
    min, max  float64
    m2        float64  sum of squared deviations from the row's mean (Chan et al.)
    first_ts  int64    lowest timestamp (ms) and its value ``first``
    last_ts   int64    highest timestamp (ms) and its value ``last``
    area      float64  trapezoidal integral of the piecewise-linear curve through the row's
                       samples over [first_ts, last_ts] (value × ms; 0 for one sample)

Rows merge exactly: ``reduce_states`` over any partition of sorted samples equals
``aggregate_samples`` over their union up to float rounding, so an hourly tier built from minute
states reports the true hourly mean, deviation and time-weighted average.

Every kernel is vectorised over all groups at once (``ufunc.reduceat`` on group start indices);
none loops over groups or samples in Python. Samples must not be NaN: like RedisTimeSeries 8.6+,
callers drop NaN samples before aggregating. Pure functions, no state: thread-safe.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidArgument

States = dict[str, np.ndarray]

STATE_COLUMNS = (
    "count", "sum", "min", "max", "m2", "first_ts", "first", "last_ts", "last", "area",
)
_INT_COLUMNS = frozenset({"count", "first_ts", "last_ts"})

AGGREGATORS = (
    "avg", "sum", "min", "max", "range", "count", "first", "last",
    "std.p", "std.s", "var.p", "var.s",
)


def empty_states(n: int) -> States:
    """``n`` rows of empty buckets: count, sum, m2, area and timestamps 0; values NaN."""
    out: States = {c: np.zeros(n, np.int64) for c in _INT_COLUMNS}
    for c in ("sum", "m2", "area"):
        out[c] = np.zeros(n, np.float64)
    for c in ("min", "max", "first", "last"):
        out[c] = np.full(n, np.nan)
    return {c: out[c] for c in STATE_COLUMNS}


def group_starts(keys: np.ndarray) -> np.ndarray:
    """Start index of every run of equal keys in sorted ``keys`` (``intp``; empty for empty)."""
    keys = np.asarray(keys)
    if len(keys) == 0:
        return np.empty(0, np.intp)
    return np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))


def _sizes(starts: np.ndarray, n: int) -> np.ndarray:
    return np.diff(np.append(starts, n))


def aggregate_samples(ts: np.ndarray, values: np.ndarray, starts: np.ndarray) -> States:
    """Aggregate raw samples into one state row per group.

    Args:
        ts: int64 timestamps in ms, sorted by (group, ts).
        values: float64 values aligned with ``ts``; no NaN.
        starts: strictly increasing group start indices beginning at 0, as from
            ``group_starts``; every group is non-empty.

    Returns:
        A States with ``len(starts)`` rows.
    """
    ts = np.asarray(ts, np.int64)
    values = np.asarray(values, np.float64)
    starts = np.asarray(starts, np.intp)
    if len(starts) == 0:
        return empty_states(0)
    if len(starts) == len(ts):  # one sample per group (a per-second batch): no reductions
        return _singletons(ts, values)
    sizes = _sizes(starts, len(ts))
    last_idx = starts + sizes - 1
    total = np.add.reduceat(values, starts)
    # Two-pass variance: summing deviations from the group mean avoids the cancellation of
    # Σx² − (Σx)²/n, which loses every digit for large values with small spread.
    dev = values - np.repeat(total / sizes, sizes)
    # trap[i] is the trapezoid between samples i-1 and i; zeroing it at each group start drops
    # the pairs that straddle two groups, so one reduceat sums each group's own trapezoids.
    trap = np.empty(len(ts), np.float64)
    trap[0] = 0.0
    trap[1:] = np.diff(ts) * (values[1:] + values[:-1]) * 0.5
    trap[starts] = 0.0
    return {
        "count": sizes.astype(np.int64),
        "sum": total,
        "min": np.minimum.reduceat(values, starts),
        "max": np.maximum.reduceat(values, starts),
        "m2": np.add.reduceat(dev * dev, starts),
        "first_ts": ts[starts],
        "first": values[starts],
        "last_ts": ts[last_idx],
        "last": values[last_idx],
        "area": np.add.reduceat(trap, starts),
    }


def _singletons(ts: np.ndarray, values: np.ndarray) -> States:
    zeros = np.zeros(len(ts), np.float64)
    return {
        "count": np.ones(len(ts), np.int64), "sum": values.copy(), "min": values.copy(),
        "max": values.copy(), "m2": zeros, "first_ts": ts.copy(), "first": values.copy(),
        "last_ts": ts.copy(), "last": values.copy(), "area": zeros.copy(),
    }


def merge_pairs(a: States, b: States) -> States:
    """Row-wise merge of two aligned States: row i of ``a`` followed in time by row i of ``b``.

    Every row of both must have count > 0 and ``a``'s samples must precede ``b``'s. The
    elementwise twin of ``reduce_states`` over groups of two rows (Chan et al.'s pairwise
    update), without its reductions: merging a batch into open buckets is the ingest hot path.
    """
    na, nb = a["count"], b["count"]
    n = na + nb
    delta = b["sum"] / nb - a["sum"] / na
    return {
        "count": n,
        "sum": a["sum"] + b["sum"],
        "min": np.minimum(a["min"], b["min"]),
        "max": np.maximum(a["max"], b["max"]),
        "m2": a["m2"] + b["m2"] + delta * delta * (na * nb / n),
        "first_ts": a["first_ts"].copy(),
        "first": a["first"].copy(),
        "last_ts": b["last_ts"].copy(),
        "last": b["last"].copy(),
        "area": a["area"] + b["area"]
        + (b["first_ts"] - a["last_ts"]) * (a["last"] + b["first"]) * 0.5,
    }


def add_samples(states: States, ts: np.ndarray, values: np.ndarray) -> States:
    """Row-wise: row i of ``states`` (count > 0) followed by one sample (ts[i], values[i]).

    The columns that change, as new arrays: ``merge_pairs`` with a one-sample right-hand
    side, in a third of its passes (one sample per series per batch is ingest's common case).
    """
    n = states["count"]
    delta = values - states["sum"] / n
    return {
        "count": n + 1,
        "sum": states["sum"] + values,
        "min": np.minimum(states["min"], values),
        "max": np.maximum(states["max"], values),
        "m2": states["m2"] + delta * delta * (n / (n + 1.0)),
        "last_ts": ts,
        "last": values,
        "area": states["area"] + (ts - states["last_ts"]) * (states["last"] + values) * 0.5,
    }


def reduce_states(states: States, starts: np.ndarray) -> States:
    """Merge consecutive state rows into one row per group.

    Args:
        states: rows sorted by (group, time), every row with count > 0, rows of a group not
            overlapping in time. A subset of the columns may be given (``needs``): ``count``
            always; the merged rows have the same columns.
        starts: strictly increasing group start row indices beginning at 0.

    Returns:
        A States with ``len(starts)`` rows, equal (up to float rounding) to ``aggregate_samples``
        over the union of the rows' raw samples.
    """
    starts = np.asarray(starts, np.intp)
    if len(starts) == 0:
        return {c: v for c, v in empty_states(0).items() if c in states}
    count = np.asarray(states["count"], np.int64)
    sizes = _sizes(starts, len(count))
    last_idx = starts + sizes - 1
    out: States = {"count": np.add.reduceat(count, starts)}
    if "sum" in states:
        out["sum"] = np.add.reduceat(states["sum"], starts)
    if "m2" in states:
        # Chan et al.: each row's m2 is about its own mean; shifting it to the group mean adds
        # n_i (mean_i − mean_g)², a sum of non-negative terms, so it is as stable as two-pass.
        shift = states["sum"] / count - np.repeat(out["sum"] / out["count"], sizes)
        out["m2"] = np.add.reduceat(states["m2"] + count * shift * shift, starts)
    if "min" in states:
        out["min"] = np.minimum.reduceat(states["min"], starts)
    if "max" in states:
        out["max"] = np.maximum.reduceat(states["max"], starts)
    if "first" in states:
        out["first_ts"], out["first"] = states["first_ts"][starts], states["first"][starts]
    if "last" in states:
        out["last_ts"], out["last"] = states["last_ts"][last_idx], states["last"][last_idx]
    if "area" in states:
        # The curve between two adjacent rows is the segment from one's last to the next's
        # first sample; it belongs to the group unless the next row starts a new group.
        first_ts, last_ts = states["first_ts"], states["last_ts"]
        first, last = states["first"], states["last"]
        bridge = np.empty(len(count), np.float64)
        bridge[0] = 0.0
        bridge[1:] = (first_ts[1:] - last_ts[:-1]) * (last[:-1] + first[1:]) * 0.5
        bridge[starts] = 0.0
        out["area"] = np.add.reduceat(states["area"] + bridge, starts)
    return {c: out[c] for c in STATE_COLUMNS if c in out}


def needs(aggregator: str) -> tuple[str, ...]:
    """The state columns ``finalize`` reads for ``aggregator`` (a tier read loads no more)."""
    agg = aggregator.lower()
    if agg in ("avg", "sum"):
        return ("count", "sum")
    if agg in ("min", "max"):
        return ("count", agg)
    if agg == "range":
        return ("count", "min", "max")
    if agg in ("first", "last"):
        return ("count", f"{agg}_ts", agg)
    if agg[:3] in ("std", "var"):
        return ("count", "sum", "m2")
    if agg == "count":
        return ("count",)
    return STATE_COLUMNS


def finalize(states: States, aggregator: str) -> np.ndarray:
    """One float64 value per row for ``aggregator`` (one of ``AGGREGATORS``, any case).

    Rows with count 0 give RedisTimeSeries' EMPTY values: 0 for sum and count, NaN otherwise
    (an empty bucket's ``last`` — the last value before it — is the caller's to fill).
    std.s and var.s are 0 for a single sample, as in RedisTimeSeries.

    Raises:
        InvalidArgument: unknown aggregator (twa and quantiles have their own functions).
    """
    agg = aggregator.lower()
    n = states["count"].astype(np.float64)
    empty = n == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        if agg == "avg":
            out = states["sum"] / n
        elif agg == "sum":
            out = states["sum"].astype(np.float64, copy=True)
        elif agg in ("min", "max", "first", "last"):
            out = states[agg].astype(np.float64, copy=True)
        elif agg == "range":
            out = states["max"] - states["min"]
        elif agg == "count":
            return n
        elif agg in ("var.p", "std.p"):
            out = states["m2"] / n
        elif agg in ("var.s", "std.s"):
            out = np.where(n > 1, states["m2"] / (n - 1), 0.0)
        else:
            raise InvalidArgument("Unknown aggregation type")
    if agg.startswith("std"):
        out = np.sqrt(out)
    out[empty] = 0.0 if agg == "sum" else np.nan
    return out


def twa(
    states: States,
    window_start: np.ndarray,
    window_end: np.ndarray,
    prev_ts: np.ndarray,
    prev_v: np.ndarray,
    next_ts: np.ndarray,
    next_v: np.ndarray,
) -> np.ndarray:
    """Time-weighted average per bucket with RedisTimeSeries semantics.

    All arguments are per-row arrays aligned with ``states``. The window is the continuous
    interval [window_start, window_end] in ms: bucket ∩ [from, to], i.e. ``max(bucket_start,
    from)`` to ``min(bucket_start + duration, to)``. ``prev_*`` is the series' nearest sample
    before the row's first sample and ``next_*`` the nearest after its last one (for an empty
    row: before / after the window); they may lie outside [from, to]. A NaN ``prev_v`` /
    ``next_v`` means "no such sample" (NaN samples are never neighbours, as they are ignored).

    The curve through the samples is extended to a window edge by interpolating with the
    neighbour when one exists; otherwise the window is cut at the first / last sample. The
    area is divided by the effective window length; when that is 0 (one sample, no
    neighbours) the result is the sample's value. An empty row (count 0) gets the mean of the
    line through prev and next over the window — its value at the window's midpoint — or NaN
    if either neighbour is missing.
    """
    count = states["count"]
    first_ts, last_ts = states["first_ts"], states["last_ts"]
    first, last = states["first"], states["last"]
    ws = np.asarray(window_start, np.float64)
    we = np.asarray(window_end, np.float64)
    p_ts, p_v = np.asarray(prev_ts, np.float64), np.asarray(prev_v, np.float64)
    n_ts, n_v = np.asarray(next_ts, np.float64), np.asarray(next_v, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        head = ~np.isnan(p_v) & (first_ts > ws)
        tail = ~np.isnan(n_v) & (last_ts < we)
        v_ws = first + (first - p_v) * (ws - first_ts) / (first_ts - p_ts)
        v_we = last + (n_v - last) * (we - last_ts) / (n_ts - last_ts)
        area = (
            states["area"]
            + np.where(head, (first_ts - ws) * (v_ws + first) * 0.5, 0.0)
            + np.where(tail, (we - last_ts) * (last + v_we) * 0.5, 0.0)
        )
        length = np.where(tail, we, last_ts) - np.where(head, ws, first_ts)
        out = np.where(length > 0, area / length, states["sum"] / count)
        mid = (ws + we) * 0.5
        gap = p_v + (n_v - p_v) * (mid - p_ts) / (n_ts - p_ts)
    return np.where(count > 0, out, gap)


def quantile_samples(values: np.ndarray, starts: np.ndarray, q: float) -> np.ndarray:
    """Exact per-group quantile ``q`` in [0, 1] of raw values, interpolated linearly.

    Matches ``np.quantile(group, q)`` (numpy's default "linear" method, PostgreSQL's
    percentile_cont). ``values`` are grouped by ``starts`` (as for ``aggregate_samples``) in
    any order within a group; no NaN.

    Raises:
        InvalidArgument: q outside [0, 1].
    """
    if not 0.0 <= q <= 1.0:
        raise InvalidArgument("quantile must be between 0 and 1")
    values = np.asarray(values, np.float64)
    starts = np.asarray(starts, np.intp)
    if len(starts) == 0:
        return np.empty(0, np.float64)
    n = len(values)
    sizes = _sizes(starts, n)
    # Sort within groups with one integer sort: a value's global rank keeps its order, and
    # group * n + rank keeps groups apart (fits int64 up to ~3e9 samples).
    order = np.argsort(values)
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n, dtype=np.int64)
    key = np.repeat(np.arange(len(starts), dtype=np.int64) * n, sizes) + rank
    ranked = values[order]
    pos = q * (sizes - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, sizes - 1)
    t = pos - lo
    sorted_key = np.sort(key)
    a = ranked[sorted_key[starts + lo] % n]
    b = ranked[sorted_key[starts + hi] % n]
    # numpy's lerp: from the nearer end, so t = 0 or 1 returns a sample exactly.
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)
