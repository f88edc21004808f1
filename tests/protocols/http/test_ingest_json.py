import pytest

from sensorium.protocols._errors import RequestError
from sensorium.protocols.http.ingest_json import (
    MAX_TS_MS,
    load_json,
    parse_json_batch,
    parse_json_columns,
)

NOW = 1_700_000_000_000


def test_batch_columns_and_origins():
    cols = parse_json_batch([{"sensor_id": "a", "timestamp": 1, "value": 2}, {},
                             {"sensor_id": "b", "value": 3, "unit": "V"}], NOW)
    assert cols.keys.tolist() == ["a", "b"]
    assert cols.ts_ms.tolist() == [1, NOW]
    assert cols.values.tolist() == [2.0, 3.0]
    assert cols.origin.tolist() == [0, 2]
    assert cols.labels == {"b": {"unit": "V"}}
    assert cols.rejected == 1 and cols.errors[0]["index"] == 1


@pytest.mark.parametrize(("item", "field"), [
    ({"sensor_id": "s", "timestamp": 10**30, "value": 1}, "timestamp"),
    ({"sensor_id": "s", "timestamp": MAX_TS_MS + 1, "value": 1}, "timestamp"),
    ({"sensor_id": "s", "timestamp": 1, "value": 10**400}, "value"),
    ({"sensor_id": "s", "timestamp": 1, "value": float("nan")}, "value"),
])
def test_out_of_range_numbers_are_refused_not_crashed_on(item, field):
    cols = parse_json_batch([item], NOW)
    assert (cols.rejected, cols.errors[0]["field"]) == (1, field)


def test_columns_origins_are_series_and_index():
    cols = parse_json_columns([{"sensor_id": "a", "timestamps": [1, 2], "values": [1, 2]},
                               {"sensor_id": "b", "timestamps": [3], "values": [4]}])
    assert cols.origin.tolist() == [[0, 0], [0, 1], [1, 0]]
    assert cols.keys.tolist() == ["a", "a", "b"]
    cols = parse_json_columns({"sensor_id": "a", "timestamps": [], "values": []})
    assert len(cols.keys) == 0 and cols.rejected == 0


@pytest.mark.parametrize(("timestamps", "values", "field", "index"), [
    ([10**30], [1], "timestamps", 0), ([1, 2**63 + 5], [1, 2], "timestamps", 1),
    ([1, -1], [1, 2], "timestamps", 1), ([1, [2, 3]], [1, 2], "timestamps", 1),
    ([1, 2], [1, 10**400], "values", 1), ([1, 2], [[1], [2, 3]], "values", 0),
    ([1.5e300], [1], "timestamps", 0),
])
def test_bad_columns(timestamps, values, field, index):
    cols = parse_json_columns({"sensor_id": "a", "timestamps": timestamps, "values": values})
    assert cols.rejected == 1
    assert (cols.errors[0]["field"], cols.errors[0].get("index")) == (field, index)


def test_load_json_refuses_non_standard_constants():
    assert load_json(b'[1, 2.5, "x"]') == [1, 2.5, "x"]
    for body in (b"[NaN]", b"[-Infinity]", b"[", b"\xff"):
        with pytest.raises(RequestError):
            load_json(body)
