"""An LSM table of rows keyed (sid, ts): head batches → sorted parts → blocks.

Raw samples and rollup states are both stored in a Table; only their value columns differ.
A newer row for the same (sid, ts) replaces an older one ("last write wins"): duplicate
policies are resolved before rows reach the table (see ``head_append``), so the table itself
never needs to know them. Age order is: blocks (oldest first) < parts < unsorted batches.

Not thread-safe on its own: the database serialises writers and swaps parts under its lock;
parts and blocks are immutable once listed, so readers never see a half-built structure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .block import BlockMeta

Columns = dict[str, np.ndarray]

# Unsorted rows kept before they are sorted into a part: small enough that a query's
# linear scan of them costs well under a millisecond, big enough to amortise the sort.
FREEZE_ROWS = 131_072
# Sorted parts are merged in the background (see ``plan_part_merge``) once there are more
# than this: each part costs a query ~10 µs of binary searches.
MERGE_PARTS_ABOVE = 8
# Parts merged at once: wide enough that a row is re-sorted only a few times before its flush.
PART_MERGE_WIDTH = 8
# Without background merges (``background=False``), the writer merges inline beyond this.
MAX_PARTS = 96


@dataclass(frozen=True, slots=True)
class Rows:
    """Rows sorted by (sid, ts); columns share the same length."""

    sids: np.ndarray
    ts: np.ndarray
    columns: Columns = field(default_factory=dict)
    # (min ts, max ts) of a head part, noted once so that reads skip parts outside their
    # window (a part is sorted by sid first, so its time bounds are not at its ends).
    bounds: tuple[int, int] | None = field(default=None, compare=False)

    def __len__(self) -> int:
        return len(self.ts)

    def slice(self, start: int, stop: int) -> Rows:
        """Rows [start, stop) as views."""
        return Rows(self.sids[start:stop], self.ts[start:stop],
                    {k: v[start:stop] for k, v in self.columns.items()})

    def take(self, idx: np.ndarray) -> Rows:
        return Rows(self.sids[idx], self.ts[idx], {k: v[idx] for k, v in self.columns.items()})

    def with_bounds(self) -> Rows:
        """These rows with their time bounds noted (see ``bounds``)."""
        if len(self) == 0:
            return self
        return Rows(self.sids, self.ts, self.columns, (int(self.ts.min()), int(self.ts.max())))

    def outside(self, min_ts: int, max_ts: int) -> bool:
        """True when noted ``bounds`` show that no row lies in [min_ts, max_ts]."""
        return self.bounds is not None and (self.bounds[1] < min_ts or self.bounds[0] > max_ts)


def concat(chunks: Sequence[Rows], names: Sequence[str]) -> Rows:
    if len(chunks) == 1:
        return chunks[0]
    if not chunks:
        return Rows(np.empty(0, np.int32), np.empty(0, np.int64),
                    {n: np.empty(0) for n in names})
    return Rows(
        np.concatenate([c.sids for c in chunks]),
        np.concatenate([c.ts for c in chunks]),
        {n: np.concatenate([c.columns[n] for c in chunks]) for n in names},
    )


def sort_dedup(rows: Rows) -> Rows:
    """Sort by (sid, ts), keeping the last of equal keys (rows are given oldest first)."""
    n = len(rows)
    if n == 0:
        return rows
    ts_span = int(rows.ts.max()) - int(rows.ts.min()) if n else 0
    if ts_span < 2**40 and int(rows.sids.max()) < 2**23:
        # One int64 key sorts ~5x faster than lexsort; stable keeps arrival order for ties.
        key = (rows.sids.astype(np.int64) << 40) | (rows.ts - rows.ts.min())
        order = np.argsort(key, kind="stable")
        keep = last_of_runs(key[order])
    else:
        order = np.lexsort((rows.ts, rows.sids))
        s, t = rows.sids[order], rows.ts[order]
        keep = np.empty(n, bool)
        keep[-1] = True
        keep[:-1] = (s[1:] != s[:-1]) | (t[1:] != t[:-1])
    if keep.all() and (order[1:] >= order[:-1]).all():
        return rows
    return rows.take(order[keep])


def merge_sorted(chunks: Sequence[Rows], names: Sequence[str]) -> Rows:
    """Merges chunks sorted by (sid, ts), oldest first, into one; newer rows win ties.

    In the common case each series' rows of a newer chunk all come after its rows of the
    older ones (in-order ingestion, time-partitioned blocks): then the merged order is each
    series' segments laid end to end, found with binary searches instead of a sort.
    """
    chunks = [c for c in chunks if len(c)]
    if len(chunks) <= 1:
        return chunks[0] if chunks else concat([], names)
    sids = np.unique(np.concatenate([c.sids[np.r_[0, np.flatnonzero(np.diff(c.sids)) + 1]]
                                     for c in chunks]))
    lo = np.stack([c.sids.searchsorted(sids, "left") for c in chunks])  # chunk × sid
    hi = np.stack([c.sids.searchsorted(sids, "right") for c in chunks])
    has = hi > lo
    first = np.stack([c.ts[np.minimum(a, len(c) - 1)] for c, a in zip(chunks, lo, strict=True)])
    last = np.stack([c.ts[np.maximum(b - 1, 0)] for c, b in zip(chunks, hi, strict=True)])
    last = np.maximum.accumulate(np.where(has, last, np.iinfo(np.int64).min), axis=0)
    if (has[1:] & (first[1:] <= last[:-1])).any():  # series overlap in time: sort
        return sort_dedup(concat(chunks, names))
    offsets = np.cumsum([0] + [len(c) for c in chunks[:-1]])[:, None]
    order = ranges_to_index((lo + offsets).T.ravel(), (hi + offsets).T.ravel())
    return concat(chunks, names).take(order)


def last_of_runs(key: np.ndarray) -> np.ndarray:
    """Mask of the last element of each run of equal values in ``key`` (not empty)."""
    keep = np.empty(len(key), bool)
    keep[-1] = True
    np.not_equal(key[1:], key[:-1], out=keep[:-1])
    return keep


def ranges_to_index(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, e) for each pair, without a Python loop."""
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, np.int64)
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return np.arange(total, dtype=np.int64) + offsets


