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
# Sorted parts kept before they are merged into one: each costs a binary search per query.
MAX_PARTS = 16


@dataclass(frozen=True, slots=True)
class Rows:
    """Rows sorted by (sid, ts); columns share the same length."""

    sids: np.ndarray
    ts: np.ndarray
    columns: Columns = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, idx: np.ndarray) -> Rows:
        return Rows(self.sids[idx], self.ts[idx], {k: v[idx] for k, v in self.columns.items()})


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
        key = key[order]
        keep = np.empty(n, bool)
        keep[-1] = True
        np.not_equal(key[1:], key[:-1], out=keep[:-1])
    else:
        order = np.lexsort((rows.ts, rows.sids))
        s, t = rows.sids[order], rows.ts[order]
        keep = np.empty(n, bool)
        keep[-1] = True
        keep[:-1] = (s[1:] != s[:-1]) | (t[1:] != t[:-1])
    if keep.all() and (order[1:] >= order[:-1]).all():
        return rows
    return rows.take(order[keep])


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
    if len(sids) == 1:
        lo, hi = np.searchsorted(rows.sids, [sids[0], sids[0] + 1])
        seg = rows.ts[lo:hi]
        a = np.searchsorted(seg, min_ts, "left")
        b = np.searchsorted(seg, max_ts, "right")
        return rows.take(np.arange(lo + a, lo + b))
    starts = np.searchsorted(rows.sids, sids, side="left")
    ends = np.searchsorted(rows.sids, sids, side="right")
    idx = ranges_to_index(starts, ends)
    ts = rows.ts[idx]
    return rows.take(idx[(ts >= min_ts) & (ts <= max_ts)])


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
        self.unsorted: list[Rows] = []
        self.unsorted_rows = 0
        self.parts: list[Rows] = []
        self.flushing: Rows | None = None  # frozen rows being written to a block
        self.blocks: list[BlockMeta] = []

    # -- write path -------------------------------------------------------------------------
    def append(self, rows: Rows) -> None:
        """Adds rows (any order); they win over every older row with the same key."""
        if len(rows) == 0:
            return
        self.unsorted.append(rows)
        self.unsorted_rows += len(rows)
        if self.unsorted_rows >= FREEZE_ROWS:
            self.freeze()

    def freeze(self) -> None:
        """Sorts the unsorted batches into a part (and merges parts when there are many)."""
        if self.unsorted:
            self.parts.append(sort_dedup(concat(self.unsorted, self.names)))
            self.unsorted, self.unsorted_rows = [], 0
        if len(self.parts) > MAX_PARTS:
            self.parts = [sort_dedup(concat(self.parts, self.names))]

    def memory_rows(self) -> int:
        flushing = len(self.flushing) if self.flushing is not None else 0
        return self.unsorted_rows + sum(len(p) for p in self.parts) + flushing

    def memory_bytes(self) -> int:
        per_row = 4 + 8 + sum(np.dtype(d).itemsize for d in self.dtypes.values())
        return self.memory_rows() * per_row

    def snapshot_memory(self) -> Rows:
        """Moves all in-memory rows into one sorted ``flushing`` part and returns it.

        Later appends start new parts; ``replace`` swaps the part for its block. One flush
        at a time.
        """
        assert self.flushing is None, "BUG: a flush is already in progress"
        self.freeze()
        self.flushing = sort_dedup(concat(self.parts, self.names))
        self.parts = []
        return self.flushing

    def replace(self, flushed: Rows, new_block: BlockMeta | None) -> None:
        """After a flush: drops the flushed part and lists its block (under the db lock)."""
        assert flushed is self.flushing
        if new_block is not None:
            self.blocks.append(new_block)
        self.flushing = None

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
        chunks: list[Rows] = []
        if self.blocks:
            from . import block
        for meta in self.blocks:
            if meta.max_ts < min_ts or meta.min_ts > max_ts:
                continue
            s, t, cols = block.read(meta, sids, min_ts, max_ts, names, cache=self.cache)
            if len(t):
                chunks.append(Rows(s, t, cols))
        for p in ([self.flushing] if self.flushing is not None else []) + self.parts:
            got = select_sorted(_project(p, names), sids, min_ts, max_ts)
            if len(got):
                chunks.append(got)
        for u in self.unsorted:
            mask = (u.ts >= min_ts) & (u.ts <= max_ts)
            if sids is not None:
                mask &= np.isin(u.sids, sids)
            if mask.any():
                chunks.append(_project(u, names).take(np.flatnonzero(mask)))
        if len(chunks) == 1 and chunks[0] is not None and not self.unsorted:
            return chunks[0]
        return sort_dedup(concat(chunks, names))


def _project(rows: Rows, names: tuple[str, ...]) -> Rows:
    if tuple(rows.columns) == names:
        return rows
    return Rows(rows.sids, rows.ts, {n: rows.columns[n] for n in names})
