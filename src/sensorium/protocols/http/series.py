"""Series and rule management: TS.CREATE / ALTER / DEL / DELETE / CREATERULE / DELETERULE.

Bodies are pydantic models (they document themselves at ``/docs``); a model that does not
validate is a 400 naming the field (see ``app.py``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from ...database import Database
from .replies import JSON, duration_param, now_ms, time_param


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeriesSettings(_Body):
    retention_ms: int | None = Field(None, ge=0, description="0 keeps samples forever")
    labels: dict[str, str] | None = None
    duplicate_policy: str | None = Field(
        None, description="block, first, last, min, max or sum")
    chunk_size: int | None = Field(None, gt=0)
    ignore_max_time_diff: int | None = Field(None, ge=0)
    ignore_max_val_diff: float | None = Field(None, ge=0)


class NewSeries(SeriesSettings):
    key: str = Field(min_length=1)


class NewRule(_Body):
    dest: str = Field(min_length=1, description="destination key (must exist, be empty)")
    aggregation: str = Field(description="avg, sum, min, max, range, count, first, last, "
                                         "std.p, std.s, var.p, var.s, twa")
    bucket: str | int = Field(description="bucket duration: ms or `1min`, `1h`, `1d`")
    align_ms: int = Field(0, ge=0)


def router(db: Database) -> APIRouter:
    api = APIRouter(tags=["series"])

    @api.post("/api/series", status_code=201, summary="TS.CREATE")
    def create(body: NewSeries) -> JSON:
        db.create(body.key, retention_msecs=body.retention_ms, labels=body.labels,
                  chunk_size=body.chunk_size, duplicate_policy=body.duplicate_policy,
                  ignore_max_time_diff=body.ignore_max_time_diff,
                  ignore_max_val_diff=body.ignore_max_val_diff)
        return JSON({"key": body.key, "created": True}, status_code=201)

    @api.delete("/api/series/{key:path}/rules/{dest}", summary="TS.DELETERULE")
    def delete_rule(key: str, dest: str) -> JSON:
        db.deleterule(key, dest)
        return JSON({"source": key, "dest": dest, "deleted": True})

    @api.post("/api/series/{key:path}/rules", status_code=201, summary="TS.CREATERULE")
    def create_rule(key: str, body: NewRule) -> JSON:
        bucket_ms = duration_param("bucket", str(body.bucket))
        db.createrule(key, body.dest, body.aggregation, bucket_ms or 0, body.align_ms)
        return JSON({"source": key, "dest": body.dest, "aggregation": body.aggregation,
                     "bucket_ms": bucket_ms, "align_ms": body.align_ms}, status_code=201)

    @api.delete("/api/series/{key:path}/samples", summary="TS.DEL: samples in a time range")
    def delete_samples(key: str, from_: Annotated[str, Query(alias="from")],
                       to: Annotated[str, Query()]) -> JSON:
        now = now_ms()
        lo, hi = time_param("from", from_, now, 0), time_param("to", to, now, 0)
        return JSON({"key": key, "deleted": db.delete(key, lo, hi)})

    @api.patch("/api/series/{key:path}", summary="TS.ALTER")
    def alter(key: str, body: SeriesSettings) -> JSON:
        db.alter(key, retention_msecs=body.retention_ms, labels=body.labels,
                 chunk_size=body.chunk_size, duplicate_policy=body.duplicate_policy,
                 ignore_max_time_diff=body.ignore_max_time_diff,
                 ignore_max_val_diff=body.ignore_max_val_diff)
        return JSON({"key": key, **db.describe(key)})

    @api.delete("/api/series/{key:path}", summary="DEL: the whole series and its rules")
    def delete(key: str) -> JSON:
        db.delete_series(key)
        return JSON({"key": key, "deleted": True})

    return api
