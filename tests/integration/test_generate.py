"""``sensorium generate`` into a real ``sensorium serve``, read back with real clients.

Each sink writes its own fleet (key prefix) to the module's shared server; what the server
stores must be exactly what the generator made: timestamps, 2-decimal values, labels.
"""

import json
import socket
import threading

import httpx
import numpy as np
import pytest
import redis

from sensorium import cli
from sensorium.tools.generate import Generator, fleet
from sensorium.tools.load import load_history
from sensorium.tools.sinks import SinkError, open_sink
from sensorium.tools.sinks_mqtt import MQTT_TOPIC

from .conftest import wait_until
from .mosquitto import running_broker

START_MS = 1_700_006_400_000
STEPS = 240  # 4 hours at 1 min


def generated(prefix, sensors=6, seed=3):
    f = fleet(sensors, prefix)
    values = Generator(f, START_MS, 60_000, seed).chunk(STEPS).values
    return f, values


def load(target, prefix, srv, **kwargs):
    f = fleet(6, prefix)
    sink = open_sink(target, url=srv.http_url, resp=f"127.0.0.1:{srv.resp_port}", **kwargs)
    report = load_history(Generator(f, START_MS, 60_000, 3), sink, STEPS, quiet=True)
    sink.close()
    return report


def samples_of(values_row):
    present = ~np.isnan(values_row)
    return (START_MS + 60_000 * np.flatnonzero(present)).tolist(), values_row[present].tolist()


@pytest.mark.parametrize("target", ["http", "http-batch"])
def test_json_targets(serve_process, target):
    prefix = f"{target}:"
    report = load(target, prefix, serve_process, batch=500)  # several requests per chunk
    f, values = generated(prefix)
    assert report.written.rejected == 0
    assert report.written.samples == (~np.isnan(values)).sum()
    with httpx.Client(base_url=serve_process.http_url) as http:
        for s, key in enumerate(f.keys):
            got = http.get(f"/api/series/{key}/range").json()["samples"]
            ts, vals = samples_of(values[s])
            assert [t for t, _ in got] == ts and [v for _, v in got] == vals
            assert http.get(f"/api/series/{key}").json()["labels"] == f.labels[s]


def test_line_protocol_target(serve_process):
    report = load("line", "lp:", serve_process, batch=700)
    f, values = generated("lp:")
    assert report.written.samples == (~np.isnan(values)).sum()
    with httpx.Client(base_url=serve_process.http_url) as http:
        replies = [http.get("/api/query", params={"filter": f"sensor_id={sensor_id}",
                                                  "with_labels": "true"}).json()["series"]
                   for sensor_id in f.keys]
    for s, reply in enumerate(replies):
        assert len(reply) == 1
        (series,) = reply
        assert series["key"].startswith("sensors,") and series["key"].endswith(":value")
        assert series["labels"] == {**f.labels[s], "_measurement": "sensors",
                                    "_field": "value"}
        ts, vals = samples_of(values[s])
        assert [t for t, _ in series["samples"]] == ts
        assert [v for _, v in series["samples"]] == vals


def test_resp_target(serve_process):
    report = load("resp", "resp:", serve_process)
    f, values = generated("resp:")
    assert report.written.rejected == 0 and report.written.extra["created"] == 6
    r = redis.Redis(port=serve_process.resp_port, decode_responses=True)
    for s, key in enumerate(f.keys):
        got = r.ts().range(key, "-", "+")
        ts, vals = samples_of(values[s])
        assert [t for t, _ in got] == ts and [v for _, v in got] == vals
        assert r.ts().info(key).labels == f.labels[s]
    r.close()
    # a second load finds the series there and overwrites (DUPLICATE_POLICY LAST)
    again = load("resp", "resp:", serve_process)
    assert again.written.samples == report.written.samples and again.written.rejected == 0


def test_refusals_are_counted_not_fatal(serve_process):
    load("http", "dup:", serve_process)
    again = load("http", "dup:", serve_process)  # same samples again: BLOCK refuses them
    assert again.written.samples == 0 and again.written.rejected > 0
    assert "DUPLICATE_POLICY" in again.written.first_error


def test_unreachable_server_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SystemExit, match="generate: POST http://127.0.0.1:"):
        cli.main(["generate", "--target", "http", "--url", f"http://127.0.0.1:{port}",
                  "--quiet"])


