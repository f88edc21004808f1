"""Table: last write wins across batches, parts and selection by sid and time."""

from unittest import mock

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sensorium.engine import table as table_mod
from sensorium.engine.table import (
    Rows,
    Table,
    ranges_to_index,
    segment_search,
    select_sorted,
    sort_dedup,
)


def rows(sids, ts, values):
    return Rows(np.asarray(sids, np.int32), np.asarray(ts, np.int64),
                {"value": np.asarray(values, np.float64)})


def test_ranges_to_index():
    got = ranges_to_index(np.array([2, 10, 5]), np.array([4, 10, 7]))
    assert got.tolist() == [2, 3, 5, 6]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-3, 25), max_size=40), st.lists(st.integers(0, 40), max_size=8),
       st.integers(-5, 30), st.sampled_from(["left", "right"]))
def test_segment_search_equals_searchsorted_per_segment(values, cuts, x, side):
    v = np.sort(np.asarray(values, np.int64))
    bounds = np.sort(np.minimum(np.asarray(cuts[: len(cuts) // 2 * 2], np.int64), len(v)))
    starts, ends = bounds[0::2], bounds[1::2]
    want = [a + int(np.searchsorted(v[a:b], x, side))
            for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    assert segment_search(v, starts, ends, x, side).tolist() == want


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 30)), min_size=1, max_size=60),
       st.lists(st.integers(0, 7), min_size=2, max_size=5, unique=True),
       st.integers(-2, 32), st.integers(-2, 32))
def test_select_sorted_of_many_sids_equals_a_mask(keys, wanted, lo, hi):
    keys = sorted(set(keys))
    r = rows([k[0] for k in keys], [k[1] for k in keys], [float(i) for i in range(len(keys))])
    sids = np.asarray(sorted(wanted), np.int32)
    got = select_sorted(r, sids, lo, hi)
    want = [(s, t) for s, t in keys if s in wanted and lo <= t <= hi]
    assert list(zip(got.sids.tolist(), got.ts.tolist(), strict=True)) == want
    assert got.columns["value"].tolist() == [float(keys.index(k)) for k in want]


def test_sort_dedup_keeps_last_of_equal_keys():
    r = sort_dedup(rows([1, 0, 1, 1], [5, 9, 5, 3], [1.0, 2.0, 3.0, 4.0]))
    assert r.sids.tolist() == [0, 1, 1]
    assert r.ts.tolist() == [9, 3, 5]
    assert r.columns["value"].tolist() == [2.0, 4.0, 3.0]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 50),
                                   st.floats(-1e6, 1e6)), max_size=30), max_size=8),
       st.integers(0, 5), st.integers(0, 50), st.integers(0, 50))
def test_read_equals_naive_last_write_wins(batches, sid, lo, hi):
    table = Table({"value": np.dtype(np.float64)}, cache=None)
    truth: dict[tuple[int, int], float] = {}
    for i, batch in enumerate(batches):
        if not batch:
            continue
        s, t, v = zip(*batch, strict=True)
        table.append(rows(s, t, v))
        for a, b, c in batch:
            truth[(a, b)] = c
        if i % 3 == 2:
            table.freeze()
        if i % 2 == 1:  # a background merge of adjacent parts keeps "newest wins"
            with mock.patch.multiple(table_mod, MERGE_PARTS_ABOVE=1, PART_MERGE_WIDTH=2):
                run = table.plan_part_merge()
            if run is not None:
                assert table.swap_parts(run, table.merge_parts(run))
                assert not table.swap_parts(run, table.merge_parts(run))  # already swapped
    got = table.read(np.array([sid], np.int32), lo, hi)
    want = sorted((k, val) for k, val in truth.items() if k[0] == sid and lo <= k[1] <= hi)
    assert list(zip(got.ts.tolist(), got.columns["value"].tolist(), strict=True)) == [
        (k[1], val) for k, val in want]
    everything = table.read(None, 0, 50)
    assert len(everything) == len(truth)


def test_read_of_no_sids_is_empty():
    table = Table({"value": np.dtype(np.float64)}, cache=None)
    table.append(rows([1, 2], [5, 6], [1.0, 2.0]))
    assert len(table.read(np.array([], np.int32), 0, 10)) == 0
    table.freeze()
    assert len(table.read(np.array([], np.int32), 0, 10)) == 0
