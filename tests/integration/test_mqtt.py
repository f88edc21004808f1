"""``sensorium serve`` subscribed to a real mosquitto; paho-mqtt publishes, HTTP reads back."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from .conftest import ServeProcess, StartServe, wait_until
from .mosquitto import Broker, running_broker

TS = 1_700_000_000_000


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from running_broker(tmp_path_factory)


def _config(path: Path, broker: Broker, client_id: str, **mqtt_keys: Any) -> Path:
    keys = {"port": broker.port, "client_id": client_id, "reconnect_min_s": 0.2,
            "reconnect_max_s": 1.0, **mqtt_keys}
    lines = ["[mqtt]", *(f"{k} = {json.dumps(v)}" for k, v in keys.items()),
             "[[mqtt.subscriptions]]",
             'template = "factory/{building}/{zone}/{sensor_id}/{type}"',
             'labels = {site = "plant-1"}',
             "[[mqtt.subscriptions]]",
             'template = "gateway/{gateway}"',
             "[[mqtt.subscriptions]]",
             'template = "telegraf/{host}"', 'format = "line"', 'precision = "ms"',
             "[[mqtt.subscriptions]]",
             'template = "strict/{sensor_id}/value"', 'filter = "strict/#"']
    path.write_text("\n".join(lines) + "\n")
    return path


def _serve(start: StartServe, tmp_path: Path, broker: Broker, client_id: str,
           data: str = "data", **keys: Any) -> ServeProcess:
    cfg = _config(tmp_path / f"{client_id}-{data}.toml", broker, client_id, **keys)
    srv = start(tmp_path / data, resp=False, args=("--config", str(cfg)))
    wait_until(lambda: _status(srv)["connected"])
    return srv


def _status(srv: ServeProcess) -> dict[str, Any]:
    return httpx.get(srv.http_url + "/api/mqtt").json()


def _samples(srv: ServeProcess, key: str) -> list[list[float]]:
    r = httpx.get(f"{srv.http_url}/api/series/{key}/range", params={"from": "-", "to": "+"})
    return r.json()["samples"] if r.status_code == 200 else []


def _labels(srv: ServeProcess, key: str) -> dict[str, str]:
    return httpx.get(f"{srv.http_url}/api/series/{key}").json()["labels"]


def _publisher(broker: Broker, name: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    return c


def _publish(c: mqtt.Client, topic: str, payload: Any, qos: int = 1) -> None:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    c.publish(topic, body, qos=qos).wait_for_publish(5)


def test_readings_batches_lines_and_bad_payloads(serve_factory: StartServe, tmp_path: Path,
                                                 broker: Broker) -> None:
    srv = _serve(serve_factory, tmp_path, broker, "it-ingest")
    pub = _publisher(broker, "it-pub")
    try:
        _publish(pub, "factory/b1/z1/temp_001/temperature", {"value": 21.5, "timestamp": TS}, 0)
        _publish(pub, "factory/b1/z1/temp_001/temperature", {"value": 21.7, "timestamp": TS + 1000})
        _publish(pub, "factory/b1/z2/hum_001/humidity", b"45.5", 0)  # bare number: time of receipt
        _publish(pub, "factory/b1/z1/temp_002/temperature",
                 [{"value": 20 + i, "timestamp": TS + i * 1000} for i in range(50)])
        _publish(pub, "gateway/gw7", [{"sensor_id": "vib_001", "value": 0.5, "timestamp": TS,
                                       "unit": "g", "labels": {"line": "3"}},
                                      {"sensor_id": "vib_002", "value": 0.7, "timestamp": TS}])
        _publish(pub, "telegraf/host1",
                 b"cpu,cpu=total usage_idle=93.5,usage_user=4 1700000000000\n"
                 b"cpu,cpu=total usage_idle=92.5,usage_user=5 1700000001000")
        wait_until(lambda: _status(srv)["written_samples"] == 1 + 1 + 1 + 50 + 2 + 4)

        assert _samples(srv, "temp_001") == [[TS, 21.5], [TS + 1000, 21.7]]
        assert len(_samples(srv, "hum_001")) == 1
        assert [v for _, v in _samples(srv, "temp_002")] == [20 + i for i in range(50)]
        # The key is the sensor_id, as over HTTP; the other levels and static labels are labels.
        assert _labels(srv, "temp_001") == {"site": "plant-1", "building": "b1", "zone": "z1",
                                            "type": "temperature"}
        assert _labels(srv, "vib_001") == {"gateway": "gw7", "line": "3", "unit": "g"}
        # Line protocol keeps the key scheme of HTTP /write; the topic adds labels.
        assert _samples(srv, "cpu,cpu=total:usage_idle") == [[TS, 93.5], [TS + 1000, 92.5]]
        assert _labels(srv, "cpu,cpu=total:usage_user")["host"] == "host1"
        # The same reading over HTTP lands in the same series.
        r = httpx.post(srv.http_url + "/api/ingest/batch",
                       json=[{"sensor_id": "temp_001", "timestamp": TS + 2000, "value": 22.0}])
        assert r.status_code == 200
        assert len(_samples(srv, "temp_001")) == 3

        before = _status(srv)
        bad = [("factory/b1/z1/temp_001/temperature", b"{not json"),
               ("factory/b1/z1/temp_001/temperature", {"value": "hot"}),
               ("factory/b1/z1/temp_001/temperature", {"value": 1, "timestamp": True}),
               ("factory/b1/z1/temp_001/temperature", b"[1, 2]"),
               ("gateway/gw7", {"value": 1.0}),  # no sensor_id anywhere
               ("telegraf/host1", b"cpu usage_idle=oops 1700000000000"),
               ("strict/temp_009/other", b"1.0"),  # fits the filter, not the template
               ("factory//z1/temp_001/temperature", b"1.0")]  # an empty level
        for i, (topic, body) in enumerate(bad):
            _publish(pub, topic, body, qos=i % 2)
        wait_until(lambda: sum(_status(srv)["bad_payloads"].values())
                   - sum(before["bad_payloads"].values()) == len(bad))
        st = _status(srv)
        assert st["bad_payloads"] == {"invalid_json": 1, "invalid_reading": 3, "no_sensor_id": 1,
                                      "invalid_line": 1, "unknown_topic": 2}
        assert st["written_samples"] == before["written_samples"]
        # A duplicate timestamp is refused by the engine (policy BLOCK), counted, not fatal.
        _publish(pub, "factory/b1/z1/temp_001/temperature", {"value": 99, "timestamp": TS})
        wait_until(lambda: _status(srv)["refused_samples"].get("duplicate_blocked") == 1)
        _publish(pub, "strict/temp_009/value", b"7.5")
        wait_until(lambda: len(_samples(srv, "temp_009")) == 1)
        st = _status(srv)
        assert st["acked"] > 0 and st["pending"] == 0 and st["connects"] == 1
        log = srv.stderr_path.read_text()
        assert "bad payload on 'factory/b1/z1/temp_001/temperature': invalid_json" in log
        assert "unknown_topic" in log
    finally:
        pub.loop_stop()
    assert srv.stop(signal.SIGTERM) == 0
    assert srv.lines[-1] == "stopped"


def test_qos1_survives_kill9_and_sigterm_writes_the_inbox(
        serve_factory: StartServe, tmp_path: Path, broker: Broker) -> None:
    """Received but not yet written (a long flush interval): kill -9 must not lose it; the
    broker sends it again to the persistent session, and SIGTERM writes it before exiting."""
    srv = _serve(serve_factory, tmp_path, broker, "it-crash", flush_ms=60_000)
    pub = _publisher(broker, "it-crash-pub")
    try:
        for i in range(20):
            _publish(pub, f"factory/b1/z1/crash_{i % 4}/t", {"value": i, "timestamp": TS + i})
        wait_until(lambda: _status(srv)["received"] == 20)
        assert _status(srv)["acked"] == 0
        srv.kill()
        for i in range(20, 30):  # queued by the broker for the persistent session
            _publish(pub, f"factory/b1/z1/crash_{i % 4}/t", {"value": i, "timestamp": TS + i})
        srv = _serve(serve_factory, tmp_path, broker, "it-crash", flush_ms=60_000)
        wait_until(lambda: _status(srv)["received"] == 30)
        assert sum(len(_samples(srv, f"crash_{k}")) for k in range(4)) == 0  # still in the inbox
    finally:
        pub.loop_stop()
    assert srv.stop(signal.SIGTERM) == 0  # writes and acknowledges before closing the database
    assert "session present: True" in srv.stderr_path.read_text()
    srv = serve_factory(tmp_path / "data", resp=False)  # no MQTT: what is on disk
    got = sorted(v for k in range(4) for _, v in _samples(srv, f"crash_{k}"))
    assert got == list(range(30))


def test_mqtt_flag_and_reconnect_after_broker_restart(serve_factory: StartServe, tmp_path: Path,
                                                      broker: Broker) -> None:
    # --mqtt overrides the config's broker address (port 1 would never connect).
    cfg = _config(tmp_path / "flag.toml", broker, "it-reconnect", port=1, protocol="3.1.1")
    srv = serve_factory(tmp_path / "data", resp=False,
                        args=("--config", str(cfg), "--mqtt", f"[127.0.0.1]:{broker.port}"))
    assert any(line.startswith(f"mqtt 127.0.0.1:{broker.port} (factory/+/+/+/+, ")
               for line in srv.lines)
    wait_until(lambda: _status(srv)["connected"])
    broker.stop()
    wait_until(lambda: not _status(srv)["connected"])
    assert "disconnected" in _status(srv)["last_error"]
    broker.start()
    wait_until(lambda: _status(srv)["connects"] == 2)
    pub = _publisher(broker, "it-reconnect-pub")
    try:
        _publish(pub, "factory/b1/z1/after_1/t", b"3.25")
        wait_until(lambda: len(_samples(srv, "after_1")) == 1)
    finally:
        pub.loop_stop()


def test_max_batch_bytes_splits_flushes_and_each_is_acknowledged(
        serve_factory: StartServe, tmp_path: Path, broker: Broker) -> None:
    srv = _serve(serve_factory, tmp_path, broker, "it-cap", max_batch_bytes=64, flush_ms=200)
    pub = _publisher(broker, "it-cap-pub")
    try:
        for i in range(12):  # ~45 bytes each: two never fit in one flush
            _publish(pub, f"factory/b1/z1/cap_{i % 3}/t", {"value": i, "timestamp": TS + i})
        wait_until(lambda: _status(srv)["acked"] == 12)
        st = _status(srv)
        assert (st["written_samples"], st["flushes"], st["pending"]) == (12, 12, 0)
        assert sum(len(_samples(srv, f"cap_{k}")) for k in range(3)) == 12
    finally:
        pub.loop_stop()
