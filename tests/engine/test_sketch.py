"""DDSketch bins: bit-for-bit the ddsketch library, mergeable, within 1 % of exact quantiles."""

import math

import numpy as np
import pytest
from ddsketch import DDSketch
from hypothesis import given, settings
from hypothesis import strategies as st

from sensorium.engine import sketch as sk

QS = (0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0)


def library(values):
    s = DDSketch(sk.RELATIVE_ACCURACY)
    for v in values:
        s.add(float(v))
    return s


def one_sketch(values):
    values = np.asarray(values, np.float64)
    return sk.count_bins(np.zeros(len(values), np.int64), sk.slots_of(values))


def datasets():
    rng = np.random.default_rng(11)
    yield "sensor", np.round(rng.normal(21.0, 0.5, 600), 2)
    yield "signed", rng.normal(0.0, 10.0, 500)
    yield "heavy tail", rng.lognormal(0.0, 4.0, 500) * rng.choice([-1.0, 1.0], 500)
    yield "zeros and ones", rng.choice([0.0, 1.0, -1.0, 0.5], 300)
    yield "one value", np.full(7, 3.25)
    yield "extremes", np.array([1e-300, 5e-324, -1e300, 1.7e308, 0.0, -0.0, 1.0])
    yield "integers", np.arange(-50, 51, dtype=np.float64)


@pytest.mark.parametrize(("name", "values"), list(datasets()))
def test_quantiles_equal_the_library_bit_for_bit(name, values):
    lib = library(values)
    bins = one_sketch(values)
    for q in QS:
        assert sk.quantiles(bins, 1, q)[0] == lib.get_quantile_value(q), (name, q)


def test_keys_equal_the_library_for_awkward_values():
    gamma = sk.MAPPING.gamma
    # Powers of gamma sit on bin boundaries: numpy's log may differ from libm's by an ulp there.
    k = np.arange(-2000, 2000)
    boundaries = gamma ** k.astype(np.float64)
    values = np.concatenate([
        boundaries, np.nextafter(boundaries, 0), np.nextafter(boundaries, np.inf),
        np.arange(1, 10_000, dtype=np.float64), np.arange(1, 1000) / 100.0,
        np.random.default_rng(1).lognormal(0, 30, 100_000),
        [sk.MIN_INDEXABLE, np.nextafter(sk.MIN_INDEXABLE, 1), 2.2250738585072014e-308],
    ])
    got = sk.slots_of(values)
    indexable = values > sk.MIN_INDEXABLE
    want = np.array([sk.MAPPING.key(v) for v in values[indexable].tolist()])
    assert np.array_equal(got[indexable] - sk.ZERO_SLOT - sk.KEY_BIAS, want)
    assert (got[~indexable] == sk.ZERO_SLOT).all()
    assert np.array_equal(sk.slots_of(-values[indexable]),
                          sk.ZERO_SLOT - (want + sk.KEY_BIAS))


def test_slots_are_ordered_by_value_and_cover_every_double():
    values = np.array([-1.7e308, -1e5, -1.0, -1e-300, 0.0, 1e-300, 1.0, 1e5, 1.7e308])
    slots = sk.slots_of(values)
    assert (np.diff(slots) > 0).all()
    assert 0 < slots.min() and slots.max() < sk.SLOTS <= 2**sk.SLOT_BITS


def test_values_of_slots_are_within_the_relative_accuracy():
    v = np.random.default_rng(2).lognormal(0, 10, 10_000) * np.random.default_rng(3).choice(
        [-1, 1], 10_000)
    back = sk.values_of(sk.slots_of(v))
    assert (np.abs(back - v) <= sk.RELATIVE_ACCURACY * np.abs(v) * (1 + 1e-12)).all()
    assert sk.values_of(np.array([sk.ZERO_SLOT]))[0] == 0.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.floats(-1e9, 1e9, allow_subnormal=False), min_size=1, max_size=60),
                min_size=1, max_size=6),
       st.sampled_from(QS) | st.floats(0.0, 1.0))
def test_merged_parts_equal_the_sketch_of_the_union(groups, q):
    """Sketches of arbitrary pieces, merged by summing bins, are the union's sketch."""
    whole = [one_sketch(g) for g in groups]
    pieces_g, pieces_s, pieces_c = [], [], []
    for gi, g in enumerate(groups):
        for part in np.array_split(np.asarray(g), 3):
            b = one_sketch(part)
            pieces_g.append(np.full(len(b), gi))
            pieces_s.append(b.slot)
            pieces_c.append(b.count)
    order = np.random.default_rng(len(groups)).permutation(sum(len(x) for x in pieces_g))
    merged = sk.count_bins(np.concatenate(pieces_g)[order], np.concatenate(pieces_s)[order],
                           np.concatenate(pieces_c)[order])
    got = sk.quantiles(merged, len(groups), q)
    for gi, g in enumerate(groups):
        assert got[gi] == sk.quantiles(whole[gi], 1, q)[0]
        assert got[gi] == library(g).get_quantile_value(q)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e12, 1e12, allow_subnormal=False), min_size=1, max_size=300),
       st.sampled_from(QS) | st.floats(0.0, 1.0))
