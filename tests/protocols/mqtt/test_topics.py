"""Topic templates: parsing, filters, matching, keys and labels (no sockets)."""

import pytest

from sensorium.protocols.mqtt.topics import Route, Template, TopicError

FACTORY = "factory/{building}/{zone}/{sensor_id}/{type}"


def test_template_becomes_a_filter_with_a_plus_per_placeholder():
    assert Template.parse(FACTORY).filter == "factory/+/+/+/+"
    assert Template.parse("a/{x}/b/#").filter == "a/+/b/#"
    assert Template.parse(FACTORY).names == ("building", "zone", "sensor_id", "type")


@pytest.mark.parametrize("text, error", [
    ("", "must not be empty"),
    ("a/+/b", "use a {name} instead of '+'"),
    ("a/#/b", "only a final #"),
    ("a/x{y}", "must be a whole level"),
    ("a/{1x}", "placeholder '{1x}'"),
    ("a/{x}/{x}", "{x} is repeated"),
])
def test_bad_templates_are_refused_with_the_reason(text, error):
    with pytest.raises(ValueError, match=error.replace("{", r"\{").replace("+", r"\+")):
        Template.parse(text)


def test_match_gives_placeholder_values():
    t = Template.parse(FACTORY)
    assert t.match("factory/b1/z2/t_001/temperature") == {
        "building": "b1", "zone": "z2", "sensor_id": "t_001", "type": "temperature"}
    assert Template.parse("s/{id}/#").match("s/7/x/y") == {"id": "7"}


@pytest.mark.parametrize("topic, error", [
    ("factory/b1/z2/t_001", "has 4 levels, template .* wants 5"),
    ("factory/b1/z2/t_001/temperature/x", "has 6 levels"),
    ("plant/b1/z2/t_001/temperature", "level 1 is 'plant', template .* wants 'factory'"),
    ("factory/b1//t_001/temperature", r"level 3 \(\{zone\}\) is empty"),
])
def test_topics_that_do_not_fit_say_why(topic, error):
    with pytest.raises(TopicError, match=error):
        Template.parse(FACTORY).match(topic)
    with pytest.raises(TopicError, match="more than 1"):
        Template.parse("s/#").match("s")


def test_key_is_the_sensor_id_and_the_other_levels_are_labels():
    r = Route(Template.parse(FACTORY), labels={"site": "p1", "zone": "static"}).resolve(
        "factory/b1/z2/t_001/temperature")
    assert r.key == "t_001"
    assert r.labels == {"site": "p1", "building": "b1", "zone": "z2", "type": "temperature"}


def test_composite_key_keeps_every_level_as_a_label():
    route = Route(Template.parse(FACTORY), key="{sensor_id}:{type}")
    r = route.resolve("factory/b1/z2/t_001/temperature")
    assert r.key == "t_001:temperature"
    assert r.labels["sensor_id"] == "t_001"
    assert route.key_for({**r.fields, "sensor_id": "other"}) == "other:temperature"


def test_template_without_sensor_id_leaves_the_key_to_the_payload():
    r = Route(Template.parse("gateway/{gw}")).resolve("gateway/g1")
    assert r.key is None and r.labels == {"gw": "g1"}


def test_key_naming_an_unknown_placeholder_is_refused():
    with pytest.raises(ValueError, match="names {room}"):
        Route(Template.parse(FACTORY), key="{room}")