def test_stats_and_bench_through_the_server(serve_factory, tmp_path, capsys):
    srv = serve_factory(tmp_path / "data", resp=False)
    http = httpx.Client(base_url=srv.http_url)
    f = fleet(5, "b:")
    for key, labels in zip(f.keys, f.labels, strict=True):
        assert http.post("/api/series", json={"key": key, "labels": labels}).status_code == 201
        for name, bucket in (("1h", "1h"), ("1d", "1d")):
            http.post("/api/series", json={"key": f"{key}:{name}", "labels": {"tier": name}})
            assert http.post(f"/api/series/{key}/rules", json={
                "dest": f"{key}:{name}", "aggregation": "avg", "bucket": bucket}).status_code \
                == 201
    cli.main(["generate", "--target", "http", "--url", srv.http_url, "--sensors", "5",
              "--days", "40", "--interval", "300", "--prefix", "b:", "--quiet"])
    out = capsys.readouterr().out
    written = int(out.split(" samples written")[0].split()[-1].replace(",", ""))

    cli.main(["stats", "--url", srv.http_url, "--window", "0", "--json"])
    stats = json.loads(capsys.readouterr().out)
    assert stats["series"] == {"total": 15, "raw": 5, "tiers": 10}
    assert stats["raw"]["samples"] == written
    hourly, daily = stats["tiers"]
    assert (hourly["bucket_ms"], hourly["series"], daily["bucket_ms"]) == (
        3_600_000, 5, 86_400_000)
    # closed buckets only (the open ones live in memory); a long dropout can empty an hour
    assert 0.97 * 40 * 24 * 5 <= hourly["buckets"] <= 40 * 24 * 5
    assert daily["buckets"] in (40 * 5 - 5, 40 * 5)

    cli.main(["bench", "--url", srv.http_url, "--repeat", "2", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert [r["question"] for r in rows][:2] == ["current value", "raw samples, last day"]
    assert rows[0]["sensor"] == "b:temp_0001"
    assert rows[1]["rows"] > 250  # a day at 5 min, less dropouts
    for r in rows[2:]:
        assert r["same"] is True and r["tier"].startswith("b:temp_0001:")
        assert r["endpoint_source"] == r["tier"]
    assert rows[2]["tier"].endswith(":1h") and rows[3]["tier"].endswith(":1d")

    # the ingest rate while a live load runs
    live = threading.Thread(target=cli.main, args=([
        "generate", "--live", "--rate", "3000", "--duration", "2.5", "--target", "http",
        "--url", srv.http_url, "--sensors", "30", "--prefix", "live:", "--quiet"],))
    live.start()
    wait_until(lambda: http.get("/api/series", params={"filter": "type=vibration"}).json()[
        "keys"].__len__() > 5)
    cli.main(["stats", "--url", srv.http_url, "--window", "1"])
    live.join()
    http.close()
    text = capsys.readouterr().out
    assert "series" in text and "ingest" in text
    rate = float(text.split("ingest")[1].split("samples/s")[0].strip().rstrip("k")) * (
        1000 if "k samples/s" in text else 1)
    assert 1000 < rate < 6000


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory):
    for broker in running_broker(tmp_path_factory):  # fails, not skips, without mosquitto
        yield broker.port


def _subscribe(port):
    import paho.mqtt.client as mqtt

    got = []
    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, m: got.append((m.topic, json.loads(m.payload)))
    client.on_connect = lambda c, u, f, rc, p: c.subscribe("factory/#", qos=1)
    client.on_subscribe = lambda c, u, mid, rc, p: subscribed.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert subscribed.wait(10), "no SUBACK from the broker"
    return client, got


@pytest.mark.parametrize("batch", [1, 50])
def test_mqtt_target(mosquitto, batch):
    sub, got = _subscribe(mosquitto)
    f, values = generated(f"m{batch}_", sensors=5)
    sink = open_sink("mqtt", mqtt=f"127.0.0.1:{mosquitto}", batch=batch)
    report = load_history(Generator(f, START_MS, 60_000, 3), sink, STEPS, quiet=True)
    sink.close()
    total = int((~np.isnan(values)).sum())
    assert report.written.samples == total
    wait_until(lambda: sum(len(p) if isinstance(p, list) else 1 for _, p in got) >= total)
    sub.loop_stop()
    sub.disconnect()
    by_topic = {}
    for topic, payload in got:
        by_topic.setdefault(topic, []).extend(payload if isinstance(payload, list) else [payload])
    if batch == 1:
        assert all(isinstance(p, dict) for _, p in got)
    else:
        assert max(len(p) for _, p in got) == batch
    for s, labels in enumerate(f.labels):
        readings = by_topic[MQTT_TOPIC.format(**labels)]
        ts, vals = samples_of(values[s])
        assert [r["timestamp"] for r in readings] == ts
        assert [r["value"] for r in readings] == vals


def test_mqtt_without_a_broker_is_a_clear_error():
    pytest.importorskip("paho.mqtt.client")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SinkError, match=f"MQTT broker 127.0.0.1:{port}"):
        open_sink("mqtt", mqtt=f"127.0.0.1:{port}")
