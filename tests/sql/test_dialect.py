"""Timestream duration literals and the one-query check (pure, no database)."""

import pytest

from sensorium.errors import InvalidArgument
from sensorium.sql import dialect


@pytest.mark.parametrize("text, want", [
    ("ago(1h)", "ago(INTERVAL '1 hours')"),
    ("bin(time, 15m)", "bin(time, INTERVAL '15 minutes')"),
    ("ago(7d) AND x > ago(30s) OR ago(500ms) OR ago(250us)",
     "ago(INTERVAL '7 days') AND x > ago(INTERVAL '30 seconds') OR "
     "ago(INTERVAL '500 milliseconds') OR ago(INTERVAL '250 microseconds')"),
    # strings, quoted names, comments, names and decimals are left alone
    ("'1h' || \"2h\" -- 3h\n/* 4h */ sensor_1h, 1.5h, x1h, 1e5, 10", None),
])
def test_duration_literals(text, want):
    assert dialect.rewrite(text) == (text if want is None else want)


@pytest.mark.parametrize("query", ["SELECT 1", "WITH a AS (SELECT 1) SELECT * FROM a",
                                   "VALUES (1)", "select 1;"])
def test_one_query_is_accepted(query):
    dialect.check(query)


@pytest.mark.parametrize("query, message", [
    ("", "got 0 statements"), ("SELECT 1; SELECT 2", "got 2 statements"),
    ("INSERT INTO t VALUES (1)", "not INSERT"), ("ATTACH 'x.db'", "not ATTACH"),
    ("COPY t TO 'f.csv'", "not COPY"), ("SELEC 1", "Parser Error"),
])
def test_anything_else_is_refused(query, message):
    with pytest.raises(InvalidArgument, match=message):
        dialect.check(query)
