"""Read path front: what a series shows (raw or tier), range, multi-range, latest, info.

A raw series shows its samples newer than its retention cutoff. A rule destination shows one
value per closed bucket of its stream (the aggregator applied to the bucket's state), plus the
open bucket with ``latest``. Aggregating a destination over buckets that are whole multiples
of its own merges the states, so the answer is exact (a true mean, not a mean of means).
Percentiles of a destination whose stream keeps sketches (one a percentile rule reads) merge
the buckets' DDSketches: within ``sketch.RELATIVE_ACCURACY`` of the sample of rank
floor(q·(n−1)); raw percentiles are exact (linear interpolation, numpy's default).

twa interpolates towards the nearest samples outside the query window (RedisTimeSeries):
they are found with a few widening reads per batch of series (``_before`` / ``_after``).

Callers hold the engine lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..model import percentile_of
from . import query
from . import sketch as sk
from . import states as st
from .query import Aggregation, Edges, Series
from .series import EMPTY_TS
from .table import Rows, concat

if TYPE_CHECKING:
    from .db import Engine, Rule
    from .rollup import Streams

ALL = (0, 2**62)
_FAR = 2**62
_NO_TS = np.iinfo(np.int64).min  # no lower bound
# First window searched for a neighbour outside a query window; each miss widens it 16-fold,
# so even a neighbour years away costs a dozen reads (of all series still missing one).
_NEIGHBOUR_WINDOW_MS = 60_000
_WIDEN = 16

ReadRows = Callable[[np.ndarray, int, int], Rows]


@dataclass(frozen=True, slots=True)
class RangeOptions:
    """Options of TS.RANGE-like queries; None/False means "not given"."""

    aggregation: Aggregation | None = None
    filter_ts: np.ndarray | None = None
    min_value: float | None = None
    max_value: float | None = None
    count: int | None = None
    reverse: bool = False
    latest: bool = False


def _plain(opts: RangeOptions) -> bool:
    """No option that changes a raw series' samples (LATEST only concerns tiers)."""
    return (opts.aggregation is None and opts.filter_ts is None and opts.min_value is None
            and opts.count is None and not opts.reverse)


def _states_rows(engine: Engine, rule: Rule, min_ts: int, max_ts: int, latest: bool) -> Rows:
    """Visible bucket states of one destination, oldest first (open buckets with
    ``latest``), as rows of its stream (sid = stream id).

    A bucket aligned to start before 0 holds samples from 0: a window from 0 includes it.
    """
    rows = tier_rows(engine, np.array([rule.dest]), np.array([min_ts]), np.array([max_ts]),
                     latest=latest)
    return Rows(np.full(len(rows), rule.stream, np.int32), rows.ts, rows.columns)


def tier_rows(engine: Engine, dests: np.ndarray, lo: np.ndarray, hi: np.ndarray,
              columns: tuple[str, ...] = st.STATE_COLUMNS, latest: bool = True) -> Rows:
    """Bucket states of tiers in their windows, as rows of the destinations (sid =
    destination), sorted by (destination, bucket): the closed buckets their retention still
    shows, then its open buckets (``open_buckets``: the chain's included).

    Args:
        dests: sorted rule destinations, one per stream; ``lo``/``hi`` their windows.
        columns: the state columns to load (``states.needs``); ``count`` always.
        latest: add the open buckets (without: closed buckets only, as TS.RANGE).
    """
    dests = np.asarray(dests, np.int64)
    columns = tuple(c for c in st.STATE_COLUMNS if c in columns or c == "count")
    chunks = []
    shard_of = engine.registry.shard[dests]
    for number in np.unique(shard_of).tolist():
        mine = np.flatnonzero(shard_of == number)
        shard = engine.shards[number]
        streams = shard.streams
        stream = np.array([engine.rules[d].stream for d in dests[mine].tolist()], np.int64)
        order = np.argsort(stream)
        by_stream, at_of = stream[order], mine[order]
        w_lo, w_hi = int(lo[mine].min()), int(hi[mine].max())
        got = shard.rollup.read(by_stream.astype(np.int32), w_lo if w_lo > 0 else -2**62,
                                w_hi, columns)
        # Per stream (rows come sorted by stream, then bucket) the buckets it shows: closed,
        # within retention and within the destination's own window; then one mask.
        seg_len = np.diff(np.searchsorted(got.sids, by_stream, "right"), prepend=0)
        opened = streams.open_bucket[by_stream]
        ret = engine.registry.retention_ms[dests[at_of]]
        w_lo = np.where(lo[at_of] > 0, lo[at_of], _NO_TS)
        w_lo = np.where(ret > 0, np.maximum(w_lo, opened - streams.bucket_ms[by_stream] - ret),
                        w_lo)
        w_hi = np.where(opened == EMPTY_TS, EMPTY_TS, np.minimum(hi[at_of], opened - 1))
        keep = (got.ts >= np.repeat(w_lo, seg_len)) & (got.ts <= np.repeat(w_hi, seg_len))
        keep &= got.columns["count"] > 0
        owner = np.repeat(dests[at_of].astype(np.int32), seg_len)
        if keep.all():
            chunks.append(Rows(owner, got.ts, {c: got.columns[c] for c in columns}))
        else:
            idx = np.flatnonzero(keep)
            chunks.append(Rows(owner[idx], got.ts[idx], {c: got.columns[c][idx] for c in columns}))
        if not latest:
            continue
        o, bucket, states = open_buckets(streams, stream, columns)
        at = mine[o]
        inside = np.flatnonzero(((bucket >= lo[at]) | (lo[at] <= 0)) & (bucket <= hi[at]))
        chunks.append(Rows(dests[at[inside]].astype(np.int32), bucket[inside],
                           {k: v[inside] for k, v in states.items()}))
    rows = concat(chunks, columns)
    if len(chunks) > 2 or latest or np.any(np.diff(rows.sids) < 0):
        # Per destination its closed rows come in time order, then its chain's open
        # buckets (newer still): a stable sort by destination alone orders (dest, bucket).
        rows = rows.take(np.argsort(rows.sids, kind="stable"))
    return rows


