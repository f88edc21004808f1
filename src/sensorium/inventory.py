"""What a database holds: series, samples per tier, bytes on disk (read-only, no decoding).

``inventory(db)`` answers ``sensorium stats`` and ``GET /api/stats`` from storage metadata
only: block footers already in memory (rows and series ranges per block), the in-memory
head's row counts, the rules, and a walk of the directory for file sizes. It decodes no
sample, so it costs milliseconds for any database size.

Counts are *stored rows*: a raw sample overwritten after its block was written is counted
once per version until a merge drops the old one, and rows past retention count until their
block is dropped. A tier's rows are its stored bucket states (one per closed bucket; several
rules of the same bucket size on one source share them); the ``samples`` of a tier count
each destination series' buckets. Bytes per sample compare compressed raw blocks with
``RAW_SAMPLE_BYTES``, the size of an uncompressed (int64 timestamp, float64 value) pair.

Thread-safe: engine structures are read under the engine lock; the directory walk runs
outside it and tolerates files that disappear meanwhile (merges, checkpoints).
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .database import Database
    from .engine.table import Table

RAW_SAMPLE_BYTES = 16  # int64 ms timestamp + float64 value, uncompressed


def inventory(db: Database) -> dict[str, Any]:
    """Series, rows per table and tier, disk usage and bytes per sample (see module doc)."""
    eng = db.engine
    raw_blocks = raw_block_bytes = raw_memory = 0
    sketch_rows = sketch_bytes = 0
    tiers: dict[int, dict[str, Any]] = {}
    with eng.lock:
        live = eng.registry.live_sids()
        for shard in eng.shards:
            raw_blocks += sum(b.rows for b in shard.raw.blocks)
            raw_block_bytes += sum(b.size_bytes for b in shard.raw.blocks)
            raw_memory += shard.raw.memory_rows()
            sketch_rows += sum(b.rows for b in shard.sketch.blocks) + shard.sketch.memory_rows()
            sketch_bytes += sum(b.size_bytes for b in shard.sketch.blocks)
        rows_of = {shard.number: _rows_per_stream(shard.rollup) for shard in eng.shards}
        streams_seen: set[tuple[int, int]] = set()
        for rule in eng.rules.values():
            shard = eng._shard(rule.source)
            stored, block_bytes = rows_of[shard.number]
            n = int(stored[rule.stream]) if rule.stream < len(stored) else 0
            tier = tiers.setdefault(rule.bucket_ms, {
                "bucket_ms": rule.bucket_ms, "aggregators": set(), "series": 0,
                "buckets": 0, "samples": 0, "block_bytes": 0.0})
            tier["aggregators"].add(rule.aggregator)
            tier["series"] += 1
            tier["samples"] += n
            if (shard.number, rule.stream) not in streams_seen:
                streams_seen.add((shard.number, rule.stream))
                tier["buckets"] += n
                if rule.stream < len(block_bytes):
                    tier["block_bytes"] += float(block_bytes[rule.stream])
        n_rules = len(eng.rules)
        path = eng.path
    disk = _disk_usage(path)
    raw_rows = raw_blocks + raw_memory
    raw_bps = raw_block_bytes / raw_blocks if raw_blocks else None
    tier_list = []
    for bucket_ms in sorted(tiers):
        t = tiers[bucket_ms]
        t["aggregators"] = sorted(t["aggregators"])
        t["block_bytes"] = round(t["block_bytes"])
        tier_list.append(t)
    return {
        "time_ms": int(time.time() * 1000),
        "series": {"total": len(live), "raw": len(live) - n_rules, "tiers": n_rules},
        "rules": n_rules,
        "raw": {"samples": raw_rows, "in_blocks": raw_blocks, "in_memory": raw_memory,
                "block_bytes": raw_block_bytes,
                "bytes_per_sample": None if raw_bps is None else round(raw_bps, 3),
                "compression_ratio": None if not raw_bps else round(RAW_SAMPLE_BYTES / raw_bps,
                                                                    1)},
        "tiers": tier_list,
        "sketches": {"rows": sketch_rows, "block_bytes": sketch_bytes},
        "disk": disk,
        "disk_bytes_per_raw_sample": round(disk["total_bytes"] / raw_rows, 3) if raw_rows
        else None,
    }


def _rows_per_stream(table: Table) -> tuple[np.ndarray, np.ndarray]:
    """Per stream id: stored non-deleted rows (blocks + memory) and the block bytes they
    take, each block's size shared out by its rows."""
    counts: list[np.ndarray] = []
    sizes: list[np.ndarray] = []
    for meta in table.blocks:
        per = (meta.index_end - meta.index_start).astype(np.int64)
        c = np.bincount(meta.index_sids, weights=per).astype(np.int64)
        counts.append(c)
        sizes.append(c * (meta.size_bytes / max(meta.rows, 1)))
    for part in [*table.flushing, *table.parts, table.unsorted]:
        if len(part):
            live = part.columns["count"] > 0 if "count" in part.columns else slice(None)
            counts.append(np.bincount(part.sids[live]))
    width = max((len(c) for c in counts), default=0)
    total = np.zeros(width, np.int64)
    size = np.zeros(width)
    for c in counts:
        total[: len(c)] += c
    for s in sizes:
        size[: len(s)] += s
    return total, size


def _disk_usage(path: str) -> dict[str, int]:
    """Bytes under ``path`` by kind: blocks (raw/rollup/sketch), log, checkpoints, other."""
    out: dict[str, int] = defaultdict(int)
    for root, _, files in os.walk(path):
        rel = os.path.relpath(root, path).split(os.sep)
        for name in files:
            try:
                size = os.path.getsize(os.path.join(root, name))
            except OSError:  # removed by a merge or checkpoint meanwhile
                continue
            out["total_bytes"] += size
            if name.endswith(".parquet"):
                out[f"{name.split('-', 1)[0]}_block_bytes"] += size
            elif "wal" in rel:
                out["wal_bytes"] += size
            elif any(p.startswith("ckpt-") for p in rel):
                out["checkpoint_bytes"] += size
            else:
                out["other_bytes"] += size
    keys = ("total_bytes", "raw_block_bytes", "rollup_block_bytes", "sketch_block_bytes",
            "wal_bytes", "checkpoint_bytes", "other_bytes")
    return {k: int(out.get(k, 0)) for k in keys}
