"""paho-mqtt's client with a batched read path for PUBLISH packets (transport; I/O only).

Measured on this project's machine (BENCHMARKS.md, "MQTT ingest"), stock paho 2.x spends
about 50 µs per received message under MQTT 3.1.1 and more under MQTT 5: one ``select`` and
three ``recv`` calls per packet, then an ``MQTTMessage``, a ``Properties`` object and the
callback matcher. That caps a subscriber near 20,000 messages/s per core, below the target.

``BatchingClient`` keeps everything else of paho (connect, subscribe, keepalive, reconnect
with backoff, session handling, sending) and replaces one method, ``_packet_read``: it reads
whatever the socket holds (up to ``READ_BYTES``), splits it into packets, and hands every
QoS 0/1 PUBLISH to ``deliver`` as a plain ``Message`` tuple, a list per read. Any other
packet (CONNACK, SUBACK, PINGRESP, QoS 2 flows, DISCONNECT) goes through paho's own
``_packet_handle`` unchanged. ``ack_many`` sends the PUBACKs of a whole write as one socket
write, in the order the messages arrived (MQTT requires that order).

NOTE(mqtt): this relies on paho 2.x internals (``_packet_read``, ``_packet_handle``,
``_in_packet``, ``_packet_queue``); ``pyproject.toml`` pins ``paho-mqtt>=2,<3`` and
``batching_supported()`` checks them, so the subscriber falls back to paho's stock path
(``on_message``) if they change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.exception import MalformedPacket

from .ingest import Message

log = logging.getLogger("sensorium.mqtt")

READ_BYTES = 1 << 20  # one recv takes up to this much; thousands of small PUBLISH packets
_PUBLISH = 0x30
_PUBACK = 0x40
_INTERNALS = ("_packet_read", "_packet_handle", "_in_packet", "_packet_queue", "_sock_recv",
              "_msgtime_mutex", "_last_bytes_received", "_protocol")


def _fresh_in_packet() -> dict[str, object]:
    return {"command": 0, "have_remaining": 0, "remaining_count": [], "remaining_mult": 1,
            "remaining_length": 0, "packet": bytearray(b""), "to_process": 0, "pos": 0}


def batching_supported() -> bool:
    """Whether the installed paho has the internals ``BatchingClient`` builds on."""
    probe = paho.Client(CallbackAPIVersion.VERSION2)
    return all(hasattr(probe, name) for name in _INTERNALS) and isinstance(
        getattr(probe, "_in_packet", None), dict)


class BatchingClient(paho.Client):
    """A paho ``Client`` whose QoS 0/1 PUBLISH packets go to ``deliver(list[Message])``.

    ``deliver`` runs on paho's network thread and must be quick (append to a queue).
    ``generation`` counts connections, so acknowledgements of messages received on an
    earlier connection can be dropped (the broker sends those again).
    """

    def __init__(self, *args: object, deliver: Callable[[list[Message]], None],
                 **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._deliver = deliver
        self._rbuf = b""  # the start of a packet whose rest has not arrived yet
        self.generation = 0

    def reconnect(self) -> MQTTErrorCode:
        self._rbuf = b""  # bytes of the old socket mean nothing on the new one
        self.generation += 1
        return super().reconnect()

    def ack_many(self, mids: list[int]) -> None:
        """Sends PUBACKs for these QoS 1 packet ids, in this order, as one write.

        Thread-safe (paho's outgoing queue is a deque; the network thread is woken).
        """
        if not mids:
            return
        ids = np.asarray(mids, np.uint16)
        out = np.empty((len(ids), 4), np.uint8)
        out[:, 0] = _PUBACK
        out[:, 1] = 2  # remaining length: the packet id (MQTT 5 allows leaving out success)
        out[:, 2] = ids >> 8
        out[:, 3] = ids & 0xFF
        self._packet_queue(_PUBACK, out.tobytes(), 0, 0)

    def _packet_read(self) -> MQTTErrorCode:
        try:
            data = self._sock_recv(READ_BYTES)
        except BlockingIOError:
            return MQTTErrorCode.MQTT_ERR_AGAIN
        except OSError as err:  # includes TimeoutError and ConnectionError
            log.warning("failed to receive on socket: %s", err)
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        if not data:
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        with self._msgtime_mutex:
            self._last_bytes_received = paho.time_func()
        # bytes, not a bytearray: a slice is then the payload itself (one copy, not two)
        buf = self._rbuf + data if self._rbuf else data
        v5 = self._protocol == paho.MQTTv5
        generation = self.generation
        got: list[Message] = []
        append = got.append
        pos, n = 0, len(buf)
        rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        new = tuple.__new__  # a Message without NamedTuple's Python-level __new__
        while n - pos >= 2:
            cmd = buf[pos]
            length = buf[pos + 1]
            i = pos + 2
            if length & 0x80:  # remaining length: 1 to 4 bytes, 7 bits each
                length &= 0x7F
                shift, complete = 7, False
                while i < n:
                    byte = buf[i]
                    length |= (byte & 0x7F) << shift
                    shift += 7
                    i += 1
                    if not byte & 0x80:
                        complete = True
                        break
                    if i - pos > 4:
                        log.error("malformed packet length from the broker")
                        return MQTTErrorCode.MQTT_ERR_PROTOCOL
                if not complete:
                    break  # the length itself is still incomplete
            end = i + length
            if end > n:
                break  # wait for the rest of the packet
            if cmd & 0xF4 == _PUBLISH:  # PUBLISH at QoS 0 or 1 (bit 2 clear); the hot path
                qos = (cmd >> 1) & 1
                j = i + 2 + (buf[i] << 8 | buf[i + 1])
                topic = buf[i + 2:j]
                mid = 0
                if qos:
                    mid = buf[j] << 8 | buf[j + 1]
                    j += 2
                if v5:  # skip the properties (we set no topic alias maximum)
                    plen = buf[j]
                    j += 1
                    if plen & 0x80:  # a length of 128 bytes or more: rare
                        plen &= 0x7F
                        shift = 7
                        while True:
                            byte = buf[j]
                            j += 1
                            plen |= (byte & 0x7F) << shift
                            shift += 7
                            if not byte & 0x80:
                                break
                    j += plen
                append(new(Message, (topic, buf[j:end], mid, qos, generation)))
            else:
                if got:  # keep the order of deliveries and other packets
                    self._deliver(got)
                    got = []
                    append = got.append
                self._in_packet = _fresh_in_packet()
                self._in_packet["command"] = cmd
                self._in_packet["packet"] = bytearray(buf[i:end])
                try:
                    rc = self._packet_handle()
                except MalformedPacket as exc:
                    log.error("malformed packet from the broker: %s", exc)
                    rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
                self._in_packet = _fresh_in_packet()
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    pos = end
                    break
            pos = end
        if self.generation == generation:  # no reconnect inside a handler
            self._rbuf = buf[pos:]
        if got:
            self._deliver(got)
        return rc
