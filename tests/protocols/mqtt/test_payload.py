"""JSON and line-protocol payloads → columns (no sockets, no engine)."""

import json
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensorium.protocols.mqtt import payload
from sensorium.protocols.mqtt.payload import parse_json, parse_lines

NOW = 1_800_000_000_000
TS = 1_700_000_000_000


def rows(r):
    return list(zip(r.msg.tolist(), r.sensor_ids().tolist(), r.ts_ms.tolist(), r.values.tolist(),
                    strict=True))


def test_the_three_json_forms():
    r = parse_json([b"21.5", b'{"value": 22, "timestamp": 1700000000000}',
                    b'[{"value": 1.5, "timestamp": 1700000000000, "sensor_id": "s9"},'
                    b' {"value": -2e3}]'], NOW)
    assert rows(r) == [(0, None, NOW, 21.5), (1, None, TS, 22.0), (2, "s9", TS, 1.5),
                       (2, None, NOW, -2000.0)]
    assert not r.errors and not r.labels


def test_labels_unit_and_rfc3339_take_the_slow_path_and_agree():
    r = parse_json([b'{"value": 1, "timestamp": "2023-11-14T22:13:20Z", "unit": "C",'
                    b' "labels": {"room": "r1", "floor": 2}}', b"7"], NOW)
    assert rows(r) == [(0, None, TS, 1.0), (1, None, NOW, 7.0)]
    assert r.labels == {0: {"room": "r1", "floor": "2", "unit": "C"}}


@pytest.mark.parametrize("body, reason, message", [
    (b"{oops", "invalid_json", "Expecting property name"),
    (b"", "invalid_json", "Expecting value"),
    (b"\xff\xfe", "invalid_json", "not UTF-8"),
    (b"NaN", "invalid_json", "NaN is not valid JSON"),
    (b"1.", "invalid_json", "Extra data"),
    (b"true", "invalid_reading", "payload must be a number"),
    (b'"21.5"', "invalid_reading", "payload must be a number"),
    (b"null", "invalid_reading", "payload must be a number"),
    (b'{"value": "hot"}', "invalid_reading", "value must be a finite number"),
    (b'{"value": true}', "invalid_reading", "value must be a finite number"),
    (b'{"value": null}', "invalid_reading", "value must be a finite number"),
    (b'{"timestamp": 5}', "invalid_reading", "value must be a finite number"),
    (b'{"value": 1e400}', "invalid_reading", "value must be a finite number"),
    (b'{"value": 1, "timestamp": -1}', "invalid_reading", "timestamp must be in"),
    (b'{"value": 1, "timestamp": 1.5}', "invalid_reading", "epoch milliseconds"),
    (b'{"value": 1, "timestamp": "yesterday"}', "invalid_reading", "not RFC 3339"),
    (b'{"value": 1, "sensor_id": ""}', "invalid_reading", "sensor_id must be a non-empty"),
    (b'{"value": 1, "sensor_id": 5}', "invalid_reading", "sensor_id must be a non-empty"),
    (b'{"value": 1, "labels": {"a": [1]}}', "invalid_reading", "labels must be an object"),
    (b'{"value": 1, "unit": 3}', "invalid_reading", "unit must be a string"),
    (b"[1]", "invalid_reading", "reading 0: a reading must be an object"),
])
def test_bad_payloads_are_refused_with_a_reason(body, reason, message):
    r = parse_json([b"1", body, b"2"], NOW)
    assert [v for _, _, _, v in rows(r)] == [1.0, 2.0]  # the neighbours are kept
    assert len(r.errors) == 1
    e = r.errors[0]
    assert (e.msg, e.reason) == (1, reason) and message in e.message


def test_a_bad_reading_in_a_list_keeps_the_others():
    r = parse_json([b'[{"value": 1}, {"value": "x"}, {"value": 3}]'], NOW)
    assert [v for _, _, _, v in rows(r)] == [1.0, 3.0]
    assert [(e.msg, e.message) for e in r.errors] == [
        (0, "reading 1: value must be a finite number")]


def test_fast_path_handles_a_large_flush_without_falling_back(monkeypatch):
    calls = []
    real = payload._slow
    monkeypatch.setattr(payload, "_slow", lambda *a: calls.append(a[1]) or real(*a))
    msgs = [b"%d.5" % i for i in range(100)] + [
        json.dumps({"value": i, "timestamp": TS + i}).encode() for i in range(100)] + [
        json.dumps([{"value": j, "timestamp": TS + j} for j in range(10)]).encode()
        for _ in range(10)]
    r = parse_json(msgs, NOW)
    assert len(r) == 300 and not r.errors and calls == []
    assert np.all(np.diff(r.msg) >= 0)


_reading = st.fixed_dictionaries({"value": st.one_of(
    st.floats(allow_nan=False, allow_infinity=False), st.integers(-10**6, 10**6),
    st.just("x"), st.none(), st.booleans())}, optional={
    "timestamp": st.one_of(st.integers(-5, 2**63), st.just("2024-01-01T00:00:00Z"),
                           st.floats(0, 1e13)),
    "sensor_id": st.one_of(st.text(max_size=3), st.integers()),
    "unit": st.just("C"), "other": st.just(1)})
_column = st.one_of(st.integers(-5, 2**63), st.floats(allow_nan=True), st.just("x"),
                    st.none())
