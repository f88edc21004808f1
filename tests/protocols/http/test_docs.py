"""docs/protocols/http.md documents every route and every configuration key."""

import dataclasses
import re
from pathlib import Path

import pytest

from sensorium.config import DatabaseOptions
from sensorium.protocols.http.app import create_app
from sensorium.server import ServerOptions, load_config

DOC = (Path(__file__).parents[3] / "docs" / "protocols" / "http.md").read_text()


def test_every_route_is_documented(db):
    paths = create_app(db).openapi()["paths"]
    assert len(paths) > 20
    doc = DOC.replace("{id}", "{sensor_id}")
    assert {p for p in paths if p not in doc} == set()


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(ServerOptions)
                                  if f.name not in ("database", "policies", "mqtt")])
def test_every_server_option_is_documented(name):
    assert re.search(rf"^{name} = ", DOC, re.M)


def test_policy_tables_are_documented_and_the_example_loads(tmp_path):
    assert "[[policies]]" in DOC
    example = re.search(r"```toml\n(.*?)```", DOC, re.S).group(1)
    config = tmp_path / "sensorium.toml"
    config.write_text(example)
    options = load_config(str(config))
    assert [p["name"] for p in options.policies] == ["temperatures", "energy"]


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(DatabaseOptions)])
def test_every_database_option_is_documented(name):
    assert re.search(rf"^{name} = ", DOC, re.M)