def select_sorted(rows: Rows, sids: np.ndarray | None, min_ts: int, max_ts: int) -> Rows:
    """Rows of ``sids`` (sorted unique, None = all) with min_ts <= ts <= max_ts."""
    if len(rows) == 0:
        return rows
    if sids is None:
        mask = (rows.ts >= min_ts) & (rows.ts <= max_ts)
        return rows if mask.all() else rows.take(np.flatnonzero(mask))
    if len(sids) == 1:  # slices are views: no index arrays, no copies
        sid = sids[0]
        lo = int(rows.sids.searchsorted(sid, "left"))
        hi = int(rows.sids.searchsorted(sid, "right"))
        if lo == hi:
            return rows.slice(0, 0)
        seg = rows.ts[lo:hi]
        a = lo + int(seg.searchsorted(min_ts, "left"))
        b = lo + int(seg.searchsorted(max_ts, "right"))
        return rows.slice(a, b)
    starts = np.searchsorted(rows.sids, sids, side="left")
    ends = np.searchsorted(rows.sids, sids, side="right")
    if int((ends - starts).sum()) == len(rows):  # every row is wanted: no gather
        return select_sorted(rows, None, min_ts, max_ts)
    # Narrow each series' segment to the time window before gathering: a lookup of a few
    # timestamps in long segments touches a few rows, not whole segments.
    first = segment_search(rows.ts, starts, ends, min_ts, "left")
    last = segment_search(rows.ts, first, ends, max_ts, "right")
    return rows.take(ranges_to_index(first, last))


