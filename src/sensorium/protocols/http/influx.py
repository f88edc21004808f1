"""InfluxDB compatibility endpoints besides the writes: what clients call around them.

``/ping`` (influxdb-client ``ping()``/``version()``, Telegraf, load balancers), ``/health``
(``health()``), ``/ready`` (``ready()``) and ``/query`` answering the ``CREATE DATABASE`` that
Telegraf's ``outputs.influxdb`` sends before writing (databases and buckets are accepted and
ignored: one Sensorium server is one namespace). InfluxQL is not supported.
"""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import parse_qs

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from .._errors import RequestError
from .body import read_body
from .replies import JSON

QUERY_BODY_BYTES = 64 * 1024  # an InfluxQL statement, not data

try:
    VERSION = version("sensorium")
except PackageNotFoundError:  # running from a source tree
    VERSION = "0.0.0"
_HEADERS = {"X-Influxdb-Version": f"sensorium-{VERSION}", "X-Influxdb-Build": "OSS"}


def router() -> APIRouter:
    api = APIRouter(tags=["influxdb"])
    started = time.time()

    async def ping() -> Response:
        return Response(status_code=204, headers=_HEADERS)

    for method in ("GET", "HEAD"):
        api.add_api_route("/ping", ping, methods=[method], status_code=204, summary="Liveness",
                          operation_id=f"ping_{method.lower()}")

    @api.get("/health", summary="InfluxDB 2.x health check")
    async def health() -> JSON:
        return JSON({"name": "sensorium", "message": "ready for queries and writes",
                     "status": "pass", "checks": [], "version": VERSION, "commit": ""},
                    headers=_HEADERS)

    @api.get("/ready", summary="InfluxDB 2.x readiness")
    async def ready() -> JSON:
        started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))
        return JSON({"status": "ready", "started": started_at,
                     "up": f"{time.time() - started:.0f}s"})

    async def query(request: Request) -> JSON:
        q = request.query_params.get("q")
        if q is None and request.method == "POST":  # form-encoded body
            body = await read_body(request, QUERY_BODY_BYTES)
            q = (parse_qs(body.decode("utf-8", "replace")).get("q") or [""])[-1]
        statement = (q or "").strip().upper()
        if statement.startswith("CREATE DATABASE") or statement.startswith("SHOW DATABASES"):
            return JSON({"results": [{"statement_id": 0}]})
        raise RequestError(400, "InfluxQL is not supported; query with GET /api/query",
                           field="q")

    for method in ("GET", "POST"):
        api.add_api_route("/query", query, methods=[method], operation_id=f"query_{method.lower()}",
                          summary="InfluxQL: only CREATE DATABASE (a no-op) is answered")

    return api
