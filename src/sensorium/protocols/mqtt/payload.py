"""MQTT payloads → sample columns, many messages at once (write path, step 0; sans-IO).

Pure: lists of payload bytes in, columns out, with one row per reading and the index of the
message it came from; no sockets, no engine. Formats (docs/protocols/mqtt.md):

* JSON, ``format = "json"``: a bare number (``21.5``), one reading
  (``{"value": 21.5, "timestamp": 1700000000000}``), a list of readings, or columns
  (``{"timestamps": [...], "values": [...]}``). A reading may name its own ``sensor_id``,
  ``labels`` and ``unit`` as in ``POST /api/ingest/batch``; ``timestamp`` is epoch
  milliseconds or RFC 3339, absent means the time of receipt.
* InfluxDB line protocol, ``format = "line"``: :func:`parse_lines` runs the messages through
  ``lineproto.parser.parse`` as one body.

JSON has two paths that must agree (a test checks it), like the line-protocol parser:

* the **fast path** parses a whole flush of messages with pyarrow: bare numbers are checked
  against the JSON number grammar and cast in C++; reading objects, lists of readings and
  the columns form are read as newline-delimited JSON with an explicit schema (one read per
  form per flush). No Python work per reading.
* the **slow path** (``json.loads``, one message at a time) takes every message the fast
  path cannot vouch for (other fields, RFC 3339 times, nulls, NaN, whitespace, errors) and
  names what is wrong. A read that fails is split in halves and retried, so one bad message
  sends a few of its neighbours to the slow path, not the whole flush.

A bad message, or a bad reading in a list, becomes a ``PayloadError``; the good readings
around it are kept.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from ...errors import InvalidArgument
from ...model import MAX_TS_MS, checked_ms, finite_number, reading_timestamp
from ..lineproto.parser import ParsedBatch, parse

# Reasons a message is refused (the keys of the subscriber's ``bad_payloads`` counter).
INVALID_JSON = "invalid_json"
INVALID_READING = "invalid_reading"
INVALID_LINE = "invalid_line"

_NUMBER = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$"  # RFC 8259 number
_READING = pa.struct([("value", pa.float64()), ("timestamp", pa.int64()),
                      ("sensor_id", pa.string())])
_OBJECT_OPTIONS = pj.ParseOptions(explicit_schema=pa.schema(list(_READING)),
                                  unexpected_field_behavior="error")
_LIST_OPTIONS = pj.ParseOptions(explicit_schema=pa.schema([("r", pa.list_(_READING))]),
                                unexpected_field_behavior="error")
_COLUMNS_OPTIONS = pj.ParseOptions(
    explicit_schema=pa.schema([("timestamps", pa.list_(pa.int64())),
                               ("values", pa.list_(pa.float64())), ("sensor_id", pa.string())]),
    unexpected_field_behavior="error")  # labels and unit: the slow path
_READ_OPTIONS = pj.ReadOptions(use_threads=False, block_size=1 << 26)
# A failed read is halved and retried down to this many messages, which then take the slow
# path together: a flush full of bad messages costs about 2n/SPLIT_MIN small reads, not 2n.
SPLIT_MIN = 8


@dataclass(frozen=True, slots=True)
class PayloadError:
    """A refused message (or reading of a list): message index, reason code, explanation."""

    msg: int
    reason: str
    message: str


@dataclass(slots=True)
class Rows:
    """Readings of many messages as columns; row ``i`` came from message ``msg[i]``.

    ``sensor_id[i]`` is the reading's own sensor_id or None (then the topic names the
    series); ``sensor_id`` itself is None when no reading named one (the common case, so
    no object column is built). ``labels`` maps a row to the labels (with ``unit``) its
    reading carried.
    """

    msg: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    sensor_id: np.ndarray | None = None
    ts_ms: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    values: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    labels: dict[int, dict[str, str]] = field(default_factory=dict)
    errors: list[PayloadError] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.msg)

    def sensor_ids(self) -> np.ndarray:
        """``sensor_id`` as an object column (all None when no reading named one)."""
        if self.sensor_id is None:
            return np.full(len(self.msg), None, object)
        return self.sensor_id


def parse_json(payloads: Sequence[bytes], now_ms: int) -> Rows:
    """Parses JSON payloads; rows come out in message order (readings of a list in order).

    Args:
        payloads: message payloads, in arrival order.
        now_ms: timestamp of readings without one (the time of receipt).
    """
    if not payloads:
        return Rows()
    # Classified by first byte, vectorised; the fast path reads one message per line.
    first = np.frombuffer(b"".join([p[:1] or b" " for p in payloads]), np.uint8)
    blob = b"\n".join(payloads)
    if blob.count(b"\n") != len(payloads) - 1 or b"\r" in blob:
        multiline = np.array([b"\n" in p or b"\r" in p for p in payloads], bool)
    else:
        multiline = np.zeros(len(payloads), bool)
    digit = ((first >= ord("0")) & (first <= ord("9"))) | (first == ord("-"))
    brace = (first == ord("{")) & ~multiline
    if brace.any() and (b'"values"' in blob or b'"timestamps"' in blob):  # per message only if so
        columns = brace & np.array([b'"values"' in p or b'"timestamps"' in p
                                    for p in payloads], bool)
    else:
        columns = np.zeros(len(payloads), bool)
    objects = np.flatnonzero(brace & ~columns).tolist()
    lists = np.flatnonzero((first == ord("[")) & ~multiline).tolist()
    numbers = np.flatnonzero(digit & ~multiline).tolist()
    slow = np.flatnonzero(~(digit | (first == ord("{")) | (first == ord("["))) | multiline
                          ).tolist()
    parts: list[Rows] = []
    for group, fast in ((numbers, _fast_numbers), (objects, _fast_objects),
                        (lists, _fast_lists), (np.flatnonzero(columns).tolist(),
                                               _fast_columns)):
        if group:
            rows, redo = fast(payloads, group, now_ms)
            parts.append(rows)
            slow.extend(redo)
    if slow:
        parts.append(_slow(payloads, sorted(slow), now_ms))
    return _concat(parts)


def _fast_numbers(payloads: Sequence[bytes], idx: list[int], now_ms: int
                  ) -> tuple[Rows, list[int]]:
    texts = pa.array([payloads[i] for i in idx], pa.binary())
    try:
        texts = texts.cast(pa.string())
    except pa.ArrowInvalid:  # not UTF-8
        return Rows(), idx
    ok = pc.match_substring_regex(texts, _NUMBER).to_numpy(zero_copy_only=False)
    values = np.full(len(idx), np.nan)
    if ok.any():
        values[ok] = pc.cast(texts.filter(pa.array(ok)), pa.float64()).to_numpy()
    ok &= np.isfinite(values)
    msg = np.asarray(idx, np.int64)
    rows = Rows(msg=msg[ok], ts_ms=np.full(int(ok.sum()), now_ms, np.int64),
                values=values[ok])
    return rows, msg[~ok].tolist()


def _read(body: bytes, options: pj.ParseOptions) -> pa.Table | None:
    try:
        return pj.read_json(io.BytesIO(body), read_options=_READ_OPTIONS,
                            parse_options=options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _read_all(bodies: list[bytes], idx: list[int], options: pj.ParseOptions,
              wrap: tuple[bytes, bytes] = (b"", b"")
              ) -> tuple[pa.Table | None, list[int], list[int]]:
    """One table row per message, for the messages pyarrow reads; ``(table, read, failed)``.

    Each message is read as ``wrap[0] + body + wrap[1]`` (wrapped while joining, not copied
    one by one).

    A failed read (or one whose row count is not one per message, e.g. two objects in one
    message) is halved and retried, down to ``SPLIT_MIN`` messages; those go to the slow
    path, which names the problem. ``read`` are the messages of the table's rows, in order.
    """
    tables: list[pa.Table] = []
    read: list[int] = []
    failed: list[int] = []
    todo = [(0, len(bodies))]
    while todo:
        lo, hi = todo.pop()
        head, tail = wrap
        table = _read(head + (tail + b"\n" + head).join(bodies[lo:hi]) + tail, options)
        if table is not None and table.num_rows == hi - lo:
            tables.append(table)
            read.extend(idx[lo:hi])
        elif hi - lo <= SPLIT_MIN:
            failed.extend(idx[lo:hi])
        else:
            mid = (lo + hi) // 2
            todo += [(mid, hi), (lo, mid)]  # the first half is read first: order kept
    if not tables:
        return None, [], failed
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    return table, read, failed


def _fast_objects(payloads: Sequence[bytes], idx: list[int], now_ms: int
                  ) -> tuple[Rows, list[int]]:
    table, read, failed = _read_all([payloads[i] for i in idx], idx, _OBJECT_OPTIONS)
    if table is None:
        return Rows(), failed
    readings = pa.StructArray.from_arrays(
        [table.column(n).combine_chunks() for n in ("value", "timestamp", "sensor_id")],
        fields=list(_READING))
    rows, bad = _checked(readings, np.asarray(read, np.int64), now_ms)
    return rows, failed + bad


def _fast_lists(payloads: Sequence[bytes], idx: list[int], now_ms: int
                ) -> tuple[Rows, list[int]]:
    table, read, failed = _read_all([payloads[i] for i in idx], idx, _LIST_OPTIONS,
                                    (b'{"r":', b"}"))
    if table is None:
        return Rows(), failed
    lists = table.column("r").combine_chunks()
    msgs = np.asarray(read, np.int64)
    if lists.null_count:  # "null" is no list of readings
        null = lists.is_null().to_numpy(zero_copy_only=False)
        failed += msgs[null].tolist()
        lists, msgs = lists.filter(pa.array(~null)), msgs[~null]
    parent = pc.list_parent_indices(lists).to_numpy()
    rows, bad = _checked(lists.flatten(), msgs[parent], now_ms)
    return rows, failed + bad


def _fast_columns(payloads: Sequence[bytes], idx: list[int], now_ms: int
                  ) -> tuple[Rows, list[int]]:
    """The columns form ``{"timestamps": [...], "values": [...]}`` (with an optional
    ``sensor_id``) of many messages, read at once; labels and unit take the slow path."""
    table, read, failed = _read_all([payloads[i] for i in idx], idx, _COLUMNS_OPTIONS)
    if table is None:
        return Rows(), failed
    stamps = table.column("timestamps").combine_chunks()
    values = table.column("values").combine_chunks()
    sid = table.column("sensor_id").combine_chunks()
    msgs = np.asarray(read, np.int64)
    bad_msg = (stamps.is_null().to_numpy(zero_copy_only=False)
               | values.is_null().to_numpy(zero_copy_only=False))
    bad_msg |= (pc.fill_null(pc.list_value_length(stamps), -1).to_numpy()
                != pc.fill_null(pc.list_value_length(values), -2).to_numpy())
    if sid.null_count < len(sid):
        bad_msg |= pc.fill_null(pc.equal(sid, ""), False).to_numpy(zero_copy_only=False)
    if bad_msg.any():
        keep = pa.array(~bad_msg)
        failed += msgs[bad_msg].tolist()
        stamps, values, sid, msgs = (stamps.filter(keep), values.filter(keep),
                                     sid.filter(keep), msgs[~bad_msg])
    parent = pc.list_parent_indices(values).to_numpy()
    flat_ts, flat_values = stamps.flatten(), values.flatten()
    # Nulls inside a list (``[1, null]``) are refused below: they become NaN or -1.
    ts = flat_ts.fill_null(-1).to_numpy() if flat_ts.null_count else flat_ts.to_numpy()
    vals = flat_values.fill_null(math.nan).to_numpy() if flat_values.null_count else (
        flat_values.to_numpy())
    bad_row = ~np.isfinite(vals) | (ts < 0) | (ts > MAX_TS_MS)
    named = sid.null_count < len(sid)
    sensor_id = (sid.to_numpy(zero_copy_only=False).astype(object)[parent] if named
                 else None)
    rows = Rows(msg=msgs[parent], sensor_id=sensor_id, ts_ms=ts.astype(np.int64),
                values=vals)
    if not bad_row.any():
        return rows, failed
    bad_msgs = np.unique(rows.msg[bad_row])
    return _without(rows, bad_msgs), failed + bad_msgs.tolist()


def _without(rows: Rows, bad_msgs: np.ndarray) -> Rows:
    """``rows`` (no labels, no errors) without the rows of ``bad_msgs``."""
    keep = ~np.isin(rows.msg, bad_msgs)
    return Rows(msg=rows.msg[keep],
                sensor_id=None if rows.sensor_id is None else rows.sensor_id[keep],
                ts_ms=rows.ts_ms[keep], values=rows.values[keep])


def _checked(readings: pa.StructArray, msg: np.ndarray, now_ms: int
             ) -> tuple[Rows, list[int]]:
    """Rows of the readings whose messages are entirely clean; the other messages are
    returned for the slow path, which names what is wrong with them."""
    if readings.null_count:
        bad_row = readings.is_null().to_numpy(zero_copy_only=False)
    else:
        bad_row = np.zeros(len(readings), bool)
    value, ts_col, sid = readings.flatten()  # (unlike .field(), flatten applies an offset)
    values = value.fill_null(math.nan).to_numpy() if value.null_count else value.to_numpy()
    bad_row |= ~np.isfinite(values)
    ts = ts_col.fill_null(now_ms).to_numpy() if ts_col.null_count else ts_col.to_numpy()
    bad_row |= (ts < 0) | (ts > MAX_TS_MS)
    named = sid.null_count < len(sid)
    if named:
        bad_row |= pc.fill_null(pc.equal(sid, ""), False).to_numpy(zero_copy_only=False)
    rows = Rows(msg=msg, sensor_id=sid.to_numpy(zero_copy_only=False).astype(object)
                if named else None, ts_ms=ts.astype(np.int64), values=values)
    if not bad_row.any():
        return rows, []
    bad_msgs = np.unique(msg[bad_row])
    return _without(rows, bad_msgs), bad_msgs.tolist()


def _slow(payloads: Sequence[bytes], idx: list[int], now_ms: int) -> Rows:
    out = Rows()
    blocks: list[Rows] = []  # columns-form messages, converted with numpy
    msg: list[int] = []
    sids: list[str | None] = []
    ts_ms: list[int] = []
    values: list[float] = []
    for i in idx:
        doc, error = _load(payloads[i])
        if error is not None:
            out.errors.append(PayloadError(i, INVALID_JSON, error))
            continue
        if isinstance(doc, dict) and ("values" in doc or "timestamps" in doc):
            try:
                block = _columns(doc, i, now_ms)
            except ValueError as exc:
                out.errors.append(PayloadError(i, INVALID_READING, str(exc)))
                continue
            blocks.append(block)
            continue
        if isinstance(doc, list):
            items, many = doc, True
        elif isinstance(doc, dict):
            items, many = [doc], False
        elif finite_number(doc):
            items, many = [{"value": doc}], False
        else:
            out.errors.append(PayloadError(i, INVALID_READING, "payload must be a number, a "
                                           "reading object or a list of readings"))
            continue
        for j, item in enumerate(items):
            where = f"reading {j}: " if many else ""
            try:
                sid, ts, value, labels = _reading(item, now_ms)
            except ValueError as exc:
                out.errors.append(PayloadError(i, INVALID_READING, f"{where}{exc}"))
                continue
            if labels:
                out.labels[len(msg)] = labels
            msg.append(i)
            sids.append(sid)
            ts_ms.append(ts)
            values.append(value)
    if msg:
        out.msg = np.array(msg, np.int64)
        if sids.count(None) < len(sids):
            out.sensor_id = np.array(sids, object)
        out.ts_ms = np.array(ts_ms, np.int64)
        out.values = np.array(values, np.float64)
    if not blocks:
        return out
    errors, out.errors = out.errors, []
    merged = _concat([out, *blocks])
    merged.errors = sorted(errors, key=lambda e: e.msg)
    return merged


def _load(payload: bytes) -> tuple[Any, str | None]:
    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        return None, "payload is not UTF-8"
    try:
        return json.loads(text, parse_constant=constant), None
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except (ValueError, RecursionError) as exc:
        return None, f"invalid JSON: {exc}"


def _reading(item: Any, now_ms: int) -> tuple[str | None, int, float, dict[str, str]]:
    """(sensor_id, ts_ms, value, labels) of one reading; ValueError names the bad field."""
    if not isinstance(item, dict):
        raise ValueError("a reading must be an object")
    value = item.get("value")
    if not finite_number(value):
        raise ValueError("value must be a finite number")
    ts = reading_timestamp(item.get("timestamp"), now_ms, _rfc3339_ms)
    sid = item.get("sensor_id")
    if sid is not None and (not isinstance(sid, str) or not sid):
        raise ValueError("sensor_id must be a non-empty string")
    raw = item.get("labels")
    labels: dict[str, str] = {}
    if raw is not None:
        if not isinstance(raw, dict) or not all(
                isinstance(v, str | int | float) and not isinstance(v, bool)
                for v in raw.values()):
            raise ValueError("labels must be an object of string values")
        labels = {str(k): str(v) for k, v in raw.items()}
    unit = item.get("unit")
    if unit is not None:
        if not isinstance(unit, str):
            raise ValueError("unit must be a string")
        labels["unit"] = unit
    return sid, ts, float(value), labels


def _columns(doc: dict[str, Any], msg: int, now_ms: int) -> Rows:
    """The columns form ``{"timestamps": [...], "values": [...]}`` of message ``msg`` (as
    ``POST /api/ingest/columns``), with optional ``sensor_id``, ``labels`` and ``unit``;
    converted with numpy, not per reading."""
    values = _array(doc.get("values"), "values")
    if not np.isfinite(values).all():
        raise ValueError("values must be an array of finite numbers")
    stamps = _array(doc.get("timestamps"), "timestamps")
    if len(stamps) != len(values):
        raise ValueError(f"timestamps must be an array as long as values ({len(values)})")
    if not ((stamps >= 0) & (stamps <= MAX_TS_MS) & (stamps == np.floor(stamps))).all():
        raise ValueError(f"timestamps must be epoch milliseconds in 0..{MAX_TS_MS}")
    sid, _, _, labels = _reading({**doc, "value": 0, "timestamp": None}, now_ms)
    n = len(values)
    return Rows(msg=np.full(n, msg, np.int64),
                sensor_id=None if sid is None else np.full(n, sid, object),
                ts_ms=stamps.astype(np.int64), values=values.astype(np.float64),
                labels=dict.fromkeys(range(n), labels) if labels else {})


def _array(raw: Any, name: str) -> np.ndarray:
    """A JSON array of numbers → a numpy array (ValueError naming ``name`` otherwise)."""
    what = (f"{name} must be an array of epoch milliseconds" if name == "timestamps"
            else f"{name} must be an array of finite numbers")
    if not isinstance(raw, list):
        raise ValueError(what)
    try:
        arr = np.asarray(raw) if raw else np.empty(0)
    except (ValueError, OverflowError):
        raise ValueError(what) from None
    if arr.ndim != 1 or arr.dtype.kind not in "iuf":  # strings, bools, nulls, nesting
        raise ValueError(what)
    return arr


def _rfc3339_ms(text: str) -> int:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"timestamp {text!r} is not RFC 3339") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return checked_ms(int(dt.timestamp() * 1000))


def _concat(parts: list[Rows]) -> Rows:
    parts = [p for p in parts if len(p) or p.errors]
    if len(parts) == 1:
        return parts[0]
    out = Rows()
    if not parts:
        return out
    labels: dict[int, dict[str, str]] = {}
    offset = 0
    for p in parts:
        labels.update({offset + r: lab for r, lab in p.labels.items()})
        out.errors.extend(p.errors)
        offset += len(p)
    msg = np.concatenate([p.msg for p in parts])
    order = np.argsort(msg, kind="stable")  # back to message order
    out.msg = msg[order]
    if any(p.sensor_id is not None for p in parts):
        out.sensor_id = np.concatenate([p.sensor_ids() for p in parts])[order]
    out.ts_ms = np.concatenate([p.ts_ms for p in parts])[order]
    out.values = np.concatenate([p.values for p in parts])[order]
    if labels:
        where = np.empty(len(order), np.int64)
        where[order] = np.arange(len(order))
        out.labels = {int(where[r]): lab for r, lab in labels.items()}
    out.errors.sort(key=lambda e: e.msg)
    return out


def parse_lines(payloads: Sequence[bytes], precision: str, now_ms: int
                ) -> tuple[ParsedBatch, list[PayloadError]]:
    """Parses line-protocol payloads as one body (the vectorised parser runs once).

    Returns the parsed rows (keys in the line-protocol scheme of ``/write``) and one error per
    bad line, naming its message and its line within the message.

    Raises:
        InvalidArgument: ``precision`` is not a line-protocol precision.
    """
    batch = parse(b"\n".join(payloads), precision=precision, default_ts_ms=now_ms)
    errors: list[PayloadError] = []
    if batch.errors:
        starts = np.cumsum([0] + [p.count(b"\n") + 1 for p in payloads])  # first line - 1
        for e in batch.errors:
            m = int(np.searchsorted(starts, e.line, side="left")) - 1
            errors.append(PayloadError(m, INVALID_LINE,
                                       f"line {e.line - int(starts[m])}: {e.message}"))
    return batch, errors


def check_precision(precision: str) -> None:
    """Raises ValueError when ``precision`` is not a line-protocol precision."""
    try:
        parse(b"", precision=precision)
    except InvalidArgument as exc:
        raise ValueError(str(exc)) from None
