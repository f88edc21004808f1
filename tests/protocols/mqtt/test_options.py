"""The [mqtt] config table and the --mqtt flag."""

import pytest

from sensorium.protocols.mqtt.options import MqttOptions, mqtt_options, with_broker


def test_full_table():
    o = mqtt_options({
        "host": "broker", "port": 8883, "username": "u", "password": "p", "client_id": "c",
        "protocol": 5, "qos": 0, "clean_start": True, "flush_ms": 2,
        "subscriptions": [{"template": "f/{sensor_id}/{type}", "labels": {"site": "x"}},
                          {"template": "lp/{host}", "format": "line", "precision": "s"}]})
    assert (o.host, o.port, o.protocol, o.qos, o.flush_ms) == ("broker", 8883, "5", 0, 2)
    assert [s.topic_filter for s in o.subscriptions] == ["f/+/+", "lp/+"]
    assert o.subscriptions[1].format == "line"


def test_defaults_subscribe_to_sensors():
    assert [s.topic_filter for s in MqttOptions().subscriptions] == ["sensors/+"]


@pytest.mark.parametrize("table, error", [
    ({"hots": "x"}, r"unknown key\(s\) \['hots'\]"),
    ({"port": "1883"}, "port must be a int"),
    ({"clean_start": 1}, "clean_start must be a bool"),
    ({"qos": 2}, "qos must be 0 or 1"),
    ({"protocol": "4"}, "protocol must be one of"),
    ({"subscriptions": [{"format": "json"}]}, "#1 needs a template"),
    ({"subscriptions": [{"template": "a/{x}", "format": "xml"}]}, "format must be one of"),
    ({"subscriptions": [{"template": "a/{x}", "key": "{y}"}]}, "names {y}"),
    ({"subscriptions": [{"template": "a/+"}]}, "instead of '\\+'"),
    ({"subscriptions": [{"template": "a/{x}", "format": "line", "precision": "d"}]},
     "invalid precision"),
    ({"subscriptions": [{"template": "a/{x}", "labels": {"n": 1}}]}, "labels must be strings"),
    ({"subscriptions": []}, "at least one subscription"),
])
def test_bad_values_are_named(table, error):
    with pytest.raises(ValueError, match=error):
        mqtt_options(table)


@pytest.mark.parametrize("address, host, port", [
    ("broker:1884", "broker", 1884), ("broker", "broker", 1883),
    ("[::1]:1885", "::1", 1885), ("127.0.0.1:1", "127.0.0.1", 1)])
def test_mqtt_flag(address, host, port):
    o = with_broker(MqttOptions(client_id="kept"), address)
    assert (o.host, o.port, o.client_id) == (host, port, "kept")


def test_mqtt_flag_refuses_garbage():
    with pytest.raises(ValueError, match="HOST"):
        with_broker(None, "broker:http")
