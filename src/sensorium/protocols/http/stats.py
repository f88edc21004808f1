"""``GET /api/stats``: what the database holds (``sensorium.inventory``), for ``sensorium
stats --url``. Two calls some seconds apart give the ingest rate (raw samples stored per
second), so the server keeps no counter of its own.
"""

from __future__ import annotations

from fastapi import APIRouter

from ...database import Database
from ...inventory import inventory
from .replies import JSON


def router(db: Database) -> APIRouter:
    api = APIRouter(tags=["query"])

    @api.get("/api/stats", summary="Series, samples per tier, bytes on disk and per sample")
    def stats() -> JSON:
        return JSON(inventory(db))

    return api