def segment_search(values: np.ndarray, starts: np.ndarray, ends: np.ndarray, x: int,
                   side: str) -> np.ndarray:
    """``searchsorted(values[s:e], x, side) + s`` for every segment at once (each sorted).

    A vectorised bisection: one step for all segments per halving of the longest one.
    """
    lo, hi = starts.astype(np.int64), ends.astype(np.int64)
    if len(values) == 0:
        return lo
    below = np.less if side == "left" else np.less_equal
    for _ in range(int((hi - lo).max(initial=0)).bit_length()):
        active = lo < hi
        mid = (lo + hi) >> 1
        go_right = below(values[np.where(active, mid, 0)], x)
        lo = np.where(active & go_right, mid + 1, lo)
        hi = np.where(active & ~go_right, mid, hi)
    return lo


class Table:
    """One shard's rows of one kind (raw samples or rollup states).

    Args:
        names: the value columns (e.g. ``("value",)``) with their dtypes.
        cache: shared decoded row-group cache of the blocks.
    """

    def __init__(self, dtypes: dict[str, np.dtype], cache: Any = None) -> None:
        self.dtypes = dtypes
        self.names = tuple(dtypes)
        self.cache = cache
        # Unsorted head rows live in one preallocated buffer: an append is a copy, a query
        # one vectorised scan (a list of batches cost a scan each).
        self._buf = Rows(np.empty(FREEZE_ROWS, np.int32), np.empty(FREEZE_ROWS, np.int64),
                         {n: np.empty(FREEZE_ROWS, d) for n, d in dtypes.items()})
        self.unsorted_rows = 0
        self.parts: list[Rows] = []
        self.flushing: list[Rows] = []  # frozen parts being written to a block
        self.blocks: list[BlockMeta] = []

    # -- write path -------------------------------------------------------------------------
    def append(self, rows: Rows) -> None:
        """Adds rows (any order); they win over every older row with the same key."""
        n = len(rows)
        if n == 0:
            return
        if self.unsorted_rows + n > FREEZE_ROWS:
            self.freeze()
        if n >= FREEZE_ROWS:  # a huge batch becomes a part of its own
            self.parts.append(_owned(sort_dedup(rows), rows))
            self._merge_if_too_many()
            return
        a, b = self.unsorted_rows, self.unsorted_rows + n
        self._buf.sids[a:b] = rows.sids
        self._buf.ts[a:b] = rows.ts
        for name in self.names:
            self._buf.columns[name][a:b] = rows.columns[name]
        self.unsorted_rows = b

    @property
    def unsorted(self) -> Rows:
        """The unsorted head rows (views of the buffer: valid until the next append)."""
        return self._buf.slice(0, self.unsorted_rows)

    def freeze(self) -> None:
        """Sorts the unsorted rows into a part (and merges parts if there are too many)."""
        if self.unsorted_rows:
            buffered = self.unsorted
            self.parts.append(_owned(sort_dedup(buffered), buffered).with_bounds())
            self.unsorted_rows = 0
        self._merge_if_too_many()

    def _merge_if_too_many(self) -> None:
        if len(self.parts) > MAX_PARTS:
            self.parts = [sort_dedup(concat(self.parts, self.names)).with_bounds()]

    def plan_part_merge(self) -> list[Rows] | None:
        """Adjacent parts worth merging (the run of ``PART_MERGE_WIDTH`` with fewest rows).

        Merge them outside the lock with ``merge_parts`` and swap with ``swap_parts``.
        """
        if len(self.parts) <= MERGE_PARTS_ABOVE:
            return None
        rows = np.array([len(p) for p in self.parts], np.int64)
        window = np.convolve(rows, np.ones(PART_MERGE_WIDTH, np.int64), "valid")
        start = int(np.argmin(window))
        return self.parts[start:start + PART_MERGE_WIDTH]

    def merge_parts(self, run: list[Rows]) -> Rows:
        """Pure: one sorted part from a run of adjacent parts (oldest first)."""
        return sort_dedup(concat(run, self.names)).with_bounds()

    def swap_parts(self, run: list[Rows], merged: Rows) -> bool:
        """Replaces ``run`` by ``merged`` if the run is still listed (a flush may have taken it)."""
        for i in range(len(self.parts) - len(run) + 1):
            if all(a is b for a, b in zip(self.parts[i:i + len(run)], run, strict=True)):
                self.parts[i:i + len(run)] = [merged]
                return True
        return False

    def memory_rows(self) -> int:
        flushing = sum(len(p) for p in self.flushing)
        return self.unsorted_rows + sum(len(p) for p in self.parts) + flushing

    def memory_bytes(self) -> int:
        return self.memory_rows() * self._row_bytes()

    def _row_bytes(self) -> int:
        return 4 + 8 + sum(np.dtype(d).itemsize for d in self.dtypes.values())

    def footprint(self, sid: int) -> tuple[int, int]:
        """Bytes of one series: in memory (its head rows), and on disk (each block's size
        shared out by rows, since a block compresses many series together)."""
        rows = int(np.count_nonzero(self._buf.sids[: self.unsorted_rows] == sid))
        for part in self.parts + self.flushing:
            rows += int(np.searchsorted(part.sids, sid, "right")
                        - np.searchsorted(part.sids, sid, "left"))
        disk = 0.0
        for b in self.blocks:
            lo, hi = np.searchsorted(b.index_sids, [sid, sid + 1])
            mine = int((b.index_end[lo:hi] - b.index_start[lo:hi]).sum())
            disk += b.size_bytes * mine / max(b.rows, 1)
        return rows * self._row_bytes(), round(disk)

    def snapshot_memory(self) -> list[Rows]:
        """Moves all in-memory rows to ``flushing`` and returns them (parts, oldest first).

        Fast enough for the lock: only the unsorted rows are sorted here; the caller merges
        the parts (``merge_parts``) outside it. Later appends start new parts; ``replace``
        swaps the flushed parts for their block. One flush at a time.
        """
        assert not self.flushing, "BUG: a flush is already in progress"
        self.freeze()
        self.flushing, self.parts = self.parts, []
        return self.flushing

    def abort_flush(self, flushed: list[Rows]) -> None:
        """A flush failed: its parts become the oldest in-memory parts again."""
        assert flushed is self.flushing
        self.parts = self.flushing + self.parts
        self.flushing = []

    def replace(self, flushed: list[Rows], new_block: BlockMeta | None) -> None:
        """After a flush: drops the flushed parts and lists their block (under the db lock)."""
        assert flushed is self.flushing
        if new_block is not None:
            self.blocks.append(new_block)
        self.flushing = []

    # -- read path --------------------------------------------------------------------------
    def read(
        self,
        sids: np.ndarray | None,
        min_ts: int,
        max_ts: int,
        columns: Sequence[str] | None = None,
    ) -> Rows:
        """Current rows of ``sids`` (sorted unique int32; None = all) in [min_ts, max_ts].

        The result is sorted by (sid, ts) with one row per key (the newest version).
        """
        names = tuple(columns) if columns is not None else self.names
        if sids is not None and len(sids) == 1:
            return _read_one(self, int(sids[0]), min_ts, max_ts, names)
        chunks: list[Rows] = []
        if self.blocks:
            from . import block
        for meta in self.blocks:
            if meta.max_ts < min_ts or meta.min_ts > max_ts:
                continue
            s, t, cols = block.read(meta, sids, min_ts, max_ts, names, cache=self.cache)
            if len(t):
                chunks.append(Rows(s, t, cols))
        for p in self.flushing + self.parts:
            if p.outside(min_ts, max_ts):
                continue
            got = select_sorted(_project(p, names), sids, min_ts, max_ts)
            if len(got):
                chunks.append(got)
        if self.unsorted_rows:
            u = _project(self.unsorted, names)
            mask = (u.ts >= min_ts) & (u.ts <= max_ts)
            if sids is None:
                pass
            elif len(sids) == 0:
                mask[:] = False
            elif len(sids) == 1:
                mask &= u.sids == sids[0]
            else:  # a lookup table beats np.isin's sort on a buffer this size
                wanted = np.zeros(int(max(sids[-1], u.sids.max())) + 1, bool)
                wanted[sids] = True
                mask &= wanted[u.sids]
            if mask.any():
                chunks.append(sort_dedup(u.take(np.flatnonzero(mask))))
        return merge_sorted(chunks, names)


