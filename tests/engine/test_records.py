"""WAL record codec: raw byte layout, round trips, zero-copy decoding, malformed records."""

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sensorium.engine.records import (
    MetaRecord,
    RecordType,
    SamplesRecord,
    decode,
    decode_meta,
    decode_samples,
    encode_meta,
    encode_samples,
)
from sensorium.errors import CorruptionError


def columns(n, seed=0):
    """A realistic batch: random sids, ms timestamps around 2023, values with two decimals."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 100_000, n).astype(np.int32),
            1_700_000_000_000 + rng.integers(0, 10_000, n),
            np.round(rng.normal(20, 5, n), 2))


def test_samples_layout_matches_docs():
    raw = encode_samples(np.array([7, 8], np.int32), np.array([1, 2], np.int64),
                         np.array([0.5, -1.0]))
    # type, flags, reserved, row count | ts... | values... | sids...  (docs/format/wal.md)
    assert raw == (struct.pack("<BBHI", 1, 0, 0, 2) + struct.pack("<2q", 1, 2)
                   + struct.pack("<2d", 0.5, -1.0) + struct.pack("<2i", 7, 8))


def test_meta_layout_matches_docs():
    assert encode_meta("series.delete", {"sid": 3}) == (
        b'\x02{"kind":"series.delete","payload":{"sid":3}}'
    )


def test_samples_round_trip_is_zero_copy_and_read_only():
    sids, ts, values = columns(10_000)
    raw = encode_samples(sids, ts, values)
    assert len(raw) == 8 + 20 * 10_000
    rec = decode(raw)
    assert isinstance(rec, SamplesRecord)
    np.testing.assert_array_equal(rec.sids, sids)
    np.testing.assert_array_equal(rec.ts, ts)
    np.testing.assert_array_equal(rec.values, values)
    assert (rec.sids.dtype, rec.ts.dtype, rec.values.dtype) == (np.int32, np.int64, np.float64)
    for column in (rec.sids, rec.ts, rec.values):
        assert not column.flags.writeable
        assert not column.flags.owndata  # a view of ``raw``
    for column in decode_samples(bytearray(raw)):
        assert not column.flags.writeable


def test_empty_batch_round_trips():
    sids, ts, values = decode_samples(encode_samples(np.array([], np.int32),
                                                     np.array([], np.int64), np.array([])))
    assert len(sids) == len(ts) == len(values) == 0


def test_columns_are_converted_and_sids_checked():
    sids, ts, values = decode_samples(encode_samples([1, 2], [3, 4], [5, 6]))
    assert sids.tolist() == [1, 2] and ts.tolist() == [3, 4] and values.tolist() == [5.0, 6.0]
    sliced = np.arange(10, dtype=np.int64)[::2]  # non-contiguous input
    assert decode_samples(encode_samples(sliced, sliced, sliced))[1].tolist() == [0, 2, 4, 6, 8]
    with pytest.raises(ValueError, match="sids do not fit"):
        encode_samples(np.array([2**31], np.int64), [0], [0.0])
    with pytest.raises(ValueError, match="differ in length"):
        encode_samples([1], [1, 2], [1.0])
    with pytest.raises(ValueError, match="1-D"):
        encode_samples(np.zeros((1, 1)), [1], [1.0])


def test_meta_round_trip():
    payload = {"key": "sensor:1", "labels": {"room": "k\u00fcche"}, "retention_ms": 0,
               "rules": [{"dest": "sensor:1:avg", "bucket_ms": 60_000}]}
    assert decode(encode_meta("series.create", payload)) == MetaRecord("series.create", payload)
    assert decode_meta(encode_meta("range.delete", {})) == ("range.delete", {})
    with pytest.raises(TypeError):
        encode_meta("series.create", {"x": object()})


@pytest.mark.parametrize("raw, reason", [
    (b"", "empty record"),
    (b"\x09abc", "unknown record type 9"),
    (b"\x01\x00\x00", "has no header"),
    (struct.pack("<BBHI", 1, 0, 0, 2) + bytes(39), "2 rows need 48 bytes"),
    (struct.pack("<BBHI", 1, 4, 0, 0), "unknown sample record flags"),
    (b"\x02not json", "bad meta record body"),
    (b'\x02{"kind":"x"}', "bad meta record body"),
    (b'\x02{"kind":1,"payload":{}}', "not {kind: str, payload: dict}"),
])
def test_malformed_records_raise_corruption(raw, reason):
    with pytest.raises(CorruptionError, match=reason):
        decode(raw)


def test_type_specific_decoders_refuse_the_other_type():
    with pytest.raises(CorruptionError, match="not a sample record"):
        decode_samples(encode_meta("x", {}) + bytes(7))
    with pytest.raises(CorruptionError, match="not a meta record"):
        decode_meta(encode_samples([1], [1], [1.0]))
    assert RecordType(encode_samples([], [], [])[0]) is RecordType.SAMPLES


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 300).flatmap(lambda n: st.tuples(
    hnp.arrays(np.int32, n), hnp.arrays(np.int64, n), hnp.arrays(np.float64, n))))
def test_samples_codec_round_trips_bit_for_bit(cols):
    sids, ts, values = cols
    rec = decode(encode_samples(sids, ts, values))
    assert isinstance(rec, SamplesRecord)
    np.testing.assert_array_equal(rec.sids, sids)
    np.testing.assert_array_equal(rec.ts, ts)
    # NaN (deletion markers) and -0.0 must survive exactly: compare the bits.
    np.testing.assert_array_equal(rec.values.view(np.uint64), values.view(np.uint64))


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(st.text(), st.dictionaries(st.text(), _json, max_size=5))
def test_meta_codec_round_trips(kind, payload):
    assert decode_meta(encode_meta(kind, payload)) == (kind, payload)
