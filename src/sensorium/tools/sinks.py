"""Where generated samples go: the embedded database or a running server, by protocol.

Every sink takes whole :class:`~sensorium.tools.generate.Chunk` objects (columns) and sends
them in large batches; what per-sample work remains is the wire format's own (redis-py encodes
each argument, MQTT sends one message per reading). Targets:

=============  ==============================================================================
``embedded``   ``create_many`` with labels, ``series_ids``, then columnar ``madd`` of ids
               inside ``db.batch()`` (one durable commit per chunk)
``http``       ``POST /api/ingest/columns``: per sensor ``{"sensor_id", "timestamps",
               "values", "labels"}``
``http-batch`` ``POST /api/ingest/batch``: seed 000's readings ``[{"sensor_id", "timestamp",
               "value", "labels"}]``
``line``       ``POST /api/v2/write?precision=ms``: InfluxDB line protocol, measurement
               ``sensors``, the labels as tags, field ``value`` (text built by pyarrow)
``resp``       redis-py pipeline: ``TS.CREATE … LABELS …`` once, then ``TS.MADD`` triples
``mqtt``       ``sinks_mqtt.py``: paho-mqtt publishes to ``factory/{building}/{zone}/
               {sensor_id}/{type}`` ``{"timestamp": ms, "value": v}`` (or arrays of those)
=============  ==============================================================================

A sink counts what the server accepted and what it refused (``Written``); it raises
``SinkError`` (with the server's message) when a request fails as a whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .generate import Chunk, Fleet

HTTP_BATCH_SAMPLES = 100_000  # per request: ~2 MB of JSON, well under the 64 MiB body limit
RESP_MADD_SAMPLES = 1_000  # triples per TS.MADD command
RESP_PIPELINE_SAMPLES = 50_000  # samples per pipeline round trip
EMBEDDED_BATCH_SAMPLES = 2_000_000  # rows per madd: large parts, few log records
LINE_MEASUREMENT = "sensors"
TARGETS = ("embedded", "http", "http-batch", "line", "resp", "mqtt")


class SinkError(Exception):
    """A write failed as a whole (connection refused, HTTP 4xx/5xx, RESP error)."""


@dataclass(slots=True)
class Written:
    """Running totals of a sink: samples accepted, refused, and the first refusal."""

    samples: int = 0
    rejected: int = 0
    first_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def refuse(self, count: int, message: str) -> None:
        self.rejected += count
        if self.first_error is None:
            self.first_error = message


class Sink(Protocol):
    """``open`` once (creates the series with their labels where the protocol can), then
    ``write`` chunks in time order, then ``close``. ``written`` holds the totals."""

    written: Written

    def open(self, fleet: Fleet) -> None: ...

    def write(self, chunk: Chunk) -> None: ...

    def write_rows(self, who: np.ndarray, ts_ms: np.ndarray, values: np.ndarray) -> None: ...

    def close(self) -> None: ...


class RowSink:
    """``write(chunk)`` in terms of ``write_rows`` (sensor-major columns)."""

    def write(self, chunk: Chunk) -> None:
        self.write_rows(*chunk.rows())

    def write_rows(self, who: np.ndarray, ts_ms: np.ndarray, values: np.ndarray) -> None:
        raise NotImplementedError


# -- embedded ---------------------------------------------------------------------------------
class EmbeddedSink(RowSink):
    """Writes into an open ``Database`` (the caller owns and closes it)."""

    def __init__(self, db: Any, batch_samples: int = EMBEDDED_BATCH_SAMPLES) -> None:
        self.db = db
        self.batch_samples = batch_samples
        self.written = Written()
        self._ids = np.empty(0, np.int32)

    def open(self, fleet: Fleet) -> None:
        with self.db.batch():
            created = self.db.create_many(fleet.keys, fleet.labels)
            self._ids = self.db.series_ids(fleet.keys, create=False)
        self.written.extra["created"] = created

    def write_rows(self, who: np.ndarray, ts: np.ndarray, values: np.ndarray) -> None:
        from ..engine.head_append import MESSAGES, Status

        ids = self._ids[who]
        with self.db.batch():  # one durable commit for the chunk
            for lo in range(0, len(ids), self.batch_samples):
                hi = lo + self.batch_samples
                res = self.db.madd(ids[lo:hi], ts[lo:hi], values[lo:hi])
                bad = np.flatnonzero(res.status != Status.OK)
                self.written.samples += min(hi, len(ids)) - lo - len(bad)
                if len(bad):
                    self.written.refuse(len(bad), MESSAGES[Status(int(res.status[bad[0]]))])

    def close(self) -> None:
        pass


# -- HTTP -------------------------------------------------------------------------------------
class _HttpSink(RowSink):
    path = ""
    content_type = "application/json"

    def __init__(self, url: str, token: str | None = None,
                 batch_samples: int = HTTP_BATCH_SAMPLES, timeout_s: float = 120.0) -> None:
        import httpx

        headers = {"Content-Type": self.content_type}
        if token:
            headers["Authorization"] = f"Token {token}"
        self.client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s)
        self.batch_samples = batch_samples
        self.written = Written()
        self.fleet: Fleet | None = None
        self._labelled = np.zeros(0, bool)  # sensors whose labels were sent

    def open(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self._labelled = np.zeros(len(fleet), bool)

    def write_rows(self, who: np.ndarray, ts: np.ndarray, values: np.ndarray) -> None:
        for lo in range(0, len(who), self.batch_samples):
            hi = min(lo + self.batch_samples, len(who))
            self._post(self.body(who[lo:hi], ts[lo:hi], values[lo:hi]), hi - lo)

    def body(self, who: np.ndarray, ts: np.ndarray, values: np.ndarray) -> bytes:
        raise NotImplementedError

    def _post(self, body: bytes, count: int) -> None:
        import httpx

        try:
            reply = self.client.post(self.path, content=body, params=self.params())
        except httpx.HTTPError as exc:
            raise SinkError(f"POST {self.client.base_url}{self.path}: {exc}") from exc
        if reply.status_code < 300:
            self.written.samples += count
            return
        try:
            doc = reply.json()
        except ValueError:
            doc = {}
        if reply.status_code == 400 and "written" in doc:  # some rows refused, rest written
            written = int(doc["written"])
            self.written.samples += written
            first = (doc.get("errors") or [None])[0]
            self.written.refuse(count - written, str(first or doc.get("error")))
            return
        raise SinkError(f"POST {self.path}: HTTP {reply.status_code}: {reply.text[:500]}")

    def params(self) -> dict[str, str]:
        return {}

    def _labels_once(self, sensors: np.ndarray) -> np.ndarray:
        """Which of ``sensors`` (unique) still need their labels sent; marks them sent."""
        need = sensors[~self._labelled[sensors]]
        self._labelled[need] = True
        return need

    def close(self) -> None:
        self.client.close()


class HttpColumnsSink(_HttpSink):
    """``POST /api/ingest/columns``: one object per sensor of the batch."""

    path = "/api/ingest/columns"

    def body(self, who: np.ndarray, ts: np.ndarray, values: np.ndarray) -> bytes:
        assert self.fleet is not None
        starts = np.flatnonzero(np.r_[True, who[1:] != who[:-1]])
        ends = np.r_[starts[1:], len(who)]
        sensors = who[starts]
        labelled = set(self._labels_once(np.unique(sensors)).tolist())
        items = []
        for s, a, b in zip(sensors.tolist(), starts.tolist(), ends.tolist(), strict=True):
            item: dict[str, Any] = {"sensor_id": self.fleet.keys[s],
                                    "timestamps": ts[a:b].tolist(),
                                    "values": values[a:b].tolist()}
            if s in labelled:
                item["labels"] = self.fleet.labels[s]
            items.append(item)
        return json.dumps(items, separators=(",", ":")).encode()


class HttpBatchSink(_HttpSink):
    """``POST /api/ingest/batch``: seed 000's list of readings."""

    path = "/api/ingest/batch"

    def body(self, who: np.ndarray, ts: np.ndarray, values: np.ndarray) -> bytes:
        assert self.fleet is not None
        keys = self.fleet.keys
        first = np.flatnonzero(np.r_[True, who[1:] != who[:-1]])
        labelled = set(self._labels_once(np.unique(who[first])).tolist())
        items = [{"sensor_id": keys[s], "timestamp": t, "value": v}
                 for s, t, v in zip(who.tolist(), ts.tolist(), values.tolist(), strict=True)]
        for i in first.tolist():
            s = int(who[i])
            if s in labelled:
                items[i]["labels"] = self.fleet.labels[s]
        return json.dumps(items, separators=(",", ":")).encode()


