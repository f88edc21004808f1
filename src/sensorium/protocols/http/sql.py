"""``POST /api/sql``: one query in Sensorium's SQL dialect → columns and rows (read path).

The route is a synchronous ``def``: FastAPI runs it in a worker thread, and the one
``SqlEngine`` gives each query its own DuckDB connections, so queries run side by side.
A query DuckDB refuses is a 400 carrying DuckDB's message (``sql.QueryError`` is an
``InvalidArgument``, mapped in ``protocols._errors``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ...database import Database
from ...sql import SqlEngine, output
from .replies import JSON

MAX_ROWS = 100_000  # largest reply; more rows are cut and flagged ``truncated``


class SqlRequest(BaseModel):
    query: str = Field(description="one SELECT/WITH query in Sensorium's dialect "
                                   "(docs/sql.md)")
    max_rows: int = Field(10_000, ge=1, le=MAX_ROWS, description="rows returned at most")


def router(db: Database) -> APIRouter:
    api = APIRouter(tags=["sql"])
    engine = SqlEngine(db)

    @api.post("/api/sql", summary="Run a SQL query over samples and tiers (DuckDB)")
    def sql(body: SqlRequest) -> JSON:
        result = engine.query(body.query)
        table = result.table
        reply: dict[str, Any] = {
            "columns": output.columns(table, result.types),
            "rows": output.rows(table, body.max_rows),
            "row_count": table.num_rows,
            "truncated": table.num_rows > body.max_rows,
            "read": {"rows": result.stats.rows, "series": result.stats.series},
            "elapsed_ms": round(result.elapsed_s * 1000, 3),
        }
        return JSON(reply)

    return api
