"""The ``mqtt`` target of ``sensorium generate``: a paho-mqtt publisher (publisher only; the
broker and Sensorium's subscriber are separate).

Topic ``factory/{building}/{zone}/{sensor_id}/{type}`` from the sensor's labels; payload
``{"timestamp": ms, "value": v}``, or with a batch size a JSON array of up to that many
readings of one sensor. paho-mqtt is imported on use, so the other targets work without it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from .generate import Fleet
from .sinks import RowSink, SinkError, Written

MQTT_TOPIC = "factory/{building}/{zone}/{sensor_id}/{type}"


def _paho() -> Any:
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise SinkError("the mqtt target needs paho-mqtt: pip install paho-mqtt") from None
    return mqtt


class MqttSink(RowSink):
    """paho-mqtt publisher: one message per reading (``batch=1``) or per sensor and
    ``batch`` readings (a JSON array). QoS 1 waits for the broker's PUBACKs at the end of
    every chunk, so ``written`` counts acknowledged messages' samples."""

    def __init__(self, host: str, port: int = 1883, qos: int = 1, batch: int = 1,
                 username: str | None = None, password: str | None = None,
                 client_id: str = "") -> None:
        mqtt = _paho()
        if qos not in (0, 1, 2):
            raise SinkError("qos must be 0, 1 or 2")
        if batch < 1:
            raise SinkError("mqtt batch must be >= 1")
        self.qos, self.batch = qos, batch
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.max_inflight_messages_set(0)  # no cap: QoS 1 load tests stream
        self.client.max_queued_messages_set(0)
        if username is not None:
            self.client.username_pw_set(username, password)
        try:
            self.client.connect(host, port)
        except OSError as exc:
            raise SinkError(f"MQTT broker {host}:{port}: {exc}") from exc
        self.client.loop_start()
        self.written = Written()
        self._topics: list[str] = []

    def open(self, fleet: Fleet) -> None:
        self._topics = [MQTT_TOPIC.format(**labels) for labels in fleet.labels]

    def write_rows(self, who: np.ndarray, ts: np.ndarray, values: np.ndarray) -> None:
        topics = self._topics
        infos: list[tuple[Any, int]] = []
        publish = self.client.publish
        if self.batch == 1:
            for s, t, v in zip(who.tolist(), ts.tolist(), values.tolist(), strict=True):
                infos.append((publish(topics[s], f'{{"timestamp":{t},"value":{v!r}}}',
                                      self.qos), 1))
        else:
            starts = np.flatnonzero(np.r_[True, who[1:] != who[:-1]])
            bounds = np.r_[starts, len(who)]
            for s, a, b in zip(who[starts].tolist(), bounds[:-1].tolist(), bounds[1:].tolist(),
                               strict=True):
                for lo in range(a, b, self.batch):
                    hi = min(lo + self.batch, b)
                    body = json.dumps([{"timestamp": t, "value": v} for t, v in zip(
                        ts[lo:hi].tolist(), values[lo:hi].tolist(), strict=True)],
                        separators=(",", ":"))
                    infos.append((publish(topics[s], body, self.qos), hi - lo))
        self._settle(infos)

    def _settle(self, infos: Sequence[tuple[Any, int]]) -> None:
        for info, count in infos:
            if info.rc != 0:
                self.written.refuse(count, f"publish failed (paho rc {info.rc})")
                continue
            if self.qos > 0:
                info.wait_for_publish(timeout=60)
            if info.is_published() or self.qos == 0:
                self.written.samples += count
            else:
                self.written.refuse(count, "no PUBACK from the broker within 60 s")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
