import time

import pytest

HOUR = 3_600_000


@pytest.fixture
def filled(db):
    """Two sensors with labels; s1 has 1-minute avg and 1-hour max tiers, and a 1-day tier
    of the 1-minute tier."""
    now = int(time.time() * 1000)
    start = now - 3 * HOUR
    db.create("s1", labels={"zone": "A", "type": "t"})
    db.create("s2", labels={"zone": "B", "type": "t"})
    db.create("s1:1m", labels={"tier": "1m"})
    db.create("s1:1h", labels={"tier": "1h"})
    db.create("s1:1d", labels={"tier": "1d"})
    db.createrule("s1", "s1:1m", "avg", 60_000)
    db.createrule("s1", "s1:1h", "max", HOUR)
    db.createrule("s1:1m", "s1:1d", "avg", 24 * HOUR)
    ts = list(range(start, now, 10_000))
    db.madd(["s1"] * len(ts), ts, [float(i % 7) for i in range(len(ts))])
    db.madd(["s2"] * len(ts), ts, [float(i % 5) for i in range(len(ts))])
    return start, now


def test_sensor_listing_excludes_tiers(client, filled):
    body = client.get("/api/sensors").json()
    assert [s["sensor_id"] for s in body["sensors"]] == ["s1", "s2"]
    assert body["sensors"][0]["labels"] == {"zone": "A", "type": "t"}
    assert body["sensors"][0]["last"][0] <= filled[1]
    assert client.get("/api/sensors?filter=zone=B").json()["total"] == 1
    assert client.get("/api/sensors?limit=1&offset=1").json()["sensors"][0]["sensor_id"] == "s2"
    assert client.get("/api/sensors?limit=0").status_code == 400


def test_current(client, db, filled):
    body = client.get("/api/sensors/s1/current").json()
    assert (body["timestamp"], body["value"]) == db.get("s1")
    db.create("empty")
    assert client.get("/api/sensors/empty/current").json()["timestamp"] is None
    assert client.get("/api/sensors/missing/current").status_code == 404


def test_raw_period(client, db, filled):
    body = client.get("/api/sensors/s1/raw?period=1h").json()
    assert body["to"] - body["from"] == HOUR
    assert 355 <= len(body["data"]) <= 361
    assert client.get("/api/sensors/s1/raw?period=1m").json()["to"] - \
        client.get("/api/sensors/s1/raw?period=1m").json()["from"] >= 30 * 86_400_000 - 1000
    assert client.get("/api/sensors/s1/raw?period=forever").status_code == 400


def test_data_reads_the_coarsest_exact_tier(client, db, filled):
    start, now = filled
    one_min = client.get("/api/sensors/s1/data?range=2h&aggregation=1min").json()
    assert one_min["source"] == "s1:1m"
    assert one_min["sources"] == [{"key": "s1:1m", "from": one_min["from"], "to": one_min["to"],
                                   "bucket_ms": 60_000, "exact": True}]
    two_hours = client.get("/api/sensors/s1/data?range=3h&aggregation=2h&aggregator=max").json()
    assert two_hours["source"] == "s1:1h"
    raw = client.get("/api/sensors/s1/data?range=2h&aggregation=30s").json()
    assert raw["source"] == "s1"
    # a tier of a tier answers too: the open buckets of its whole chain are added
    day = client.get("/api/sensors/s1/data?range=1d&aggregation=1d&aggregator=count").json()
    assert day["source"] == "s1:1d"
    assert sum(v for _, v in day["data"]) == len(db.range("s1", "-", "+"))
    p95 = client.get("/api/sensors/s1/data?range=2h&aggregation=1h&aggregator=p95").json()
    assert p95["source"] == "s1"
    # exact: the tier answers what the raw series answers over the same whole buckets
    lo, hi = one_min["from"], one_min["to"]
    assert one_min["data"] == [list(x) for x in db.range(
        "s1", lo, hi, aggregation_type="avg", bucket_size_msec=60_000)]
    lo, hi = two_hours["from"], two_hours["to"]
    assert two_hours["data"] == [list(x) for x in db.range(
        "s1", lo, hi, aggregation_type="max", bucket_size_msec=2 * HOUR)]


def test_data_without_aggregation_is_raw(client, filled):
    body = client.get("/api/sensors/s2/data?range=1h").json()
    assert body["source"] == "s2" and 355 <= len(body["data"]) <= 361


