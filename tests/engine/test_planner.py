"""The tier planner: exact sources first, coarsest on a tie, stitched where finer data expired."""

from hypothesis import given, settings
from hypothesis import strategies as hs

from sensorium.engine.planner import NEVER, Source, align_window, plan

M, H, D = 60_000, 3_600_000, 86_400_000
NOW = 4000 * D
SEED = [Source(0, 0, NOW - 7 * D), Source(M, 0, NOW - 365 * D), Source(H, 0, NOW - 1825 * D),
        Source(D, 0, NEVER)]


def segs(lo, hi, bucket, **kw):
    lo, hi = align_window(lo, hi, bucket)
    return [(s.source, s.lo, s.hi, s.exact) for s in plan(SEED, lo, hi, bucket, **kw)]


def test_coarsest_exact_tier_answers_the_whole_window():
    lo, hi = align_window(NOW - 30 * D, NOW, H)
    assert segs(NOW - 30 * D, NOW, H) == [(2, lo, hi, True)]
    assert segs(NOW - 30 * D, NOW, D)[0][0] == 3
    assert segs(NOW - D, NOW, 1000)[0][0] == 0  # only raw holds seconds


def test_expired_finer_data_is_stitched_from_coarser_tiers_newest_first():
    got = segs(NOW - 3 * 365 * D, NOW, M)
    assert [(s, exact) for s, _, _, exact in got] == [(1, True), (2, False)]
    assert got[0][1] == NOW - 365 * D and got[1][2] == NOW - 365 * D - 1
    assert [s for s, *_ in segs(0, NOW, M)] == [1, 2, 3]


def test_percentiles_only_read_raw():
    assert [s for s, *_ in segs(NOW - 30 * D, NOW, H, from_states=False)] == [0]
    assert segs(NOW - 30 * D, NOW, H, from_states=False)[0][1] == NOW - 7 * D


def test_without_stitching_nothing_inexact_is_used():
    assert all(exact for *_, exact in segs(0, NOW, M, stitch=False))


def test_a_misaligned_tier_is_not_exact():
    sources = [Source(0, 0, NOW - D), Source(H, 1000, NEVER)]
    lo, hi = align_window(NOW - 10 * D, NOW, H)
    got = plan(sources, lo, hi, H)
    assert got[0].source == 0 and got[-1].exact is False


@settings(max_examples=300, deadline=None)
@given(starts=hs.lists(hs.integers(0, 40), min_size=4, max_size=4),
       lo=hs.integers(0, 40), width=hs.integers(0, 40), bucket=hs.sampled_from([1, 2, 4, 8]))
def test_segments_tile_the_window_on_bucket_boundaries(starts, lo, width, bucket):
    unit = 15 * M
    sources = [Source(b * unit, 0, s * H) for b, s in zip((0, 1, 4, 8), starts, strict=True)]
    a, b = align_window(lo * H, (lo + width) * H, bucket * unit)
    got = plan(sources, a, b, bucket * unit)
    for seg in got:
        step = bucket * unit if seg.exact else sources[seg.source].bucket_ms
        # Inside the window segments meet on boundaries of both bucket sizes; a coarse
        # tier's bucket may stick out of the window's own ends.
        assert seg.lo % step == 0 or seg.lo == a, seg
        assert (seg.hi + 1) % step == 0 or seg.hi == b, seg
        assert seg.lo >= sources[seg.source].start_ms
    for newer, older in zip(got, got[1:], strict=False):
        assert older.hi == newer.lo - 1  # no gap, no overlap
    if got:
        assert got[0].hi == b
