"""Batch validation and duplicate-policy resolution (write path, step 1).

``resolve`` turns a columnar batch into (a) one outcome per input row and (b) the rows to
store, already resolved against existing samples by each row's duplicate policy, so that
storage, the log and replay only ever need "last write wins". Everything is vectorised: the
only data read from storage is the few existing samples that late rows may collide with.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..model import DuplicatePolicy
from .table import Rows


class Status(enum.IntEnum):
    """Outcome of one input row; messages are RedisTimeSeries' texts."""

    OK = 0
    NOT_FOUND = 1
    INVALID_TIMESTAMP = 2
    INVALID_VALUE = 3
    OUT_OF_RETENTION = 4
    DUPLICATE_BLOCKED = 5
    IS_DESTINATION = 6


MESSAGES = {
    Status.NOT_FOUND: "the key is not a TSDB key",
    Status.INVALID_TIMESTAMP: "invalid timestamp, must be a nonnegative integer",
    Status.INVALID_VALUE: "invalid value",
    Status.OUT_OF_RETENTION: "Timestamp is older than retention",
    Status.DUPLICATE_BLOCKED: (
        "Error at upsert, update is not supported when DUPLICATE_POLICY is set to BLOCK mode"
    ),
    Status.IS_DESTINATION: "the key is a downsampling destination and cannot be written",
}


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a batch does.

    Attributes:
        status: one Status per input row (input order).
        rows: rows to store, sorted by (sid, ts), one per key, values final.
        late: per stored row, True if its ts <= the series' max_ts before the batch
            (an out-of-order insert or an overwrite), which downsampling must reconcile.
    """

    status: np.ndarray
    rows: Rows
    late: np.ndarray


ReadExisting = Callable[[np.ndarray, int, int], Rows]


def resolve(
    sids: np.ndarray,
    ts: np.ndarray,
    values: np.ndarray,
    *,
    max_ts: np.ndarray,
    retention_ms: np.ndarray,
    policy: np.ndarray,
    writable: np.ndarray,
    default_policy: DuplicatePolicy,
    override: DuplicatePolicy | None,
    read_existing: ReadExisting,
) -> Resolved:
    """Validates and resolves one batch.

    Args:
        sids, ts, values: the batch (int32 with -1 for unknown keys, int64 ms, float64).
        max_ts, retention_ms, policy, writable: per-sid arrays of the registry.
        default_policy: the database default; ``override``: ON_DUPLICATE of this call.
        read_existing: reads stored rows of sorted sids in an inclusive time range.
    """
    n = len(ts)
    status = np.zeros(n, np.int8)
    known = sids >= 0
    status[~known] = Status.NOT_FOUND
    safe = np.where(known, sids, 0)
    status[known & ~writable[safe]] = Status.IS_DESTINATION
    status[(status == 0) & (ts < 0)] = Status.INVALID_TIMESTAMP
    # NaN is reserved as the deletion marker in storage, so it cannot be a value.
    status[(status == 0) & ~np.isfinite(values)] = Status.INVALID_VALUE

    if status.any():
        ok = np.flatnonzero(status == 0)
        s, t, v = sids[ok], ts[ok], values[ok]
    else:
        ok, s, t, v = np.arange(n), sids, ts, values
    order = _sort_order(s, t)  # stable: equal keys keep input order
    if order is not None:
        s, t, v, ok = s[order], t[order], v[order], ok[order]

    # Retention relative to the series' newest sample when each row arrives: the stored one
    # or an earlier row of this batch, as if the rows were added one by one (RedisTimeSeries'
    # order). Skipped when no series of the batch has a retention.
    ret = retention_ms[s]
    if ret.any():
        expired = (ret > 0) & (t < np.maximum(max_ts[s], _newest_so_far(s, t, ok)) - ret)
        status[ok[expired]] = Status.OUT_OF_RETENTION
        live = ~expired
        s, t, v, ok = s[live], t[live], v[live], ok[live]
    late = t <= max_ts[s]
    if not late.any() and ((s[1:] != s[:-1]) | (t[1:] != t[:-1])).all():
        # The common case: every row is new and in order, nothing to resolve.
        return Resolved(status, Rows(s.astype(np.int32), t, {"value": v}), late)

    pol = policy[s].astype(np.int16)
    pol[pol < 0] = int(default_policy)
    if override is not None:
        pol[:] = int(override)

    # Group equal (sid, ts) keys; a group collides with storage if its ts is late.
    key_start = _run_starts_2(s, t)
    group_of = np.repeat(np.arange(len(key_start)), np.diff(np.append(key_start, len(s))))
    g_sid, g_ts, g_pol = s[key_start], t[key_start], pol[key_start]
    g_size = np.diff(np.append(key_start, len(s)))
    g_existing = np.full(len(key_start), np.nan)
    late_groups = np.flatnonzero(late[key_start])
    if len(late_groups):
        g_existing[late_groups] = _lookup(read_existing, g_sid[late_groups], g_ts[late_groups])
    has_old = ~np.isnan(g_existing)

    if len(s) == 0:
        return Resolved(status, Rows(s, t, {"value": v}), late)
    first_v = v[key_start]
    last_v = v[key_start + g_size - 1]
    g_min = np.minimum.reduceat(v, key_start)
    g_max = np.maximum.reduceat(v, key_start)
    g_sum = np.add.reduceat(v, key_start)
    old = np.where(has_old, g_existing, 0.0)
    final = np.select(
        [g_pol == DuplicatePolicy.LAST, g_pol == DuplicatePolicy.FIRST,
         g_pol == DuplicatePolicy.MIN, g_pol == DuplicatePolicy.MAX,
         g_pol == DuplicatePolicy.SUM],
        [last_v, np.where(has_old, g_existing, first_v),
         np.where(has_old, np.minimum(g_min, old), g_min),
         np.where(has_old, np.maximum(g_max, old), g_max),
         g_sum + old],
        default=first_v,  # BLOCK: the first new row wins unless storage holds one
    )
    # BLOCK rejects every row after the first of a key, and all of them if storage has one.
    pos_in_group = np.arange(len(s)) - key_start[group_of]
    blocked = (g_pol[group_of] == DuplicatePolicy.BLOCK) & (
        (pos_in_group > 0) | has_old[group_of])
    status[ok[blocked]] = Status.DUPLICATE_BLOCKED
    write = ~((g_pol == DuplicatePolicy.BLOCK) & has_old) & ~(has_old & (final == g_existing))
    rows = Rows(g_sid[write].astype(np.int32), g_ts[write], {"value": final[write]})
    return Resolved(status, rows, late[key_start][write])


def _sort_order(s: np.ndarray, t: np.ndarray) -> np.ndarray | None:
    """Stable order by (sid, ts), or None when the rows are sorted already."""
    if len(s) < 2:
        return None
    if len(t) and int(t.max()) - int(t.min()) < 2**40 and int(s.max()) < 2**23:
        # One int64 key: a sortedness check is one pass, and argsort beats lexsort ~3x.
        key = (s.astype(np.int64) << 40) | (t - t.min())
        if (key[1:] >= key[:-1]).all():
            return None
        return np.argsort(key, kind="stable")
    return np.lexsort((t, s))


def _newest_so_far(s: np.ndarray, t: np.ndarray, arrival: np.ndarray) -> np.ndarray:
    """Per row: the highest ``t`` of its series among the rows that arrived up to it.

    ``arrival`` orders the rows as they came. One cumulative max serves every series: each
    series' timestamps are lifted above all earlier series' before it runs.
    """
    if len(t) == 0:
        return t
    order = np.lexsort((arrival, s))
    so, to = s[order], t[order]
    start = _run_starts(so)
    group = np.repeat(np.arange(len(start)), np.diff(np.append(start, len(so))))
    low, span = int(to.min()), int(to.max()) - int(to.min()) + 1
    out = np.empty_like(t)
    if span * len(start) < 2**62:
        lift = group.astype(np.int64) * span - low
        out[order] = np.maximum.accumulate(to + lift) - lift
    else:  # absurd timestamp spans only: one cumulative max per series
        ends = np.append(start[1:], len(so))
        out[order] = np.concatenate([np.maximum.accumulate(to[a:b])
                                     for a, b in zip(start.tolist(), ends.tolist(),
                                                     strict=True)])
    return out


def _run_starts(keys: np.ndarray) -> np.ndarray:
    if len(keys) == 0:
        return np.empty(0, np.int64)
    return np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))


def _run_starts_2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) == 0:
        return np.empty(0, np.int64)
    return np.flatnonzero(np.concatenate(([True], (a[1:] != a[:-1]) | (b[1:] != b[:-1]))))


def _lookup(read_existing: ReadExisting, sids: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Stored values at exact (sid, ts) keys (sorted by sid, ts); NaN where none."""
    usids = np.unique(sids).astype(np.int32)
    got = read_existing(usids, int(ts.min()), int(ts.max()))
    out = np.full(len(ts), np.nan)
    if len(got) == 0:
        return out
    # Rows come back sorted by (sid, ts) within [t0, t1]: one combined int64 key matches all.
    t0, span = int(ts.min()), int(ts.max()) - int(ts.min()) + 1
    if span >= 2**40:
        for i in range(len(ts)):  # absurd time spans only: correctness over speed
            m = (got.sids == sids[i]) & (got.ts == ts[i])
            if m.any():
                out[i] = got.columns["value"][np.flatnonzero(m)[-1]]
        return out
    gkey = got.sids.astype(np.int64) * span + (got.ts - t0)
    qkey = sids.astype(np.int64) * span + (ts - t0)
    pos = np.minimum(np.searchsorted(gkey, qkey), len(gkey) - 1)
    found = gkey[pos] == qkey
    out[found] = got.columns["value"][pos[found]]
    return out
