"""JSON ingest and REST queries against a real ``sensorium serve``, with httpx."""

import gzip
import time

import httpx
import pytest

HOUR = 3_600_000


@pytest.fixture(scope="module")
def http(serve_process):
    with httpx.Client(base_url=serve_process.http_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def acknowledged(http):
    """Readings written (and acknowledged) before the malformed requests of this module."""
    now = int(time.time() * 1000)
    readings = [{"sensor_id": "temp_001", "timestamp": now - i * 1000, "value": 20 + i % 5,
                 "unit": "celsius", "labels": {"zone": "A", "type": "temperature"}}
                for i in range(600)]
    r = http.post("/api/ingest/batch", json=readings)
    assert r.json() == {"written": 600}
    return sorted((x["timestamp"], float(x["value"])) for x in readings)


def intact(http, acknowledged):
    got = http.get("/api/series/temp_001/range").json()["samples"]
    assert [tuple(x) for x in got] == acknowledged


def test_seed_000_dashboard_query(http, acknowledged):
    body = http.get("/api/sensors/temp_001/data", params={"range": "24h",
                                                          "aggregation": "1min"}).json()
    assert body["bucket_ms"] == 60_000 and body["source"] == "temp_001"
    assert 10 <= len(body["data"]) <= 12
    assert http.get("/api/sensors/temp_001/current").json()["timestamp"] == acknowledged[-1][0]


def test_seed_003_endpoints(http, acknowledged):
    sensors = http.get("/api/sensors").json()["sensors"]
    assert {"sensor_id": "temp_001", "labels": {"zone": "A", "type": "temperature",
                                                "unit": "celsius"},
            "last": list(acknowledged[-1])} in sensors
    raw = http.get("/api/sensors/temp_001/raw", params={"period": "1d"}).json()
    assert len(raw["data"]) == 600
    hourly = http.get("/api/sensors/temp_001/hourly", params={"period": "1w"}).json()
    assert sum(row["count"] for row in hourly["data"]) == 600
    for view in ("daily", "monthly"):
        assert sum(r["count"] for r in http.get(f"/api/sensors/temp_001/{view}").json()[
            "data"]) == 600


def test_columns_bulk_load(http):
    ts = list(range(1_000, 101_000, 10))
    r = http.post("/api/ingest/columns", json={"sensor_id": "bulk", "timestamps": ts,
                                               "values": [float(i) for i in range(len(ts))],
                                               "labels": {"kind": "bulk"}})
    assert r.json() == {"written": 10_000}
    body = http.get("/api/query", params={"filter": "kind=bulk", "aggregation": "count",
                                          "bucket": "1h"}).json()
    assert body["series"][0]["samples"] == [[0, 10_000]]


@pytest.mark.parametrize(("content", "headers", "status", "text"), [
    (b"{not json", {}, 400, "invalid JSON"),
    (b'{"sensor_id": "x"}', {}, 400, "JSON array"),
    (b"\xff\xfe\x00", {}, 400, "JSON"),
    (b'[{"sensor_id": "temp_001", "timestamp": "never", "value": 1}]', {}, 400, "rejected"),
    (b'[{"sensor_id": ["x"], "value": 1}]', {}, 400, "rejected"),
    (b"garbage", {"Content-Encoding": "gzip"}, 400, "gzip"),
    (gzip.compress(b"[1,2")[:-4], {"Content-Encoding": "gzip"}, 400, "gzip"),
    (b"[]", {"Content-Encoding": "br"}, 415, "Content-Encoding"),
])
def test_malformed_json_is_refused_and_data_intact(http, acknowledged, content, headers,
                                                     status, text):
    r = http.post("/api/ingest/batch", content=content, headers=headers)
    assert r.status_code == status
    assert text in r.json()["error"]
    intact(http, acknowledged)


def test_duplicates_are_refused_per_item(http, acknowledged):
    ts, value = acknowledged[0]
    r = http.post("/api/ingest/batch", json=[{"sensor_id": "temp_001", "timestamp": ts,
                                              "value": value + 100}])
    assert r.status_code == 400
    assert r.json()["errors"][0] == {"index": 0, "field": "timestamp",
                                     "error": r.json()["errors"][0]["error"]}
    intact(http, acknowledged)


def test_bad_query_parameters(http, acknowledged):
    for params in ({"from": "tomorrow-ish"}, {"aggregation": "avg"}, {"count": "many"}):
        r = http.get("/api/series/temp_001/range", params=params)
        assert r.status_code == 400 and "field" in r.json()
    assert http.get("/api/series/missing/range").status_code == 404
    assert http.get("/api/sensors/temp_001/data", params={"range": "x"}).status_code == 400


def test_series_management(http):
    assert http.post("/api/series", json={"key": "room", "labels": {"r": "1"}}).status_code == 201
    assert http.post("/api/series", json={"key": "room:1h"}).status_code == 201
    assert http.post("/api/series/room/rules", json={"dest": "room:1h", "aggregation": "avg",
                                                     "bucket": "1h"}).status_code == 201
    assert http.post("/api/series", json={"key": "room"}).status_code == 409
    assert http.get("/api/series/room").json()["rules"] == [["room:1h", HOUR, "AVG", 0]]
    assert http.delete("/api/series/room").is_success
    assert http.get("/api/series/room").status_code == 404


def test_openapi_docs(http):
    assert http.get("/docs").status_code == 200
    assert "/api/ingest/batch" in http.get("/openapi.json").json()["paths"]
