"""Sensorium's SQL dialect: DuckDB plus the names the seeds' TimescaleDB and Timestream use.

Two things turn a TimescaleDB or Timestream query into one DuckDB runs:

* **Macros** (``MACROS``), created once per SQL database: ``now()`` (the query's start, a UTC
  TIMESTAMP, fixed for the whole query so the time filters it builds are constants the read
  planner can push down), ``ago(d)``, ``bin(t, d)``, ``date_bin(stride, t, origin)``,
  ``approx_percentile(x, q)``, ``sequence(a, b, step)``, gap filling with ``locf(x, t[, p])``
  and ``interpolate(x, t[, p])`` (window macros), and Timestream's
  ``create_time_series(t, v)`` / ``interpolate_linear(series, grid)`` /
  ``interpolate_locf(series, grid)``. ``time_bucket``, ``stddev``, ``approx_quantile``,
  ``percentile_cont``/``quantile_cont`` and window functions are DuckDB's own.
* **Duration literals** (``rewrite``): Timestream writes ``ago(1h)`` and ``bin(time, 5m)``;
  a number glued to a unit (``ns`` is not supported: DuckDB intervals count microseconds)
  outside strings, quoted names and comments becomes an ``INTERVAL`` literal.

Statements other than one query (SELECT, WITH, VALUES, PIVOT…) are refused (``check``).
Pure functions and constants: thread-safe.
"""

from __future__ import annotations

import re

import duckdb

from ..errors import InvalidArgument

NOW_VARIABLE = "sensorium_now"

# The series' values are aligned by ``t`` within partition ``p``; a NULL ``x`` is a gap.
_PREV = "OVER (ORDER BY t ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
_NEXT = "OVER (ORDER BY t ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)"
_PPREV = "OVER (PARTITION BY p ORDER BY t ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
_PNEXT = "OVER (PARTITION BY p ORDER BY t ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)"


def _lerp_window(prev: str, nxt: str) -> str:
    """Linear interpolation of a gap between the nearest non-NULL values around it."""
    ms = "CASE WHEN x IS NOT NULL THEN epoch_ms(t) END"
    p_t, n_t = f"last_value({ms} IGNORE NULLS) {prev}", f"first_value({ms} IGNORE NULLS) {nxt}"
    p_v, n_v = f"last_value(x IGNORE NULLS) {prev}", f"first_value(x IGNORE NULLS) {nxt}"
    return (f"CASE WHEN x IS NOT NULL THEN x::DOUBLE WHEN {n_t} = {p_t} THEN {p_v}::DOUBLE "
            f"ELSE {p_v} + ({n_v} - {p_v}) * (epoch_ms(t) - {p_t}) / ({n_t} - {p_t}) END")


MACROS = (
    f"CREATE MACRO now() AS getvariable('{NOW_VARIABLE}')::TIMESTAMP",
    "CREATE MACRO ago(d) AS now() - CAST(d AS INTERVAL)",
    "CREATE MACRO bin(t, d) AS time_bucket(CAST(d AS INTERVAL), t)",
    "CREATE MACRO date_bin(stride, t, origin) AS "
    "time_bucket(CAST(stride AS INTERVAL), t, CAST(origin AS TIMESTAMP))",
    "CREATE MACRO approx_percentile(x, q) AS approx_quantile(x, q)",
    "CREATE MACRO sequence(a, b, step) AS generate_series(a, b, CAST(step AS INTERVAL))",
    f"CREATE MACRO locf(x, t) AS last_value(x IGNORE NULLS) {_PREV}, "
    f"(x, t, p) AS last_value(x IGNORE NULLS) {_PPREV}",
    f"CREATE MACRO interpolate(x, t) AS {_lerp_window(_PREV, _NEXT)}, "
    f"(x, t, p) AS {_lerp_window(_PPREV, _PNEXT)}",
    # Timestream's timeseries functions, on lists of {time, value} (fine for a few thousand
    # points per series: each grid point filters the list).
    "CREATE MACRO create_time_series(t, v) AS list({'time': t, 'value': v::DOUBLE} ORDER BY t)",
    "CREATE MACRO _sensorium_lerp(p, n, g) AS CASE WHEN p IS NULL OR n IS NULL THEN NULL "
    "WHEN p.time = n.time THEN p.value ELSE p.value + (n.value - p.value) * "
    "(epoch_ms(g) - epoch_ms(p.time)) / (epoch_ms(n.time) - epoch_ms(p.time)) END",
    "CREATE MACRO interpolate_linear(s, grid) AS list_transform(grid, lambda g: "
    "{'time': g, 'value': _sensorium_lerp(list_filter(s, lambda x: x.time <= g)[-1], "
    "list_filter(s, lambda x: x.time >= g)[1], g)})",
    "CREATE MACRO interpolate_locf(s, grid) AS list_transform(grid, lambda g: "
    "{'time': g, 'value': list_filter(s, lambda x: x.time <= g)[-1].value})",
)

_UNITS = {"us": "microseconds", "ms": "milliseconds", "s": "seconds", "m": "minutes",
          "h": "hours", "d": "days"}
# Quoted strings, quoted names and comments are copied as they are; a duration is a number
# glued to a unit that is not part of a longer name or number (``sensor_1h``, ``1.5h``).
_TOKENS = re.compile(r"""
    (?P<skip>'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/)
  | (?<![\w.$])(?P<n>\d+)(?P<unit>us|ms|s|m|h|d)(?![\w.$])
""", re.X | re.S)

_QUERIES = frozenset({"SELECT"})


def rewrite(query: str) -> str:
    """Timestream duration literals (``1h``, ``15m``, ``30s``, ``500ms``, ``7d``) → INTERVALs."""
    def sub(m: re.Match[str]) -> str:
        if m.group("skip") is not None:
            return m.group(0)
        return f"INTERVAL '{m.group('n')} {_UNITS[m.group('unit')]}'"
    return _TOKENS.sub(sub, query)


def check(query: str) -> None:
    """Accepts one read-only query.

    Raises:
        InvalidArgument: empty input, several statements, or a statement that is not a query
            (DuckDB's parser message for a syntax error).
    """
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise InvalidArgument(str(exc)) from None
    if len(statements) != 1:
        raise InvalidArgument(f"expected one SQL query, got {len(statements)} statements")
    kind = statements[0].type.name
    if kind not in _QUERIES:
        raise InvalidArgument(f"only queries are allowed (SELECT, WITH …), not {kind}")
