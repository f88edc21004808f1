"""SqlEngine: what a query reads from the engine, errors, timeouts, threads, label columns."""

from __future__ import annotations

import json
import threading

import numpy as np
import pyarrow as pa
import pytest

import sensorium
from sensorium.sql import QueryError, SqlEngine, output

from .conftest import END_MS, HOUR_MS


def _total(seeded) -> int:
    return sum(len(ts) for ts, _ in seeded.samples.values())


@pytest.mark.parametrize("query, table, series, rows", [
    # one series, one hour of minute samples (the bound is read inclusively)
    ("SELECT avg(value) FROM samples WHERE sensor_id = 'sensor_002' AND type = 'temperature' "
     "AND time > ago(1h)", "samples", 1, 60),
    ("SELECT count(*) FROM samples WHERE sensor_id LIKE 'sensor_00%' AND type = 'humidity' "
     "AND time BETWEEN ago(2h) AND ago(1h)", "samples", 10, 10 * 61),
    ("SELECT count(*) FROM samples WHERE (type = 'price' OR hostname = 'web-server-01') "
     "AND time >= ago(30m)", "samples", 4, 4 * 30),
    ("SELECT count(*) FROM samples WHERE key IN ('AAPL:price', 'MSFT:price') "
     "AND time >= now() - INTERVAL '10 minutes'", "samples", 2, 2 * 10),
    # a CTE and the outer query scan the table with different ranges: the union is read
    ("WITH s AS (SELECT avg(value) m FROM samples WHERE type = 'price' AND time > ago(2h)) "
     "SELECT count(*) FROM samples, s WHERE type = 'price' AND time > ago(1h) AND value > m",
     "samples", 3, 3 * 120),
    ("SELECT * FROM tier_1h WHERE sensor_id = 'sensor_004' AND time >= ago(6h)",
     "tier_1h", 3, 3 * 6),
    ("SELECT sum(count) FROM tier_1d WHERE location = 'warehouse_2'", "tier_1d", 15, 15 * 3),
])
def test_reads_only_the_series_and_range_needed(seeded, query, table, series, rows):
    result = seeded.query(query)
    assert result.stats.series == {table: series}
    assert result.stats.rows == {table: rows}


def test_filtered_answers_equal_numpy(seeded):
    got = seeded.query("SELECT avg(value) AS a, count(*) AS n FROM samples WHERE "
                       "sensor_id = 'sensor_002' AND type = 'temperature' AND time > ago(1h)")
    ts, v = seeded.samples["sensor_002:temperature"]
    want = v[ts > END_MS - HOUR_MS]
    assert got.table.to_pylist() == [{"a": pytest.approx(want.mean(), rel=1e-12),
                                      "n": len(want)}]


def test_without_a_usable_filter_the_read_widens_but_stays_correct(seeded):
    # An OR of a label and a time term says nothing about either alone: everything is read.
    q = "SELECT count(*) AS n FROM samples WHERE type = 'price' OR time > ago(1h)"
    result = seeded.query(q)
    assert result.stats.rows == {"samples": _total(seeded)}
    want = sum(int(((ts > END_MS - HOUR_MS) | (seeded.labels[k]["type"] == "price")).sum())
               for k, (ts, _) in seeded.samples.items())
    assert result.table.to_pylist() == [{"n": want}]
    assert seeded.query("SELECT count(*) AS n FROM samples").table.to_pylist() == [
        {"n": _total(seeded)}]


def test_join_reads_both_sides(seeded):
    q = ("SELECT count(*) AS n FROM samples a JOIN samples b USING (time) "
         "WHERE a.key = 'AAPL:price' AND b.key = 'MSFT:price' AND a.time > ago(1h)")
    result = seeded.query(q)
    assert result.stats.series == {"samples": 2}
    assert result.table.to_pylist() == [{"n": 59}]  # minutes strictly after ago(1h)


@pytest.mark.parametrize("query, message", [
    ("SELEC 1", "Parser Error"),
    ("SELECT nope FROM samples", 'Referenced column "nope" not found'),
    ("SELECT * FROM tier_5m", "Table with name tier_5m does not exist"),
    ("SELECT 1; SELECT 2", "expected one SQL query"),
    ("DROP TABLE samples", "only queries are allowed"),
    ("CREATE TABLE x AS SELECT 1", "only queries are allowed"),
    ("SET threads = 1", "only queries are allowed"),
    ("SELECT * FROM read_csv('/etc/passwd')", "disabled by configuration"),
    ("   ", "empty query"),
    ("SELECT avg(value) FROM samples WHERE time > ago('soon')", "Conversion Error"),
])
def test_bad_queries_get_duckdb_messages(seeded, query, message):
    with pytest.raises(QueryError, match=message):
        seeded.query(query)
    assert seeded.query("SELECT 1 AS one").table.to_pylist() == [{"one": 1}]  # still serving