def _read_one(table: Table, sid: int, min_ts: int, max_ts: int, names: tuple[str, ...]) -> Rows:
    """``Table.read`` of one series: the hot path of TS.RANGE on a key.

    The general read pays per chunk for a multi-series merge (unique sids, stacked searches)
    and masks the whole unsorted buffer twice; one series needs a binary search per part, a
    scan of the buffer's sid column, and, when its pieces follow each other in time (in-order
    ingestion), one concatenation.
    """
    pieces: list[tuple[np.ndarray, Columns]] = []  # oldest first
    if table.blocks:
        from . import block
        want = np.array([sid], np.int32)
        for meta in table.blocks:
            if meta.max_ts >= min_ts and meta.min_ts <= max_ts:
                _, t, cols = block.read(meta, want, min_ts, max_ts, names, cache=table.cache)
                if len(t):
                    pieces.append((t, cols))
    bounds = np.array([min_ts, max_ts + 1], np.int64)
    around = np.array([sid, sid + 1], np.int32)
    for parts in (table.flushing, table.parts):
        for p in parts:
            if p.outside(min_ts, max_ts):
                continue
            lo, hi = p.sids.searchsorted(around).tolist()
            if lo == hi:
                continue
            t = p.ts
            if t[lo] > max_ts or t[hi - 1] < min_ts:
                continue
            a, b = (p.ts[lo:hi].searchsorted(bounds) + lo).tolist()
            if a < b:
                pieces.append((t[a:b], {n: p.columns[n][a:b] for n in names}))
    if table.unsorted_rows:
        n = table.unsorted_rows
        buf = table._buf
        idx = np.flatnonzero(buf.sids[:n] == sid)
        if len(idx):
            t = buf.ts[idx]
            idx = idx[(t >= min_ts) & (t <= max_ts)]
        if len(idx):  # arrival order: sort by ts, the newest of equal timestamps wins
            t = buf.ts[idx]
            order = np.argsort(t, kind="stable")
            idx = idx[order[last_of_runs(t[order])]]
            pieces.append((buf.ts[idx], {n_: buf.columns[n_][idx] for n_ in names}))
    return _one_series(sid, pieces, names, table.dtypes)


