"""Tier policies over HTTP: list, set (create, change and apply) and drop.

A body is the policy as ``Database.set_policy`` takes it (see ``engine/policies.py``); the
path names it. Applying a policy to many existing series takes a while (new tiers are
backfilled): the route runs in a worker thread and logs progress per thousand series.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Body

from ...database import Database
from .._errors import RequestError
from .replies import JSON

log = logging.getLogger("sensorium.http")

EXAMPLE = {"filter": ["type=temperature"], "raw_retention": "7d",
           "tiers": [{"name": "1m", "bucket": "1min", "retention": "365d",
                      "aggregators": ["avg", "min", "max", "sum", "count"]},
                     {"name": "1h", "bucket": "1h", "retention": "1825d"},
                     {"name": "1d", "bucket": "1d"}]}


def router(db: Database) -> APIRouter:
    api = APIRouter(tags=["policies"])

    @api.get("/api/policies", summary="Tier policies, in the order they apply")
    def list_policies() -> JSON:
        return JSON({"policies": db.policies()})

    @api.put("/api/policies/{name}", summary="Create or change a tier policy and apply it to "
             "the series it governs (new tiers are backfilled)")
    def set_policy(name: str, body: dict[str, Any] = Body(..., examples=[EXAMPLE])) -> JSON:  # noqa: B008
        if "name" in body and body["name"] != name:
            raise RequestError(400, f"the body names policy {body['name']!r}, the path {name!r}",
                               field="name")

        def progress(done: int, total: int) -> None:
            log.info("policy %s: %d of %d series", name, done, total)

        applied = db.set_policy({**body, "name": name}, progress=progress)
        policy = next(p for p in db.policies() if p["name"] == name)
        return JSON({"policy": policy, "applied": applied})

    @api.delete("/api/policies/{name}", summary="Drop a tier policy (its tiers stay unless "
                "delete_tiers=true)")
    def drop_policy(name: str, delete_tiers: bool = False) -> JSON:
        if all(p["name"] != name for p in db.policies()):
            raise RequestError(404, f"no policy named {name!r}", field="name")
        db.drop_policy(name, delete_tiers=delete_tiers)
        return JSON({"name": name, "dropped": True, "tiers_deleted": delete_tiers})

    return api