def test_a_long_query_is_interrupted(tmp_path):
    with sensorium.open(str(tmp_path / "db"), background=False) as db:
        engine = SqlEngine(db, timeout_s=0.2)
        with pytest.raises(QueryError, match="interrupted after 0.2 s"):
            engine.query("SELECT count(*) FROM range(100000000) a, range(100000) b "
                         "WHERE a.range + b.range = -1")
        assert engine.query("SELECT 2 AS two").table.to_pylist() == [{"two": 2}]


def test_threads_share_one_engine(seeded):
    queries = ["SELECT sensor_id, avg(value) AS a FROM samples WHERE type = 'pressure' "
               "AND time > ago(3h) GROUP BY sensor_id ORDER BY sensor_id",
               "SELECT time, avg FROM tier_1h WHERE key = 'sensor_005:humidity' ORDER BY time"]
    want = [seeded.query(q).table for q in queries]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for n in range(6):
                q = (i + n) % 2
                assert seeded.query(queries[q]).table.equals(want[q])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_label_columns_and_clashes(tmp_path):
    with sensorium.open(str(tmp_path / "db"), background=False) as db:
        db.create("a", labels={"zone": "A", "time": "t1", "Zone2": "x"})
        db.create("b", labels={"zone": "B", "count": "7"})
        db.create("a:1m")
        db.createrule("a", "a:1m", "max", 60_000)
        db.madd(np.array(["a", "a", "b"], object), [1_000, 61_000, 2_000], [1.0, 2.0, 3.0])
        engine = SqlEngine(db)
        t = engine.query("SELECT * FROM samples ORDER BY key, time", now_ms=10**6).table
        assert t.column_names == ["key", "Zone2", "label_count", "label_time", "zone",
                                  "time", "value"]
        assert t.to_pylist()[2]["label_count"] == "7" and t.to_pylist()[0]["zone"] == "A"
        assert t.to_pylist()[2]["Zone2"] is None
        tier = engine.query("SELECT key, time, count, min, max, closed FROM tier_1m "
                            "ORDER BY time").table.to_pylist()
        assert [(r["key"], r["count"], r["max"], r["closed"]) for r in tier] == [
            ("a", 1, 1.0, True), ("a", 1, 2.0, False)]
        listed = engine.query("SELECT name, bucket_ms, series FROM tiers").table.to_pylist()
        assert listed == [{"name": "tier_1m", "bucket_ms": 60_000, "series": 1}]


@pytest.mark.parametrize("query", [
    "SELECT key, time, value, value > 1000 AS big, 1::HUGEINT AS h, INTERVAL 90 SECONDS AS d, "
    "'inf'::DOUBLE AS i, 2.5::DECIMAL(4, 2) AS dec, DATE '2026-01-02' AS day "
    "FROM samples WHERE type = 'price' AND time > ago(5m) ORDER BY key, time",
    "SELECT [1.0, 'nan'::DOUBLE] AS l, {'t': TIMESTAMP '2026-01-01 00:00:01.5'} AS s",  # nested
    "SELECT 1 AS a WHERE false",
])
def test_json_rows_by_duckdb_equal_the_python_encoding(seeded, query):
    result = seeded.query(query)
    assert json.loads(seeded.sql.json_rows(result, 1000)) == output.rows(result.table)
    assert json.loads(seeded.sql.json_rows(result, 2)) == output.rows(result.table, 2)


def test_python_encoding_of_values():
    result = output.rows(pa.table({
        "t": pa.array([0, 1_500, None], pa.timestamp("ms")),
        "v": [1.0, float("nan"), None], "l": [[1.0, float("inf")], [], None]}))
    assert result == [["1970-01-01T00:00:00.000Z", 1.0, [1.0, None]],
                      ["1970-01-01T00:00:01.500Z", None, []], [None, None, None]]