def test_hourly_daily_monthly(client, db, filled):
    hourly = client.get("/api/sensors/s1/hourly").json()
    assert hourly["period"] == "1w" and hourly["bucket_ms"] == HOUR
    assert hourly["source"] == "s1:1h"
    row = hourly["data"][0]
    assert set(row) == {"timestamp", "avg", "min", "max", "count"}
    assert isinstance(row["count"], int)
    counts = sum(r["count"] for r in hourly["data"])
    assert counts == len(db.range("s1", "-", "+"))
    daily = client.get("/api/sensors/s2/daily?period=1w").json()
    assert daily["source"] == "s2" and sum(r["count"] for r in daily["data"]) == counts
    monthly = client.get("/api/sensors/s2/monthly").json()
    assert monthly["period"] == "1y" and monthly["bucket_ms"] == 30 * 86_400_000


def test_series_range_every_option(client, db, filled):
    start, now = filled
    url = "/api/series/s1/range"
    assert client.get(url).json()["samples"] == [list(x) for x in db.range("s1", "-", "+")]
    got = client.get(url, params={"from": start, "to": start + 60_000}).json()["samples"]
    assert [t for t, _ in got] == [start + i * 10_000 for i in range(7)]
    assert len(client.get(url, params={"count": 3}).json()["samples"]) == 3
    rev = client.get(url, params={"reverse": "true", "count": 2}).json()["samples"]
    assert rev == [list(x) for x in db.revrange("s1", "-", "+", count=2)]
    agg = client.get(url, params={"aggregation": "count", "bucket": "1h", "align": "start",
                                  "from": start, "to": now, "empty": "true",
                                  "bucket_timestamp": "mid"}).json()["samples"]
    assert agg == [list(x) for x in db.range("s1", start, now, aggregation_type="count",
                                             bucket_size_msec=HOUR, align="start", empty=True,
                                             bucket_timestamp="mid")]
    ts = [start, start + 20_000]
    got = client.get(url, params={"filter_by_ts": ts}).json()["samples"]
    assert [t for t, _ in got] == ts
    got = client.get(url, params={"min_value": 6, "max_value": 6}).json()["samples"]
    assert {v for _, v in got} == {6.0}
    assert client.get(url, params={"from": "-1h", "to": "now"}).is_success


@pytest.mark.parametrize(("params", "field"), [
    ({"from": "later"}, "from"), ({"aggregation": "avg"}, "bucket"),
    ({"bucket": "1h"}, "aggregation"), ({"aggregation": "avg", "bucket": "x"}, "bucket"),
    ({"count": "x"}, "count"), ({"min_value": "x"}, "min_value"),
])
def test_range_parameter_errors_name_the_field(client, filled, params, field):
    r = client.get("/api/series/s1/range", params=params)
    assert (r.status_code, r.json()["field"]) == (400, field)


def test_range_engine_errors(client, filled):
    assert client.get("/api/series/nope/range").status_code == 404
    r = client.get("/api/series/s1/range", params={"aggregation": "median", "bucket": "1h"})
    assert (r.status_code, r.json()["error"]) == (400, "Unknown aggregation type")
    r = client.get("/api/series/s1/range", params={"min_value": 1})
    assert r.status_code == 400


def test_mrange(client, db, filled):
    start, now = filled
    body = client.get("/api/query", params={"filter": "type=t", "with_labels": "true",
                                            "aggregation": "max", "bucket": "1h"}).json()
    assert [s["key"] for s in body["series"]] == ["s1", "s2"]
    assert body["series"][0]["labels"] == {"zone": "A", "type": "t"}
    want = db.mrange("-", "+", ["type=t"], aggregation_type="max", bucket_size_msec=HOUR)
    assert [s["samples"] for s in body["series"]] == [
        [list(x) for x in list(w.values())[0][1]] for w in want]
    grouped = client.get("/api/query", params={"filter": ["type=t", "zone=(A,B)"],
                                               "groupby": "type", "reduce": "sum",
                                               "aggregation": "sum", "bucket": "1h"}).json()
    assert [s["key"] for s in grouped["series"]] == ["type=t"]
    sel = client.get("/api/query", params={"filter": "zone=A", "select_labels": "zone,nope",
                                           "count": 1}).json()
    assert sel["series"][0]["labels"] == {"zone": "A", "nope": None}
    assert len(sel["series"][0]["samples"]) == 1
    assert client.get("/api/query").status_code == 400
    assert client.get("/api/query", params={"filter": "zone!=A"}).status_code == 400