def _one_series(sid: int, pieces: list[tuple[np.ndarray, Columns]], names: tuple[str, ...],
                dtypes: dict[str, np.dtype]) -> Rows:
    """One series' sorted pieces (oldest first) as Rows; newer pieces win equal timestamps."""
    if not pieces:
        return Rows(np.empty(0, np.int32), np.empty(0, np.int64),
                    {n: np.empty(0, dtypes[n]) for n in names})
    if len(pieces) == 1:
        ts, cols = pieces[0]
    elif all(int(b[0][0]) > int(a[0][-1]) for a, b in zip(pieces[:-1], pieces[1:], strict=True)):
        ts = np.concatenate([p[0] for p in pieces])
        cols = {n: np.concatenate([p[1][n] for p in pieces]) for n in names}
    else:  # pieces overlap in time: stable sort by ts keeps age order among equals
        ts = np.concatenate([p[0] for p in pieces])
        order = np.argsort(ts, kind="stable")
        ts = ts[order]
        keep = last_of_runs(ts)
        order, ts = order[keep], ts[keep]
        cols = {n: np.concatenate([p[1][n] for p in pieces])[order] for n in names}
    return Rows(np.full(len(ts), sid, np.int32), ts, cols)


def _owned(result: Rows, source: Rows) -> Rows:
    """``result`` of a pure function of ``source``, copied if it is ``source`` itself."""
    if result is not source:
        return result
    return Rows(source.sids.copy(), source.ts.copy(),
                {k: v.copy() for k, v in source.columns.items()})


def _project(rows: Rows, names: tuple[str, ...]) -> Rows:
    if tuple(rows.columns) == names:
        return rows
    return Rows(rows.sids, rows.ts, {n: rows.columns[n] for n in names})
