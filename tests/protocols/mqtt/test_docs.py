"""docs/protocols/mqtt.md documents every [mqtt] key, subscription key, route and reason."""

import dataclasses
import re
from pathlib import Path

import pytest

from sensorium.protocols.mqtt import ingest, payload
from sensorium.protocols.mqtt.options import MqttOptions, Subscription

DOC = (Path(__file__).parents[3] / "docs" / "protocols" / "mqtt.md").read_text()


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(MqttOptions)
                                  if f.name != "subscriptions"])
def test_every_mqtt_option_is_documented(name):
    assert re.search(rf"^{name} = ", DOC, re.M)


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(Subscription)])
def test_every_subscription_key_is_documented(name):
    assert re.search(rf"^{name} = ", DOC, re.M)


@pytest.mark.parametrize("reason", [payload.INVALID_JSON, payload.INVALID_READING,
                                    payload.INVALID_LINE, ingest.UNKNOWN_TOPIC,
                                    ingest.NO_SENSOR_ID])
def test_every_bad_payload_reason_is_documented(reason):
    assert f"`{reason}`" in DOC


def test_status_route_and_flag_are_documented():
    assert "GET /api/mqtt" in DOC and "--mqtt" in DOC
