"""Query results as JSON-able rows, CSV and an aligned text table (HTTP and CLI front ends).

JSON has no timestamps, NaN or infinities: TIMESTAMP values become RFC 3339 strings in UTC
with milliseconds (``2026-11-23T14:00:00.000Z``), INTERVALs seconds as a
number (a month counts 30 days), non-finite floats ``null``; lists and structs nest.
Pure functions: thread-safe.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import math
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_EPOCH = dt.datetime(1970, 1, 1)


def columns(table: pa.Table, types: list[str]) -> list[dict[str, str]]:
    """Name and (DuckDB) type of each column."""
    return [{"name": n, "type": t} for n, t in zip(table.column_names, types, strict=True)]


def json_value(v: Any) -> Any:
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(dt.UTC).replace(tzinfo=None)
        return v.isoformat(timespec="milliseconds") + "Z"
    if isinstance(v, dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, bytes):
        return v.hex()
    if hasattr(v, "months") and hasattr(v, "nanoseconds"):  # Arrow month-day-nano interval
        return v.months * 30 * 86400 + v.days * 86400 + v.nanoseconds / 1e9
    if isinstance(v, dict):
        return {k: json_value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [json_value(x) for x in v]
    if v is None or isinstance(v, bool | int | str):
        return v
    return str(v)


def _column(col: pa.ChunkedArray) -> list[Any]:
    """One column as JSON-able values, vectorised for the common types."""
    t = col.type
    if pa.types.is_timestamp(t):
        ms = pc.cast(col, pa.timestamp("ms", t.tz), safe=False).cast(pa.int64())
        text = np.datetime_as_string(ms.fill_null(0).to_numpy().astype("datetime64[ms]"))
        out = [v + "Z" for v in text]
        if col.null_count:
            out = [None if m else v for v, m in zip(out, col.is_null().to_pylist(), strict=True)]
        return out
    if pa.types.is_floating(t):
        col = pc.if_else(pc.is_finite(col), col, pa.scalar(None, t))
        return col.to_pylist()
    if pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_boolean(t):
        return col.to_pylist()
    if pa.types.is_dictionary(t) and pa.types.is_string(t.value_type):
        return col.to_pylist()
    return [json_value(v) for v in col.to_pylist()]


def rows(table: pa.Table, limit: int | None = None) -> list[list[Any]]:
    """The table's rows (the first ``limit``) as JSON-able lists."""
    if limit is not None:
        table = table.slice(0, limit)
    cols = [_column(c) for c in table.columns]
    return [list(r) for r in zip(*cols, strict=True)] if cols else []


# DuckDB types whose values its JSON functions write as ``rows`` does, given the casts below.
_FLAT_JSON = re.compile(r"^(BOOLEAN|TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|"
                        r"UINTEGER|UBIGINT|VARCHAR|DOUBLE|FLOAT|DECIMAL.*|TIMESTAMP.*|DATE|"
                        r"INTERVAL)$")


def json_select(names: list[str], types: list[str]) -> str | None:
    """A DuckDB query turning table ``__result`` (with row index ``__i``) into one JSON text
    of row arrays, formatted as ``rows`` formats them; None when a column is nested (lists,
    structs: ``rows`` then does it in Python)."""
    if not all(_FLAT_JSON.match(t) for t in types):
        return None
    items = []
    for name, t in zip(names, types, strict=True):
        c = '"' + name.replace('"', '""') + '"'
        if t.startswith("TIMESTAMP"):
            c = f"strftime({c}::TIMESTAMP, '%Y-%m-%dT%H:%M:%S.%gZ')"
        elif t in ("DOUBLE", "FLOAT") or t.startswith("DECIMAL"):
            c = f"CASE WHEN isfinite({c}::DOUBLE) THEN {c}::DOUBLE END"
        elif t == "INTERVAL":
            c = f"epoch({c})"
        items.append(c)
    return (f"SELECT '[' || coalesce(string_agg(json_array({', '.join(items)})::VARCHAR, ',' "
            "ORDER BY __i), '') || ']' FROM __result")


def to_csv(table: pa.Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in rows(table):
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


def to_text(table: pa.Table, max_width: int = 40) -> str:
    """An aligned table with a header rule, like psql; long cells are cut with …"""
    def cell(v: Any) -> str:
        s = "NULL" if v is None else str(v)
        return s if len(s) <= max_width else s[: max_width - 1] + "…"
    body = [[cell(v) for v in r] for r in rows(table)]
    head = table.column_names
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(head)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)),
             "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    n = table.num_rows
    lines.append(f"({n} row{'s' if n != 1 else ''})")
    return "\n".join(lines)
