import gzip
import json

import pytest

NOW = 1_700_000_000_000


def test_batch_writes_rows_and_labels(client, db):
    r = client.post("/api/ingest/batch", json=[
        {"sensor_id": "temp_001", "timestamp": NOW, "value": 25.5, "unit": "celsius",
         "labels": {"zone": "A"}},
        {"sensor_id": "temp_001", "timestamp": NOW + 1000, "value": 25},
        {"sensor_id": "temp_002", "timestamp": "2023-11-14T22:13:20Z", "value": -1.5},
    ])
    assert (r.status_code, r.json()) == (200, {"written": 3})
    assert db.range("temp_001", "-", "+") == [(NOW, 25.5), (NOW + 1000, 25.0)]
    assert db.range("temp_002", "-", "+") == [(NOW, -1.5)]
    assert db.describe("temp_001")["labels"] == {"zone": "A", "unit": "celsius"}
    assert db.describe("temp_002")["labels"] == {}


def test_labels_only_apply_to_new_series(client, db):
    db.create("s", labels={"own": "yes"})
    client.post("/api/ingest/batch", json=[{"sensor_id": "s", "timestamp": 1, "value": 1,
                                            "labels": {"other": "x"}}])
    assert db.describe("s")["labels"] == {"own": "yes"}


def test_missing_timestamp_is_now(client, db):
    assert client.post("/api/ingest/batch", json=[{"sensor_id": "s", "value": 1}]).is_success
    ((ts, _),) = db.range("s", "-", "+")
    assert ts > NOW


@pytest.mark.parametrize(("item", "field"), [
    ({"timestamp": 1, "value": 1}, "sensor_id"),
    ({"sensor_id": "", "timestamp": 1, "value": 1}, "sensor_id"),
    ({"sensor_id": 5, "timestamp": 1, "value": 1}, "sensor_id"),
    ({"sensor_id": "s", "timestamp": 1}, "value"),
    ({"sensor_id": "s", "timestamp": 1, "value": "25.5"}, "value"),
    ({"sensor_id": "s", "timestamp": 1, "value": True}, "value"),
    ({"sensor_id": "s", "timestamp": 1, "value": None}, "value"),
    ({"sensor_id": "s", "timestamp": -1, "value": 1}, "timestamp"),
    ({"sensor_id": "s", "timestamp": 1.5, "value": 1}, "timestamp"),
    ({"sensor_id": "s", "timestamp": "soon", "value": 1}, "timestamp"),
    ({"sensor_id": "s", "timestamp": [1], "value": 1}, "timestamp"),
    ({"sensor_id": "s", "timestamp": 1, "value": 1, "unit": 3}, "unit"),
    ({"sensor_id": "s", "timestamp": 1, "value": 1, "labels": {"a": {"b": 1}}}, "labels"),
    ({"sensor_id": "s", "timestamp": 1, "value": 1, "labels": ["a"]}, "labels"),
    ("reading", None),
])
def test_bad_items_are_named_and_good_ones_kept(client, db, item, field):
    good = {"sensor_id": "good", "timestamp": 5, "value": 1}
    r = client.post("/api/ingest/batch", json=[good, item, good | {"timestamp": 6}])
    assert r.status_code == 400
    body = r.json()
    assert (body["written"], body["rejected"]) == (2, 1)
    assert body["errors"][0]["index"] == 1
    assert body["errors"][0]["field"] == field
    assert db.range("good", "-", "+") == [(5, 1.0), (6, 1.0)]


def test_engine_rejects_are_reported_per_item(client, db):
    client.post("/api/ingest/batch", json=[{"sensor_id": "s", "timestamp": 5, "value": 1}])
    r = client.post("/api/ingest/batch", json=[
        {"sensor_id": "s", "timestamp": 6, "value": 2},
        {"sensor_id": "s", "timestamp": 5, "value": 3},  # duplicate under BLOCK
    ])
    assert r.status_code == 400
    assert r.json()["errors"] == [{"index": 1, "field": "timestamp", "error": r.json()[
        "errors"][0]["error"]}]
    assert "DUPLICATE_POLICY" in r.json()["errors"][0]["error"]
    assert db.range("s", "-", "+") == [(5, 1.0), (6, 2.0)]


