"""Which stored series answers an aggregation query (read path, query planning; pure).

A sensor's raw series may feed downsampling rules (``1m`` avg, ``1h`` max, …). A rule's
destination keeps whole bucket *states* (count, sum, min, max, …), and the engine re-aggregates
states exactly when the query's buckets are whole multiples of the tier's, whatever the rule's
own aggregator. So a tier answers a query exactly when its bucket divides the query's bucket,
its alignment matches, the aggregator is not a percentile (not derivable from states) and the
tier keeps at least as much history as the raw series. Among those the coarsest wins: fewest
rows read.

Callers must ask for whole buckets (the window aligned to the bucket), so that the first and
last bucket are not cut short on the raw side only.

TODO(http, #3): a later issue extends this (per-tier retention against the window, mixing a
tier for old buckets with raw for recent ones).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ...model import percentile_of


@dataclass(frozen=True, slots=True)
class Tier:
    """A stored downsampling destination fed directly by a raw series."""

    key: str
    bucket_ms: int
    align_ms: int
    retention_ms: int  # 0 = forever


def choose_source(key: str, raw_retention_ms: int, tiers: Sequence[Tier], aggregator: str,
                  bucket_ms: int, align_ms: int = 0) -> str:
    """The key to read for ``aggregator`` per ``bucket_ms`` buckets: a tier or ``key`` itself."""
    if percentile_of(aggregator) is not None or bucket_ms <= 0:
        return key
    best: Tier | None = None
    for tier in tiers:
        divides = bucket_ms % tier.bucket_ms == 0
        aligned = (align_ms - tier.align_ms) % tier.bucket_ms == 0
        keeps = tier.retention_ms == 0 or 0 < raw_retention_ms <= tier.retention_ms
        if divides and aligned and keeps and (best is None or tier.bucket_ms > best.bucket_ms):
            best = tier
    return key if best is None else best.key


def align_window(from_ms: int, to_ms: int, bucket_ms: int, align_ms: int = 0
                 ) -> tuple[int, int]:
    """``[from_ms, to_ms]`` widened to whole buckets: the first bucket's start to the last
    bucket's end (inclusive)."""
    start = (from_ms - align_ms) // bucket_ms * bucket_ms + align_ms
    end = (to_ms - align_ms) // bucket_ms * bucket_ms + align_ms + bucket_ms - 1
    return max(start, 0), end
