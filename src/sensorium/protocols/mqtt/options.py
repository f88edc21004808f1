"""MQTT settings: the ``[mqtt]`` table of the server config as frozen dataclasses (pure).

Built once by ``server.load_config`` (or the ``--mqtt`` flag) and passed to the subscriber.
Every key is documented in docs/protocols/mqtt.md (a test checks it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .payload import check_precision
from .topics import Route, Template

FORMATS = ("json", "line")
PROTOCOLS = ("5", "3.1.1")
DEFAULT_TEMPLATE = "sensors/{sensor_id}"


@dataclass(frozen=True, slots=True)
class Subscription:
    """One ``[[mqtt.subscriptions]]`` entry.

    Attributes:
        template: topic template (``topics.py``); its filter is what is subscribed.
        format: ``json`` or ``line`` (InfluxDB line protocol).
        key: series key template for JSON (``{sensor_id}`` by default); line protocol keys
            are the line's own, as over HTTP ``/write``.
        labels: static labels of the series this subscription creates.
        precision: timestamp unit of line-protocol payloads (ns, us, ms, s).
        filter: subscribe to this filter instead of the template's own (e.g. ``factory/#``);
            messages whose topics do not fit the template are counted as ``unknown_topic``.
    """

    template: str
    format: str = "json"
    key: str = "{sensor_id}"
    labels: Mapping[str, str] = field(default_factory=dict)
    precision: str = "ns"
    filter: str | None = None

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"subscription {self.template!r}: format must be one of "
                             f"{FORMATS}, not {self.format!r}")
        self.route()  # validates template and key
        check_precision(self.precision)

    def route(self) -> Route:
        return Route(Template.parse(self.template), self.key, dict(self.labels))

    @property
    def topic_filter(self) -> str:
        return self.filter or Template.parse(self.template).filter


@dataclass(frozen=True, slots=True)
class MqttOptions:
    """The ``[mqtt]`` table: broker, session, batching and subscriptions.

    Attributes:
        host, port: the broker.
        username, password: broker credentials (none by default).
        client_id: fixed id, so the broker keeps the session across restarts.
        protocol: MQTT version, ``5`` or ``3.1.1``.
        qos: subscription QoS, 0 or 1. QoS 1 messages are acknowledged after their
            durable write.
        clean_start: start a new session on connect (drops what the broker kept).
        session_expiry_s: how long the broker keeps the session (MQTT 5) after a
            disconnect, queueing QoS 1 messages for it.
        keepalive_s: MQTT keepalive interval.
        flush_ms: messages are collected this long into one columnar write.
        max_batch: a write starts early once this many messages are waiting; no write
            takes more.
        max_batch_bytes: ... or once this many payload bytes are waiting; no write takes
            more (at least one message), so a backlog is written in several commits, each
            acknowledged as soon as it is durable.
        max_inflight: unacknowledged QoS 1 messages the broker may send (MQTT 5 Receive
            Maximum; for 3.1.1 the broker's own setting applies).
        reconnect_min_s, reconnect_max_s: reconnect backoff, doubling from min to max.
        subscriptions: what to subscribe to and how to read it.
    """

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    client_id: str = "sensorium"
    protocol: str = "5"
    qos: int = 1
    clean_start: bool = False
    session_expiry_s: int = 86_400
    keepalive_s: int = 60
    flush_ms: float = 5.0
    max_batch: int = 50_000
    # ~100,000 readings of a JSON list: the cost per sample is lowest around there and
    # grows for bigger flushes (BENCHMARKS.md, "MQTT ingest"), which also hold PUBACKs longer.
    max_batch_bytes: int = 4 << 20
    max_inflight: int = 10_000
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    subscriptions: tuple[Subscription, ...] = (Subscription(DEFAULT_TEMPLATE),)

    def __post_init__(self) -> None:
        if self.qos not in (0, 1):
            raise ValueError(f"[mqtt] qos must be 0 or 1, not {self.qos!r}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"[mqtt] protocol must be one of {PROTOCOLS}, "
                             f"not {self.protocol!r}")
        if not 0 < self.port < 65536:
            raise ValueError(f"[mqtt] port must be in 1..65535, not {self.port!r}")
        if not 1 <= self.max_inflight <= 65535:
            raise ValueError("[mqtt] max_inflight must be in 1..65535")
        if not self.subscriptions:
            raise ValueError("[mqtt] needs at least one subscription")
        if self.flush_ms < 0 or self.max_batch < 1 or self.max_batch_bytes < 1:
            raise ValueError("[mqtt] flush_ms must be >= 0, max_batch and max_batch_bytes "
                             ">= 1")
        if not 0 < self.reconnect_min_s <= self.reconnect_max_s:
            raise ValueError("[mqtt] needs 0 < reconnect_min_s <= reconnect_max_s")


_KINDS: dict[str, tuple[type, ...]] = {
    "host": (str,), "port": (int,), "username": (str,), "password": (str,),
    "client_id": (str,), "protocol": (str,), "qos": (int,), "clean_start": (bool,),
    "session_expiry_s": (int,), "keepalive_s": (int,), "flush_ms": (int, float),
    "max_batch": (int,), "max_batch_bytes": (int,), "max_inflight": (int,),
    "reconnect_min_s": (int, float),
    "reconnect_max_s": (int, float), "subscriptions": (list,),
}
_SUB_KINDS: dict[str, tuple[type, ...]] = {
    "template": (str,), "format": (str,), "key": (str,), "labels": (dict,),
    "precision": (str,), "filter": (str,),
}


def _check(table: Mapping[str, Any], kinds: dict[str, tuple[type, ...]], where: str) -> None:
    bad = sorted(set(table) - set(kinds))
    if bad:
        raise ValueError(f"{where}: unknown key(s) {bad}; known: {sorted(kinds)}")
    for name, value in table.items():
        want = kinds[name]
        if isinstance(value, bool) and bool not in want or not isinstance(value, want):
            raise ValueError(f"{where}: {name} must be a {want[0].__name__}, not {value!r}")


def mqtt_options(table: Mapping[str, Any], where: str = "config") -> MqttOptions:
    """An ``[mqtt]`` TOML table → ``MqttOptions``; ValueError names a bad key or value."""
    table = dict(table)
    if isinstance(table.get("protocol"), int | float) and not isinstance(
            table.get("protocol"), bool):
        table["protocol"] = str(table["protocol"])  # protocol = 5
    _check(table, _KINDS, f"{where}: [mqtt]")
    given = "subscriptions" in table
    subs = []
    for i, sub in enumerate(table.pop("subscriptions", None) or []):
        at = f"{where}: [[mqtt.subscriptions]] #{i + 1}"
        if not isinstance(sub, dict):
            raise ValueError(f"{at} must be a table")
        _check(sub, _SUB_KINDS, at)
        if "template" not in sub:
            raise ValueError(f"{at} needs a template")
        labels = sub.get("labels", {})
        if not all(isinstance(v, str) for v in labels.values()):
            raise ValueError(f"{at}: labels must be strings")
        try:
            subs.append(Subscription(**sub))
        except ValueError as exc:
            raise ValueError(f"{at}: {exc}") from None
    if given:
        table["subscriptions"] = tuple(subs)
    try:
        return MqttOptions(**table)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def with_broker(options: MqttOptions | None, address: str) -> MqttOptions:
    """``--mqtt HOST[:PORT]`` over the configured options (or the defaults)."""
    host, sep, port = address.rpartition(":")
    if not sep or "]" in port:
        host, port = address, "1883"
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise ValueError(f"--mqtt wants HOST[:PORT], not {address!r}")
    return dataclasses.replace(options or MqttOptions(), host=host, port=int(port))
