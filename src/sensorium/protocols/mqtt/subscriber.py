"""The MQTT front end: subscribe, collect, write, then acknowledge (write path, step 0).

Two threads. paho's network thread reads the socket (``client.BatchingClient``) and appends
the messages to an inbox. The writer thread takes the inbox every ``flush_ms`` (or at
``max_batch`` messages or ``max_batch_bytes`` of payload, never more in one write), turns it
into columns (``ingest.to_columns``) and writes them as one durable commit
(``ingest.write_columns``); only then are the QoS 1 messages of that flush
acknowledged (PUBACK), so a broker redelivers whatever a crash caught before its write was
durable. A failed write is retried with backoff and acknowledges nothing meanwhile; the
inbox is bounded, so a slow writer stops the reader and TCP pushes back on the broker.

Bad payloads and topics are counted per reason, logged with topic and reason (a few per
flush), acknowledged (a redelivery would not make them good) and never stop the subscriber.
``status()`` returns the counters (served at ``GET /api/mqtt``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from ...database import Database
from ...engine.head_append import MESSAGES, Status
from .client import BatchingClient, batching_supported
from .ingest import Message, Router, to_columns, write_columns
from .options import MqttOptions

log = logging.getLogger("sensorium.mqtt")

LOGGED_PER_FLUSH = 5  # bad messages logged one by one per flush; the rest as a count
PENDING_FLUSHES = 4  # the inbox holds this many max_batch flushes before the reader waits
RETRY_MAX_S = 30.0  # longest wait between attempts of a failed write
DISCONNECT_WAIT_S = 5.0

_STATUS_NAMES = {s: s.name.lower() for s in Status}


class Subscriber:
    """One broker connection feeding one ``Database``.

    Call order: ``start()`` once, then ``stop()`` once (both from any thread; ``stop``
    writes and acknowledges what was received, then disconnects). ``status()`` is
    thread-safe. The caller closes the database after ``stop()``.
    """

    def __init__(self, db: Database, options: MqttOptions) -> None:
        self.db = db
        self.options = options
        self.router = Router(options.subscriptions)
        self._inbox: list[Message] = []
        self._inbox_bytes = 0  # payload bytes in the inbox
        self._qos2 = False  # a QoS 2 message came through paho's path (rare)
        self._cond = threading.Condition()
        self._closing = False
        self._stopped = threading.Event()
        self._disconnected = threading.Event()
        self._lock = threading.Lock()  # counters
        self.counts: Counter[str] = Counter()
        self.bad_payloads: Counter[str] = Counter()
        self.refused_samples: Counter[str] = Counter()
        self.connected = False
        self.last_error: str | None = None
        self.batching = batching_supported()
        self.client = self._client()
        self._writer = threading.Thread(target=self._run, name="sensorium-mqtt-writer",
                                        daemon=True)

    # -- connection (paho's network thread) ------------------------------------------------

    def _client(self) -> paho.Client:
        o = self.options
        v5 = o.protocol == "5"
        kwargs: dict[str, Any] = {
            "callback_api_version": CallbackAPIVersion.VERSION2, "client_id": o.client_id,
            "protocol": paho.MQTTv5 if v5 else paho.MQTTv311, "manual_ack": True}
        if not v5:
            kwargs["clean_session"] = o.clean_start
        if self.batching:
            client: paho.Client = BatchingClient(deliver=self._deliver, **kwargs)
        else:
            log.warning("paho internals changed; using paho's per-message path")
            client = paho.Client(**kwargs)
        client.on_message = self._on_message  # everything BatchingClient leaves to paho
        if o.username is not None:
            client.username_pw_set(o.username, o.password)
        client.reconnect_delay_set(o.reconnect_min_s, o.reconnect_max_s)  # type: ignore[arg-type]
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        return client

    def start(self) -> None:
        """Starts the writer and connects in the background (retrying with backoff)."""
        o = self.options
        self._writer.start()
        if o.protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = o.session_expiry_s
            props.ReceiveMaximum = o.max_inflight
            self.client.connect_async(o.host, o.port, o.keepalive_s, clean_start=o.clean_start,
                                      properties=props)
        else:
            self.client.connect_async(o.host, o.port, o.keepalive_s)
        self.client.loop_start()

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            self._error(f"broker refused the connection: {reason}")
            return
        o = self.options
        with self._lock:
            self.connected = True
            self.counts["connects"] += 1
        log.info("connected to %s:%d as %s (session present: %s)", o.host, o.port,
                 o.client_id, bool(getattr(flags, "session_present", False)))
        filters = [s.topic_filter for s in o.subscriptions]
        if o.protocol == "5":  # retained messages only for new subscriptions
            client.subscribe([(f, SubscribeOptions(qos=o.qos, retainHandling=1))
                              for f in filters])
        else:
            client.subscribe([(f, o.qos) for f in filters])

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        with self._lock:
            was = self.connected
            self.connected = False
            if was:
                self.counts["disconnects"] += 1
        self._disconnected.set()
        if not self._closing:
            self._error(f"disconnected from the broker ({reason}); reconnecting")

    def _on_message(self, client: paho.Client, userdata: Any, m: paho.MQTTMessage) -> None:
        """paho's stock path: every message without ``BatchingClient``, QoS 2 with it (a
        publisher's QoS 2 arrives as QoS 1 on our subscriptions, so that is rare)."""
        generation = getattr(client, "generation", 0)
        self._qos2 |= m.qos == 2
        self._deliver([Message(m._topic, m.payload, m.mid, m.qos, generation)])

    def _deliver(self, messages: list[Message]) -> None:
        o = self.options
        nbytes = sum(map(len, [m[1] for m in messages]))
        with self._cond:
            if self._closing:  # after the last flush: not acknowledged, sent again later
                return
            was_empty = not self._inbox
            self._inbox.extend(messages)
            self._inbox_bytes += nbytes
            with self._lock:
                self.counts["received"] += len(messages)
            if (was_empty or len(self._inbox) >= o.max_batch
                    or self._inbox_bytes >= o.max_batch_bytes):
                self._cond.notify_all()
            while ((len(self._inbox) >= PENDING_FLUSHES * o.max_batch
                    or self._inbox_bytes >= PENDING_FLUSHES * o.max_batch_bytes)
                   and not self._closing):
                self._cond.wait(0.1)  # backpressure: the writer is behind

    # -- writing (the writer thread) -------------------------------------------------------

    def _run(self) -> None:
        o = self.options
        flush_s = o.flush_ms / 1000
        while True:
            with self._cond:
                while not self._inbox and not self._closing:
                    self._cond.wait()
                deadline = time.monotonic() + flush_s
                while (len(self._inbox) < o.max_batch
                       and self._inbox_bytes < o.max_batch_bytes and not self._closing):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                batch = self._take()
                self._cond.notify_all()  # a reader waiting on a full inbox
                last = self._closing and not self._inbox
            if batch:
                try:
                    self._flush(batch)
                except Exception:  # a bug: log it, keep the subscriber alive
                    log.exception("flush of %d messages failed", len(batch))
                with self._lock:
                    self.counts["processed"] += len(batch)
            if last:
                self._stopped.set()
                return

    def _take(self) -> list[Message]:
        """The oldest messages of the inbox, up to ``max_batch`` messages and
        ``max_batch_bytes`` payload bytes (at least one); called with ``_cond`` held."""
        o = self.options
        inbox = self._inbox
        if len(inbox) <= o.max_batch and self._inbox_bytes <= o.max_batch_bytes:
            self._inbox, self._inbox_bytes = [], 0
            return inbox
        n = min(len(inbox), o.max_batch)
        sizes = np.cumsum(np.fromiter(map(len, [m[1] for m in inbox[:n]]), np.int64, n))
        cut = max(1, int(np.searchsorted(sizes, o.max_batch_bytes, side="right")))
        self._inbox = inbox[cut:]
        self._inbox_bytes -= int(sizes[cut - 1])
        return inbox[:cut]

    def _flush(self, batch: list[Message]) -> None:
        cols = to_columns(batch, self.router, int(time.time() * 1000))
        delay = self.options.reconnect_min_s
        while True:
            try:
                status = write_columns(self.db, cols)
                break
            except Exception as exc:  # the engine failed (disk full, closed): ack nothing
                self._error(f"write of {len(batch)} messages failed: {exc}")
                with self._lock:
                    self.counts["write_failures"] += 1
                if self._closing:
                    return  # not acknowledged: the broker sends them again next session
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
        self._count(batch, cols.keys, cols.ts_ms, cols.msg, status, cols.errors)
        self._ack(batch)

    def _count(self, batch: Sequence[Message], keys: np.ndarray, ts_ms: np.ndarray,
               msg: np.ndarray, status: np.ndarray, errors: list[Any]) -> None:
        ok = int(np.count_nonzero(status == Status.OK))
        refused = np.flatnonzero(status != Status.OK)
        firsts = {}
        for e in errors:  # one count per message, by its first problem
            firsts.setdefault(e.msg, e)
        with self._lock:
            self.counts["written_samples"] += ok
            self.counts["flushes"] += 1
            for code, n in zip(*np.unique(status[refused], return_counts=True), strict=True):
                self.refused_samples[_STATUS_NAMES[Status(int(code))]] += int(n)
            for e in firsts.values():
                self.bad_payloads[e.reason] += 1
        for e in list(firsts.values())[:LOGGED_PER_FLUSH]:
            log.warning("bad payload on %r: %s: %s", _topic(batch[e.msg].topic),
                        e.reason, e.message)
        if len(firsts) > LOGGED_PER_FLUSH:
            log.warning("%d more bad payloads in this flush",
                        len(firsts) - LOGGED_PER_FLUSH)
        if len(refused):
            r = int(refused[0])
            log.warning("%d sample(s) refused, first %s at %d ms (topic %r): %s",
                        len(refused), keys[r], int(ts_ms[r]), _topic(batch[int(msg[r])].topic),
                        MESSAGES.get(Status(int(status[r])), "refused"))

    def _ack(self, batch: Sequence[Message]) -> None:
        client = self.client
        generation = client.generation if isinstance(client, BatchingClient) else 0
        mids = [m[2] for m in batch if m[3] == 1 and m[4] == generation]  # mid, qos, gen.
        if self._qos2:
            for m in batch:
                if m.qos == 2 and m.generation == generation:
                    client.ack(m.mid, 2)  # PUBCOMP
        if not mids:
            return
        if isinstance(client, BatchingClient):
            client.ack_many(mids)
        else:
            for mid in mids:
                client.ack(mid, 1)
        with self._lock:
            self.counts["acked"] += len(mids)

    def _error(self, message: str) -> None:
        log.warning("%s", message)
        with self._lock:
            self.last_error = message

    # -- shutdown and status ---------------------------------------------------------------

    def stop(self, timeout_s: float = 30.0) -> None:
        """Writes and acknowledges what was received, then disconnects cleanly."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._stopped.wait(timeout_s)
        self._disconnected.clear()
        if self.client.is_connected():
            self.client.disconnect()
            self._disconnected.wait(DISCONNECT_WAIT_S)
        self.client.loop_stop()

    def status(self) -> dict[str, Any]:
        """Connection, subscriptions and counters (the body of ``GET /api/mqtt``)."""
        o = self.options
        with self._lock:
            counts = dict(self.counts)
            bad = dict(self.bad_payloads)
            refused = dict(self.refused_samples)
            connected, last_error = self.connected, self.last_error
        pending = counts.get("received", 0) - counts.get("processed", 0)
        names = ("received", "written_samples", "acked", "flushes", "connects", "disconnects",
                 "write_failures")
        return {
            "broker": f"{o.host}:{o.port}", "client_id": o.client_id, "protocol": o.protocol,
            "qos": o.qos, "connected": connected, "batching_reader": self.batching,
            "subscriptions": [{"template": s.template, "filter": s.topic_filter,
                               "format": s.format} for s in o.subscriptions],
            **{n: counts.get(n, 0) for n in names},
            "pending": pending, "bad_payloads": bad, "refused_samples": refused,
            "last_error": last_error,
        }


def _topic(raw: bytes) -> str:
    return raw.decode(errors="replace")