class LineProtocolSink(_HttpSink):
    """``POST /api/v2/write?precision=ms``: the body is built column-wise by pyarrow."""

    path = "/api/v2/write"
    content_type = "text/plain; charset=utf-8"

    def open(self, fleet: Fleet) -> None:
        super().open(fleet)
        self._series = np.array([_series_line(labels) for labels in fleet.labels], object)

    def params(self) -> dict[str, str]:
        return {"precision": "ms", "org": "sensorium", "bucket": "generated"}

    def body(self, who: np.ndarray, ts: np.ndarray, values: np.ndarray) -> bytes:
        return line_protocol(self._series, who, ts, values)


def _escape(text: str, specials: str) -> str:
    for ch in "\\" + specials:
        text = text.replace(ch, "\\" + ch)
    return text


def _series_line(labels: dict[str, str]) -> str:
    """``sensors,tag=v,…`` with tags sorted (InfluxDB's canonical series key order)."""
    tags = ",".join(f"{_escape(k, ',= ')}={_escape(v, ',= ')}"
                    for k, v in sorted(labels.items()) if v != "")
    return f"{LINE_MEASUREMENT},{tags}" if tags else LINE_MEASUREMENT


def line_protocol(series: np.ndarray, who: np.ndarray, ts_ms: np.ndarray,
                  values: np.ndarray) -> bytes:
    """Lines ``<series> value=<v> <ts_ms>\\n`` for each row, formatted by pyarrow in C++
    (shortest round-trip float text, so 2-decimal values stay 2 decimals)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(who) == 0:
        return b""
    heads = pa.array(series, pa.string()).take(pa.array(who))
    lines = pc.binary_join_element_wise(
        heads, pa.scalar(" value="), pc.cast(pa.array(values), pa.string()), pa.scalar(" "),
        pc.cast(pa.array(ts_ms), pa.string()), pa.scalar("\n"), "")
    return b"".join(bytes(buf) for buf in _string_data(lines))


def _string_data(arr: Any) -> list[Any]:
    """The UTF-8 bytes of a string array, concatenated (its data buffer, sliced)."""
    import pyarrow as pa

    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    offsets = np.frombuffer(arr.buffers()[1], np.int32)[arr.offset: arr.offset + len(arr) + 1]
    return [arr.buffers()[2][int(offsets[0]): int(offsets[-1])]]


# -- RESP -------------------------------------------------------------------------------------
class RespSink(RowSink):
    """redis-py against the RESP port: series created with ``TS.CREATE … LABELS``, then
    pipelined ``TS.MADD``. The replies are checked per sample."""

    def __init__(self, host: str, port: int, password: str | None = None,
                 madd_samples: int = RESP_MADD_SAMPLES,
                 pipeline_samples: int = RESP_PIPELINE_SAMPLES) -> None:
        import redis

        self.client = redis.Redis(host=host, port=port, password=password)
        self.madd_samples = madd_samples
        self.pipeline_samples = pipeline_samples
        self.written = Written()
        self._keys: list[str] = []

    def open(self, fleet: Fleet) -> None:
        import redis

        self._keys = list(fleet.keys)
        pipe = self.client.pipeline(transaction=False)
        for key, labels in zip(fleet.keys, fleet.labels, strict=True):
            args: list[str] = [key, "DUPLICATE_POLICY", "LAST", "LABELS"]
            for k, v in labels.items():
                args += [k, v]
            pipe.execute_command("TS.CREATE", *args)
        try:
            replies = pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            raise SinkError(f"RESP {self.client}: {exc}") from exc
        bad = [r for r in replies if isinstance(r, Exception)
               and "already exists" not in str(r).lower()]
        if bad:
            raise SinkError(f"TS.CREATE: {bad[0]}")
        self.written.extra["created"] = len(replies) - sum(isinstance(r, Exception)
                                                         for r in replies)

    def write_rows(self, who: np.ndarray, ts: np.ndarray, values: np.ndarray) -> None:
        import redis

        keys = np.array(self._keys, object)[who]
        step = self.madd_samples
        for lo in range(0, len(who), self.pipeline_samples):
            hi = min(lo + self.pipeline_samples, len(who))
            pipe = self.client.pipeline(transaction=False)
            for a in range(lo, hi, step):
                b = min(a + step, hi)
                triples = np.empty(3 * (b - a), object)
                triples[0::3], triples[1::3], triples[2::3] = keys[a:b], ts[a:b], values[a:b]
                pipe.execute_command("TS.MADD", *triples.tolist())
            try:
                replies = pipe.execute(raise_on_error=False)
            except redis.RedisError as exc:
                raise SinkError(f"RESP TS.MADD: {exc}") from exc
            for reply in replies:
                if isinstance(reply, Exception):
                    raise SinkError(f"RESP TS.MADD: {reply}")
                errors = [r for r in reply if isinstance(r, Exception)]
                self.written.samples += len(reply) - len(errors)
                if errors:
                    self.written.refuse(len(errors), str(errors[0]))

    def close(self) -> None:
        self.client.close()


def open_sink(target: str, *, db: Any = None, url: str | None = None,
              resp: str | None = None, mqtt: str | None = None, token: str | None = None,
              batch: int | None = None, qos: int = 1) -> Sink:
    """A sink by target name (see the module docstring). ``url`` is the HTTP base URL,
    ``resp`` and ``mqtt`` are ``host:port``; ``batch`` is samples per request/message."""
    if target == "embedded":
        return EmbeddedSink(db, batch or EMBEDDED_BATCH_SAMPLES)
    if target in ("http", "http-batch", "line"):
        if not url:
            raise SinkError(f"the {target} target needs --url")
        cls = {"http": HttpColumnsSink, "http-batch": HttpBatchSink,
               "line": LineProtocolSink}[target]
        return cls(url, token, batch or HTTP_BATCH_SAMPLES)
    if target == "resp":
        host, port = _host_port(resp or "127.0.0.1:6380", 6380)
        return RespSink(host, port, token, pipeline_samples=batch or RESP_PIPELINE_SAMPLES)
    if target == "mqtt":
        from .sinks_mqtt import MqttSink

        host, port = _host_port(mqtt or "127.0.0.1:1883", 1883)
        return MqttSink(host, port, qos=qos, batch=batch or 1)
    raise SinkError(f"unknown target {target!r}; one of {', '.join(TARGETS)}")


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    host, _, port = text.rpartition(":") if ":" in text else (text, "", str(default_port))
    try:
        return host or "127.0.0.1", int(port)
    except ValueError:
        raise SinkError(f"{text!r} is not host:port") from None
