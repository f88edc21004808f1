"""SQL over a Sensorium database: plan, read what is needed, run in DuckDB (read path).

One ``SqlEngine`` serves one open ``Database`` and any number of threads: each query gets
its own pair of DuckDB connections (cursors) to two in-memory DuckDB databases that hold
only the dialect's macros, never data:

1. ``catalog.build`` snapshots the series and tiers (engine lock);
2. ``predicates.plan_scans`` plans the query against empty stand-in tables in the planning
   database and extracts, per scanned table, the series filter and the time range;
3. the series filter runs on the catalog (one row per series) and ``materialize`` reads just
   those series and range from the engine as Arrow tables;
4. the query runs in the execution database over those tables; a timer interrupts it after
   ``timeout_s``.

Every DuckDB error becomes a ``QueryError`` carrying DuckDB's message (HTTP 400); nothing a
query says can take the process down. External access (files, network, extensions) is off
and the configuration is locked, so a query reads nothing but Sensorium's tables.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import duckdb
import numpy as np
import pyarrow as pa

from ..errors import InvalidArgument
from . import catalog as catalog_mod
from . import dialect, materialize, output, predicates

if TYPE_CHECKING:
    from ..database import Database

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 60.0
# DuckDB's own worker threads per query: the engine and the front ends need the other cores.
DEFAULT_THREADS = 2

_SAMPLES = {"key": "VARCHAR", "time": "TIMESTAMP", "value": "DOUBLE"}
_TIER = {"key": "VARCHAR", "time": "TIMESTAMP", "count": "BIGINT", "sum": "DOUBLE",
         "min": "DOUBLE", "max": "DOUBLE", "avg": "DOUBLE", "first": "DOUBLE", "last": "DOUBLE",
         "first_time": "TIMESTAMP", "last_time": "TIMESTAMP", "stddev": "DOUBLE",
         "variance": "DOUBLE", "m2": "DOUBLE", "closed": "BOOLEAN"}
_SERIES_EXTRA = {"retention_ms": "BIGINT", "last_time": "TIMESTAMP", "last_value": "DOUBLE",
                 "tiers": "VARCHAR[]"}
_TIERS = {"name": "VARCHAR", "bucket": "INTERVAL", "bucket_ms": "BIGINT", "series": "BIGINT",
          "retention_ms": "BIGINT"}
_CATALOG_VIEW = "__sensorium_series"


class QueryError(InvalidArgument):
    """A query DuckDB refused or failed (its message), or one that timed out."""


@dataclass(frozen=True, slots=True)
class ReadStats:
    """What a query read from the engine, per table: rows and series materialised."""

    rows: dict[str, int] = field(default_factory=dict)
    series: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QueryResult:
    """A query's answer as an Arrow table, and what it read."""

    table: pa.Table
    types: list[str]  # DuckDB's type of each column (``TIMESTAMP``, ``DOUBLE``…)
    stats: ReadStats
    elapsed_s: float


