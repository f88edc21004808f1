"""Which stored data answers an aggregation query, bucket by bucket (read path; pure).

A sensor's data lives at several resolutions: its raw samples and the tiers built from them
(rule destinations, possibly chained: raw → 1 min → 1 h → 1 day), each kept for its own
retention. Tiers store whole bucket states (count, sum, min, max, …), so a tier answers a
query *exactly* when its bucket divides the query's bucket, its alignment matches and the
aggregator is derived from states (not a percentile, not twa). Reading the coarsest exact
tier reads the fewest rows.

The window is cut into segments, newest first. Each segment takes, among the sources that
hold data that old, the exact source that reaches furthest back (the coarsest on a tie).
Where no exact source reaches (the finer data has expired), the finest source that still
holds data there answers at its own bucket size: an older part from a coarse tier, a recent part
from finer ones (stitching). Segment boundaries fall on the buckets of both neighbours, so
no bucket is counted twice or cut.

Callers pass a window aligned to whole query buckets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

NEVER = -(2**62)  # the start of a source that keeps everything


@dataclass(frozen=True, slots=True)
class Source:
    """One resolution of a series. ``bucket_ms`` 0 = raw samples; ``start_ms`` = the oldest
    timestamp it still holds in full (``NEVER`` when it keeps everything)."""

    bucket_ms: int
    align_ms: int
    start_ms: int


@dataclass(frozen=True, slots=True)
class Segment:
    """Buckets in [lo, hi] come from ``source`` (an index); ``exact`` = at the query's
    bucket size, else at the source's own (coarser) one."""

    source: int
    lo: int
    hi: int
    exact: bool


def exact_for(source: Source, bucket_ms: int, align_ms: int, from_states: bool) -> bool:
    """Does ``source`` answer ``bucket_ms`` buckets exactly?"""
    if source.bucket_ms == 0:
        return True
    return (from_states and bucket_ms % source.bucket_ms == 0
            and (align_ms - source.align_ms) % source.bucket_ms == 0)


def plan(sources: Sequence[Source], lo: int, hi: int, bucket_ms: int, align_ms: int = 0,
         from_states: bool = True, stitch: bool = True) -> list[Segment]:
    """Segments covering [lo, hi] newest first; ``sources[0]`` is the raw series.

    Args:
        from_states: the aggregator is derived from bucket states (False for percentiles and
            twa: only raw data is exact, and no coarse tier may stand in).
        stitch: let coarse tiers answer where no exact source reaches.
    """
    exact = [exact_for(s, bucket_ms, align_ms, from_states) for s in sources]
    segments: list[Segment] = []
    unusable: set[int] = set()  # sources that cannot give one whole bucket before ``top``
    top = hi
    while top >= lo:
        holding = [i for i, s in enumerate(sources) if s.start_ms <= top and i not in unusable]
        candidates = [i for i in holding if exact[i]]
        if not candidates and stitch and from_states:
            candidates = holding
        if not candidates:
            break
        if any(exact[i] for i in candidates):
            pick = min(candidates, key=lambda i: (max(sources[i].start_ms, lo),
                                                  -sources[i].bucket_ms))
            step, step_align = bucket_ms, align_ms
        else:
            pick = min(candidates, key=lambda i: (sources[i].bucket_ms,
                                                  max(sources[i].start_ms, lo)))
            step, step_align = sources[pick].bucket_ms, sources[pick].align_ms
        # Meet the newer segment on a boundary of both bucket sizes (it gives up buckets).
        edge = min(_ceil(segments[-1].lo, step, step_align), hi + 1) if segments else hi + 1
        start = max(lo, _ceil(sources[pick].start_ms, step, step_align))
        if start > edge - 1:
            unusable.add(pick)
            continue
        if segments:
            newer = segments.pop()
            if edge <= newer.hi:
                segments.append(Segment(newer.source, edge, newer.hi, newer.exact))
        segments.append(Segment(pick, start, edge - 1, exact[pick]))
        top = start - 1
    return segments


def _ceil(ts: int, step: int, align: int) -> int:
    """The first bucket boundary at or after ``ts``."""
    if ts <= NEVER:
        return ts
    align %= step
    return -((align - ts) // step) * step + align


def align_window(from_ms: int, to_ms: int, bucket_ms: int, align_ms: int = 0
                 ) -> tuple[int, int]:
    """``[from_ms, to_ms]`` widened to whole buckets: the first bucket's start to the last
    bucket's end (inclusive)."""
    align = align_ms % bucket_ms
    start = (from_ms - align) // bucket_ms * bucket_ms + align
    end = (to_ms - align) // bucket_ms * bucket_ms + align + bucket_ms - 1
    return max(start, 0), end
