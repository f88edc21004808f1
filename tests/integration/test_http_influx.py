"""InfluxDB line protocol over HTTP with the real influxdb-client (v2) and raw v1 requests."""

import base64
import gzip

import httpx
import pytest
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS, WriteOptions
from influxdb_client.rest import ApiException

from tests.integration.conftest import SECURED_TOKEN as TOKEN

T0 = 1_700_000_000_000


@pytest.fixture(scope="module")
def server(secured_serve_process):
    return secured_serve_process


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.http_url, timeout=30,
                      headers={"Authorization": f"Token {TOKEN}"}) as client:
        yield client


@pytest.fixture(scope="module")
def influx(server):
    with InfluxDBClient(url=server.http_url, token=TOKEN, org="acme", timeout=30_000) as client:
        yield client


def samples(http, key):
    return [tuple(x) for x in http.get(f"/api/series/{key}/range").json()["samples"]]


def test_probes(influx):
    assert influx.ping()
    assert influx.ready().status == "ready"
    assert influx.version().startswith("sensorium")
    with pytest.warns(DeprecationWarning):  # the client still calls /health for it
        assert influx.health().status == "pass"


def test_synchronous_write(influx, http):
    write = influx.write_api(write_options=SYNCHRONOUS)
    points = [Point("weather").tag("station", s).field("temperature", 20.0 + i)
              .field("humidity", 40 + i).time(T0 + i * 1000, WritePrecision.MS)
              for i in range(10) for s in ("A", "B")]
    write.write(bucket="iot", record=points, write_precision=WritePrecision.MS)
    assert samples(http, "weather,station=A:temperature") == [
        (T0 + i * 1000, 20.0 + i) for i in range(10)]
    info = http.get("/api/series/weather,station=B:humidity").json()
    assert info["labels"] == {"station": "B", "_measurement": "weather", "_field": "humidity"}
    # nanosecond records (the client's default precision)
    write.write(bucket="iot", record=f"ns_test,s=1 v=1 {T0 * 1_000_000 + 999_999}")
    assert samples(http, "ns_test,s=1:v") == [(T0, 1.0)]


def test_batching_write(influx, http):
    failures = []
    options = WriteOptions(batch_size=500, flush_interval=200, retry_interval=100,
                           max_retries=0)
    with influx.write_api(write_options=options,
                          error_callback=lambda conf, data, exc: failures.append(exc)) as write:
        for i in range(2000):
            write.write(bucket="iot", record=f"batched,dev=d{i % 20} v={i} {T0 + i}",
                        write_precision=WritePrecision.MS)
    assert failures == []
    total = http.get("/api/query", params={"filter": "_measurement=batched",
                                           "aggregation": "count", "bucket": "1y"}).json()
    assert sum(s["samples"][0][1] for s in total["series"]) == 2000


def test_gzip_client(server, http):
    with InfluxDBClient(url=server.http_url, token=TOKEN, org="acme", enable_gzip=True) as c:
        c.write_api(write_options=SYNCHRONOUS).write(
            bucket="iot", record="gz,s=1 v=7 1700000000", write_precision=WritePrecision.S)
    assert samples(http, "gz,s=1:v") == [(T0, 7.0)]


def test_bad_line_is_named_and_good_lines_written(influx, http):
    write = influx.write_api(write_options=SYNCHRONOUS)
    with pytest.raises(ApiException) as err:
        write.write(bucket="iot", record=["part v=1 1", "part v=oops 2", "part v=3 3"],
                    write_precision=WritePrecision.MS)
    assert err.value.status == 400
    assert '"line":2' in err.value.body and "partial write" in err.value.body
    assert samples(http, "part:v") == [(1, 1.0), (3, 3.0)]


def test_v1_compatibility_through_the_v2_client(server, http):
    with InfluxDBClient(url=server.http_url, token=f"admin:{TOKEN}", org="-") as c:
        c.write_api(write_options=SYNCHRONOUS).write(
            bucket="telegraf/autogen", record="v1c v=1 5", write_precision=WritePrecision.MS)
    assert samples(http, "v1c:v") == [(5, 1.0)]


@pytest.mark.parametrize("auth", ["query", "basic", "token"])
def test_v1_write(server, http, auth):
    params = {"db": "telegraf", "precision": "s"}
    headers = {}
    if auth == "query":
        params |= {"u": "admin", "p": TOKEN}
    elif auth == "basic":
        headers["Authorization"] = "Basic " + base64.b64encode(f"admin:{TOKEN}".encode()).decode()
    else:
        headers["Authorization"] = f"Token {TOKEN}"
    r = httpx.post(f"{server.http_url}/write", params=params, headers=headers,
                   content=f"v1_{auth},host=a load=0.5 1700000000\n".encode())
    assert r.status_code == 204, r.text
    assert samples(http, f"v1_{auth},host=a:load") == [(T0, 0.5)]


def test_v1_create_database_then_gzip_write(server):
    auth = {"u": "telegraf", "p": TOKEN}
    r = httpx.post(f"{server.http_url}/query", params=auth, data={"q": 'CREATE DATABASE "t"'})
    assert r.json() == {"results": [{"statement_id": 0}]}
    r = httpx.post(f"{server.http_url}/write", params={"db": "t", **auth},
                   content=gzip.compress(b"tg v=1\n"), headers={"Content-Encoding": "gzip"})
    assert r.status_code == 204


def test_token_is_required(server, http):
    for headers in ({}, {"Authorization": "Token wrong"}):
        r = httpx.post(f"{server.http_url}/api/v2/write", content=b"x v=1", headers=headers)
        assert r.status_code == 401 and r.json()["code"] == "unauthorized"
        assert httpx.get(f"{server.http_url}/api/sensors", headers=headers).status_code == 401
    with InfluxDBClient(url=server.http_url, token="wrong", org="o") as c:
        with pytest.raises(ApiException) as err:
            c.write_api(write_options=SYNCHRONOUS).write(bucket="b", record="x v=1")
        assert err.value.status == 401
    assert httpx.get(f"{server.http_url}/ping").status_code == 204  # probes stay open
    assert http.get("/api/series/x:v").status_code == 404


@pytest.mark.parametrize("body", [
    b"no_fields", b"m v=1 notatime", b"m,=x v=1", b'm s="only strings"', b"m v=1 1 extra",
    b"\xff\xfe v=1", b"m v=1\x00", b"m v=99999999999999999999999999999999i",
])
def test_malformed_line_protocol(http, body):
    before = samples(http, "weather,station=A:temperature")
    r = http.post("/api/v2/write", content=body)
    assert r.status_code == 400
    assert r.json()["code"] == "invalid" and r.json()["line"] == 1
    assert samples(http, "weather,station=A:temperature") == before


def test_many_concurrent_writers(server, http):
    import concurrent.futures

    def send(w):
        lines = "\n".join(f"conc,w={w} v={i} {T0 + i}" for i in range(1000))
        return http.post("/api/v2/write", params={"precision": "ms"},
                         content=lines.encode()).status_code
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert set(pool.map(send, range(8))) == {204}
    for w in range(8):
        assert len(samples(http, f"conc,w={w}:v")) == 1000