def test_latest(client, db, filled):
    body = client.get("/api/latest", params={"filter": "type=t",
                                             "with_labels": "true"}).json()
    assert [(s["key"], s["timestamp"], s["value"]) for s in body["series"]] == [
        ("s1", *db.get("s1")), ("s2", *db.get("s2"))]
    assert body["series"][1]["labels"]["zone"] == "B"


def test_series_listing_and_info(client, db, filled):
    assert client.get("/api/series").json()["keys"] == ["s1", "s1:1d", "s1:1h", "s1:1m", "s2"]
    assert client.get("/api/series", params={"filter": "tier=1m"}).json()["keys"] == ["s1:1m"]
    body = client.get("/api/series", params={"filter": "zone=A", "labels": "true"}).json()
    assert body["series"] == [{"key": "s1", "labels": {"zone": "A", "type": "t"}}]
    info = client.get("/api/series/s1").json()
    assert info["rules"] == [["s1:1m", 60_000, "AVG", 0], ["s1:1h", HOUR, "MAX", 0]]
    assert info["total_samples"] == len(db.range("s1", "-", "+"))
    assert client.get("/api/series/nope").status_code == 404


def test_aggregate_many_sensors_by_label(client, db, filled):
    start, now = filled
    body = client.get("/api/aggregate", params={"filter": "type=t", "from": start, "to": now,
                                                "aggregation": "max", "bucket": "1h"}).json()
    assert body["bucket_ms"] == HOUR
    assert [s["key"] for s in body["series"]] == ["s1", "s2"]
    s1, s2 = body["series"]
    assert [p["key"] for p in s1["sources"]] == ["s1:1h"]
    assert [p["key"] for p in s2["sources"]] == ["s2"]  # no tiers: raw
    for got in (s1, s2):
        want = db.range(got["key"], got["from"], got["to"], aggregation_type="max",
                        bucket_size_msec=HOUR)
        assert got["timestamps"] == [t for t, _ in want]
        assert got["values"] == [v for _, v in want]
    by_key = client.get("/api/aggregate", params=[("key", "s2"), ("bucket", "1h")]).json()
    assert [s["key"] for s in by_key["series"]] == ["s2"]
    assert client.get("/api/aggregate").status_code == 400
    bad = client.get("/api/aggregate", params={"key": "s1:1m"})
    assert bad.status_code == 400 and "is a tier" in bad.json()["error"]
    assert client.get("/api/aggregate", params={"key": "s1", "bucket": "x"}).status_code == 400


@pytest.mark.parametrize("params", [
    {}, {"count": 3}, {"reverse": "true", "count": 2}, {"reverse": "true"},
    {"aggregation": "avg", "bucket": "1h", "empty": "true", "bucket_timestamp": "mid"},
    {"min_value": 6, "max_value": 6},
])
def test_columns_format_equals_pairs(client, filled, params):
    url = "/api/series/s1/range"
    pairs = client.get(url, params=params).json()["samples"]
    cols = client.get(url, params={**params, "format": "columns"}).json()
    assert "samples" not in cols
    assert [list(x) for x in zip(cols["timestamps"], cols["values"], strict=True)] == pairs
    assert client.get(url, params={"format": "rows"}).status_code == 400


@pytest.mark.parametrize("path", ["/api/sensors/s1/raw?period=1h",
                                  "/api/sensors/s1/data?range=1h"])
def test_sensor_raw_samples_as_columns(client, filled, path):
    pairs = dict(map(tuple, client.get(path).json()["data"]))
    cols = client.get(path + "&format=columns").json()
    got = dict(zip(cols["timestamps"], cols["values"], strict=True))
    assert cols["timestamps"] == sorted(got) and len(got) > 300
    # "now" moves between the two requests: at most the oldest sample differs
    assert len(set(got) ^ set(pairs)) <= 1
    assert all(got[t] == pairs[t] for t in set(got) & set(pairs))


@pytest.mark.parametrize("params", [
    {"aggregation": "max", "bucket": "1h", "with_labels": "true"},
    {"reverse": "true", "count": 2, "select_labels": "zone"},
    {"groupby": "type", "reduce": "sum", "aggregation": "sum", "bucket": "1h"},
])
def test_mrange_columns_format_equals_pairs(client, filled, params):
    params = {"filter": "type=t", **params}
    pairs = client.get("/api/query", params=params).json()["series"]
    cols = client.get("/api/query", params={**params, "format": "columns"}).json()["series"]
    assert [(s["key"], s["labels"]) for s in cols] == [(s["key"], s["labels"]) for s in pairs]
    for c, p in zip(cols, pairs, strict=True):
        assert [list(x) for x in zip(c["timestamps"], c["values"], strict=True)] == p["samples"]
