"""Downsampling: rollup streams of mergeable bucket states and sketches (write path, step 4).

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

A stream that a percentile rule reads (directly or through coarser streams built on it) also
keeps a DDSketch per closed bucket in the sketch table (layout: ``sketch.py``). The open
bucket's sketch fills as samples arrive (``sketch.OpenSketches``; a coarser stream receives
the bins of the finer buckets it merges) and is written when the bucket closes. Late input
recomputes a bucket's sketch with its states, from the input's current data (the raw samples,
or the finer stream's sketches). Open sketches are not checkpointed: one that is not known
to be complete (after a restart, or for a stream that just started sketching) is computed
from the input when its bucket closes, so replay needs nothing but the log.

Every path is vectorised over streams and buckets: inputs of many (stream, bucket) pairs are
read with one table read per cluster of overlapping time ranges (``_read_pairs``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from . import sketch as sk
from . import states as st
from .series import EMPTY_TS
from .table import Rows, Table, concat, ranges_to_index

ReadRows = Callable[[np.ndarray, int, int], Rows]

ALL_TS = (-(2**62), 2**62)
# A cluster of time ranges read at once may grow over gaps no longer than itself: reading at
# most twice the rows needed beats one table read per scattered bucket.
_GAP_FACTOR = 1


class StreamKey(NamedTuple):
    """What a stream aggregates (a tuple: hashed in C, as dict keys are by the 100k)."""

    source: int  # a raw sid, or a stream id when ``from_stream``
    from_stream: bool
    bucket_ms: int
    align_ms: int


def bucket_start(ts: np.ndarray, bucket_ms: np.ndarray, align_ms: np.ndarray) -> np.ndarray:
    return (ts - align_ms) // bucket_ms * bucket_ms + align_ms


class Streams:
    """All rollup streams of a shard. Not thread-safe: the database holds its lock.

    Args:
        read_raw: current raw rows (tombstones removed) of sorted sids in a time range.
        read_states: closed, non-empty state rows of sorted stream ids in a time range.
        write_states: appends state rows (sorted by stream, bucket) to the rollup table.
        sketches: the sketch table (``sketch.SKETCH_DTYPES``); the shard owns and checkpoints
            it. Without one, sketches live in a private in-memory table.
    """

    def __init__(self, read_raw: ReadRows, read_states: ReadRows,
                 write_states: Callable[[Rows], None], sketches: Table | None = None) -> None:
        self.read_raw, self.read_states, self.write_states = read_raw, read_states, write_states
        self.sketches = sketches if sketches is not None else Table(sk.SKETCH_DTYPES)
        self.keys: list[StreamKey | None] = []
        self.by_key: dict[StreamKey, int] = {}
        self.of_raw: dict[int, list[int]] = {}
        self.of_stream: dict[int, list[int]] = {}
        # Per stream, with spare capacity beyond len(keys).
        self.bucket_ms = np.zeros(0, np.int64)
        self.align_ms = np.zeros(0, np.int64)
        self.source = np.zeros(0, np.int64)
        self.from_stream = np.zeros(0, bool)
        self.alive = np.zeros(0, bool)
        self.open_bucket = np.zeros(0, np.int64)
        self.open = st.empty_states(0)
        # Percentile rules reading the stream or a stream built on it: > 0 means "sketched".
        self.demand = np.zeros(0, np.int64)
        self.open_sketches = sk.OpenSketches()
        self._csr: dict[bool, tuple[np.ndarray, np.ndarray]] = {}
        self._only: dict[bool, np.ndarray] = {}  # the one stream a source feeds, else -1

    # -- topology ---------------------------------------------------------------------------
    def ensure(self, key: StreamKey, stream: int | None = None) -> tuple[int, bool]:
        """The stream for ``key`` and whether it was just created (and needs a backfill).

        ``stream`` forces the id of a new stream (restoring a checkpoint); ids are never
        reused, as old rows of a dropped stream may still sit in blocks.
        """
        if key in self.by_key:
            return self.by_key[key], False
        sid = len(self.keys) if stream is None else stream
        assert sid >= len(self.keys) or self.keys[sid] is None, "BUG: stream id in use"
        self._grow(sid + 1)
        self.keys[sid] = key
        self.by_key[key] = sid
        (self.of_stream if key.from_stream else self.of_raw).setdefault(key.source, []).append(sid)
        self.bucket_ms[sid] = key.bucket_ms
        self.align_ms[sid] = key.align_ms % key.bucket_ms
        self.source[sid] = key.source
        self.from_stream[sid] = key.from_stream
        self.alive[sid] = True
        self._csr.clear()
        self._only.clear()
        return sid, True

    def ensure_many(self, keys: list[StreamKey], ids: np.ndarray) -> None:
        """Restores streams ``keys`` under their stored ``ids`` (a checkpoint's rules), in
        bulk: the arrays are set once, not per stream. Streams that exist are left alone."""
        ids = np.asarray(ids, np.int64)
        wanted = dict(zip(keys, ids.tolist(), strict=True))  # rules share streams
        new = [(k, i) for k, i in wanted.items() if k not in self.by_key]
        if not new:
            return
        self._grow(max(i for _, i in new) + 1)
        for key, i in new:
            assert self.keys[i] is None, "BUG: stream id in use"
            self.keys[i] = key
            self.by_key[key] = i
            (self.of_stream if key.from_stream else self.of_raw).setdefault(
                key.source, []).append(i)
        at = np.array([i for _, i in new], np.int64)
        self.bucket_ms[at] = [k.bucket_ms for k, _ in new]
        self.align_ms[at] = [k.align_ms % k.bucket_ms for k, _ in new]
        self.source[at] = [k.source for k, _ in new]
        self.from_stream[at] = [k.from_stream for k, _ in new]
        self.alive[at] = True
        self._csr.clear()
        self._only.clear()

    def _grow(self, n: int) -> None:
        if n > len(self.keys):
            self.keys.extend([None] * (n - len(self.keys)))
        if n > len(self.open_bucket):  # grow by half: creating n streams costs O(n)
            grow = max(16, n - len(self.open_bucket), len(self.open_bucket) // 2)
            self.bucket_ms = np.append(self.bucket_ms, np.ones(grow, np.int64))
            self.align_ms = np.append(self.align_ms, np.zeros(grow, np.int64))
            self.source = np.append(self.source, np.zeros(grow, np.int64))
            self.from_stream = np.append(self.from_stream, np.zeros(grow, bool))
            self.alive = np.append(self.alive, np.zeros(grow, bool))
            self.open_bucket = np.append(self.open_bucket, np.full(grow, EMPTY_TS))
            self.open = _concat_states([self.open, st.empty_states(grow)])
            self.demand = np.append(self.demand, np.zeros(grow, np.int64))

    def drop(self, stream: int) -> None:
        key = self.keys[stream]
        if key is None:
            return
        lst = (self.of_stream if key.from_stream else self.of_raw)[key.source]
        lst.remove(stream)
        del self.by_key[key]
        self.keys[stream] = None
        self.alive[stream] = False
        self.demand[stream] = 0
        self.open_sketches.detach(stream)
        self._csr.clear()
        self._only.clear()

    def _targets(self, from_stream: bool) -> tuple[np.ndarray, np.ndarray]:
        """Streams fed by every raw sid (or every stream) as CSR: offsets by source, ids."""
        if from_stream not in self._csr:
            mapping = self.of_stream if from_stream else self.of_raw
            top = max(mapping, default=-1) + 2
            counts = np.zeros(top, np.int64)
            for src, lst in mapping.items():
                counts[src] = len(lst)
            offsets = np.concatenate(([0], np.cumsum(counts)))
            flat = np.zeros(int(offsets[-1]), np.int64)
            for src, lst in mapping.items():
                flat[offsets[src] : offsets[src] + len(lst)] = lst
            self._csr[from_stream] = (offsets, flat)
            counts = np.diff(offsets)
            only = np.full(len(counts), -1, np.int64)
            only[counts == 1] = flat[offsets[:-1][counts == 1]]
            self._only[from_stream] = only
        return self._csr[from_stream]

    def _fan_out(self, sources: np.ndarray, from_stream: bool) -> tuple[np.ndarray, np.ndarray]:
        """(index into ``sources``, target stream) for every stream each source feeds."""
        offsets, flat = self._targets(from_stream)
        src = np.asarray(sources, np.int64)
        only = self._only[from_stream]
        if len(src) and int(src.max()) < len(only):
            one = only[src]
            if (one >= 0).all():  # every source feeds exactly one stream (the common case)
                return np.arange(len(src)), one
        inside = src < len(offsets) - 1
        at = np.where(inside, src, len(offsets) - 2)
        lo = np.where(inside, offsets[at], 0)
        hi = np.where(inside, offsets[at + 1], 0)
        return np.repeat(np.arange(len(src)), hi - lo), flat[ranges_to_index(lo, hi)]

    # -- sketch demand ------------------------------------------------------------------------
    def retain_sketch(self, stream: int, recompute: bool = True) -> None:
        """A percentile rule now reads ``stream``: it and its inputs keep sketches.

        With ``recompute`` (a rule created live or replayed), streams that start keeping
        sketches get them for every closed bucket, from their input's current data; without
        it (restoring a checkpoint) the stored sketches are current already.
        """
        chain = self._chain(stream)
        newly = [s for s in chain if self.demand[s] == 0]
        self.demand[chain] += 1
        for s in newly:
            self.open_sketches.attach(s)  # not valid: the open bucket reads its input
        if recompute:
            for s in reversed(newly):  # inputs first: a stream merges its input's sketches
                self._resketch(s)

    def release_sketch(self, stream: int) -> None:
        """A percentile rule on ``stream`` is gone; streams nobody needs stop sketching."""
        chain = self._chain(stream)
        self.demand[chain] = np.maximum(self.demand[chain] - 1, 0)
        for s in chain:
            if self.demand[s] == 0:
                self.open_sketches.detach(s)

    def sketched(self, stream: int) -> bool:
        return bool(self.alive[stream] and self.demand[stream] > 0)

    def _chain(self, stream: int) -> list[int]:
        chain = [stream]
        while self.from_stream[chain[-1]]:
            chain.append(int(self.source[chain[-1]]))
        return chain

    def _resketch(self, stream: int) -> None:
        """Rebuilds all sketches of a stream, dropping any left from an earlier period."""
        if self.open_bucket[stream] == EMPTY_TS:
            return  # never fed: nothing closed
        ids = np.array([stream], np.int32)
        buckets = self.read_states(ids, *ALL_TS).ts
        old = self._read_bins(ids, *ALL_TS)
        tomb = Rows(old.sids, old.ts, {"count": np.zeros(len(old), np.int64)})
        streams = np.full(len(buckets), stream, np.int64)
        _, bins = self._from_input(streams, buckets, False, np.ones(len(buckets), bool))
        self.sketches.append(concat([tomb, _bin_rows(streams, buckets, bins)], ("count",)))

    # -- feeding ----------------------------------------------------------------------------
    def feed_raw(self, rows: Rows, late: np.ndarray) -> None:
        """Feeds stored raw rows (sorted by sid, ts; NaN = deletion marker); ``late`` marks
        out-of-order rows."""
        if not self.of_raw or len(rows) == 0:
            return
        row, stream = self._fan_out(rows.sids, False)
        if len(row) == 0:
            return
        ts = rows.ts[row]
        values = rows.columns["value"][row]
        b = bucket_start(ts, self.bucket_ms[stream], self.align_ms[stream])
        revise = late[row] | (b < self.open_bucket[stream]) | np.isnan(values)
        fresh = ~revise
        if fresh.all() and self._add_in_place(rows, row, stream, ts, values, b):
            return
        if fresh.any():
            s_in, b_in, t_in, v_in = stream[fresh], b[fresh], ts[fresh], values[fresh]
            if len(row) > 1 and bool((row[1:] == row[:-1]).any()):  # sids with 2+ streams
                order = np.lexsort((t_in, s_in))
                s_in, b_in, t_in, v_in = s_in[order], b_in[order], t_in[order], v_in[order]
            starts = _starts(s_in, b_in)
            grouped = st.aggregate_samples(t_in, v_in, starts)
            contrib = None
            sketched = self.demand[s_in] > 0
            if sketched.any():  # each sample of a sketched stream adds one to its bin
                group = _group_index(starts, len(s_in))
                contrib = sk.Bins(group[sketched], sk.slots_of(v_in[sketched]),
                                  np.ones(int(sketched.sum()), np.int64))
            self._advance(s_in[starts], b_in[starts], grouped, contrib)
        if revise.any():
            self.revise(stream[revise], b[revise])

    def _add_in_place(self, rows: Rows, row: np.ndarray, stream: np.ndarray, ts: np.ndarray,
                      values: np.ndarray, bucket: np.ndarray) -> bool:
        """Fast path: one sample per stream, each into its stream's open bucket with data.

        Returns False (nothing done) when the batch is not of that shape.
        """
        # Distinct sids feed distinct streams: one row per sid, one stream per row → one row
        # per stream.
        one_each = len(row) == len(rows) and (
            len(rows) < 2 or bool((rows.sids[1:] > rows.sids[:-1]).all()))
        if not one_each:
            return False
        count = self.open["count"][stream]
        if not ((bucket == self.open_bucket[stream]) & (count > 0)).all():
            return False
        names = ("count", "sum", "min", "max", "m2", "last_ts", "last", "area")
        now = st.add_samples({k: self.open[k][stream] for k in names}, ts, values)
        for name, column in now.items():
            self.open[name][stream] = column
        sketched = self.demand[stream] > 0
        if sketched.any():
            live = np.flatnonzero(sketched & self.open_sketches.is_valid(stream))
            self.open_sketches.add(stream[live], sk.slots_of(values[live]))
        return True

    def _advance(self, stream: np.ndarray, bucket: np.ndarray, grouped: st.States,
                 contrib: sk.Bins | None = None) -> None:
        """Merges in-order group states (sorted by stream, bucket) into the streams.

        ``contrib`` holds the sketch contributions of the groups of sketched streams (group =
        group index, any order); without it, sketches of the buckets this closes are computed
        from the input, and open sketches it touches stop being valid.
        """
        n = len(stream)
        first = _starts(stream)
        last = np.append(first[1:], n) - 1
        fs = stream[first]
        open_count = self.open["count"][fs]
        merge = (bucket[first] == self.open_bucket[fs]) & (open_count > 0)
        merged = np.zeros(n, bool)  # groups merged into their stream's open bucket
        merged[first[merge]] = True
        if merge.any():
            gi, si = first[merge], fs[merge]
            both = st.merge_pairs(_take(self.open, si), _take(grouped, gi))
            for name in st.STATE_COLUMNS:
                grouped[name][gi] = both[name]
        # Open buckets that a later bucket replaces are closed, as are all but each stream's
        # last group of this batch; that last group becomes the stream's open bucket.
        closing_open = ~merge & (open_count > 0) & (bucket[first] > self.open_bucket[fs])
        not_last = np.ones(n, bool)
        not_last[last] = False
        co = fs[closing_open]
        sketches = self._advance_sketches(stream, merged, not_last, co, contrib)
        co_ts = self.open_bucket[co]
        ls = stream[last]
        self.open_bucket[ls] = bucket[last]
        if not (len(co) or not_last.any()):
            for name in st.STATE_COLUMNS:
                self.open[name][ls] = grouped[name][last]
            return
        closed_ids = np.concatenate((co, stream[not_last]))
        closed_ts = np.concatenate((co_ts, bucket[not_last]))
        closed = _concat_states([_take(self.open, co),
                                 _take(grouped, np.flatnonzero(not_last))])
        for name in st.STATE_COLUMNS:
            self.open[name][ls] = grouped[name][last]
        order = np.lexsort((closed_ts, closed_ids))
        inverse = np.empty(len(order), np.int64)
        inverse[order] = np.arange(len(order))
        bins, known = sketches
        self._closed(closed_ids[order], closed_ts[order], _take(closed, order),
                     sk.Bins(inverse[bins.group], bins.slot, bins.count), known[order])

    def _advance_sketches(self, stream: np.ndarray, merged: np.ndarray, not_last: np.ndarray,
                          closing: np.ndarray, contrib: sk.Bins | None
                          ) -> tuple[sk.Bins, np.ndarray]:
        """The sketch side of ``_advance``, run before its open buckets change.

        Returns the bins of the buckets it closes, numbered as ``_advance`` lists them (the
        closing open buckets, then the groups that are not last), and which are known.
        """
        n_closed = len(closing) + int(not_last.sum())
        none = sk.Bins.empty(), np.zeros(n_closed, bool)
        sk_group = self.demand[stream] > 0
        if not sk_group.any():
            return none
        opened = self.open_sketches
        given = contrib is not None
        if contrib is None:
            contrib = sk.Bins.empty()
            opened.invalidate(stream[sk_group])
        # Contributions to a bucket already open go into its open sketch.
        into_open = merged[contrib.group]
        if into_open.any():
            g = contrib.group[into_open]
            ok = opened.is_valid(stream[g])
            opened.add(stream[g][ok], contrib.slot[into_open][ok], contrib.count[into_open][ok])
        # Closing buckets: open sketches (closing open buckets and merged groups not last)...
        closed_pos = np.full(len(stream), -1, np.int64)
        closed_pos[not_last] = len(closing) + np.arange(int(not_last.sum()))
        from_open = np.concatenate((closing, stream[not_last & merged]))
        from_open_pos = np.concatenate((np.arange(len(closing)),
                                        closed_pos[not_last & merged]))
        keep = self.demand[from_open] > 0
        from_open, from_open_pos = from_open[keep], from_open_pos[keep]
        valid = opened.is_valid(from_open)
        known = np.zeros(n_closed, bool)
        known[from_open_pos[valid]] = True
        taken = opened.take(from_open[valid]) if valid.any() else sk.Bins.empty()
        opened.invalidate(from_open[~valid])
        parts = [sk.Bins(from_open_pos[valid][taken.group], taken.slot, taken.count)]
        # ... and buckets opened and closed in this batch: all their data is in ``contrib``.
        fresh_closed = not_last & ~merged & sk_group
        known[closed_pos[fresh_closed]] = given
        m = fresh_closed[contrib.group]
        parts.append(sk.Bins(closed_pos[contrib.group[m]], contrib.slot[m], contrib.count[m]))
        # Each stream's last group opens a new bucket unless it merged: a fresh open sketch.
        new_open = ~not_last & ~merged & sk_group
        if new_open.any():
            m = new_open[contrib.group]
            index = np.full(len(stream), -1, np.int64)
            index[new_open] = np.arange(int(new_open.sum()))
            opened.reset(stream[new_open], sk.Bins(index[contrib.group[m]], contrib.slot[m],
                                                   contrib.count[m]))
            if not given:  # no data given: its sketch will come from the input
                opened.invalidate(stream[new_open])
        return sk.concat_bins(parts), known

    def _closed(self, stream: np.ndarray, bucket: np.ndarray, closed: st.States,
                bins: sk.Bins | None = None, known: np.ndarray | None = None) -> None:
        """Stores newly closed buckets (with their sketches) and feeds the streams above.

        ``bins`` (group = row) are the sketches of the rows flagged ``known``; the other
        sketched rows get theirs from the input.
        """
        self.write_states(Rows(stream.astype(np.int32), bucket, dict(closed)))
        sketched = self.demand[stream] > 0
        all_bins = None
        if sketched.any():
            parts = [] if bins is None else [bins]
            need = sketched if known is None else sketched & ~known
            if need.any():
                at = np.flatnonzero(need)
                _, got = self._from_input(stream[at], bucket[at], False,
                                          np.ones(len(at), bool))
                parts.append(sk.Bins(at[got.group], got.slot, got.count))
            all_bins = sk.count_bins(np.concatenate([p.group for p in parts]),
                                     np.concatenate([p.slot for p in parts]),
                                     np.concatenate([p.count for p in parts])) \
                if parts else sk.Bins.empty()
            self.sketches.append(_bin_rows(stream, bucket, all_bins))
        self._feed_parents(stream, bucket, closed, revised=False, bins=all_bins)

    def _feed_parents(self, stream: np.ndarray, bucket: np.ndarray, states: st.States,
                      revised: bool, bins: sk.Bins | None = None) -> None:
        """Passes closed buckets of streams (sorted by stream, bucket) to the streams above.

        A bucket after a parent's open bucket arrives in order (closing that open bucket);
        one inside a bucket the parent has seen makes the parent recompute it — for a revised
        bucket also when that is the parent's open bucket, as its old state is in there.
        ``bins`` are the sketches of the sketched rows (group = row, sorted).
        """
        if not self.of_stream or len(stream) == 0:
            return
        row, parent = self._fan_out(stream, True)
        if len(row) == 0:
            return
        b = bucket_start(bucket[row], self.bucket_ms[parent], self.align_ms[parent])
        ob = self.open_bucket[parent]
        recompute = (b < ob) | ((b == ob) & revised)
        if recompute.any():
            self.revise(parent[recompute], b[recompute])
        arrive = ~recompute & (states["count"][row] > 0)
        if arrive.any():
            p, pb, r = parent[arrive], b[arrive], row[arrive]
            order = np.lexsort((bucket[r], p))
            p, pb, r = p[order], pb[order], r[order]
            starts = _starts(p, pb)
            grouped = st.reduce_states(_take(states, r), starts)
            contrib = None
            if bins is not None and (self.demand[p] > 0).any():
                # A child bucket's bins join the parent group it arrives in.
                group = _group_index(starts, len(p))
                lo = np.searchsorted(bins.group, r, "left")
                hi = np.searchsorted(bins.group, r, "right")
                hi = np.where(self.demand[p] > 0, hi, lo)
                idx = ranges_to_index(lo, hi)
                contrib = sk.Bins(np.repeat(group, hi - lo), bins.slot[idx], bins.count[idx])
            self._advance(p[starts], pb[starts], grouped, contrib)

    # -- reconciliation ---------------------------------------------------------------------
    def revise(self, stream: np.ndarray, bucket: np.ndarray) -> None:
        """Recomputes the given (stream, bucket) pairs from their input's current data.

        Pairs after a stream's open bucket are ignored: the stream has not seen them yet.
        """
        if len(stream) == 0:
            return
        key = (np.asarray(stream, np.int64), np.asarray(bucket, np.int64))
        order = np.lexsort((key[1], key[0]))
        s, b = key[0][order], key[1][order]
        keep = np.ones(len(s), bool)
        keep[1:] = (s[1:] != s[:-1]) | (b[1:] != b[:-1])
        keep &= self.alive[s]
        s, b = s[keep], b[keep]
        keep = b <= self.open_bucket[s]
        s, b = s[keep], b[keep]
        if len(s) == 0:
            return
        closed = b < self.open_bucket[s]
        sketched = self.demand[s] > 0
        fresh, bins = self._from_input(s, b, True, sketched)
        assert fresh is not None
        is_open = ~closed
        for name in st.STATE_COLUMNS:
            self.open[name][s[is_open]] = fresh[name][is_open]
        reopen = is_open & sketched  # the recomputed open bucket's sketch is exact again
        if reopen.any():
            index = np.cumsum(reopen) - 1
            m = reopen[bins.group]
            self.open_sketches.reset(s[reopen], sk.Bins(index[bins.group[m]], bins.slot[m],
                                                        bins.count[m]))
        if not closed.any():
            return
        cs, cb = s[closed], b[closed]
        cstates = _take(fresh, np.flatnonzero(closed))
        self.write_states(Rows(cs.astype(np.int32), cb, dict(cstates)))
        m = closed[bins.group]
        closed_bins = sk.Bins(bins.group[m], bins.slot[m], bins.count[m])
        if (closed & sketched).any():
            at = np.flatnonzero(closed & sketched)
            self._replace_bins(s[at], b[at], closed_bins, at)
        index = np.cumsum(closed) - 1
        self._feed_parents(cs, cb, cstates, revised=True,
                           bins=sk.Bins(index[closed_bins.group], closed_bins.slot,
                                        closed_bins.count))

    def _replace_bins(self, stream: np.ndarray, bucket: np.ndarray, bins: sk.Bins,
                      pair_index: np.ndarray) -> None:
        """Writes recomputed sketches of pairs, zeroing bins that no longer exist."""
        _, old = self._read_pairs(self._read_bins, stream, bucket, bucket, sk.SLOT_BITS)
        tomb = Rows(old.sids, old.ts, {"count": np.zeros(len(old), np.int64)})
        # ``bins`` are numbered by pair_index; renumber them 0..len(stream)-1.
        local = np.searchsorted(pair_index, bins.group)
        new = _bin_rows(stream, bucket, sk.Bins(local, bins.slot, bins.count))
        self.sketches.append(concat([tomb, new], ("count",)))

    # -- reading inputs -----------------------------------------------------------------------
    def _from_input(self, stream: np.ndarray, bucket: np.ndarray, want_states: bool,
                    want_bins: np.ndarray) -> tuple[st.States | None, sk.Bins]:
        """States and sketches of (stream, bucket) pairs computed from the streams' inputs.

        Returns the states of every pair (empty where the input has no data) when
        ``want_states``, and the bins of the pairs flagged in ``want_bins``, with
        ``group`` = the pair's index.
        """
        n = len(stream)
        src = self.source[stream]
        lo, hi = bucket, bucket + self.bucket_ms[stream] - 1
        out = st.empty_states(n) if want_states else None
        parts: list[sk.Bins] = []
        tier = self.from_stream[stream]
        raw_q = np.flatnonzero(~tier & (want_bins | want_states))
        if len(raw_q):
            qi, rows = self._read_pairs(self.read_raw, src[raw_q], lo[raw_q], hi[raw_q])
            pair = raw_q[qi]
            values = rows.columns["value"]
            if out is not None and len(pair):
                starts = st.group_starts(pair)
                _scatter(out, pair[starts], st.aggregate_samples(rows.ts, values, starts))
            m = want_bins[pair]
            if m.any():
                parts.append(sk.count_bins(pair[m], sk.slots_of(values[m])))
        if out is not None:
            tier_q = np.flatnonzero(tier)
            if len(tier_q):
                qi, rows = self._read_pairs(self.read_states, src[tier_q], lo[tier_q],
                                            hi[tier_q])
                pair = tier_q[qi]
                if len(pair):
                    starts = st.group_starts(pair)
                    _scatter(out, pair[starts], st.reduce_states(dict(rows.columns), starts))
        bin_q = np.flatnonzero(tier & want_bins)
        if len(bin_q):
            qi, rows = self._read_pairs(self._read_bins, src[bin_q], lo[bin_q], hi[bin_q],
                                        sk.SLOT_BITS)
            parts.append(sk.count_bins(bin_q[qi], sk.slot_of_key(rows.ts),
                                       rows.columns["count"]))
        return out, sk.concat_bins(parts)

    def _read_bins(self, streams: np.ndarray, min_key: int, max_key: int) -> Rows:
        """Non-empty sketch rows of sorted streams with ``min_key <= ts <= max_key``."""
        rows = self.sketches.read(streams, min_key, max_key)
        live = rows.columns["count"] > 0
        return rows if live.all() else rows.take(np.flatnonzero(live))

    def read_bins(self, streams: np.ndarray, min_bucket: int, max_bucket: int) -> Rows:
        """Stored sketch bins of closed buckets starting in [min_bucket, max_bucket]: rows
        sorted by (stream, bucket, slot) with ts packed (``sketch.pack``)."""
        return self._read_bins(np.asarray(streams, np.int32), min_bucket << sk.SLOT_BITS,
                               (max_bucket << sk.SLOT_BITS) + sk.SLOT_MASK)

    def open_bins(self, streams: np.ndarray) -> tuple[np.ndarray, sk.Bins]:
        """Sketches of the open buckets of ``streams`` (those holding data), computed now.

        Returns the streams that have an open bucket and their bins (group = index in it).
        """
        streams = np.asarray(streams, np.int64)
        streams = streams[(self.open["count"][streams] > 0)]
        valid = self.open_sketches.is_valid(streams)
        parts = []
        if valid.any():
            at = np.flatnonzero(valid)
            got = self.open_sketches.peek(streams[at])
            parts.append(sk.Bins(at[got.group], got.slot, got.count))
        if not valid.all():
            at = np.flatnonzero(~valid)
            _, got = self._from_input(streams[at], self.open_bucket[streams[at]], False,
                                      np.ones(len(at), bool))
            parts.append(sk.Bins(at[got.group], got.slot, got.count))
        return streams, sk.concat_bins(parts)

    def _read_pairs(self, read: ReadRows, sources: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                    shift: int = 0) -> tuple[np.ndarray, Rows]:
        """Rows of ``read`` for many queries (source id, [lo, hi]) with few reads.

        Row times are compared as ``ts >> shift`` (sketch keys carry their bucket above the
        slot bits). Returns (query index of each row, rows), grouped by query in query order,
        time-ordered within a query.
        """
        n = len(sources)
        assert n > 0, "BUG: no queries"
        order = np.argsort(lo, kind="stable")
        run_hi = np.maximum.accumulate(hi[order])
        new = np.ones(n, bool)
        new[1:] = lo[order][1:] > run_hi[:-1] + 1
        cuts = np.flatnonzero(new).tolist() + [n]
        clusters: list[tuple[int, int]] = []  # [a, b) ranges of ``order``
        c_start = c_end = 0
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            start, end = int(lo[order[a]]), int(run_hi[b - 1])
            if clusters and start - c_end <= _GAP_FACTOR * (c_end - c_start + 1):
                clusters[-1] = (clusters[-1][0], b)
                c_end = max(c_end, end)
            else:
                clusters.append((a, b))
                c_start, c_end = start, end
        q_parts, row_parts = [], []
        for a, b in clusters:
            q = np.sort(order[a:b])
            c_lo, c_hi = int(lo[q].min()), int(hi[q].max())
            span = c_hi - c_lo + 1
            sids = np.unique(sources[q])
            # rank * span + offset must fit an int64: split very long, very wide clusters.
            per_read = max(1, (2**62) // span)
            for k in range(0, len(sids), per_read):
                chunk = sids[k : k + per_read]
                sub = q if len(chunk) == len(sids) else \
                    q[np.isin(sources[q], chunk)]
                rows = read(chunk.astype(np.int32), c_lo << shift,
                            (c_hi << shift) + ((1 << shift) - 1))
                rank_rows = np.searchsorted(chunk, rows.sids).astype(np.int64)
                comp = rank_rows * span + ((rows.ts >> shift) - c_lo)
                base = np.searchsorted(chunk, sources[sub]).astype(np.int64) * span
                start = np.searchsorted(comp, base + (lo[sub] - c_lo), "left")
                stop = np.searchsorted(comp, base + (hi[sub] - c_lo), "right")
                q_parts.append(np.repeat(sub, stop - start))
                row_parts.append(rows.take(ranges_to_index(start, stop)))
        qi = np.concatenate(q_parts)
        rows = concat(row_parts, tuple(row_parts[0].columns))
        if len(q_parts) > 1:
            o = np.argsort(qi, kind="stable")
            qi, rows = qi[o], rows.take(o)
        return qi, rows

    # -- checkpoint -------------------------------------------------------------------------
    def snapshot(self) -> dict[str, np.ndarray]:
        """Open buckets and the stream topology (a stream may outlive its own rules while
        coarser streams read it)."""
        n = len(self.keys)  # arrays have spare capacity beyond the streams
        out = {"open_bucket": self.open_bucket[:n]}
        out.update({f"open_{k}": v[:n] for k, v in self.open.items()})
        keys = [k or StreamKey(0, False, 1, 0) for k in self.keys]
        out["key_alive"] = self.alive[:n].copy()
        out["key_source"] = np.array([k.source for k in keys], np.int64)
        out["key_from_stream"] = np.array([k.from_stream for k in keys], bool)
        out["key_bucket_ms"] = np.array([k.bucket_ms for k in keys], np.int64)
        out["key_align_ms"] = np.array([k.align_ms for k in keys], np.int64)
        return out

    def restore(self, snap: dict[str, np.ndarray]) -> None:
        """Restores a snapshot: streams not restored by their rules, and open buckets. Ids up
        to the checkpoint's stream count stay reserved."""
        n = len(snap["open_bucket"])
        self._grow(n)
        if "key_alive" in snap:
            known = np.array([k is not None for k in self.keys[:n]] + [False] * (n - len(
                self.keys[:n])), bool)
            for i in np.flatnonzero(snap["key_alive"][:n] & ~known).tolist():
                key = StreamKey(int(snap["key_source"][i]), bool(snap["key_from_stream"][i]),
                                int(snap["key_bucket_ms"][i]), int(snap["key_align_ms"][i]))
                got, _ = self.ensure(key, None if self.keys[i] is not None else i)
                assert got == i, "BUG: stream restored under another id"
        self.open_bucket[:n] = snap["open_bucket"]
        for k in st.STATE_COLUMNS:
            self.open[k][:n] = snap[f"open_{k}"]


def _bin_rows(stream: np.ndarray, bucket: np.ndarray, bins: sk.Bins) -> Rows:
    """Sketch-table rows of bins numbered by pair (index into stream / bucket)."""
    return Rows(stream[bins.group].astype(np.int32), sk.pack(bucket[bins.group], bins.slot),
                {"count": bins.count})


def _scatter(out: st.States, idx: np.ndarray, rows: st.States) -> None:
    for name in st.STATE_COLUMNS:
        out[name][idx] = rows[name]


def _group_index(starts: np.ndarray, n: int) -> np.ndarray:
    """Group number of each of ``n`` rows given the groups' start rows."""
    flags = np.zeros(n, np.int64)
    flags[starts[1:]] = 1
    return np.cumsum(flags)


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
