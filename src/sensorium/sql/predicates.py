"""Which series and time range each table scan of a query needs (read path, step 2).

DuckDB's optimizer already knows: it pushes every filter it can down to the table scans,
through CTEs, subqueries, joins and macros, and folds constants (``ago(1h)`` is a constant
because ``now()`` is fixed per query). So the query is planned once against empty stand-in
tables of the same schema (statistics propagation off, or the empty tables would plan to an
empty result) and ``EXPLAIN (FORMAT JSON)`` gives, per scan, its table, its pushed filters
and the filter expressions right above it. Each filter is parsed with DuckDB's own parser
(``json_serialize_sql``) and split into conjuncts:

* a conjunct over label columns and ``key`` only (``zone = 'A'``, ``type IN (…)``,
  ``sensor_id LIKE 's1%'``, an OR of those…) is a series filter: it is run by DuckDB on the
  one-row-per-series catalog, so any deterministic expression narrows the series read;
* a conjunct comparing ``time`` to a constant (``>``, ``>=``, ``<``, ``<=``, ``=``,
  ``BETWEEN``) bounds the time range read; the constant is evaluated by DuckDB;
* anything else (value filters, volatile functions, subqueries) is left to DuckDB.

Every conjunct of a scan's filters holds for every row the scan passes on, so reading only
rows that satisfy the ones understood here changes no result: DuckDB still applies all of
them. Several scans of one table read the union of what they need. A scan whose filters say
nothing understood reads the whole table (the fallback: correct, just wider).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import duckdb

# DuckDB prints "optional: (…)" for filters that are hints implied by the others.
_OPTIONAL = re.compile(r"optional:\s*")
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COMPARE = {"COMPARE_GREATERTHAN": ">", "COMPARE_GREATERTHANOREQUALTO": ">=",
            "COMPARE_LESSTHAN": "<", "COMPARE_LESSTHANOREQUALTO": "<=", "COMPARE_EQUAL": "="}
_FLIP = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "=": "="}


@dataclass(slots=True)
class Scan:
    """What one scan of a table needs: series filter conjuncts (SQL over the catalog's
    columns; none means every series) and a time range in ms (None: unbounded)."""

    table: str
    series_sql: list[str] = field(default_factory=list)
    min_ms: int | None = None
    max_ms: int | None = None
    # Columns the scan outputs or filters on (lower case); None: any of them.
    columns: set[str] | None = None

    def bound(self, op: str, ms_floor: int) -> None:
        if op in (">", ">=", "="):
            self.min_ms = ms_floor if self.min_ms is None else max(self.min_ms, ms_floor)
        if op in ("<", "<=", "="):
            self.max_ms = ms_floor if self.max_ms is None else min(self.max_ms, ms_floor)


def plan_scans(cursor: duckdb.DuckDBPyConnection, query: str,
               schemas: dict[str, dict[str, str]], label_columns: set[str],
               volatile: frozenset[str]) -> list[Scan]:
    """The scans of ``query`` on the tables ``schemas`` names and what each needs.

    ``cursor`` must have statistics propagation disabled and hold empty stand-in tables of
    those names. Raises duckdb.Error for a query DuckDB cannot plan (its message).
    """
    plan = cursor.execute("EXPLAIN (FORMAT JSON) " + query).fetchall()
    found: list[tuple[str, list[str], set[str] | None]] = []
    for _, text in plan:
        for node in json.loads(text):
            _walk(node, [], found)
    series_cols = {c.lower() for c in label_columns} | {"key"}
    # DuckDB prints column names bare in plans, even those that need quotes (``my-label``).
    odd = sorted((c for c in label_columns if not _PLAIN.fullmatch(c) and '"' not in c),
                 key=len, reverse=True)
    scans = []
    for table, filters, projected in found:
        if table not in schemas:
            continue
        scan = Scan(table, columns=projected)
        for text in filters:
            conjuncts = _conjuncts(cursor, _requote(text, odd))
            if not conjuncts:
                scan.columns = None  # a filter we cannot read may use any column
            for conj in conjuncts:
                _classify(cursor, conj, scan, series_cols, volatile)
        scans.append(scan)
    return scans


def _walk(node: dict[str, Any], above: list[str],
          found: list[tuple[str, list[str], set[str] | None]]) -> None:
    info = node.get("extra_info", {})
    if "Table" in info:  # a scan of a table, whatever DuckDB calls the operator
        filters = info.get("Filters", [])
        filters = [filters] if isinstance(filters, str) else list(filters)
        projected = info.get("Projections")
        projected = [projected] if isinstance(projected, str) else projected
        columns = None if projected is None else {c.strip('"').lower() for c in projected}
        found.append((_table_name(info["Table"]), [f for f in filters + above if f], columns))
        return
    if node.get("name") == "FILTER":
        expr = info.get("Expression", "")
        above = [*above, expr] if isinstance(expr, str) else above
    else:
        above = []
    for child in node.get("children", []):
        _walk(child, above, found)


def _table_name(qualified: str) -> str:
    # '"temp".main.samples' → samples; a quoted last part keeps its inner quotes doubled.
    last = qualified.rsplit(".", 1)[-1]
    return last[1:-1].replace('""', '"') if last.startswith('"') else last


def _strip_optional(text: str) -> str:
    parts = text.split("'")  # even parts are outside string literals
    return "'".join(_OPTIONAL.sub("", p) if i % 2 == 0 else p for i, p in enumerate(parts))


def _requote(text: str, names: list[str]) -> str:
    """``text`` with the bare ``names`` (longest first) quoted, outside string literals."""
    if not names:
        return text
    pattern = re.compile("(?<![\\w\"])(" + "|".join(re.escape(n) for n in names)
                         + ")(?![\\w\"])")
    parts = text.split("'")  # even parts are outside string literals
    return "'".join(pattern.sub(r'"\1"', p) if i % 2 == 0 else p for i, p in enumerate(parts))


def _parse(cursor: duckdb.DuckDBPyConnection, text: str) -> dict[str, Any] | None:
    got = _one(cursor, "SELECT json_serialize_sql($1)", ["SELECT " + text])
    tree = json.loads(got) if got else {"error": True}
    if tree.get("error") or len(tree["statements"]) != 1:
        return None
    return tree  # type: ignore[no-any-return]


def _one(cursor: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    """The one value of a one-row query, fetched to the end (a cursor with an unfinished
    result refuses other work)."""
    rows = cursor.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def _conjuncts(cursor: duckdb.DuckDBPyConnection, text: str) -> list[tuple[dict, dict]]:
    """(statement tree, conjunct node) for each top-level AND term of a filter text."""
    tree = _parse(cursor, _strip_optional(text))
    if tree is None:
        return []
    out: list[tuple[dict, dict]] = []
    stack = [tree["statements"][0]["node"]["select_list"][0]]
    while stack:
        node = stack.pop()
        if node.get("type") == "CONJUNCTION_AND":
            stack.extend(node["children"])
        else:
            out.append((tree, node))
    return out


def _render(cursor: duckdb.DuckDBPyConnection, tree: dict, node: dict) -> str:
    """SQL text of an expression node, through DuckDB's own deparser."""
    stmt = json.loads(json.dumps(tree))
    stmt["statements"][0]["node"]["select_list"] = [node]
    sql: str = _one(cursor, "SELECT json_deserialize_sql($1::JSON)", [json.dumps(stmt)])
    return sql[len("SELECT "):] if sql.upper().startswith("SELECT ") else sql


