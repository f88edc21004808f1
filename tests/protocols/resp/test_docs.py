"""Docs as tests: every command of the table is documented in docs/protocols/resp.md."""

from pathlib import Path

import pytest

from sensorium.protocols.resp import session  # noqa: F401  (fills the command table)
from sensorium.protocols.resp.registry import COMMANDS

DOC = (Path(__file__).parents[3] / "docs" / "protocols" / "resp.md").read_text()


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_is_documented(name):
    assert f"`{name.upper()}" in DOC, f"{name.upper()} is missing from docs/protocols/resp.md"


@pytest.mark.parametrize("option", [
    "RETENTION", "ENCODING", "CHUNK_SIZE", "DUPLICATE_POLICY", "IGNORE", "LABELS",
    "ON_DUPLICATE", "TIMESTAMP", "LATEST", "FILTER_BY_TS", "FILTER_BY_VALUE", "COUNT",
    "ALIGN", "AGGREGATION", "BUCKETTIMESTAMP", "EMPTY", "WITHLABELS", "SELECTED_LABELS",
    "FILTER", "GROUPBY", "REDUCE", "DEBUG",
])
def test_ts_option_is_documented(option):
    assert option in DOC
