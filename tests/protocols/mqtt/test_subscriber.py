"""The subscriber's writer: flushes capped by messages and bytes, acks after each write
(real database in tmp_path; no broker: messages go straight into the inbox)."""

import sensorium
from sensorium.protocols.mqtt import subscriber as subscriber_module
from sensorium.protocols.mqtt.ingest import Message
from sensorium.protocols.mqtt.options import MqttOptions
from sensorium.protocols.mqtt.subscriber import Subscriber

TS = 1_700_000_000_000


def test_a_backlog_is_written_in_capped_flushes_each_acked_after_its_write(tmp_path,
                                                                         monkeypatch):
    events = []
    real_write = subscriber_module.write_columns

    def write(db, cols):
        status = real_write(db, cols)  # durable when it returns
        events.append(("write", sorted(set(cols.msg.tolist()))))
        return status

    monkeypatch.setattr(subscriber_module, "write_columns", write)
    body = b'[' + b','.join(b'{"value":%d,"timestamp":%d}' % (i, TS + i) for i in range(2)) + b']'
    body += b" " * (100 - len(body))  # exactly 100 bytes (trailing whitespace is valid JSON)
    with sensorium.open(str(tmp_path / "db")) as db:
        sub = Subscriber(db, MqttOptions(max_batch_bytes=300, flush_ms=0))
        monkeypatch.setattr(sub.client, "ack_many", lambda mids: events.append(("ack", mids)))
        sub._deliver([Message(b"sensors/s%d" % k, body, 1 + k, 1, sub.client.generation)
                      for k in range(10)])  # the backlog, before the writer runs
        sub._writer.start()
        sub.stop()
        assert events == [
            ("write", [0, 1, 2]), ("ack", [1, 2, 3]), ("write", [0, 1, 2]), ("ack", [4, 5, 6]),
            ("write", [0, 1, 2]), ("ack", [7, 8, 9]), ("write", [0]), ("ack", [10])]
        st = sub.status()
        assert (st["flushes"], st["written_samples"], st["acked"], st["pending"]) == (
            4, 20, 10, 0)
        assert sum(len(db.range(f"s{k}", "-", "+")) for k in range(10)) == 20


def test_one_message_larger_than_the_cap_is_written_alone(tmp_path):
    with sensorium.open(str(tmp_path / "db")) as db:
        sub = Subscriber(db, MqttOptions(max_batch_bytes=20, flush_ms=0))
        sub._deliver([Message(b"sensors/a", b'{"value": 1, "timestamp": %d}' % TS),
                      Message(b"sensors/b", b"2")])
        assert sub._take() == [Message(b"sensors/a", b'{"value": 1, "timestamp": %d}' % TS)]
        assert sub._take() == [Message(b"sensors/b", b"2")] and sub._inbox_bytes == 0