class SqlEngine:
    """SQL front of one ``Database``. Thread-safe; cheap to keep for the database's life.

    Args:
        db: the open database (the caller closes it).
        timeout_s: a query running longer is interrupted (QueryError).
        threads: DuckDB worker threads per query.
        prune: read only what the query's filters select (see ``predicates``); False reads
            every table a query names whole, which gives the same answers, slower.
    """

    def __init__(self, db: Database, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 threads: int = DEFAULT_THREADS, prune: bool = True) -> None:
        self.db = db
        self.timeout_s = timeout_s
        self.prune = prune  # False: every scanned table is read whole (for comparisons)
        self._plan_db = _database(threads, plan=True)
        self._run_db = _database(threads, plan=False)
        with self._plan_db.cursor() as c:
            self._volatile = frozenset(r[0] for r in c.execute(
                "SELECT DISTINCT function_name FROM duckdb_functions() "
                "WHERE stability = 'VOLATILE'").fetchall())
        self._lock = threading.Lock()  # DuckDB cursors are created one at a time
        self._local = threading.local()

    def close(self) -> None:
        self._plan_db.close()
        self._run_db.close()

    def _cursors(self) -> _Cursors:
        """This thread's cursors (DuckDB connections are not shared between threads)."""
        cursors: _Cursors | None = getattr(self._local, "cursors", None)
        if cursors is None:
            with self._lock:
                cursors = _Cursors(self._plan_db.cursor(), self._run_db.cursor())
            self._local.cursors = cursors
        return cursors

    def query(self, sql: str, *, now_ms: int | None = None) -> QueryResult:
        """Runs one read-only query in Sensorium's dialect (see ``docs/sql.md``).

        Args:
            sql: the query.
            now_ms: what ``now()`` means (epoch ms); the current time by default.

        Raises:
            QueryError: DuckDB's message for a bad query, or a timeout.
        """
        started = time.perf_counter()
        if not isinstance(sql, str) or not sql.strip():
            raise QueryError("empty query")
        query = dialect.rewrite(sql)
        try:
            dialect.check(query)
        except InvalidArgument as exc:
            raise QueryError(str(exc)) from None
        now_ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
        engine = self.db.engine
        with engine.lock:
            cat = catalog_mod.build(engine)
        cursors = self._cursors()
        plan, run = cursors.plan, cursors.run
        registered: list[str] = []
        try:
            for c in (plan, run):
                c.execute(f"SET VARIABLE {dialect.NOW_VARIABLE} = make_timestamp($1::BIGINT)",
                          [now_ms * 1000])
            schemas = _schemas(cat)
            _duck(lambda: cursors.stand_ins(schemas))
            scans = _plan(plan, query, schemas, set(cat.columns.values()), self._volatile)
            stats = ReadStats()
            for name in sorted({s.table for s in scans}):
                table = self._materialize(run, cat, name, [s for s in scans if s.table == name],
                                          stats)
                run.register(name, table)
                registered.append(name)
            lowered = query.lower()
            for name in set(schemas) - {s.table for s in scans}:
                if name in lowered:  # named but pruned from the plan (LIMIT 0, WHERE false…)
                    run.register(name, _empty(schemas[name]))
                    registered.append(name)
            table, types = self._run(run, query)
        finally:
            for name in registered:  # the Arrow tables are freed with the query
                run.unregister(name)
        return QueryResult(table, types, stats, time.perf_counter() - started)

    def json_rows(self, result: QueryResult, limit: int) -> str:
        """The first ``limit`` rows of ``result`` as a JSON array of arrays (``output.rows``'
        format), encoded by DuckDB when the column types allow (flat types), else in Python.
        """
        table = result.table.slice(0, limit)
        names = [f"c{i}" for i in range(table.num_columns)]  # result names may repeat
        select = output.json_select(names, result.types)
        if select is None:
            return json.dumps(output.rows(table), separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False)
        run = self._cursors().run
        run.register("__result", table.rename_columns(names).append_column(
            "__i", pa.array(np.arange(table.num_rows, dtype=np.int64))))
        try:
            got = run.execute(select).fetchall()  # to the end: the cursor stays usable
        finally:
            run.unregister("__result")
        return str(got[0][0])

    def _run(self, cursor: duckdb.DuckDBPyConnection, query: str) -> tuple[pa.Table, list[str]]:
        timer = threading.Timer(self.timeout_s, cursor.interrupt)
        timer.daemon = True
        timer.start()
        try:
            rel = _duck(lambda: cursor.sql(query))
            return _duck(rel.to_arrow_table), [str(t) for t in rel.types]
        except QueryError as exc:
            if not timer.is_alive():
                raise QueryError(f"query interrupted after {self.timeout_s:g} s") from exc
            raise
        finally:
            timer.cancel()

    def _materialize(self, run: duckdb.DuckDBPyConnection, cat: catalog_mod.Catalog,
                     name: str, scans: list[predicates.Scan], stats: ReadStats) -> pa.Table:
        engine = self.db.engine
        if name == "series":
            return materialize.series(engine, cat)
        if name == "tiers":
            return materialize.tiers(cat)
        if not self.prune:
            scans = [predicates.Scan(name)]
        positions = _series_positions(run, cat, scans)
        lo, hi = _time_range(scans)
        if name == "samples":
            table = materialize.samples(engine, cat, positions, lo, hi)
        else:
            streams = cat.tiers[name]
            chosen = np.flatnonzero(np.isin(streams.series, positions))
            columns = None if any(s.columns is None for s in scans) else set().union(
                *(s.columns or set() for s in scans))
            table = materialize.tier(engine, cat, streams, chosen, lo, hi, columns)
        stats.rows[name] = len(table)
        stats.series[name] = len(positions)
        return table