def test_policy_tiers_are_tables_with_raw_history_beyond_raw_retention(tmp_path):
    day = 86_400_000
    with sensorium.open(str(tmp_path / "db"), background=False) as db:
        db.set_policy({"name": "temps", "filter": ["type=temperature"], "preset": "seed"})
        db.create_many(["t1", "h1"], [{"type": "temperature"}, {"type": "humidity"}])
        ts = np.arange(0, 10 * day, 600_000, dtype=np.int64)  # 10 days every 10 minutes
        values = np.sin(ts / day)
        for d in range(10):  # a day at a time, as sensors send: each batch within retention
            part = slice(d * 144, (d + 1) * 144)
            for key in ("t1", "h1"):
                assert db.madd(np.array([key] * 144, object), ts[part], values[part]).ok
        engine = SqlEngine(db)
        q = lambda s: engine.query(s, now_ms=10 * day).table.to_pylist()  # noqa: E731
        assert [r["name"] for r in q("SELECT name FROM tiers ORDER BY bucket_ms")] == [
            "tier_1m", "tier_1h", "tier_1d"]
        # raw samples are kept 7 days (counted back from the newest); the tiers hold all ten
        assert q("SELECT count(*) AS n FROM samples WHERE key = 't1'") == [
            {"n": int((ts >= ts[-1] - 7 * day).sum())}]
        days = q("SELECT time, count, avg FROM tier_1d WHERE key = 't1' ORDER BY time")
        assert [r["count"] for r in days] == [144] * 10
        want = [values[ts // day == d].mean() for d in range(10)]
        assert [r["avg"] for r in days] == pytest.approx(want, rel=1e-12)
        assert q("SELECT DISTINCT key FROM tier_1h") == [{"key": "t1"}]  # h1 has no tiers


def test_odd_label_names_and_repeated_result_names(tmp_path):
    with sensorium.open(str(tmp_path / "db"), background=False) as db:
        db.create("a", labels={"my-label": "x", 'we"ird': "y"})
        db.create("b", labels={"my-label": "z"})
        db.madd(np.array(["a", "b"], object), [1_000, 1_000], [1.0, 2.0])
        engine = SqlEngine(db)
        got = engine.query('SELECT key, "we""ird" FROM samples WHERE "my-label" = \'x\'')
        assert got.table.to_pylist() == [{"key": "a", 'we"ird': "y"}]
        # DuckDB prints such names bare in its plans: they are quoted again before parsing
        assert got.stats.series == {"samples": 1}
        got = engine.query("SELECT count(*) AS n FROM samples WHERE \"my-label\" IN ('x', 'z') "
                           "AND \"we\"\"ird\" IS NULL")
        assert got.table.to_pylist() == [{"n": 1}]
        twice = engine.query("SELECT 1 AS n, 2 AS n, 3 AS __i")
        assert json.loads(engine.json_rows(twice, 10)) == [[1, 2, 3]]


def test_queries_run_while_a_writer_appends(tmp_path):
    with sensorium.open(str(tmp_path / "db"), background=False) as db:
        keys = np.array([f"s{i}" for i in range(20)], object)
        db.create_many(list(keys), [{"zone": "AB"[i % 2]} for i in range(20)])
        for k in keys:
            db.create(f"{k}:1m")
            db.createrule(k, f"{k}:1m", "avg", 60_000)
        engine = SqlEngine(db)
        stop = threading.Event()
        errors: list[BaseException] = []

        def write() -> None:
            t = 0
            while not stop.is_set() and t < 2_000:
                db.madd(keys, np.full(20, t * 1000), np.full(20, float(t)))
                t += 1

        writer = threading.Thread(target=write)
        writer.start()
        seen = []
        try:
            for _ in range(15):
                raw = engine.query("SELECT count(*) AS n FROM samples WHERE zone = 'A'")
                tier = engine.query("SELECT sum(count) AS n FROM tier_1m WHERE zone = 'A'")
                seen.append((raw.table.to_pylist()[0]["n"], tier.table.to_pylist()[0]["n"]))
        except BaseException as exc:  # reported below, after the writer stops
            errors.append(exc)
        finally:
            stop.set()
            writer.join()
        assert errors == []
        counts = [n for n, _ in seen]
        assert counts == sorted(counts) and all(n % 10 == 0 for n in counts)  # whole batches
        final = engine.query("SELECT count(*) AS n FROM samples WHERE zone = 'A'").table
        tier = engine.query("SELECT sum(count) AS n FROM tier_1m WHERE zone = 'A'").table
        assert tier.to_pylist() == final.to_pylist()  # tiers hold every sample, open buckets too
