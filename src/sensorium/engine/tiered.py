"""Aggregation over a series' raw data and its tiers, stitched (read path; runs planner plans).

For each raw series the *ladder* is its raw samples plus every tier built from it (rule
destinations, chained ones included, one per stream). ``planner.plan`` cuts the window into
segments per series; segments are then read per kind in one vectorised pass each: every raw
segment with one table read, every tier segment of one bucket size with one state read, so
100 series cost a handful of reads, not 100.

A tier's newest buckets are exact too: a chained tier (1 h built from 1 min) has not yet
received the finer tier's open bucket, so the open buckets of its whole chain are added (each
holds samples the next coarser one has not seen).

Callers hold the engine lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..model import percentile_of
from . import planner, query
from . import states as st
from .query import Aggregation
from .read import raw_rows, tier_rows
from .series import EMPTY_TS
from .table import Rows

if TYPE_CHECKING:
    from .db import Engine


@dataclass(frozen=True, slots=True)
class Rung:
    """One resolution of a series: ``sid`` is the raw series or a tier (rule destination)."""

    sid: int
    source: planner.Source


@dataclass(frozen=True, slots=True)
class Part:
    """Which series answered [lo, hi] of a result, and at which bucket size."""

    sid: int
    lo: int
    hi: int
    bucket_ms: int
    exact: bool


@dataclass(frozen=True, slots=True)
class TieredSeries:
    sid: int
    ts: np.ndarray
    values: np.ndarray
    parts: list[Part]


def ladder(engine: Engine, sid: int) -> list[Rung]:
    """The raw series ``sid`` and its tiers, raw first; one tier per stream (the longest
    kept wins: destinations of one stream differ only in aggregator and retention)."""
    reg = engine.registry
    ret = int(reg.retention_ms[sid])
    mx = int(reg.max_ts[sid])
    rungs = [Rung(sid, planner.Source(0, 0, mx - ret if ret > 0 and mx != EMPTY_TS
                                      else planner.NEVER))]
    by_stream: dict[int, Rung] = {}
    pending = list(reg.get(sid).rules)
    while pending:
        dest = pending.pop()
        rule = engine.rules[dest]
        pending.extend(reg.get(dest).rules)
        start = _tier_start(engine, dest)
        held = by_stream.get(rule.stream)
        if held is None or start < held.source.start_ms:
            by_stream[rule.stream] = Rung(dest, planner.Source(rule.bucket_ms, rule.align_ms,
                                                                start))
    rungs.extend(sorted(by_stream.values(), key=lambda r: r.source.bucket_ms))
    return rungs


def _tier_start(engine: Engine, dest: int) -> int:
    """Oldest bucket a tier still shows: retention counts back from its newest closed bucket
    (see ``read._states_rows``)."""
    ret = int(engine.registry.retention_ms[dest])
    if ret <= 0:
        return planner.NEVER
    rule = engine.rules[dest]
    opened = int(engine._shard(rule.source).streams.open_bucket[rule.stream])
    return planner.NEVER if opened == EMPTY_TS else opened - rule.bucket_ms - ret


def aggregate(engine: Engine, sids: np.ndarray, lo: int, hi: int, agg: Aggregation,
              stitch: bool = True) -> list[TieredSeries]:
    """``agg`` buckets of raw series over [lo, hi] (aligned to whole buckets), each bucket
    read from the coarsest source that answers it exactly; with ``stitch``, coarser tiers
    answer at their own bucket size where no exact source holds data any more."""
    sids = np.asarray(sids, np.int64)
    from_states = percentile_of(agg.aggregator) is None and agg.aggregator != "twa"
    # Tasks: (kind, exact) → parallel lists of (series index, rung sid, lo, hi).
    tasks: dict[tuple[int, int, bool], list[tuple[int, int, int, int]]] = {}
    parts: list[list[Part]] = []
    plans: dict[tuple[planner.Source, ...], list[planner.Segment]] = {}  # alike series share
    for n, sid in enumerate(sids.tolist()):
        rungs = ladder(engine, sid)
        shape = tuple(r.source for r in rungs)
        plan = plans.get(shape)
        if plan is None:
            plan = plans[shape] = planner.plan(list(shape), lo, hi, agg.bucket_ms,
                                               agg.align_ms, from_states=from_states,
                                               stitch=stitch)
        mine = []
        for seg in reversed(plan):  # oldest first
            rung = rungs[seg.source]
            src = rung.source
            kind = (src.bucket_ms, src.align_ms, seg.exact)
            tasks.setdefault(kind, []).append((n, rung.sid, seg.lo, seg.hi))
            mine.append(Part(rung.sid, seg.lo, seg.hi,
                             agg.bucket_ms if seg.exact else src.bucket_ms, seg.exact))
        parts.append(mine)
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for (bucket_ms, align_ms, exact), todo in tasks.items():
        n_idx, rung_sid, t_lo, t_hi = (np.array(c, np.int64) for c in zip(*todo, strict=True))
        order = np.argsort(rung_sid, kind="stable")
        n_idx, rung_sid, t_lo, t_hi = n_idx[order], rung_sid[order], t_lo[order], t_hi[order]
        use = agg if exact else Aggregation(agg.aggregator, bucket_ms, align_ms)
        if bucket_ms == 0:
            rows = raw_rows(engine, rung_sid.astype(np.int32), int(t_lo.min()), int(t_hi.max()))
            if t_lo.min() != t_lo.max() or t_hi.min() != t_hi.max():  # windows differ
                rows = _within(rows, rung_sid, t_lo, t_hi)
            s, b, v = query.aggregate_samples(rows, use, (int(t_lo.min()), int(t_hi.max())))
        else:
            rows = tier_rows(engine, rung_sid, t_lo, t_hi, st.needs(agg.aggregator))
            s, b, v = query.aggregate_states(rows, use, (int(t_lo.min()), int(t_hi.max())))
        found.append((n_idx[np.searchsorted(rung_sid, s)], b, v))
    n_all = np.concatenate([f[0] for f in found]) if found else np.empty(0, np.int64)
    b_all = np.concatenate([f[1] for f in found]) if found else np.empty(0, np.int64)
    v_all = np.concatenate([f[2] for f in found]) if found else np.empty(0)
    order = np.lexsort((b_all, n_all))
    n_all, b_all, v_all = n_all[order], b_all[order], v_all[order]
    cuts = np.searchsorted(n_all, np.arange(len(sids) + 1))
    out = []
    for i, sid in enumerate(sids.tolist()):
        ts = b_all[cuts[i]:cuts[i + 1]]
        out.append(TieredSeries(int(sid), ts, v_all[cuts[i]:cuts[i + 1]],
                                _answered(parts[i], ts)))
    return out


def _answered(parts: list[Part], ts: np.ndarray) -> list[Part]:
    """The parts that gave at least one bucket (a planned segment before a series' first
    sample gives none: listing it would only say where nothing is)."""
    # A coarse bucket may start before its part (it sticks out of the window's start).
    return [p for p in parts if np.searchsorted(ts, p.hi, "right")
            > np.searchsorted(ts, p.lo - p.bucket_ms + 1, "left")]


def _within(rows: Rows, sids: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> Rows:
    """Rows inside their own series' window (``sids`` sorted, one window each)."""
    at = np.searchsorted(sids, rows.sids)
    keep = (rows.ts >= lo[at]) & (rows.ts <= hi[at])
    return rows if keep.all() else rows.take(np.flatnonzero(keep))
