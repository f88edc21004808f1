"""``POST /api/sql``: one query in Sensorium's SQL dialect → columns and rows (read path).

The route is a synchronous ``def``: FastAPI runs it in a worker thread, and the one
``SqlEngine`` gives each query its own DuckDB connections, so queries run side by side.
A query DuckDB refuses is a 400 carrying DuckDB's message (``sql.QueryError`` is an
``InvalidArgument``, mapped in ``protocols._errors``). The rows are encoded to JSON by
DuckDB (``SqlEngine.json_rows``): tens of thousands of rows in milliseconds.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import Response

from ...database import Database
from ...sql import SqlEngine, output

MAX_ROWS = 100_000  # largest reply; more rows are cut and flagged ``truncated``


class SqlRequest(BaseModel):
    query: str = Field(description="one SELECT/WITH query in Sensorium's dialect "
                                   "(docs/sql.md)")
    max_rows: int = Field(10_000, ge=1, le=MAX_ROWS, description="rows returned at most")


def router(db: Database) -> APIRouter:
    api = APIRouter(tags=["sql"])
    engines: list[SqlEngine] = []  # built on the first query: apps that never query skip it
    lock = threading.Lock()

    def engine() -> SqlEngine:
        with lock:
            if not engines:
                engines.append(SqlEngine(db))
            return engines[0]

    @api.post("/api/sql", summary="Run a SQL query over samples and tiers (DuckDB)")
    def sql(body: SqlRequest) -> Response:
        result = engine().query(body.query)
        table = result.table
        reply: dict[str, Any] = {
            "columns": output.columns(table, result.types),
            "rows": None,  # spliced in below
            "row_count": table.num_rows,
            "truncated": table.num_rows > body.max_rows,
            "read": {"rows": result.stats.rows, "series": result.stats.series},
            "elapsed_ms": round(result.elapsed_s * 1000, 3),
        }
        head, tail = json.dumps(reply, separators=(",", ":"), ensure_ascii=False).split(
            '"rows":null', 1)
        rows = engine().json_rows(result, body.max_rows)
        return Response(f'{head}"rows":{rows}{tail}', media_type="application/json")

    return api
