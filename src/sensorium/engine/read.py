"""Read path front: what a series shows (raw or tier), range, multi-range, latest, info.

A raw series shows its samples newer than its retention cutoff. A rule destination shows one
value per closed bucket of its stream (the aggregator applied to the bucket's state), plus the
open bucket with ``latest``. Aggregating a destination over buckets that are whole multiples
of its own merges the states, so the answer is exact (a true mean, not a mean of means).

Callers hold the engine lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import query
from . import states as st
from .query import Aggregation, Series
from .series import EMPTY_TS
from .table import Rows

if TYPE_CHECKING:
    from .db import Engine, Rule

ALL = (0, 2**62)


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


def _states_rows(engine: Engine, rule: Rule, min_ts: int, max_ts: int, latest: bool) -> Rows:
    """Visible bucket states of a destination, oldest first (open bucket with ``latest``)."""
    shard = engine._shard(rule.source)
    stream = np.array([rule.stream], np.int32)
    rows = shard.read_closed_states(stream, min_ts, max_ts)
    ret = int(engine.registry.retention_ms[rule.dest])
    if ret > 0 and len(rows):
        rows = rows.take(np.flatnonzero(rows.ts >= rows.ts[-1] - ret))
    ob = int(shard.streams.open_bucket[rule.stream])
    if latest and ob != EMPTY_TS and min_ts <= ob <= max_ts and \
            shard.streams.open["count"][rule.stream] > 0:
        open_row = {k: v[rule.stream : rule.stream + 1] for k, v in shard.streams.open.items()}
        rows = Rows(np.concatenate((rows.sids, stream)), np.append(rows.ts, ob),
                    {k: np.concatenate((rows.columns[k], open_row[k])) for k in rows.columns})
    return rows


def rule_samples(engine: Engine, rule: Rule, min_ts: int, max_ts: int, latest: bool
                 ) -> tuple[np.ndarray, np.ndarray]:
    rows = _states_rows(engine, rule, min_ts, max_ts, latest)
    if len(rows) == 0:
        return rows.ts, np.empty(0)
    states = dict(rows.columns)
    if rule.aggregator == "twa":
        agg = Aggregation("twa", rule.bucket_ms, rule.align_ms)
        values = query._finalize(states, rows.sids, rows.ts, agg, ALL)
    else:
        values = st.finalize(states, rule.aggregator)
    return rows.ts, values


def raw_rows(engine: Engine, sids: np.ndarray, min_ts: int, max_ts: int) -> Rows:
    """Visible raw samples of sorted raw sids (retention applied per series)."""
    reg = engine.registry
    chunks = []
    for shard in engine.shards:
        mine = sids if len(engine.shards) == 1 else sids[reg.shard[sids] == shard.number]
        if len(mine):
            chunks.append(shard.read_raw(mine, min_ts, max_ts))
    from .table import concat
    rows = concat(chunks, ("value",))
    if len(rows):
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
    sids = np.unique(np.asarray(sids, np.int32))
    is_dest = np.isin(sids, np.fromiter(engine.rules, np.int64, len(engine.rules)))
    out: dict[int, Series] = {}
    raw = sids[~is_dest]
    if len(raw):
        rows = _filter(raw_rows(engine, raw, min_ts, max_ts), opts)
        out.update((s.sid, s) for s in _answer(rows, raw, opts, (min_ts, max_ts)))
    for sid in sids[is_dest].tolist():
        out[sid] = _dest_range(engine, engine.rules[sid], min_ts, max_ts, opts)
    return [_finish(out[s], opts) for s in sids.tolist()]


def _answer(rows: Rows, sids: np.ndarray, opts: RangeOptions, window: tuple[int, int]
            ) -> list[Series]:
    agg = opts.aggregation
    if agg is None:
        return query.split(rows.sids, rows.ts, rows.columns["value"], sids)
    s, b, v = query.aggregate_samples(rows, agg, window)
    return query.split(s, b, v, sids)


def _dest_range(engine: Engine, rule: Rule, min_ts: int, max_ts: int,
                opts: RangeOptions) -> Series:
    agg = opts.aggregation
    exact = (agg is not None and opts.filter_ts is None and opts.min_value is None
             and agg.bucket_ms % rule.bucket_ms == 0
             and (agg.align_ms - rule.align_ms) % rule.bucket_ms == 0
             and query.percentile_of(agg.aggregator) is None)
    if exact:
        assert agg is not None
        rows = _states_rows(engine, rule, min_ts, max_ts, opts.latest)
        s, b, v = query.aggregate_states(rows, agg, (min_ts, max_ts))
        return Series(rule.dest, b, v)
    ts, values = rule_samples(engine, rule, min_ts, max_ts, opts.latest)
    rows = _filter(Rows(np.full(len(ts), rule.dest, np.int32), ts, {"value": values}), opts)
    return _answer(rows, np.array([rule.dest], np.int32), opts, (min_ts, max_ts))[0]


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
    policy = int(reg.policy[sid])
    from ..model import DuplicatePolicy
    return {
        "total_samples": len(ts),
        "memory_usage": len(ts) * 20,
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
        "disk_bytes": sum(b.size_bytes for s in engine.shards for t in (s.raw, s.rollup)
                          for b in t.blocks),
    }
