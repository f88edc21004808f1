"""A flush of messages → columns → one write (real database in tmp_path)."""

import json

import numpy as np
import pytest

import sensorium
from sensorium.engine.head_append import Status
from sensorium.protocols.mqtt.ingest import Message, Router, to_columns, write_columns
from sensorium.protocols.mqtt.options import Subscription

TS = 1_700_000_000_000
NOW = 1_800_000_000_000


@pytest.fixture
def router():
    return Router([Subscription("factory/{building}/{sensor_id}/{type}", labels={"site": "p"}),
                   Subscription("gw/{gateway}", key="{gateway}-{sensor_id}"),
                   Subscription("lp/{host}", format="line", precision="ms")])


def msg(topic, body):
    return Message(topic.encode(), body if isinstance(body, bytes) else json.dumps(body).encode())


def test_keys_labels_and_errors_of_a_flush(router, tmp_path):
    batch = [msg("factory/b1/t1/temp", {"value": 1, "timestamp": TS}),
             msg("gw/g7", [{"sensor_id": "s1", "value": 2, "timestamp": TS}]),
             msg("lp/h1", b"cpu,cpu=0 idle=9 1700000000000"),
             msg("factory/b1/t1", b"1"),
             msg("gw/g7", {"value": 3}),
             msg("factory/b1/t2/temp", {"value": 4, "timestamp": TS, "labels": {"x": "y"}})]
    cols = to_columns(batch, router, NOW)
    assert sorted(zip(cols.keys.tolist(), cols.values.tolist(), cols.msg.tolist(),
                      strict=True)) == [
        ("cpu,cpu=0:idle", 9.0, 2), ("g7-s1", 2.0, 1), ("t1", 1.0, 0), ("t2", 4.0, 5)]
    assert [(e.msg, e.reason) for e in cols.errors] == [(3, "unknown_topic"),
                                                        (4, "no_sensor_id")]
    assert cols.labels_of(["t1", "t2", "g7-s1", "cpu,cpu=0:idle"]) == [
        {"site": "p", "building": "b1", "type": "temp"},
        {"site": "p", "building": "b1", "type": "temp", "x": "y"},
        {"gateway": "g7"},
        {"host": "h1", "cpu": "0", "_measurement": "cpu", "_field": "idle"}]
    with sensorium.open(str(tmp_path / "db")) as db:
        status = write_columns(db, cols)
        assert (status == Status.OK).all()
        assert db.info("t2")["labels"] == {"site": "p", "building": "b1", "type": "temp",
                                           "x": "y"}
        assert db.range("t1", "-", "+") == [(TS, 1.0)]
        again = write_columns(db, to_columns(batch[:1], router, NOW))  # a redelivery
        assert again.tolist() == [Status.DUPLICATE_BLOCKED]


def test_topic_cache_remembers_refusals(router):
    assert isinstance(router.resolve(b"factory/b1"), str)
    assert router.resolve(b"factory/b1") is router.resolve(b"factory/b1")
    assert "not UTF-8" in router.resolve(b"factory/\xff/x/y")


def test_many_messages_one_commit(router, tmp_path):
    batch = [msg(f"factory/b1/s{i % 100}/t", {"value": i, "timestamp": TS + i})
             for i in range(5000)]
    cols = to_columns(batch, router, NOW)
    with sensorium.open(str(tmp_path / "db")) as db:
        assert (write_columns(db, cols) == Status.OK).all()
        assert len(db.keys()) == 100
        assert np.sum([len(db.range(f"s{k}", "-", "+")) for k in range(100)]) == 5000


def test_keys_are_looked_up_once_per_message_and_bad_messages_create_no_series(router,
                                                                               tmp_path):
    batch = [msg("factory/b1/a/t", [{"value": i, "timestamp": TS + i} for i in range(50)]),
             msg("factory/b1/bad/t", [{"value": "x"}]),  # no good reading: no series
             msg("gw/g1", [{"sensor_id": "s1", "value": 1, "timestamp": TS},
                           {"sensor_id": "s2", "value": 2, "timestamp": TS}]),
             msg("factory/b1/a/t", {"timestamps": [TS + 100, TS + 101], "values": [7, 8]}),
             msg("factory/b1/c/t", {"timestamps": [TS], "values": [9], "sensor_id": "d"})]
    cols = to_columns(batch, router, NOW)
    assert sorted(cols.series.tolist()) == ["a", "d", "g1-s1", "g1-s2"]
    assert cols.keys.tolist() == ["a"] * 50 + ["g1-s1", "g1-s2", "a", "a", "d"]
    assert [(e.msg, e.reason) for e in cols.errors] == [(1, "invalid_reading")]
    with sensorium.open(str(tmp_path / "db")) as db:
        assert (write_columns(db, cols) == Status.OK).all()
        assert sorted(db.keys()) == ["a", "d", "g1-s1", "g1-s2"]
        assert len(db.range("a", "-", "+")) == 52
        assert db.info("d")["labels"] == {"site": "p", "building": "b1", "type": "t"}
