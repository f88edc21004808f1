"""JSON ingest bodies → columns, pure (write path, step 0: parsing; no engine, no sockets).

Two forms: seed 000's list of readings (``parse_json_batch``, validated item by item since
every item is its own object) and the bulk columns form (``parse_json_columns``, converted
with numpy). Both refuse bad items with their position and field and return the rest as
columns for ``write.write_columns``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...model import MAX_TS_MS, finite_number, reading_timestamp
from .._errors import RequestError
from . import times

MAX_ERRORS_LISTED = 100  # a reply lists this many rejected items, then only counts them

_EMPTY_KEYS = np.empty(0, dtype=object)
_EMPTY_I64 = np.empty(0, np.int64)


@dataclass(slots=True)
class Columns:
    """Parsed rows plus the items refused before the engine (``errors``); row ``i`` came from
    item ``origin[i]`` (JSON batch: its index; JSON columns: ``(series, index)`` pairs)."""

    keys: np.ndarray = field(default_factory=lambda: _EMPTY_KEYS)
    ts_ms: np.ndarray = field(default_factory=lambda: _EMPTY_I64)
    values: np.ndarray = field(default_factory=lambda: np.empty(0))
    origin: np.ndarray = field(default_factory=lambda: _EMPTY_I64)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0

    def refuse(self, where: dict[str, Any], fld: str | None, message: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_ERRORS_LISTED:
            self.errors.append({**where, "field": fld, "error": message})


def load_json(body: bytes) -> Any:
    """``json.loads`` that refuses NaN/Infinity and names the position of a syntax error."""
    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")
    try:
        return json.loads(body, parse_constant=constant)
    except UnicodeDecodeError:
        raise RequestError(400, "body is not UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise RequestError(400, f"invalid JSON: {exc.msg}", line=exc.lineno,
                           column=exc.colno) from None
    except (ValueError, RecursionError) as exc:
        raise RequestError(400, f"invalid JSON: {exc}") from None


def _labels(item: Mapping[str, Any], where: dict[str, Any], cols: Columns) -> dict[str, str] | None:
    """The labels of a new series: ``labels`` plus ``unit``; None (after refusing) if bad."""
    raw = item.get("labels")
    if raw is None:
        labels: dict[str, str] = {}
    elif isinstance(raw, dict) and all(isinstance(v, str | int | float) and not isinstance(
            v, bool) for v in raw.values()):
        labels = {str(k): str(v) for k, v in raw.items()}
    else:
        cols.refuse(where, "labels", "labels must be an object of string values")
        return None
    unit = item.get("unit")
    if unit is not None:
        if not isinstance(unit, str):
            cols.refuse(where, "unit", "unit must be a string")
            return None
        labels["unit"] = unit
    return labels


def parse_json_batch(doc: Any, now: int) -> Columns:
    """Seed 000's ``[{"sensor_id", "timestamp", "value", "unit"?, "labels"?}, …]``.

    ``timestamp`` is epoch ms or RFC 3339 (absent: the server's clock). Bad items are refused
    with their index and field; the rest are returned as columns.
    """
    if not isinstance(doc, list):
        raise RequestError(400, "body must be a JSON array of readings", field="$")
    cols = Columns()
    keys: list[str] = []
    ts_ms: list[int] = []
    values: list[float] = []
    origin: list[int] = []
    for i, item in enumerate(doc):
        where = {"index": i}
        if not isinstance(item, dict):
            cols.refuse(where, None, "item must be an object")
            continue
        key = item.get("sensor_id")
        if not isinstance(key, str) or not key:
            cols.refuse(where, "sensor_id", "sensor_id must be a non-empty string")
            continue
        value = item.get("value")
        if not finite_number(value):
            cols.refuse(where, "value", "value must be a finite number")
            continue
        try:
            ts = reading_timestamp(item.get("timestamp"), now,
                                   lambda text: times.parse_time(text, now))
        except ValueError as exc:
            cols.refuse(where, "timestamp", str(exc))
            continue
        labels = _labels(item, where, cols)
        if labels is None:
            continue
        if labels and key not in cols.labels:
            cols.labels[key] = labels
        keys.append(key)
        ts_ms.append(ts)
        values.append(value)
        origin.append(i)
    if keys:
        cols.keys = np.array(keys, dtype=object)
        cols.ts_ms = np.array(ts_ms, np.int64)
        cols.values = np.array(values, np.float64)
        cols.origin = np.array(origin, np.int64)
    return cols


def _column(raw: Any, name: str, ints: bool) -> np.ndarray | tuple[int | None, str]:
    """A JSON list → int64 (``ints``: timestamps) or float64 column; else (index of the
    first bad item or None, message)."""
    if not isinstance(raw, list):
        return None, f"{name} must be an array"
    try:
        arr = np.asarray(raw) if raw else np.empty(0)
    except (ValueError, OverflowError):  # ragged nesting
        arr = np.empty(0, object)
    if arr.ndim == 1 and arr.dtype.kind in "iuf":
        if not ints:
            return arr.astype(np.float64)
        fine = (arr >= 0) & (arr <= MAX_TS_MS)
        if arr.dtype.kind == "f":
            fine &= arr == np.floor(arr)  # 1.7e12 style integers
        if fine.all():
            return arr.astype(np.int64)
        j = int(np.argmin(fine))
        return j, f"{name}[{j}] must be an integer in 0..{MAX_TS_MS}"
    for j, v in enumerate(raw):
        if isinstance(v, bool) or not isinstance(v, int | float):
            return j, f"{name}[{j}] must be a number"
        if (ints and not 0 <= v <= MAX_TS_MS) or (not ints and not finite_number(v)):
            return j, f"{name}[{j}] is out of range"
    return None, f"{name} must be a flat array of numbers"


def parse_json_columns(doc: Any) -> Columns:
    """``{"sensor_id", "timestamps": [...], "values": [...], "labels"?, "unit"?}`` or a list
    of such objects: the bulk-load form, converted with numpy rather than per item."""
    series = doc if isinstance(doc, list) else [doc]
    cols = Columns()
    key_parts: list[np.ndarray] = []
    ts_parts: list[np.ndarray] = []
    value_parts: list[np.ndarray] = []
    origin_parts: list[np.ndarray] = []
    for s, item in enumerate(series):
        where: dict[str, Any] = {"series": s}
        if not isinstance(item, dict):
            cols.refuse(where, None, "each series must be an object")
            continue
        key = item.get("sensor_id")
        if not isinstance(key, str) or not key:
            cols.refuse(where, "sensor_id", "sensor_id must be a non-empty string")
            continue
        ts = _column(item.get("timestamps"), "timestamps", ints=True)
        values = _column(item.get("values"), "values", ints=False)
        bad = next(((name, c) for name, c in (("timestamps", ts), ("values", values))
                    if isinstance(c, tuple)), None)
        if bad is not None:
            name, (j, message) = bad
            cols.refuse({**where, **({} if j is None else {"index": j})}, name, message)
            continue
        assert isinstance(ts, np.ndarray) and isinstance(values, np.ndarray)
        if len(ts) != len(values):
            cols.refuse(where, "values", f"{len(ts)} timestamps but {len(values)} values")
            continue
        labels = _labels(item, where, cols)
        if labels is None:
            continue
        if labels and key not in cols.labels:
            cols.labels[key] = labels
        key_parts.append(np.full(len(ts), key, dtype=object))
        ts_parts.append(ts)
        value_parts.append(values)
        origin_parts.append(np.column_stack((np.full(len(ts), s), np.arange(len(ts)))))
    if key_parts:
        cols.keys = np.concatenate(key_parts)
        cols.ts_ms = np.concatenate(ts_parts)
        cols.values = np.concatenate(value_parts)
        cols.origin = np.concatenate(origin_parts)
    return cols


