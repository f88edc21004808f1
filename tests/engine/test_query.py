"""Range aggregation: the reduced-state path of simple aggregators answers as the full states."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sensorium.engine import query
from sensorium.engine import states as sts
from sensorium.engine.query import Aggregation
from sensorium.engine.table import Rows


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 300), seed=st.integers(0, 999), bucket=st.sampled_from([1, 7, 60, 1000]),
       aggregator=st.sampled_from(sorted(query._SIMPLE)))
def test_simple_aggregators_equal_the_full_states(n, seed, bucket, aggregator):
    rng = np.random.default_rng(seed)
    sids = np.sort(rng.integers(0, 4, n)).astype(np.int32)
    ts = np.concatenate([np.sort(rng.choice(2000, int((sids == s).sum()), replace=False))
                         for s in np.unique(sids)]).astype(np.int64)
    values = np.round(rng.normal(0, 10, n), 2)
    rows = Rows(sids, ts, {"value": values})
    agg = Aggregation(aggregator, bucket)
    s, b, v = query.aggregate_samples(rows, agg, (0, 2000))
    starts = query._group(sids, query.bucket_of(ts, agg))
    want = sts.finalize(sts.aggregate_samples(ts, values, starts), aggregator)
    assert s.tolist() == sids[starts].tolist()
    assert v.tolist() == want.tolist()
