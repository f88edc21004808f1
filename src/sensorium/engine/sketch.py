"""DDSketch bins of rollup buckets: value → bin, merging, quantiles (downsampling, read path).

Each bucket of a rollup stream that feeds a percentile keeps a DDSketch (Masson, Rim and Lee,
VLDB 2019) with relative accuracy ``RELATIVE_ACCURACY``: a value ``v > 0`` goes to bin
``key(v) = ceil(log_γ v)``, negatives to a second store by ``key(-v)``, values too small to
index to a zero count, and a bin reports ``2 γ^key / (1 + γ)``, within ``RELATIVE_ACCURACY``
of every value it holds. The mapping is the ``ddsketch`` package's ``LogarithmicMapping``, so
keys and quantiles equal the library's bit for bit (``tests/engine/test_sketch.py``), but they
are computed with numpy over whole batches: there is no Python object per bucket.

**Slots.** The two stores and the zero count are folded into one integer *slot* ordered by
value::

    v < -MIN_INDEXABLE         slot = ZERO_SLOT - (key(-v) + KEY_BIAS)    (0 < slot < ZERO_SLOT)
    |v| <= MIN_INDEXABLE       slot = ZERO_SLOT
    v > MIN_INDEXABLE          slot = ZERO_SLOT + (key(v) + KEY_BIAS)     (ZERO_SLOT < slot < SLOTS)

so a quantile is one cumulative count over slots in ascending order (the library's
negative-store walk with ``lower=False`` is the same search, mirrored). Merging sketches is
summing counts of equal slots.

**Storage.** A *sketch table* is a ``Table`` with one row per non-empty bin, keyed
``sid = stream``, ``ts = bucket_start * 2**SLOT_BITS + slot`` (``pack``), with an int64
``count`` column: rows sort by (stream, bucket, slot), a bucket range is a key range, and a
bucket rewritten by a late write replaces its bins (count 0 rows mark bins that vanished,
as in the rollup table). Bucket starts must lie in ``[-2**44, 2**44)`` ms (year 2527).

**Open buckets.** ``OpenSketches`` keeps the sketch of each sketched stream's open bucket
as it fills: a dense window of ``OPEN_WINDOW`` slot counts per stream centred on the bucket's
first value, plus a list of the rare values outside it. Adding a batch is one scatter-add;
closing a bucket reads its window. It is not checkpointed: after a restart a stream's open
sketch is "not valid" and its bucket's sketch is computed from the input when it closes.

Functions and constants are pure and thread-safe; an ``OpenSketches`` is guarded by the
database lock like the rest of the rollup state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from ddsketch.mapping import LogarithmicMapping

RELATIVE_ACCURACY = 0.01
MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
# log_γ(v) = log2(v) · _MULTIPLIER, computed with the library's operations in its order
# (``LogarithmicMapping._log_gamma``: ``math.log(v, 2) * multiplier``) so keys are identical.
_MULTIPLIER = 1.0 / math.log1p(2 * RELATIVE_ACCURACY / (1 - RELATIVE_ACCURACY)) * math.log(2)
_LN2 = math.log(2.0)
MIN_INDEXABLE = MAPPING.min_possible
# |key| stays below 35 500 for every finite double at 1 %: the bias keeps slots positive.
KEY_BIAS = 40_000
ZERO_SLOT = 2 * KEY_BIAS
SLOTS = 2 * ZERO_SLOT + 1
SLOT_BITS = 18  # 2**18 > SLOTS
SLOT_MASK = (1 << SLOT_BITS) - 1
# numpy's log may differ from libm's by an ulp; keys whose log lies this close to an integer
# are recomputed with the library itself (a handful per million values, unique values only).
_NEAR_INTEGER = 1e-7

SKETCH_DTYPES = {"count": np.dtype(np.int64)}


@dataclass(frozen=True, slots=True)
class Bins:
    """Bins of many sketches: one row per non-empty (group, slot), sorted by (group, slot)."""

    group: np.ndarray  # int64 index of the sketch (bucket) a bin belongs to
    slot: np.ndarray  # int64
    count: np.ndarray  # int64, > 0

    def __len__(self) -> int:
        return len(self.count)

    @staticmethod
    def empty() -> Bins:
        return Bins(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64))


def slots_of(values: np.ndarray) -> np.ndarray:
    """The slot (int64) of every value; values must be finite."""
    values = np.asarray(values, np.float64)
    pos = values > MIN_INDEXABLE
    neg = values < -MIN_INDEXABLE
    out = np.full(len(values), ZERO_SLOT, np.int64)
    nz = pos | neg
    if not nz.any():
        return out
    mag = np.abs(values[nz])
    t = np.log(mag)
    t /= _LN2
    t *= _MULTIPLIER
    key = np.ceil(t)
    near = np.abs(t - np.rint(t)) < _NEAR_INTEGER
    if near.any():
        uniq, inv = np.unique(mag[near], return_inverse=True)
        exact = np.array([MAPPING.key(v) for v in uniq.tolist()], np.float64)
        key[near] = exact[inv]
    k = key.astype(np.int64) + KEY_BIAS
    out[nz] = np.where(pos[nz], ZERO_SLOT + k, ZERO_SLOT - k)
    return out


def values_of(slots: np.ndarray) -> np.ndarray:
    """The value a slot reports (the library's ``mapping.value``, negated for negatives)."""
    slots = np.asarray(slots, np.int64)
    uniq, inv = np.unique(slots, return_inverse=True)
    mags = np.array([MAPPING.value(abs(s - ZERO_SLOT) - KEY_BIAS) if s != ZERO_SLOT else 0.0
                     for s in uniq.tolist()], np.float64)
    return (np.sign(uniq - ZERO_SLOT) * mags)[inv].reshape(slots.shape)


def count_bins(group: np.ndarray, slot: np.ndarray, count: np.ndarray | None = None) -> Bins:
    """Sums ``count`` (default 1 each) per (group, slot): builds or merges sketches.

    Rows may come in any order (they are first sorted by group unless they are grouped, as
    samples of buckets are); each group's counts are then one bincount over its own slot
    range, or, for groups spanning far more slots than rows, a sort of (group, slot) keys.
    """
    group = np.asarray(group, np.int64)
    slot = np.asarray(slot, np.int64)
    n = len(group)
    if n == 0:
        return Bins.empty()
    weights = None if count is None else np.asarray(count, np.float64)
    if n > 1 and not bool((group[1:] >= group[:-1]).all()):
        order = np.argsort(group, kind="stable")  # an int sort, cheaper than a composite key
        group, slot = group[order], slot[order]
        weights = None if weights is None else weights[order]
    starts = np.flatnonzero(np.concatenate(([True], group[1:] != group[:-1])))
    lo = np.minimum.reduceat(slot, starts)
    width = np.maximum.reduceat(slot, starts) - lo + 1
    cells = int(width.sum())
    # Dense counting wins while the groups' slot ranges are not much wider than their rows
    # (sensor data: a few to a few dozen bins per bucket).
    if cells <= 4 * n + 4096:
        base = np.cumsum(width) - width
        sizes = np.diff(np.append(starts, n))
        cell = np.repeat(base - lo, sizes) + slot
        counts = np.bincount(cell, weights=weights, minlength=cells)
        nz = np.flatnonzero(counts)
        g = np.searchsorted(base, nz, "right") - 1
        return Bins(group[starts][g], nz - base[g] + lo[g], counts[nz].astype(np.int64))
    key = group * SLOTS + slot
    if weights is None:
        uk, c = np.unique(key, return_counts=True)
    else:
        uk, inv = np.unique(key, return_inverse=True)
        c = np.bincount(inv, weights=weights)
    c = np.asarray(c).astype(np.int64)
    keep = c > 0
    return Bins(uk[keep] // SLOTS, uk[keep] % SLOTS, c[keep])


def concat_bins(parts: list[Bins]) -> Bins:
    """Bins of disjoint group sets, re-sorted by (group, slot)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return Bins.empty()
    if len(parts) == 1:
        return parts[0]
    g = np.concatenate([p.group for p in parts])
    s = np.concatenate([p.slot for p in parts])
    c = np.concatenate([p.count for p in parts])
    order = np.lexsort((s, g))
    return Bins(g[order], s[order], c[order])


def quantiles(bins: Bins, n_groups: int, q: float, lo: np.ndarray | None = None,
              hi: np.ndarray | None = None) -> np.ndarray:
    """Quantile ``q`` in [0, 1] of each of ``n_groups`` sketches (NaN for an empty one).

    DDSketch's definition: the value of the bin holding the sample of rank
    ``floor(q · (n − 1))`` (0-based, ascending), within ``RELATIVE_ACCURACY`` of that
    sample. Given the exact ``lo``/``hi`` (min/max) of each group, p0 and p100 are those and
    other answers are clamped to them, as sketches-java's
    ``DDSketchWithExactSummaryStatistics`` does: clamping only moves an estimate towards the
    true value.
    """
    out = np.full(n_groups, np.nan)
    if len(bins) == 0:
        return out
    groups = np.arange(n_groups)
    first = np.searchsorted(bins.group, groups, "left")
    last = np.searchsorted(bins.group, groups, "right")
    has = last > first
    cum = np.cumsum(bins.count)
    fi, la = first[has], last[has]
    before = cum[fi] - bins.count[fi]
    total = cum[la - 1] - before
    # Counts below zero and at zero per group (slots ascend with the value).
    cum_neg = np.cumsum(np.where(bins.slot < ZERO_SLOT, bins.count, 0))
    cum_zero = np.cumsum(np.where(bins.slot == ZERO_SLOT, bins.count, 0))
    neg = cum_neg[la - 1] - (cum_neg[fi] - np.where(bins.slot[fi] < ZERO_SLOT,
                                                    bins.count[fi], 0))
    zero = cum_zero[la - 1] - (cum_zero[fi] - np.where(bins.slot[fi] == ZERO_SLOT,
                                                       bins.count[fi], 0))
    k = _rank_in_group(q, total, neg, zero)
    # The first bin whose cumulative count within the group reaches k + 1.
    idx = np.minimum(np.searchsorted(cum, before + k + 1, "left"), la - 1)
    got = values_of(bins.slot[idx])
    if lo is not None:
        got = np.asarray(lo)[has] if q == 0.0 else np.maximum(got, np.asarray(lo)[has])
    if hi is not None:
        got = np.asarray(hi)[has] if q == 1.0 else np.minimum(got, np.asarray(hi)[has])
    out[has] = got
    return out


def _rank_in_group(q: float, total: np.ndarray, neg: np.ndarray, zero: np.ndarray
                   ) -> np.ndarray:
    """0-based ascending rank of the sample quantile ``q`` picks, computed in floats the way
    the ``ddsketch`` library does (``get_quantile_value``: the negative side walks down from
    zero with ``running >= reversed_rank + 1``, the positive side up with
    ``running > rank``), so float rounding near an integer rank agrees with it too."""
    rank = q * (total - 1.0)
    with np.errstate(invalid="ignore"):
        from_top = np.ceil((neg - rank - 1.0) + 1.0)  # bins counted down from zero
        positive = np.floor(rank - zero - neg)
    return np.where(rank < neg, neg - from_top,
                    np.where(rank < zero + neg, neg, neg + zero + positive)).astype(np.int64)


def pack(bucket: np.ndarray, slot: np.ndarray) -> np.ndarray:
    """Sketch-table ``ts`` of bins: bucket start and slot in one sortable int64."""
    return (np.asarray(bucket, np.int64) << SLOT_BITS) + np.asarray(slot, np.int64)


def bucket_of_key(ts: np.ndarray) -> np.ndarray:
    return np.asarray(ts, np.int64) >> SLOT_BITS


def slot_of_key(ts: np.ndarray) -> np.ndarray:
    return np.asarray(ts, np.int64) & SLOT_MASK


# Slots kept densely per open bucket: ±32 slots is ×/÷ 1.9 around the bucket's first value,
# more than a sensor moves in a bucket; values beyond go to the overflow list.
OPEN_WINDOW = 64


class OpenSketches:
    """Sketches of the open buckets of sketched streams, updated in place (write path).

    Per stream: ``valid`` says whether the open sketch holds exactly the open bucket's
    samples. Streams are ``attach``-ed when they start keeping sketches.
    """

    def __init__(self) -> None:
        self.row = np.zeros(0, np.int64)  # per stream: its window row, -1 if none
        self.valid = np.zeros(0, bool)  # per stream
        self.base = np.zeros(0, np.int64)  # per row: slot of the window's first cell
        self.hist = np.zeros((0, OPEN_WINDOW), np.int32)
        self._free: list[int] = []
        # Values outside their window: (stream, slot, count) chunks.
        self._over: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def _grow(self, streams: int) -> None:
        if streams > len(self.row):
            extra = max(streams - len(self.row), len(self.row) // 2, 16)
            self.row = np.append(self.row, np.full(extra, -1, np.int64))
            self.valid = np.append(self.valid, np.zeros(extra, bool))

    def attach(self, stream: int) -> None:
        self._grow(stream + 1)
        if self.row[stream] >= 0:
            return
        if not self._free:
            n = len(self.hist)
            extra = max(16, n // 2)
            self.hist = np.concatenate((self.hist, np.zeros((extra, OPEN_WINDOW), np.int32)))
            self.base = np.append(self.base, np.zeros(extra, np.int64))
            self._free = list(range(n + extra - 1, n - 1, -1))
        self.row[stream] = self._free.pop()
        self.valid[stream] = False

    def detach(self, stream: int) -> None:
        if stream < len(self.row) and self.row[stream] >= 0:
            self._clear(np.array([stream]))
            self._free.append(int(self.row[stream]))
            self.row[stream] = -1
            self.valid[stream] = False

    def invalidate(self, streams: np.ndarray) -> None:
        streams = np.asarray(streams, np.int64)
        streams = streams[streams < len(self.row)]
        self.valid[streams] = False

    def is_valid(self, streams: np.ndarray) -> np.ndarray:
        streams = np.asarray(streams, np.int64)
        inside = streams < len(self.row)
        return inside & self.valid[np.where(inside, streams, 0)] & (
            self.row[np.where(inside, streams, 0)] >= 0)

    def reset(self, streams: np.ndarray, bins: Bins) -> None:
        """Open sketches of ``streams`` (attached, unique) become ``bins`` (group = index in
        ``streams``; any order, repeats summed): a new or recomputed open bucket."""
        streams = np.asarray(streams, np.int64)
        if len(streams) == 0:
            return
        self._clear(streams)
        low = np.full(len(streams), ZERO_SLOT, np.int64)
        if len(bins):
            low[np.unique(bins.group)] = np.iinfo(np.int64).max
            np.minimum.at(low, bins.group, bins.slot)
        self.base[self.row[streams]] = low - OPEN_WINDOW // 4
        self.valid[streams] = True
        self.add(streams[bins.group], bins.slot, bins.count)

    def add(self, streams: np.ndarray, slots: np.ndarray, counts: np.ndarray | None = None
            ) -> None:
        """Adds values (as slots, with counts; default 1) to attached streams' open sketches."""
        if len(streams) == 0:
            return
        counts = np.ones(len(slots), np.int64) if counts is None else np.asarray(counts)
        r = self.row[streams]
        off = slots - self.base[r]
        inside = (off >= 0) & (off < OPEN_WINDOW)
        np.add.at(self.hist.reshape(-1), r[inside] * OPEN_WINDOW + off[inside],
                  counts[inside].astype(np.int32))
        if not inside.all():
            out = ~inside
            self._over.append((np.asarray(streams)[out].astype(np.int64),
                               np.asarray(slots)[out].astype(np.int64),
                               counts[out].astype(np.int64)))

    def peek(self, streams: np.ndarray) -> Bins:
        """Bins of the open sketches of ``streams`` (group = index in ``streams``)."""
        streams = np.asarray(streams, np.int64)
        rows = self.hist[self.row[streams]]
        g, off = np.nonzero(rows)
        group = [g]
        slot = [self.base[self.row[streams]][g] + off]
        count = [rows[g, off].astype(np.int64)]
        if not self._over:  # row-major nonzero: already sorted by (group, slot), unique
            return Bins(g.astype(np.int64), slot[0], count[0])
        os_, osl, oc = self._overflow()
        index = np.full(len(self.row), -1, np.int64)
        index[streams] = np.arange(len(streams))
        hit = index[os_] >= 0
        group.append(index[os_][hit])
        slot.append(osl[hit])
        count.append(oc[hit])
        return count_bins(np.concatenate(group), np.concatenate(slot), np.concatenate(count))

    def take(self, streams: np.ndarray) -> Bins:
        """``peek`` and empty the open sketches (their buckets close)."""
        bins = self.peek(streams)
        self._clear(np.asarray(streams, np.int64))
        return bins

    def _overflow(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if len(self._over) > 1:
            self._over = [tuple(np.concatenate(c) for c in zip(*self._over, strict=True))]
        return self._over[0]

    def _clear(self, streams: np.ndarray) -> None:
        self.hist[self.row[streams]] = 0
        self.valid[streams] = False
        if self._over:
            os_, osl, oc = self._overflow()
            keep = ~np.isin(os_, streams)
            self._over = [(os_[keep], osl[keep], oc[keep])] if keep.any() else []