def test_within_the_relative_accuracy_of_the_exact_lower_quantile(values, q):
    v = np.asarray(values)
    got = sk.quantiles(one_sketch(v), 1, q, v.min(keepdims=True), v.max(keepdims=True))[0]
    exact = np.quantile(v, q, method="lower")  # the sample of rank floor(q (n - 1))
    tiny = sk.MIN_INDEXABLE  # values below it share the zero bin
    assert abs(got - exact) <= sk.RELATIVE_ACCURACY * abs(exact) * (1 + 1e-12) + tiny


def test_clamping_to_min_and_max_makes_the_extremes_exact():
    v = np.array([1.001, 2.0, 3.0, 99.7])
    b = one_sketch(v)
    assert sk.quantiles(b, 1, 0.0)[0] != 1.001  # the bin's representative value
    assert sk.quantiles(b, 1, 0.0, np.array([1.001]), np.array([99.7]))[0] == 1.001
    assert sk.quantiles(b, 1, 1.0, np.array([1.001]), np.array([99.7]))[0] == 99.7


def test_groups_without_bins_are_nan_and_order_is_kept():
    bins = sk.count_bins(np.array([0, 0, 2]), sk.slots_of(np.array([1.0, 2.0, 50.0])))
    got = sk.quantiles(bins, 4, 0.5)
    assert math.isnan(got[1]) and math.isnan(got[3])
    assert got[2] == pytest.approx(50.0, rel=0.01)
    assert np.isnan(sk.quantiles(sk.Bins.empty(), 2, 0.5)).all()


def test_dense_and_sorting_paths_agree():
    rng = np.random.default_rng(5)
    group = np.sort(rng.integers(0, 50, 5000))
    slot = sk.slots_of(rng.normal(0, 100, 5000))
    dense = sk.count_bins(group, slot)  # grouped input: bincount per group
    shuffled = rng.permutation(5000)
    sorting = sk.count_bins(group[shuffled], slot[shuffled])  # any order: sort
    wide = sk.count_bins(group, sk.slots_of(rng.lognormal(0, 100, 5000)))  # too wide to be dense
    for a, b in ((dense.group, sorting.group), (dense.slot, sorting.slot),
                 (dense.count, sorting.count)):
        assert np.array_equal(a, b)
    assert wide.count.sum() == 5000 and (np.diff(wide.group) >= 0).all()


def test_pack_keeps_bucket_then_slot_order_for_negative_buckets():
    bucket = np.array([-10, -10, -5, 0, 0, 7])
    slot = np.array([3, sk.SLOTS - 1, 0, 1, 2, 5])
    key = sk.pack(bucket, slot)
    assert (np.diff(key) > 0).all()
    assert np.array_equal(sk.bucket_of_key(key), bucket)
    assert np.array_equal(sk.slot_of_key(key), slot)


# -- open sketches --------------------------------------------------------------------------------
def test_open_sketches_equal_counting_from_scratch_with_overflow():
    rng = np.random.default_rng(6)
    opened = sk.OpenSketches()
    streams = np.array([3, 0, 7])
    for s in streams.tolist():
        opened.attach(s)
    values = {s: [] for s in streams.tolist()}
    first = [rng.normal(0, 5, 2) for _ in streams]  # signed: far apart slots, overflow
    opened.reset(streams, sk.count_bins(np.repeat(np.arange(3), 2),
                                        sk.slots_of(np.concatenate(first))))
    for s, f in zip(streams.tolist(), first, strict=True):
        values[s].extend(f.tolist())
    assert opened.is_valid(streams).all()
    for _ in range(20):
        batch = rng.normal(0, 5, 3) * rng.choice([1.0, 100.0], 3)
        opened.add(streams, sk.slots_of(batch))
        for s, v in zip(streams.tolist(), batch.tolist(), strict=True):
            values[s].append(v)
    got = opened.take(streams[::-1])
    want = sk.count_bins(np.concatenate([np.full(len(values[s]), i) for i, s in
                                         enumerate(streams[::-1].tolist())]),
                         sk.slots_of(np.concatenate([values[s] for s in
                                                     streams[::-1].tolist()])))
    for a, b in ((got.group, want.group), (got.slot, want.slot), (got.count, want.count)):
        assert np.array_equal(a, b)
    assert not opened.is_valid(streams).any()
    assert len(opened.peek(streams)) == 0  # taking empties them, overflow included


def test_open_sketch_rows_are_reused_after_detach():
    opened = sk.OpenSketches()
    for s in range(20):
        opened.attach(s)
    row = int(opened.row[5])
    opened.detach(5)
    assert opened.row[5] == -1 and not opened.is_valid(np.array([5]))[0]
    opened.attach(30)
    assert opened.row[30] == row


def test_a_quantile_a_hair_below_an_integer_rank_picks_what_the_library_picks():
    """Was: for q = 1 - 2**-53 over [-1, -2] the rank was floored to 0 (-2), while the
    library's float walk over the negative bins lands on -1."""
    for values in ([-1.0, -2.0], [-1.0, -2.0, 0.0, 3.0], [2.0, 1.0]):
        q = 0.9999999999999999
        assert sk.quantiles(one_sketch(np.asarray(values)), 1, q)[0] == \
            library(values).get_quantile_value(q)