class _Cursors:
    """One thread's planning and execution cursors and the stand-in tables it holds."""

    def __init__(self, plan: duckdb.DuckDBPyConnection, run: duckdb.DuckDBPyConnection) -> None:
        self.plan, self.run = plan, run
        self.schemas: dict[str, dict[str, str]] = {}

    def stand_ins(self, schemas: dict[str, dict[str, str]]) -> None:
        """Empty TEMP tables of the tables' schemas in the planning cursor (kept between
        queries; rebuilt when series with new labels or new tiers change them)."""
        for name in set(self.schemas) - set(schemas):
            self.plan.execute(f"DROP TABLE IF EXISTS temp.{_quote(name)}")
        for name, columns in schemas.items():
            if self.schemas.get(name) != columns:
                cols = ", ".join(f"{_quote(c)} {t}" for c, t in columns.items())
                self.plan.execute(f"CREATE OR REPLACE TEMP TABLE {_quote(name)} ({cols})")
        self.schemas = {k: dict(v) for k, v in schemas.items()}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _database(threads: int, *, plan: bool) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:", config={"threads": threads})
    if plan:  # empty stand-in tables must not plan to an empty result
        con.execute("SET disabled_optimizers = 'statistics_propagation'")
    for macro in dialect.MACROS:
        con.execute(macro)
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _duck(fn: Callable[[], T]) -> T:
    """Runs ``fn``; a DuckDB error becomes a QueryError with DuckDB's message."""
    try:
        return fn()
    except duckdb.Error as exc:
        raise QueryError(str(exc)) from None


def _plan(cursor: duckdb.DuckDBPyConnection, query: str, schemas: dict[str, dict[str, str]],
          labels: set[str], volatile: frozenset[str]) -> list[predicates.Scan]:
    try:
        return predicates.plan_scans(cursor, query, schemas, labels, volatile)
    except duckdb.Error:
        pass
    # The message of a bad query, without the EXPLAIN around it (positions then match).
    _duck(lambda: cursor.sql(query))
    raise QueryError("the query could not be planned")


def _schemas(cat: catalog_mod.Catalog) -> dict[str, dict[str, str]]:
    labels = {c: "VARCHAR" for c in cat.columns.values()}
    out = {"samples": {"key": "VARCHAR", **labels, "time": "TIMESTAMP", "value": "DOUBLE"},
           "series": {"key": "VARCHAR", **labels, **_SERIES_EXTRA},
           "tiers": dict(_TIERS)}
    for name in cat.tiers:
        out[name] = {"key": "VARCHAR", **labels, **{k: v for k, v in _TIER.items() if k != "key"}}
    return out


def _empty(schema: dict[str, str]) -> pa.Table:
    types = {"VARCHAR": pa.string(), "TIMESTAMP": pa.timestamp("us"), "DOUBLE": pa.float64(),
             "BIGINT": pa.int64(), "BOOLEAN": pa.bool_(), "INTERVAL": pa.duration("us"),
             "VARCHAR[]": pa.list_(pa.string())}
    return pa.table({c: pa.array([], types[t]) for c, t in schema.items()})


def _series_positions(run: duckdb.DuckDBPyConnection, cat: catalog_mod.Catalog,
                      scans: list[predicates.Scan]) -> np.ndarray:
    """Catalog positions of the series any of ``scans`` may read (sorted)."""
    everything = np.arange(len(cat.sids))
    if not scans or any(not s.series_sql for s in scans):
        return everything
    where = " OR ".join("(" + " AND ".join(f"({c})" for c in s.series_sql) + ")" for s in scans)
    table = cat.series_table().append_column("__pos", pa.array(everything))
    run.register(_CATALOG_VIEW, table)
    try:
        got = run.execute(f"SELECT __pos FROM {_CATALOG_VIEW} WHERE {where}").fetchnumpy()
    except duckdb.Error:  # a filter that needs the rows after all: read every series
        return everything
    finally:
        run.unregister(_CATALOG_VIEW)
    return np.sort(np.asarray(got["__pos"], np.int64))


def _time_range(scans: list[predicates.Scan]) -> tuple[int, int]:
    lo = min((s.min_ms if s.min_ms is not None else 0) for s in scans) if scans else 0
    hi = max((s.max_ms if s.max_ms is not None else materialize.ALL_TIME[1]) for s in scans) \
        if scans else materialize.ALL_TIME[1]
    return max(lo, 0), hi
