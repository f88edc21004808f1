"""``GET /api/mqtt``: the subscriber's connection and counters (read path; one route).

Mounted on the HTTP app by ``server.py`` when MQTT is configured, behind the same token
check as every other route.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from .subscriber import Subscriber


def router(subscriber: Subscriber) -> APIRouter:
    api = APIRouter(tags=["mqtt"])

    @api.get("/api/mqtt", summary="MQTT subscriber: broker connection, subscriptions, counters")
    async def mqtt_status() -> dict[str, Any]:
        return subscriber.status()

    return api