_columns = st.fixed_dictionaries({}, optional={
    "timestamps": st.one_of(st.lists(st.integers(-5, 2**63), max_size=4),
                            st.lists(_column, max_size=3), st.none(), st.just(1)),
    "values": st.one_of(st.lists(st.floats(allow_infinity=False, allow_nan=False),
                                 max_size=4), st.lists(_column, max_size=3), st.none()),
    "sensor_id": st.one_of(st.text(max_size=3), st.integers(), st.none()),
    "unit": st.just("C"), "value": st.just(1)})
_payload = st.one_of(
    _reading.map(lambda d: json.dumps(d).encode()),
    _columns.map(lambda d: json.dumps(d).encode()),
    st.lists(_reading, max_size=4).map(lambda d: json.dumps(d).encode()),
    st.floats(allow_nan=False).map(lambda f: repr(f).encode()),
    st.integers().map(lambda i: str(i).encode()),
    st.sampled_from([b"1.", b"-", b"01", b"[", b"{}", b"[null]", b"null", b" 5", b"5\n",
                     b'{"value":1}{"value":2}', b"1e999", b"-0"]),
    st.binary(max_size=8))


@settings(max_examples=200, deadline=None)
@given(st.lists(_payload, max_size=12))
def test_fast_and_slow_paths_agree(payloads):
    got = parse_json(payloads, NOW)
    want = payload._slow(payloads, list(range(len(payloads))), NOW)
    assert rows(got) == rows(want)
    assert got.errors == want.errors
    assert got.labels == want.labels


@settings(max_examples=100, deadline=None)
@given(st.lists(_payload, max_size=24))
def test_fast_and_slow_paths_agree_when_failed_reads_are_split_down_to_one_message(payloads):
    with mock.patch.object(payload, "SPLIT_MIN", 1):
        got = parse_json(payloads, NOW)
    want = payload._slow(payloads, list(range(len(payloads))), NOW)
    assert rows(got) == rows(want)
    assert got.errors == want.errors
    assert got.labels == want.labels


def test_line_protocol_errors_name_their_message_and_line():
    batch, errors = parse_lines([b"m,t=a v=1 1000\nm v=2 2000", b"oops", b"m v=3 3000\n\nm v=x"],
                                "ms", NOW)
    assert batch.keys.tolist() == ["m,t=a:v", "m:v", "m:v"]
    assert batch.ts_ms.tolist() == [1000, 2000, 3000]
    assert [(e.msg, e.reason, e.message.split(":")[0]) for e in errors] == [
        (1, "invalid_line", "line 1"), (2, "invalid_line", "line 3")]


def test_columns_form():
    r = parse_json([b'{"sensor_id": "s1", "timestamps": [1, 2], "values": [1.5, 2], "unit": "C"}',
                    b'{"timestamps": [1], "values": ["x"]}', b'{"values": [1]}',
                    b'{"timestamps": [1, 2], "values": [1]}', b'{"value": 3, "timestamp": 7}'],
                   NOW)
    assert rows(r) == [(0, "s1", 1, 1.5), (0, "s1", 2, 2.0), (4, None, 7, 3.0)]
    assert r.labels == {0: {"unit": "C"}, 1: {"unit": "C"}}
    assert [(e.msg, e.message) for e in r.errors] == [
        (1, "values must be an array of finite numbers"),
        (2, "timestamps must be an array of epoch milliseconds"),
        (3, "timestamps must be an array as long as values (1)")]


def test_columns_form_of_many_messages_is_read_at_once_and_agrees(monkeypatch):
    msgs = [json.dumps({"timestamps": [TS + 10 * k + i for i in range(10)],
                        "values": [k + i / 10 for i in range(10)]}).encode() for k in range(200)]
    msgs[7] = json.dumps({"sensor_id": "s7", "timestamps": [TS], "values": [7.5]}).encode()
    msgs[100] = b'{"timestamps": [1, 2], "values": [1]}'  # bad, in the middle
    msgs[150] = b'{"timestamps": [1], "values": [1], "unit": "C"}'  # labels: slow path
    slowed = []
    real = payload._slow
    monkeypatch.setattr(payload, "_slow", lambda p, i, n: slowed.extend(i) or real(p, i, n))
    got = parse_json(msgs, NOW)
    assert 100 in slowed and 150 in slowed and len(slowed) <= 2 * payload.SPLIT_MIN
    want = real(msgs, list(range(len(msgs))), NOW)
    assert rows(got) == rows(want) and got.labels == want.labels
    assert [rows(got)[r][0] for r in got.labels] == [150]
    assert [(e.msg, e.reason) for e in got.errors] == [(100, "invalid_reading")]
    assert len(got) == 197 * 10 + 1 + 1  # every good message kept
    assert rows(got)[70] == (7, "s7", TS, 7.5)


@pytest.mark.parametrize("bad", [b'[{"value": "x"}]', b"[{oops", b"[null]", b'[{"value": 1}, 2]'])
def test_a_bad_list_in_a_large_flush_costs_only_its_neighbours(monkeypatch, bad):
    msgs = [json.dumps([{"value": k, "timestamp": TS + k}]).encode() for k in range(1000)]
    msgs[500] = bad
    slowed = []
    real = payload._slow
    monkeypatch.setattr(payload, "_slow", lambda p, i, n: slowed.extend(i) or real(p, i, n))
    got = parse_json(msgs, NOW)
    assert 500 in slowed and len(slowed) <= payload.SPLIT_MIN
    assert [e.msg for e in got.errors] == [500]
    kept = [(500, 1.0)] if bad == b'[{"value": 1}, 2]' else []  # its good reading stays
    want = sorted([(k, float(k)) for k in range(1000) if k != 500] + kept)
    assert [(m, v) for m, _, _, v in rows(got)] == want