@pytest.mark.parametrize("body", [b"", b"{", b"[1,", b"\xff\xfe", b"[NaN]", b"{\"a\": 1}",
                                  b"[Infinity]", b"nul"])
def test_invalid_json(client, body):
    r = client.post("/api/ingest/batch", content=body)
    assert r.status_code == 400
    assert r.json()["error"]


def test_error_list_is_capped(client):
    r = client.post("/api/ingest/batch", json=[{"sensor_id": 1}] * 500)
    assert r.json()["rejected"] == 500
    assert len(r.json()["errors"]) == 100


def test_gzip_json(client, db):
    body = gzip.compress(json.dumps([{"sensor_id": "z", "timestamp": 1, "value": 2}]).encode())
    r = client.post("/api/ingest/batch", content=body, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200
    assert db.range("z", "-", "+") == [(1, 2.0)]


def test_body_limit(make_client):
    client = make_client(max_body_bytes=100)
    r = client.post("/api/ingest/batch", json=[{"sensor_id": "s" * 200, "value": 1}])
    assert r.status_code == 413
    assert r.json()["max_body_bytes"] == 100
    bomb = gzip.compress(b" " * 10_000)
    r = client.post("/api/ingest/batch", content=bomb, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413


def test_columns(client, db):
    r = client.post("/api/ingest/columns", json=[
        {"sensor_id": "a", "timestamps": [1, 2, 3], "values": [1, 2.5, 3], "labels": {"z": "1"}},
        {"sensor_id": "b", "timestamps": [1.7e12], "values": [7], "unit": "V"},
    ])
    assert (r.status_code, r.json()) == (200, {"written": 4})
    assert db.range("a", "-", "+") == [(1, 1.0), (2, 2.5), (3, 3.0)]
    assert db.range("b", "-", "+") == [(1_700_000_000_000, 7.0)]
    assert db.describe("b")["labels"] == {"unit": "V"}


@pytest.mark.parametrize(("series", "field", "index"), [
    ({"sensor_id": "x", "timestamps": [1, None], "values": [1, 2]}, "timestamps", 1),
    ({"sensor_id": "x", "timestamps": [1, 2], "values": [1, "2"]}, "values", 1),
    ({"sensor_id": "x", "timestamps": [1, 2.5], "values": [1, 2]}, "timestamps", 1),
    ({"sensor_id": "x", "timestamps": [1, 2], "values": [1]}, "values", None),
    ({"sensor_id": "x", "timestamps": 1, "values": [1]}, "timestamps", None),
    ({"sensor_id": "x", "timestamps": [[1]], "values": [[1]]}, "timestamps", 0),
    ({"timestamps": [1], "values": [1]}, "sensor_id", None),
])
def test_bad_columns_refuse_their_series_only(client, db, series, field, index):
    good = {"sensor_id": "good", "timestamps": [1, 2], "values": [1, 2]}
    r = client.post("/api/ingest/columns", json=[good, series])
    assert r.status_code == 400
    (error,) = r.json()["errors"]
    assert (error["series"], error["field"], error.get("index")) == (1, field, index)
    assert db.range("good", "-", "+") == [(1, 1.0), (2, 2.0)]


def test_column_rows_rejected_by_the_engine(client, db):
    r = client.post("/api/ingest/columns", json={"sensor_id": "d", "timestamps": [1, 1, 2],
                                                 "values": [1, 2, 3]})
    assert r.status_code == 400
    assert [(e["series"], e["index"], e["field"]) for e in r.json()["errors"]] == [
        (0, 1, "timestamp")]
    assert db.range("d", "-", "+") == [(1, 1.0), (2, 3.0)]


# -- line protocol ---------------------------------------------------------------------------
LP = b"""weather,station=A temperature=21.5,humidity=40i 1700000000000000000
weather,station=B temperature=19 1700000000000000000
"""


@pytest.mark.parametrize("path", ["/write", "/api/v2/write"])
def test_line_protocol_writes_and_labels(client, db, path):
    r = client.post(path, content=LP, params={"db": "x", "org": "o", "bucket": "b"})
    assert (r.status_code, r.content) == (204, b"")
    assert db.range("weather,station=A:temperature", "-", "+") == [(NOW, 21.5)]
    assert db.range("weather,station=A:humidity", "-", "+") == [(NOW, 40.0)]
    assert db.describe("weather,station=B:temperature")["labels"] == {
        "station": "B", "_measurement": "weather", "_field": "temperature"}
    assert client.get("/api/query", params={"filter": "_measurement=weather"}).json()[
        "series"][0]["key"] == "weather,station=A:humidity"


@pytest.mark.parametrize(("precision", "ts", "ms"), [
    ("ns", 1_700_000_000_123_456_789, 1_700_000_000_123), ("n", 1_700_000_000_123_456_789,
                                                           1_700_000_000_123),
    ("us", 1_700_000_000_123_456, 1_700_000_000_123), ("u", 1_700_000_000_123_456,
                                                       1_700_000_000_123),
    ("ms", 1_700_000_000_123, 1_700_000_000_123), ("s", 1_700_000_000, 1_700_000_000_000),
    ("m", 28_333_333, 1_699_999_980_000), ("h", 472_222, 1_699_999_200_000),
])
def test_precisions(client, db, precision, ts, ms):
    r = client.post("/write", content=f"m v=1 {ts}".encode(), params={"precision": precision})
    assert r.status_code == 204
    assert db.range("m:v", "-", "+") == [(ms, 1.0)]


def test_bad_precision(client):
    r = client.post("/api/v2/write", content=b"m v=1", params={"precision": "fortnight"})
    assert r.status_code == 400
    assert r.json()["code"] == "invalid" and r.json()["field"] == "precision"


def test_lines_without_timestamp_get_now(client, db):
    assert client.post("/api/v2/write", content=b"m v=1").status_code == 204
    ((ts, _),) = db.range("m:v", "-", "+")
    assert ts > NOW


def test_bad_lines_are_named_and_good_lines_written(client, db):
    body = b"m v=1 1000000\nm v= 2000000\nm v=3 3000000\nnot a line at all\n"
    r = client.post("/api/v2/write", content=body, params={"precision": "ns"})
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "invalid" and body["line"] == 2
    assert "line 2" in body["message"] and body["message"] == body["error"]
    assert (body["written"], body["rejected_lines"]) == (2, 2)
    assert db.range("m:v", "-", "+") == [(1, 1.0), (3, 3.0)]


def test_points_refused_by_the_engine(client, db):
    client.post("/write", content=b"m v=1 1", params={"precision": "ms"})
    r = client.post("/write", content=b"m v=2 1\nm v=3 2", params={"precision": "ms"})
    assert r.status_code == 400
    assert "point m:v at 1 ms" in r.json()["message"]
    assert (r.json()["written"], r.json()["rejected_points"]) == (1, 1)
    assert db.range("m:v", "-", "+") == [(1, 1.0), (2, 3.0)]


@pytest.mark.parametrize("body", [b"", b"\n\n", b"   "])
def test_empty_body(client, body):
    r = client.post("/api/v2/write", content=body)
    assert (r.status_code, r.json()["message"]) == (400, "writing requires points")


def test_gzip_line_protocol(client, db):
    r = client.post("/api/v2/write", content=gzip.compress(LP),
                    headers={"Content-Encoding": "gzip"})
    assert r.status_code == 204
    assert len(db.keys()) == 3
    r = client.post("/api/v2/write", content=b"\x1f\x8b garbage",
                    headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400 and r.json()["code"] == "invalid"
    assert "gzip" in r.json()["message"]


def test_line_protocol_body_limit(make_client):
    client = make_client(max_body_bytes=1000)
    r = client.post("/api/v2/write", content=b"m v=1\n" * 1000)
    assert r.status_code == 413 and r.json()["code"] == "request too large"
    r = client.post("/api/v2/write", content=gzip.compress(b"m v=1\n" * 1000),
                    headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413
