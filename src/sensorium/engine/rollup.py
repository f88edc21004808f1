"""Downsampling: rollup streams of mergeable bucket states (write path, step 4).

A *stream* is the bucketed state of one input at one bucket size and alignment. Its input is
either a raw series or another stream (a coarser tier built from a finer one). Rules whose
(input, bucket, align) are equal share one stream, whatever their aggregator: the seed's
raw → 1 min avg/min/max rules cost one stream, and an hourly avg built from the 1-minute tier
is the true mean because it merges full states, not averages.

Each stream keeps its open bucket in memory; closed buckets are rows of the rollup table
(sid = stream id, ts = bucket start, columns = ``states.STATE_COLUMNS``; a row with count 0
marks a bucket that lost all its samples). In-order input merges into the open bucket and
closes older ones, feeding closed buckets to the streams built on this one. Late input (an
out-of-order insert, an overwrite, a delete) recomputes the touched buckets from the input's
current data, so a closed bucket always equals the aggregate of its input's current samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import states as st
from .series import EMPTY_TS
from .table import Rows, ranges_to_index

ReadRows = Callable[[np.ndarray, int, int], Rows]


@dataclass(frozen=True, slots=True)
class StreamKey:
    source: int  # a raw sid, or a stream id when ``from_stream``
    from_stream: bool
    bucket_ms: int
    align_ms: int


def bucket_start(ts: np.ndarray, bucket_ms: np.ndarray, align_ms: np.ndarray) -> np.ndarray:
    return (ts - align_ms) // bucket_ms * bucket_ms + align_ms


class Streams:
    """All rollup streams of a database. Not thread-safe: the database holds its lock.

    Args:
        read_raw: current raw rows (tombstones removed) of sorted sids in a time range.
        read_states: closed, non-empty state rows of sorted stream ids in a time range.
        write_states: appends state rows (sorted by stream, bucket) to the rollup table.
    """

    def __init__(self, read_raw: ReadRows, read_states: ReadRows,
                 write_states: Callable[[Rows], None]) -> None:
        self.read_raw, self.read_states, self.write_states = read_raw, read_states, write_states
        self.keys: list[StreamKey | None] = []
        self.by_key: dict[StreamKey, int] = {}
        self.of_raw: dict[int, list[int]] = {}
        self.of_stream: dict[int, list[int]] = {}
        self.bucket_ms = np.zeros(0, np.int64)
        self.align_ms = np.zeros(0, np.int64)
        self.open_bucket = np.zeros(0, np.int64)
        self.open = st.empty_states(0)
        self._csr: tuple[np.ndarray, np.ndarray] | None = None

    # -- topology ---------------------------------------------------------------------------
    def ensure(self, key: StreamKey) -> tuple[int, bool]:
        """The stream for ``key`` and whether it was just created (and needs a backfill)."""
        if key in self.by_key:
            return self.by_key[key], False
        sid = len(self.keys)
        self.keys.append(key)
        self.by_key[key] = sid
        (self.of_stream if key.from_stream else self.of_raw).setdefault(key.source, []).append(sid)
        self.bucket_ms = np.append(self.bucket_ms, key.bucket_ms)
        self.align_ms = np.append(self.align_ms, key.align_ms % key.bucket_ms)
        self.open_bucket = np.append(self.open_bucket, EMPTY_TS)
        self.open = _concat_states([self.open, st.empty_states(1)])
        self._csr = None
        return sid, True

    def drop(self, stream: int) -> None:
        key = self.keys[stream]
        if key is None:
            return
        lst = (self.of_stream if key.from_stream else self.of_raw)[key.source]
        lst.remove(stream)
        del self.by_key[key]
        self.keys[stream] = None
        self._csr = None

    def _raw_csr(self) -> tuple[np.ndarray, np.ndarray]:
        """Streams of every raw sid as CSR (offsets by sid, flat stream ids)."""
        if self._csr is None:
            top = max(self.of_raw, default=-1) + 2
            counts = np.zeros(top, np.int64)
            for sid, lst in self.of_raw.items():
                counts[sid] = len(lst)
            offsets = np.concatenate(([0], np.cumsum(counts)))
            flat = np.zeros(int(offsets[-1]), np.int64)
            for sid, lst in self.of_raw.items():
                flat[offsets[sid] : offsets[sid] + len(lst)] = lst
            self._csr = (offsets, flat)
        return self._csr

    # -- feeding ----------------------------------------------------------------------------
    def feed_raw(self, rows: Rows, late: np.ndarray) -> None:
        """Feeds stored raw rows (sorted by sid, ts); ``late`` marks out-of-order rows."""
        if not self.of_raw or len(rows) == 0:
            return
        offsets, flat = self._raw_csr()
        sids = rows.sids.astype(np.int64)
        inside = sids < len(offsets) - 1
        lo = np.where(inside, offsets[np.minimum(sids, len(offsets) - 2)], 0)
        hi = np.where(inside, offsets[np.minimum(sids, len(offsets) - 2) + 1], 0)
        if not (hi > lo).any():
            return
        pos = ranges_to_index(lo, hi)
        row = np.repeat(np.arange(len(sids)), hi - lo)
        stream = flat[pos]
        ts = rows.ts[row]
        b = bucket_start(ts, self.bucket_ms[stream], self.align_ms[stream])
        revise = late[row] | (b < self.open_bucket[stream])
        order = np.lexsort((ts[~revise], stream[~revise]))
        s_in, b_in = stream[~revise][order], b[~revise][order]
        if len(s_in):
            starts = _starts(s_in, b_in)
            grouped = st.aggregate_samples(ts[~revise][order],
                                           rows.columns["value"][row[~revise]][order], starts)
            self._advance(s_in[starts], b_in[starts], grouped)
        if revise.any():
            self.revise(stream[revise], b[revise])

    def _advance(self, stream: np.ndarray, bucket: np.ndarray, grouped: st.States) -> None:
        """Merges in-order group states (sorted by stream, bucket) into the streams."""
        first = _starts(stream)
        last = np.append(first[1:], len(stream)) - 1
        fs = stream[first]
        merge = (bucket[first] == self.open_bucket[fs]) & (self.open["count"][fs] > 0)
        if merge.any():
            gi, si = first[merge], fs[merge]
            pair = _interleave(_take(self.open, si), _take(grouped, gi))
            merged = st.reduce_states(pair, np.arange(0, 2 * len(gi), 2))
            for name in st.STATE_COLUMNS:
                grouped[name][gi] = merged[name]
        # Open buckets that a later bucket replaces are closed, as are all but each stream's
        # last group of this batch; that last group becomes the stream's open bucket.
        closing_open = (~merge) & (self.open["count"][fs] > 0) & (
            bucket[first] > self.open_bucket[fs])
        not_last = np.ones(len(stream), bool)
        not_last[last] = False
        closed_ids = np.concatenate((fs[closing_open], stream[not_last]))
        closed_ts = np.concatenate((self.open_bucket[fs[closing_open]], bucket[not_last]))
        closed = _concat_states([_take(self.open, fs[closing_open]),
                                 _take(grouped, np.flatnonzero(not_last))])
        ls = stream[last]
        self.open_bucket[ls] = bucket[last]
        for name in st.STATE_COLUMNS:
            self.open[name][ls] = grouped[name][last]
        if len(closed_ids):
            order = np.lexsort((closed_ts, closed_ids))
            self._closed(closed_ids[order], closed_ts[order], _take(closed, order))

    def _closed(self, stream: np.ndarray, bucket: np.ndarray, closed: st.States) -> None:
        """Stores newly closed buckets and feeds them, in order, to the streams above."""
        self.write_states(Rows(stream.astype(np.int32), bucket, dict(closed)))
        if not self.of_stream:
            return
        parents, child_rows = [], []
        for i, s in enumerate(stream.tolist()):  # one entry per closed bucket with parents
            for p in self.of_stream.get(s, ()):
                parents.append(p)
                child_rows.append(i)
        if not parents:
            return
        p = np.asarray(parents, np.int64)
        r = np.asarray(child_rows, np.int64)
        b = bucket_start(bucket[r], self.bucket_ms[p], self.align_ms[p])
        revise = b < self.open_bucket[p]
        order = np.lexsort((bucket[r][~revise], p[~revise]))
        if (~revise).any():
            ps, bs, rs = p[~revise][order], b[~revise][order], r[~revise][order]
            starts = _starts(ps, bs)
            grouped = st.reduce_states(_take(closed, rs), starts)
            self._advance(ps[starts], bs[starts], grouped)
        if revise.any():
            self.revise(p[revise], b[revise])

    # -- reconciliation ---------------------------------------------------------------------
    def revise(self, stream: np.ndarray, bucket: np.ndarray) -> None:
        """Recomputes the given (stream, bucket) pairs from their input's current data."""
        pairs = np.unique(np.stack([stream.astype(np.int64), bucket.astype(np.int64)]), axis=1)
        for s in np.unique(pairs[0]).tolist():
            self._recompute(s, pairs[1][pairs[0] == s])

    def _recompute(self, stream: int, buckets: np.ndarray) -> None:
        key = self.keys[stream]
        if key is None:
            return
        dur, align = int(self.bucket_ms[stream]), int(self.align_ms[stream])
        lo, hi = int(buckets.min()), int(buckets.max()) + dur - 1
        src = np.array([key.source], np.int32)
        if key.from_stream:
            rows = self.read_states(src, lo, hi)
            b = bucket_start(rows.ts, dur, align)
            starts = _starts(b)
            fresh = st.reduce_states(dict(rows.columns), starts) if len(rows) else None
        else:
            rows = self.read_raw(src, lo, hi)
            b = bucket_start(rows.ts, dur, align)
            starts = _starts(b)
            fresh = st.aggregate_samples(rows.ts, rows.columns["value"], starts) if len(rows) \
                else None
        have = b[starts] if len(rows) else np.empty(0, np.int64)
        wanted = buckets[np.isin(buckets, have) | True]
        idx = np.searchsorted(have, wanted)
        present = (idx < len(have)) & (have[np.minimum(idx, max(len(have) - 1, 0))] == wanted) \
            if len(have) else np.zeros(len(wanted), bool)
        out = st.empty_states(len(wanted))
        if fresh is not None and present.any():
            for name in st.STATE_COLUMNS:
                out[name][present] = fresh[name][idx[present]]
        is_open = wanted == self.open_bucket[stream]
        if is_open.any():
            i = int(np.flatnonzero(is_open)[0])
            for name in st.STATE_COLUMNS:
                self.open[name][stream] = out[name][i]
        closed = ~is_open & (wanted < self.open_bucket[stream])
        if closed.any():
            cb = wanted[closed]
            cs = _take(out, np.flatnonzero(closed))
            self.write_states(Rows(np.full(len(cb), stream, np.int32), cb, dict(cs)))
            for parent in self.of_stream.get(stream, ()):
                pb = np.unique(bucket_start(cb, self.bucket_ms[parent], self.align_ms[parent]))
                self._recompute(parent, pb[pb <= self.open_bucket[parent]])

    # -- checkpoint -------------------------------------------------------------------------
    def snapshot(self) -> dict[str, np.ndarray]:
        out = {"open_bucket": self.open_bucket}
        out.update({f"open_{k}": v for k, v in self.open.items()})
        return out

    def restore(self, snap: dict[str, np.ndarray]) -> None:
        n = len(snap["open_bucket"])
        self.open_bucket[:n] = snap["open_bucket"]
        for k in st.STATE_COLUMNS:
            self.open[k][:n] = snap[f"open_{k}"]


def _starts(*keys: np.ndarray) -> np.ndarray:
    n = len(keys[0])
    if n == 0:
        return np.empty(0, np.int64)
    change = np.zeros(n, bool)
    change[0] = True
    for k in keys:
        change[1:] |= k[1:] != k[:-1]
    return np.flatnonzero(change)


def _take(s: st.States, idx: np.ndarray) -> st.States:
    return {k: v[idx] for k, v in s.items()}


def _concat_states(parts: list[st.States]) -> st.States:
    return {k: np.concatenate([p[k] for p in parts]) for k in st.STATE_COLUMNS}


def _interleave(a: st.States, b: st.States) -> st.States:
    out = {}
    for k in st.STATE_COLUMNS:
        arr = np.empty(2 * len(a[k]), a[k].dtype)
        arr[0::2], arr[1::2] = a[k], b[k]
        out[k] = arr
    return out