def open_buckets(streams: Streams, ids: np.ndarray,
                 columns: tuple[str, ...] = st.STATE_COLUMNS
                 ) -> tuple[np.ndarray, np.ndarray, st.States]:
    """Buckets of streams ``ids`` not closed yet: (index into ``ids``, bucket, states).

    A stream built on a finer stream has not received its input's open bucket yet (the 1 h
    tier lacks the current minute): that bucket is merged in here, recursively down the
    chain, so the newest buckets of every tier hold all samples, as the raw data does. Rows
    are sorted by (index, bucket); an index may have two (its own open bucket, and the next
    one its input has started). ``columns``: the state columns wanted (``count`` always).
    """
    ids = np.asarray(ids, np.int64)
    columns = tuple(c for c in st.STATE_COLUMNS if c in columns or c == "count")
    count = streams.open["count"][ids]
    own = np.flatnonzero((streams.open_bucket[ids] != EMPTY_TS) & (count > 0))
    idx, bucket = own, streams.open_bucket[ids][own]
    states = {k: streams.open[k][ids[own]] for k in columns}
    chained = np.flatnonzero(streams.from_stream[ids])
    if len(chained) == 0:
        return idx, bucket, states
    sub, sub_bucket, sub_states = open_buckets(streams, streams.source[ids[chained]], columns)
    parent = chained[sub]
    dur, align = streams.bucket_ms[ids[parent]], streams.align_ms[ids[parent]]
    idx = np.concatenate([idx, parent])
    bucket = np.concatenate([bucket, (sub_bucket - align) // dur * dur + align])
    states = {k: np.concatenate([states[k], sub_states[k]]) for k in columns}
    if len(idx) == 0:  # no open bucket anywhere in the chain (rules created, no sample yet)
        return idx, bucket, states
    # Stable: within a bucket a stream's own state (older samples) stays before its input's.
    order = np.lexsort((bucket, idx))
    idx, bucket = idx[order], bucket[order]
    starts = st.group_starts((idx.astype(np.int64) << 32) ^ (bucket - bucket.min()))
    merged = st.reduce_states({k: v[order] for k, v in states.items()}, starts)
    return idx[starts], bucket[starts], merged


def _open_after(streams: Streams, stream: int, after: int) -> Rows:
    """The oldest bucket of ``stream`` later than ``after`` that is not closed yet, with the
    open buckets of its chain merged in (``open_buckets``), as one state row (or none)."""
    _, bucket, states = open_buckets(streams, np.array([stream]))
    later = np.flatnonzero(bucket > after)[:1]
    return Rows(np.full(len(later), stream, np.int32), bucket[later],
                {k: v[later] for k, v in states.items()})


def rule_samples(engine: Engine, rule: Rule, min_ts: int, max_ts: int, latest: bool
                 ) -> tuple[np.ndarray, np.ndarray]:
    """A destination's samples: (bucket start clamped to 0, aggregator of the bucket)."""
    rows = _states_rows(engine, rule, min_ts, max_ts, latest)
    if len(rows) == 0:
        return rows.ts, np.empty(0)
    states = dict(rows.columns)
    q = percentile_of(rule.aggregator)
    if rule.aggregator == "twa":
        agg = Aggregation("twa", rule.bucket_ms, rule.align_ms)
        edges = _tier_edges(engine, rule, rows)
        values = query._finalize(states, rows.sids, rows.ts, agg, (-_FAR, _FAR), edges)
    elif q is not None:
        values = _sketch_quantiles(engine, rule, rows, np.arange(len(rows)), len(rows), q)
    else:
        values = st.finalize(states, rule.aggregator)
    return np.maximum(rows.ts, 0), values


def _sketch_quantiles(engine: Engine, rule: Rule, rows: Rows, group: np.ndarray,
                      n_groups: int, q: float) -> np.ndarray:
    """Quantile ``q`` of groups of a destination's state rows, from their sketches.

    ``group`` (non-decreasing) numbers the group of each row; the open bucket, if among the
    rows, gets its sketch computed from the stream's input.
    """
    streams = engine._shard(rule.source).streams
    ob = streams.open_bucket[rule.stream]
    closed = np.flatnonzero(rows.ts < ob)
    parts = []
    if len(closed):
        got = streams.read_bins(np.array([rule.stream]), int(rows.ts[closed[0]]),
                                int(rows.ts[closed[-1]]))
        bucket = sk.bucket_of_key(got.ts)
        at = np.minimum(np.searchsorted(rows.ts, bucket), len(rows) - 1)
        ok = rows.ts[at] == bucket  # buckets hidden by retention are not among the rows
        parts.append(sk.Bins(group[at[ok]], sk.slot_of_key(got.ts[ok]),
                             got.columns["count"][ok]))
    if len(closed) < len(rows):  # the open bucket (LATEST)
        _, bins = streams.open_bins(np.array([rule.stream]))
        parts.append(sk.Bins(np.full(len(bins), group[-1], np.int64), bins.slot, bins.count))
    if not parts:
        return np.full(n_groups, np.nan)
    g = np.concatenate([p.group for p in parts])
    merged = sk.count_bins(g, np.concatenate([p.slot for p in parts]),
                           np.concatenate([p.count for p in parts]))
    starts = st.group_starts(group)
    lo = np.minimum.reduceat(rows.columns["min"], starts)
    hi = np.maximum.reduceat(rows.columns["max"], starts)
    return sk.quantiles(merged, n_groups, q, lo, hi)


def raw_rows(engine: Engine, sids: np.ndarray, min_ts: int, max_ts: int) -> Rows:
    """Visible raw samples of sorted raw sids (retention applied per series)."""
    reg = engine.registry
    if len(sids) == 1:  # one series: its retention cutoff narrows the read instead
        sid = int(sids[0])
        return engine._shard(sid).read_raw(np.asarray(sids, np.int32),
                                           max(min_ts, engine.cutoff(sid)), max_ts)
    chunks = []
    for shard in engine.shards:
        mine = sids if len(engine.shards) == 1 else sids[reg.shard[sids] == shard.number]
        if len(mine):
            chunks.append(shard.read_raw(mine, min_ts, max_ts))
    rows = concat(chunks, ("value",))
    if len(chunks) > 1:  # shards hold disjoint sids, each chunk sorted by (sid, ts)
        rows = rows.take(np.argsort(rows.sids, kind="stable"))
    if len(rows) and (reg.retention_ms[sids] > 0).any():
        ret, mx = reg.retention_ms[rows.sids], reg.max_ts[rows.sids]
        visible = (ret <= 0) | (rows.ts >= mx - ret)
        if not visible.all():
            rows = rows.take(np.flatnonzero(visible))
    return rows


def _filter(rows: Rows, opts: RangeOptions) -> Rows:
    mask = None
    if opts.filter_ts is not None:
        mask = np.isin(rows.ts, opts.filter_ts)
    if opts.min_value is not None:
        v = rows.columns["value"]
        m = (v >= opts.min_value) & (v <= opts.max_value)
        mask = m if mask is None else mask & m
    return rows if mask is None else rows.take(np.flatnonzero(mask))


def multi_range(engine: Engine, sids: np.ndarray, min_ts: int, max_ts: int,
                opts: RangeOptions) -> list[Series]:
    """TS.RANGE over many series; raw series are read and aggregated in one vectorised pass."""
    if len(sids) == 1 and _plain(opts) and int(sids[0]) not in engine.rules:
        rows = raw_rows(engine, np.asarray(sids, np.int32), min_ts, max_ts)  # the common read
        return [Series(int(sids[0]), rows.ts, rows.columns["value"])]
    sids = np.unique(np.asarray(sids, np.int32))
    is_dest = np.isin(sids, np.fromiter(engine.rules, np.int64, len(engine.rules)))
    out: dict[int, Series] = {}
    raw = sids[~is_dest]
    if len(raw):
        rows = _filter(raw_rows(engine, raw, min_ts, max_ts), opts)
        edges = None
        if _wants_edges(opts):
            edges = _raw_edges(engine, raw, min_ts, max_ts)
        out.update((s.sid, s) for s in _answer(rows, raw, opts, (min_ts, max_ts), edges))
    dests = sids[is_dest]
    if len(dests):
        out.update(_dests_range(engine, dests, min_ts, max_ts, opts))
    return [_finish(out[s], opts) for s in sids.tolist()]


def _dests_range(engine: Engine, dests: np.ndarray, min_ts: int, max_ts: int,
                 opts: RangeOptions) -> dict[int, Series]:
    """Rule destinations: those answered from plain states (no filter, no twa, no
    percentile) in one vectorised read per aggregator, the others one by one."""
    agg = opts.aggregation
    groups: dict[tuple[str, int, int], list[int]] = {}
    out: dict[int, Series] = {}
    plain = opts.filter_ts is None and opts.min_value is None
    for sid in dests.tolist():
        rule = engine.rules[sid]
        name = rule.aggregator if agg is None else agg.aggregator
        merges = agg is None or (agg.bucket_ms % rule.bucket_ms == 0
                                 and (agg.align_ms - rule.align_ms) % rule.bucket_ms == 0)
        if plain and merges and name in st.AGGREGATORS:
            groups.setdefault((name, rule.bucket_ms, rule.align_ms), []).append(sid)
        else:
            out[sid] = _dest_range(engine, rule, min_ts, max_ts, opts)
    for (name, bucket_ms, align_ms), group in groups.items():
        s = np.array(group, np.int64)  # ascending, as ``dests`` is
        lo, hi = np.full(len(s), min_ts), np.full(len(s), max_ts)
        rows = tier_rows(engine, s, lo, hi, st.needs(name), latest=opts.latest)
        # Without an aggregation, the destination's own buckets (the open buckets of a
        # chain merge into the newest); with one, buckets that are multiples of them.
        use = agg if agg is not None else Aggregation(name, bucket_ms, align_ms)
        sid, b, v = query.aggregate_states(rows, use, (min_ts, max_ts))
        found = query.split(sid, np.maximum(b, 0) if agg is None else b, v, s.astype(np.int32))
        out.update((f.sid, f) for f in found)
    return out


def _wants_edges(opts: RangeOptions) -> bool:
    # Filters pick samples before aggregating: neighbours outside the window are not defined
    # for a filtered series, so the window is then cut at its first and last samples.
    agg = opts.aggregation
    return (agg is not None and agg.aggregator == "twa" and opts.filter_ts is None
            and opts.min_value is None)


def _answer(rows: Rows, sids: np.ndarray, opts: RangeOptions, window: tuple[int, int],
            edges: Edges | None = None) -> list[Series]:
    agg = opts.aggregation
    if agg is None:
        return query.split(rows.sids, rows.ts, rows.columns["value"], sids)
    s, b, v = query.aggregate_samples(rows, agg, window, edges)
    return query.split(s, b, v, sids)


def _dest_range(engine: Engine, rule: Rule, min_ts: int, max_ts: int,
                opts: RangeOptions) -> Series:
    agg = opts.aggregation
    q = percentile_of(agg.aggregator) if agg is not None else None
    streams = engine._shard(rule.source).streams
    merge = (agg is not None and opts.filter_ts is None and opts.min_value is None
             and agg.bucket_ms % rule.bucket_ms == 0
             and (agg.align_ms - rule.align_ms) % rule.bucket_ms == 0
             and (q is None or streams.sketched(rule.stream)))
    if merge:
        assert agg is not None
        rows = _states_rows(engine, rule, min_ts, max_ts, opts.latest)
        if q is not None:
            b = query.bucket_of(rows.ts, agg)
            starts = st.group_starts(b)
            group = np.zeros(len(b), np.int64)
            group[starts[1:]] = 1
            group = np.cumsum(group)
            return Series(rule.dest, b[starts],
                          _sketch_quantiles(engine, rule, rows, group, len(starts), q)
                          if len(rows) else np.empty(0))
        edges = _tier_edges(engine, rule, rows, min_ts, max_ts) \
            if agg.aggregator == "twa" else None
        s, b, v = query.aggregate_states(rows, agg, (min_ts, max_ts), edges)
        return Series(rule.dest, b, v)
    # Otherwise the destination's own samples (bucket values) are aggregated like raw ones.
    ts, values = rule_samples(engine, rule, min_ts, max_ts, opts.latest)
    rows = _filter(Rows(np.full(len(ts), rule.dest, np.int32), ts, {"value": values}), opts)
    return _answer(rows, np.array([rule.dest], np.int32), opts, (min_ts, max_ts))[0]


# -- neighbours outside a window (twa) ----------------------------------------------------------
def _raw_edges(engine: Engine, sids: np.ndarray, min_ts: int, max_ts: int) -> Edges:
    """The visible samples of raw sids right before ``min_ts`` and right after ``max_ts``."""
    def read(s: np.ndarray, lo: int, hi: int) -> Rows:
        return raw_rows(engine, s, lo, hi)

    prev = _before(read, sids, min_ts, 0, ("value",))
    nxt = _after(read, sids, max_ts, engine.registry.max_ts[sids], ("value",))
    return _edges(sids, prev.sids, prev.ts, prev.columns["value"],
                  nxt.sids, nxt.ts, nxt.columns["value"])


def _tier_edges(engine: Engine, rule: Rule, rows: Rows, min_ts: int | None = None,
                max_ts: int | None = None) -> Edges:
    """Samples of a destination's stream around state ``rows`` (or around a window): the
    last sample of the newest bucket before, the first of the oldest bucket after (closed,
    else the open bucket)."""
    shard = engine._shard(rule.source)
    streams = shard.streams
    stream = np.array([rule.stream], np.int32)
    if min_ts is None or max_ts is None:
        lo, hi = (int(rows.ts[0]), int(rows.ts[-1])) if len(rows) else (0, -1)
    else:  # a window from 0 includes a bucket aligned to start before 0
        lo, hi = (min_ts if min_ts > 0 else -_FAR), max_ts
    ob = streams.open_bucket[rule.stream]
    names = st.STATE_COLUMNS
    prev = _before(shard.read_closed_states, stream, lo, -rule.bucket_ms, names)
    closed_to = np.array([ob - 1 if ob != EMPTY_TS else EMPTY_TS], np.int64)
    nxt = _after(shard.read_closed_states, stream, hi, closed_to, names)
    if len(nxt) == 0:  # the next sample is in a bucket not closed yet, here or down the chain
        nxt = _open_after(streams, rule.stream, hi)
    # State rows carry the stream id as their sid: so do the edges.
    return _edges(stream, prev.sids, prev.columns["last_ts"], prev.columns["last"],
                  nxt.sids, nxt.columns["first_ts"], nxt.columns["first"])


def _edges(sids: np.ndarray, p_sids: np.ndarray, p_ts: np.ndarray, p_v: np.ndarray,
           n_sids: np.ndarray, n_ts: np.ndarray, n_v: np.ndarray) -> Edges:
    sids = np.asarray(sids, np.int64)
    n = len(sids)
    out = Edges(sids, np.zeros(n, np.int64), np.full(n, np.nan), np.zeros(n, np.int64),
                np.full(n, np.nan))
    i = np.searchsorted(sids, p_sids)
    out.prev_ts[i], out.prev_v[i] = p_ts, p_v
    i = np.searchsorted(sids, n_sids)
    out.next_ts[i], out.next_v[i] = n_ts, n_v
    return out


def _before(read: ReadRows, sids: np.ndarray, ts: int, lowest: int,
            names: tuple[str, ...]) -> Rows:
    """Per sorted sid, its newest row with lowest <= row ts < ``ts`` (sids without one are
    left out), found with widening windows."""
    found: list[Rows] = []
    pending = np.asarray(sids, np.int32)
    width = _NEIGHBOUR_WINDOW_MS
    while len(pending) and ts - 1 >= lowest:
        lo = max(ts - width, lowest)
        rows = read(pending, lo, ts - 1)
        if len(rows):
            last = np.flatnonzero(np.append(rows.sids[1:] != rows.sids[:-1], True))
            found.append(rows.take(last))
            pending = np.setdiff1d(pending, rows.sids[last]).astype(np.int32)
        if lo == lowest:
            break
        width *= _WIDEN
    return _sorted_rows(found, names)


def _after(read: ReadRows, sids: np.ndarray, ts: int, highest: np.ndarray,
           names: tuple[str, ...]) -> Rows:
    """Per sorted sid, its oldest row with ``ts`` < row ts <= ``highest`` (per sid)."""
    found: list[Rows] = []
    keep = np.asarray(highest) > ts
    pending, top = np.asarray(sids, np.int32)[keep], np.asarray(highest)[keep]
    width = _NEIGHBOUR_WINDOW_MS
    while len(pending):
        hi = min(ts + width, int(top.max()))
        rows = read(pending, ts + 1, hi)
        if len(rows):
            first = np.flatnonzero(np.concatenate(([True], rows.sids[1:] != rows.sids[:-1])))
            found.append(rows.take(first))
            left = ~np.isin(pending, rows.sids[first])
            pending, top = pending[left], top[left]
        if len(pending) == 0 or hi >= int(top.max()):
            break
        width *= _WIDEN
    return _sorted_rows(found, names)


def _sorted_rows(found: list[Rows], names: tuple[str, ...]) -> Rows:
    rows = concat(found, names)
    return rows.take(np.argsort(rows.sids, kind="stable")) if len(found) > 1 else rows


def _finish(series: Series, opts: RangeOptions) -> Series:
    agg = opts.aggregation
    if agg is not None:
        if agg.empty:
            series = query.fill_empty(series, agg)
        series = query.stamp(series, agg)
    ts, values = series.ts, series.values
    if opts.reverse:
        ts, values = ts[::-1], values[::-1]
    if opts.count is not None:
        ts, values = ts[: opts.count], values[: opts.count]
    return Series(series.sid, ts, values)


def last_sample(engine: Engine, sid: int, latest: bool = False) -> tuple[int, float] | None:
    """The newest visible sample of a series (TS.GET), None if it has none."""
    rule = engine.rules.get(sid)
    if rule is None:
        mx = int(engine.registry.max_ts[sid])
        return None if mx == EMPTY_TS else (mx, float(engine.registry.last_value[sid]))
    ts, values = rule_samples(engine, rule, *ALL, latest=latest)
    return None if len(ts) == 0 else (int(ts[-1]), float(values[-1]))


def info(engine: Engine, sid: int) -> dict:
    """TS.INFO fields (RedisTimeSeries names) plus Sensorium's storage figures."""
    reg = engine.registry
    meta = reg.get(sid)
    rule = engine.rules.get(sid)
    if rule is None:
        rows = raw_rows(engine, np.array([sid], np.int32), *ALL)
        ts = rows.ts
    else:
        ts, _ = rule_samples(engine, rule, *ALL, latest=False)
    shard = engine._shard(sid)
    # A tier is answered from its stream of bucket states, which the rules of one source and
    # bucket (avg, min, max …) share: each of them reports the whole stream.
    memory, disk = shard.raw.footprint(sid) if rule is None \
        else shard.rollup.footprint(rule.stream)
    policy = int(reg.policy[sid])
    from ..model import DuplicatePolicy
    return {
        "total_samples": len(ts),
        "memory_usage": memory,
        "first_timestamp": int(ts[0]) if len(ts) else 0,
        "last_timestamp": int(ts[-1]) if len(ts) else 0,
        "retention_msecs": int(reg.retention_ms[sid]),
        "chunk_count": max(1, len(shard.raw.blocks) + 1),
        "chunk_size": meta.chunk_size,
        "chunk_type": "compressed",
        "duplicate_policy": None if policy < 0 else DuplicatePolicy(policy).name.lower(),
        "labels": dict(meta.labels),
        "source_key": None if meta.source is None else reg.key(meta.source),
        "rules": [[reg.key(d), engine.rules[d].bucket_ms, engine.rules[d].aggregator.upper(),
                   engine.rules[d].align_ms] for d in meta.rules],
        "ignore_max_time_diff": meta.ignore_max_time_diff,
        "ignore_max_val_diff": meta.ignore_max_val_diff,
        "disk_bytes": disk,
    }
