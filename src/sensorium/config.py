"""Database options: one frozen dataclass built once and passed down, never global."""

from __future__ import annotations

from dataclasses import dataclass

from .model import DuplicatePolicy


@dataclass(frozen=True, slots=True)
class DatabaseOptions:
    """Defaults and tuning of one database.

    Attributes:
        retention_ms: default retention of new series (0 = keep forever).
        duplicate_policy: policy used when neither the write nor the series names one.
        fsync: "batch" (each acknowledged batch is fsynced), "periodic" (fsync every
            ``fsync_interval_s``; a kill -9 loses nothing, a power cut up to that interval)
            or "none".
        shards: number of hash partitions of the series key space, each with its own log
            and blocks (fixed when the directory is created).
        head_flush_rows: in-memory rows of a shard that trigger a flush to a block.
        checkpoint_interval_s: the longest time data stays only in the log.
        background: run flush, merge and retention in a background thread.
        keep_freed_memory: let the process keep up to 256 MB of freed memory for reuse
            (``allocator.py``): hot paths then skip most page faults (2-7x faster array
            work on Linux). Process-wide; off leaves the C library's defaults.
    """

    retention_ms: int = 0
    duplicate_policy: DuplicatePolicy = DuplicatePolicy.BLOCK
    fsync: str = "batch"
    fsync_interval_s: float = 1.0
    shards: int = 1
    head_flush_rows: int = 8_000_000
    checkpoint_interval_s: float = 300.0
    block_cache_bytes: int = 256 * 2**20
    background: bool = True
    keep_freed_memory: bool = True
