"""Ingest handlers: JSON batches, JSON columns, InfluxDB line protocol (write path, step 0).

Each handler is thin: read the body (``body.py``), parse it with a pure parser
(``ingest_json.py``, ``lineproto.parser``) in a worker thread, then :func:`write_columns`:
one columnar ``Database.madd`` per request, inside one ``db.batch()`` so that creating new
series and appending their samples is one durable commit. Rows that parse are written
whatever the others do, and the reply names the first bad item or line.

Functions here are synchronous: the routes in ``app.py`` run them in a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import anyio.to_thread
import numpy as np
from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from ...database import Database
from ...engine.db import AppendResult
from ...engine.head_append import MESSAGES, Status
from ...errors import InvalidArgument
from .._errors import RequestError
from ..lineproto.parser import parse
from .body import read_body
from .ingest_json import (
    MAX_ERRORS_LISTED,
    Columns,
    load_json,
    parse_json_batch,
    parse_json_columns,
)
from .replies import JSON, now_ms

# Which input field an engine outcome blames.
_FIELD = {
    Status.NOT_FOUND: "sensor_id", Status.IS_DESTINATION: "sensor_id",
    Status.INVALID_TIMESTAMP: "timestamp", Status.OUT_OF_RETENTION: "timestamp",
    Status.DUPLICATE_BLOCKED: "timestamp", Status.INVALID_VALUE: "value",
}


def write_columns(db: Database, keys: np.ndarray, ts_ms: np.ndarray, values: np.ndarray,
                  labels: Mapping[str, Mapping[str, str]]) -> AppendResult:
    """Appends rows as one commit, creating missing series with ``labels[key]`` (an
    existing series keeps its own labels)."""
    res = db.madd(keys, ts_ms, values,
                  new_labels=lambda new: [dict(labels.get(key) or {}) for key in new])
    assert isinstance(res, AppendResult)
    return res


def write_parsed(db: Database, cols: Columns, origin_keys: tuple[str, ...]) -> dict[str, Any]:
    """Writes parsed JSON rows; returns the reply, or raises a 400 listing every rejected item.

    ``origin_keys`` names the parts of ``cols.origin`` in error entries (``("index",)`` or
    ``("series", "index")``).
    """
    written = 0
    if len(cols.keys):
        res = write_columns(db, cols.keys, cols.ts_ms, cols.values, cols.labels)
        bad = np.flatnonzero(res.status != Status.OK)
        written = len(cols.keys) - len(bad)
        cols.rejected += len(bad)
        for i in bad[: MAX_ERRORS_LISTED - len(cols.errors)].tolist():
            code = Status(int(res.status[i]))
            parts = np.atleast_1d(cols.origin[i]).tolist()
            where = dict(zip(origin_keys, parts, strict=True))
            cols.errors.append({**where, "field": _FIELD.get(code), "error": MESSAGES[code]})
    if cols.rejected:
        cols.errors.sort(key=lambda e: tuple(e.get(k, -1) for k in origin_keys))
        raise RequestError(400, f"{cols.rejected} item(s) rejected, {written} written",
                           written=written, rejected=cols.rejected, errors=cols.errors)
    return {"written": written}


def write_line_protocol(db: Database, body: bytes, precision: str, now: int) -> int:
    """Parses and writes a line-protocol body; returns the number of points written.

    Lines without a timestamp get ``now``. Raises a 400 ``RequestError`` naming the first
    bad line (or refused point) after writing every good one.
    """
    if not body.strip():
        raise RequestError(400, "writing requires points")
    try:
        batch = parse(body, precision=precision, default_ts_ms=now)
    except InvalidArgument as exc:  # the only argument: precision
        raise RequestError(400, str(exc), field="precision") from None
    bad_rows = np.empty(0, np.int64)
    res = None
    if len(batch.keys):
        res = write_columns(db, batch.keys, batch.ts_ms, batch.values, batch.labels)
        bad_rows = np.flatnonzero(res.status != Status.OK)
    written = len(batch.keys) - len(bad_rows)
    if not batch.errors and not len(bad_rows):
        return written
    counts = {"written": written, "rejected_lines": len(batch.errors),
              "rejected_points": len(bad_rows)}
    tally = (f"{len(batch.errors)} line(s) and {len(bad_rows)} point(s) rejected, "
             f"{written} point(s) written")
    if batch.errors:
        first = batch.errors[0]
        raise RequestError(400, f"partial write: unable to parse line {first.line}: "
                                f"{first.message} ({tally})", line=first.line, **counts)
    assert res is not None
    i = int(bad_rows[0])
    message = MESSAGES[Status(int(res.status[i]))]
    raise RequestError(400, f"partial write: point {batch.keys[i]} at {int(batch.ts_ms[i])} "
                            f"ms: {message} ({tally})", **counts)


def ingest_batch(db: Database, body: bytes, now: int) -> dict[str, Any]:
    """``POST /api/ingest/batch``: parse, write, reply (or raise a 400 listing the rejects)."""
    return write_parsed(db, parse_json_batch(load_json(body), now), ("index",))


def ingest_columns(db: Database, body: bytes) -> dict[str, Any]:
    """``POST /api/ingest/columns``: the bulk form, one series or a list of them."""
    return write_parsed(db, parse_json_columns(load_json(body)), ("series", "index"))


_LINE_PROTOCOL_BODY = {"requestBody": {"required": True, "content": {"text/plain": {
    "schema": {"type": "string"},
    "example": "weather,station=A temperature=21.5,humidity=40 1700000000000000000"}}}}
_JSON_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"type": "array", "items": {"type": "object"}}}}}}


def router(db: Database, max_body_bytes: int) -> APIRouter:
    api = APIRouter(tags=["write"])

    @api.post("/api/ingest/batch", openapi_extra=_JSON_BODY,
              summary='Readings [{"sensor_id", "timestamp", "value", "unit"?, "labels"?}]')
    async def batch(request: Request) -> JSON:
        body = await read_body(request, max_body_bytes)
        return JSON(await anyio.to_thread.run_sync(ingest_batch, db, body, now_ms()))

    @api.post("/api/ingest/columns", openapi_extra=_JSON_BODY,
              summary='Columns {"sensor_id", "timestamps": [...], "values": [...]} or a list')
    async def columns(request: Request) -> JSON:
        body = await read_body(request, max_body_bytes)
        return JSON(await anyio.to_thread.run_sync(ingest_columns, db, body))

    @api.post("/write", status_code=204, openapi_extra=_LINE_PROTOCOL_BODY,
              summary="InfluxDB 1.x line protocol (db and rp are accepted and ignored)")
    async def write_v1(request: Request, db_: Annotated[str | None, Query(alias="db")] = None,
                       rp: str | None = None, precision: str = "ns") -> Response:
        body = await read_body(request, max_body_bytes)
        await anyio.to_thread.run_sync(write_line_protocol, db, body, precision, now_ms())
        return Response(status_code=204)

    @api.post("/api/v2/write", status_code=204, openapi_extra=_LINE_PROTOCOL_BODY,
              summary="InfluxDB 2.x line protocol (org and bucket are accepted and ignored)")
    async def write_v2(request: Request, org: str | None = None, bucket: str | None = None,
                       precision: str = "ns") -> Response:
        body = await read_body(request, max_body_bytes)
        await anyio.to_thread.run_sync(write_line_protocol, db, body, precision, now_ms())
        return Response(status_code=204)

    return api