def _refs(node: Any, cols: set[str], funcs: set[str]) -> bool:
    """Collects column names and function names; False if a subquery or parameter occurs."""
    if isinstance(node, dict):
        cls = node.get("class")
        if cls in ("SUBQUERY", "PARAMETER", "LAMBDA", "WINDOW"):
            return False
        if cls == "COLUMN_REF":
            cols.add(node["column_names"][-1].lower())
        elif cls == "FUNCTION":
            funcs.add(str(node.get("function_name", "")).lower())
        return all(_refs(v, cols, funcs) for v in node.values())
    if isinstance(node, list):
        return all(_refs(v, cols, funcs) for v in node)
    return True


def _classify(cursor: duckdb.DuckDBPyConnection, conj: tuple[dict, dict], scan: Scan,
              series_cols: set[str], volatile: frozenset[str]) -> None:
    tree, node = conj
    cols: set[str] = set()
    funcs: set[str] = set()
    usable = _refs(node, cols, funcs)
    if scan.columns is not None:
        scan.columns |= cols
    if not usable or funcs & volatile or not cols:
        return
    if cols <= series_cols:
        scan.series_sql.append(_render(cursor, tree, node))
    elif cols == {"time"}:
        _time_bounds(cursor, tree, node, scan)


_ORDER_KEEPING = frozenset({"TIMESTAMP", "TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE",
                            "TIMESTAMP_NS"})


def _is_time(node: dict) -> bool:
    """``time`` itself, or cast to a type that keeps its order and values (UTC session)."""
    if node.get("class") == "CAST":
        if str(node.get("type_expr", {}).get("type_name", "")).upper() not in _ORDER_KEEPING:
            return False
        node = node["child"]
    return node.get("class") == "COLUMN_REF" and node["column_names"][-1].lower() == "time"


def _time_bounds(cursor: duckdb.DuckDBPyConnection, tree: dict, node: dict, scan: Scan) -> None:
    kind = node.get("type")
    if kind in _COMPARE:
        op, left, right = _COMPARE[kind], node["left"], node["right"]
        if _is_time(right) and not _is_time(left):
            op, left, right = _FLIP[op], right, left
        if _is_time(left) and (ms := _constant_ms(cursor, tree, right)) is not None:
            scan.bound(op, ms)
    elif kind == "COMPARE_BETWEEN" and _is_time(node["input"]):
        lo = _constant_ms(cursor, tree, node["lower"])
        hi = _constant_ms(cursor, tree, node["upper"])
        if lo is not None:
            scan.bound(">=", lo)
        if hi is not None:
            scan.bound("<=", hi)


def _constant_ms(cursor: duckdb.DuckDBPyConnection, tree: dict, node: dict) -> int | None:
    """A constant time expression as epoch ms, rounded down (so bounds only widen)."""
    cols: set[str] = set()
    if not _refs(node, cols, set()) or cols:
        return None
    sql = _render(cursor, tree, node)
    try:
        got = _one(cursor, f"SELECT epoch_us(CAST(({sql}) AS TIMESTAMP))")
    except duckdb.Error:
        return None
    return None if got is None else int(got) // 1000
