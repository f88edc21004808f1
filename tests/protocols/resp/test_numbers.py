"""RedisTimeSeries' number grammar, scalar and column parsers (reference §2)."""

import numpy as np
import pytest

from sensorium.errors import InvalidSampleError
from sensorium.protocols.resp.numbers import (
    TS_INVALID,
    TS_NEGATIVE,
    parse_timestamp,
    parse_timestamps,
    parse_value,
    parse_values,
    value_or_none,
)

VALUES = [
    ("1", 1.0), ("-1.5", -1.5), ("1e3", 1000.0), ("1E3", 1000.0), ("1e-05", 1e-05),
    ("0x10", 0.0), ("1_0", 1.0), ("1.5.3", 1.5), ("-0", -0.0), ("12.50", 12.5),
    ("+3", None), (".5", None), ("5.", None), ("inf", None), ("nan", None), ("1e400", None),
    (" 1", None), ("01", None), ("-", None), ("", None), ("1e", None), ("-.5", None),
    ("1.e5", None), ("00.5", None),
]


@pytest.mark.parametrize(("text", "expected"), VALUES)
def test_value_grammar(text, expected):
    assert value_or_none(text) == expected


def test_parse_value_raises_with_message():
    with pytest.raises(InvalidSampleError, match="invalid increase/decrease value"):
        parse_value("x", "invalid increase/decrease value")


def test_value_column_matches_scalar():
    texts = [t.encode() for t, _ in VALUES]
    values, ok = parse_values(texts)
    for (text, expected), v, good in zip(VALUES, values.tolist(), ok.tolist(), strict=True):
        assert (v if good else None) == expected, text


def test_value_column_fast_path():
    texts = [repr(x) for x in np.random.default_rng(1).uniform(-1e6, 1e6, 1000).tolist()]
    values, ok = parse_values([t.encode() for t in texts])
    assert ok.all()
    assert values.tolist() == [float(t) for t in texts]


@pytest.mark.parametrize(("text", "status"), [
    ("0", 0), ("1700000000000", 0), ("01", TS_INVALID), ("+5", TS_INVALID),
    (" 5", TS_INVALID), ("abc", TS_INVALID), ("1.5", TS_INVALID), ("-5", TS_NEGATIVE),
    ("-0", TS_INVALID), ("99999999999999999999", TS_INVALID), ("٣", TS_INVALID),
])
def test_timestamp_grammar(text, status):
    _, got = parse_timestamps([text.encode()], 0)
    assert got.tolist() == [status]


def test_timestamp_star_and_errors():
    assert parse_timestamp("*", 42) == 42
    with pytest.raises(InvalidSampleError, match="^invalid timestamp$"):
        parse_timestamp("abc", 0)
    with pytest.raises(InvalidSampleError, match="nonnegative"):
        parse_timestamp("-1", 0)
    ts, status = parse_timestamps([b"1", b"*", b"3"], 7)
    assert ts.tolist() == [1, 7, 3] and status.tolist() == [0, 0, 0]
