"""POST /api/sql: columns and rows as JSON, DuckDB's message as a 400."""

import numpy as np


def _seed(db):
    db.create("t:1", labels={"zone": "A"})
    db.create("t:2", labels={"zone": "B"})
    db.madd(np.array(["t:1", "t:1", "t:2"], object), [60_000, 120_500, 60_000], [1.0, 3.0, 5.0])


def test_query_answers_columns_and_rows(client, db):
    _seed(db)
    r = client.post("/api/sql", json={"query": "SELECT zone, time, value FROM samples "
                                                "WHERE zone = 'A' ORDER BY time"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["columns"] == [{"name": "zone", "type": "VARCHAR"},
                               {"name": "time", "type": "TIMESTAMP"},
                               {"name": "value", "type": "DOUBLE"}]
    assert body["rows"] == [["A", "1970-01-01T00:01:00.000Z", 1.0],
                            ["A", "1970-01-01T00:02:00.500Z", 3.0]]
    assert (body["row_count"], body["truncated"]) == (2, False)
    assert body["read"] == {"rows": {"samples": 2}, "series": {"samples": 1}}


def test_rows_are_capped_and_nan_is_null(client, db):
    _seed(db)
    r = client.post("/api/sql", json={"query": "SELECT 'nan'::DOUBLE AS x, INTERVAL 90 SECONDS "
                                                "AS d FROM range(5)", "max_rows": 2})
    body = r.json()
    assert body["rows"] == [[None, 90.0], [None, 90.0]]
    assert (body["row_count"], body["truncated"]) == (5, True)


def test_bad_queries_are_400_with_duckdb_message(client, db):
    _seed(db)
    r = client.post("/api/sql", json={"query": "SELECT zon FROM samples"})
    assert r.status_code == 400
    assert 'Referenced column "zon" not found' in r.json()["error"]
    r = client.post("/api/sql", json={"query": "DELETE FROM samples"})
    assert r.status_code == 400 and "only queries" in r.json()["error"]
    r = client.post("/api/sql", json={"query": "SELECT 1", "max_rows": 0})
    assert r.status_code == 400 and r.json()["field"] == "max_rows"
    r = client.post("/api/sql", json={})
    assert r.status_code == 400 and "Field required" in r.json()["error"]
    assert r.json()["field"] == "query"  # the body field, not dropped as a location
    assert client.post("/api/sql", json={"query": "SELECT 1 AS a"}).json()["rows"] == [[1]]
