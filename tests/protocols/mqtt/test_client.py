"""BatchingClient's read path on raw bytes through a socketpair (no broker)."""

import socket
import struct

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from sensorium.protocols.mqtt.client import BatchingClient, batching_supported


def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish(topic, payload, qos=0, mid=0, v5=False):
    body = struct.pack("!H", len(topic)) + topic
    if qos:
        body += struct.pack("!H", mid)
    if v5:
        body += varint(3) + b"\x01\x01\x00"  # properties: payload format indicator
    body += payload
    return bytes([0x30 | qos << 1]) + varint(len(body)) + body


@pytest.mark.parametrize("v5", [False, True])
def test_packets_split_at_any_byte_are_delivered_whole_and_in_order(v5):
    assert batching_supported()
    got = []
    c = BatchingClient(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
                       deliver=got.extend)
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    c._sock = ours
    packets = [publish(b"a/b", b"1.5", v5=v5), publish(b"s/x", b"x" * 300, 1, 7, v5),
               b"\xd0\x00",  # PINGRESP: through paho's own handler
               publish(b"t", b"", 1, 65535, v5)]
    stream = b"".join(packets)
    for cut in (1, 2, 5, 130, len(stream) - 1):
        got.clear()
        theirs.sendall(stream[:cut])
        assert c._packet_read() == MQTTErrorCode.MQTT_ERR_SUCCESS
        theirs.sendall(stream[cut:])
        assert c._packet_read() == MQTTErrorCode.MQTT_ERR_SUCCESS
        assert [(m.topic, m.payload, m.mid, m.qos) for m in got] == [
            (b"a/b", b"1.5", 0, 0), (b"s/x", b"x" * 300, 7, 1), (b"t", b"", 65535, 1)]
    assert c._packet_read() == MQTTErrorCode.MQTT_ERR_AGAIN  # nothing left
    theirs.close()
    assert c._packet_read() == MQTTErrorCode.MQTT_ERR_CONN_LOST
    ours.close()


def test_ack_many_queues_pubacks_in_order_as_one_write():
    c = BatchingClient(CallbackAPIVersion.VERSION2, deliver=lambda m: None)
    c.ack_many([1, 258, 65535])
    packet = c._out_packet[-1]["packet"]
    assert packet == b"\x40\x02\x00\x01" b"\x40\x02\x01\x02" b"\x40\x02\xff\xff"
