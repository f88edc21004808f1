"""Block merging and retention (background): what to merge is a pure function.

Blocks of a table are kept in age order. ``plan`` picks a run of adjacent blocks to merge
(adjacent, so "newest write wins" still holds between the merged block and its neighbours);
``merge`` reads the run, keeps the newest version of each key and drops what no reader can
see any more: rows of deleted series, rows older than their series' retention cutoff and,
when the run starts at the oldest block, deletion markers (nothing older remains for them to
hide). ``expired`` lists blocks that retention drops whole, without reading them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from . import block
from .block import BlockMeta
from .table import Rows, concat, sort_dedup

# Merge when a table has more blocks than this: each block costs every query a lookup.
MAX_BLOCKS = 6
# Blocks merged at once; more means fewer rewrites of the same rows, but more memory.
MERGE_WIDTH = 4
# A merged block never exceeds this many rows, which bounds the merge's memory (~20 B/row).
MAX_MERGE_ROWS = 40_000_000


def plan(blocks: Sequence[BlockMeta]) -> tuple[int, int] | None:
    """The [start, end) run of blocks to merge next, or None.

    Picks the run of ``MERGE_WIDTH`` adjacent blocks with the fewest rows, so small recent
    blocks merge first and big old ones are rewritten rarely (size-tiered, as LSM stores do).
    """
    if len(blocks) <= MAX_BLOCKS:
        return None
    rows = np.array([b.rows for b in blocks], np.int64)
    window = np.convolve(rows, np.ones(MERGE_WIDTH, np.int64), "valid")
    start = int(np.argmin(window))
    if window[start] > MAX_MERGE_ROWS:
        return None
    return start, start + MERGE_WIDTH


def merge(run: Sequence[BlockMeta], names: tuple[str, ...], *, drop_markers: bool,
          visible: Callable[[Rows], np.ndarray], marker: Callable[[Rows], np.ndarray]) -> Rows:
    """Reads a run of blocks (oldest first) into one deduplicated, filtered Rows."""
    chunks = []
    for meta in run:
        s, t, cols = block.read(meta, None, 0, 2**62, names)
        chunks.append(Rows(s, t, cols))
    rows = sort_dedup(concat(chunks, names))
    keep = visible(rows)
    if drop_markers:
        keep &= ~marker(rows)
    return rows if keep.all() else rows.take(np.flatnonzero(keep))


def expired(blocks: Sequence[BlockMeta], cutoff: np.ndarray, alive: np.ndarray) -> list[int]:
    """Indexes of blocks whose every series is dead or entirely older than its cutoff.

    Args:
        cutoff: per-sid oldest visible timestamp (0 = keep everything).
        alive: per-sid liveness.
    """
    out = []
    for i, meta in enumerate(blocks):
        sids = meta.index_sids.astype(np.int64)
        inside = sids < len(alive)
        live = np.zeros(len(sids), bool)
        live[inside] = alive[sids[inside]]
        keep = live.copy()
        keep[live] = meta.index_max_ts[live] >= cutoff[sids[live]]
        if not keep.any():
            out.append(i)
    return out
