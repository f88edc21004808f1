"""The HTTP front end: one FastAPI app over one open ``Database`` (built by ``server.py``).

Routes live by concern (``write.py`` ingest, ``query.py`` reads, ``series.py`` management,
``policies.py`` tier policies, ``influx.py`` InfluxDB compatibility); this module wires them,
the token check and the one error edge: every exception a route raises becomes a JSON reply
here, through ``protocols._errors`` (InfluxDB's shape on InfluxDB paths, Sensorium's
elsewhere), so bad input never takes the server down. OpenAPI docs are served at ``/docs``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...database import Database
from ...errors import SensoriumError
from .._errors import RequestError, http_error, influx_error
from . import influx, policies, query, series, sql, stats, write
from .auth import TokenAuth
from .body import DEFAULT_MAX_BODY_BYTES, BodyLimit
from .influx import VERSION
from .replies import JSON

log = logging.getLogger("sensorium.http")


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """Settings of the HTTP front end.

    Attributes:
        token: when set, every request but /ping, /health and /ready must carry it
            (see ``auth.py`` for the accepted forms).
        max_body_bytes: largest request body, before and after gzip decoding (413 above).
    """

    token: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


def _is_influx(path: str) -> bool:
    return path in ("/write", "/query") or path.startswith("/api/v2/")


def _reply(request: Request, exc: BaseException) -> Response:
    status, body = (influx_error if _is_influx(request.url.path) else http_error)(exc)
    if status >= 500:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    headers = {"WWW-Authenticate": 'Token realm="sensorium"'} if status == 401 else None
    return JSON(body, status_code=status, headers=headers)


async def _on_error(request: Request, exc: Exception) -> Response:
    return _reply(request, exc)


class _LastResort:
    """The outermost edge: errors raised by the middleware (401, 413 by ``Content-Length``)
    and unexpected exceptions (a logged 500) become JSON replies. Starlette's own last resort
    re-raises into the server after replying; this one keeps the log to one entry."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started or scope["type"] != "http":
                raise
            await _reply(Request(scope), exc)(scope, receive, send)


async def _on_validation(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 becomes a 400 naming the first offending parameter or body field."""
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    loc = list(first.get("loc", ()))
    if loc and loc[0] in ("body", "query", "path", "header"):  # where it was, not its name
        loc = loc[1:]
    where = [str(p) for p in loc]
    name = ".".join(where) or None
    return _reply(request, RequestError(400, f"invalid {name or 'request'}: "
                                             f"{first.get('msg', 'invalid')}", field=name))


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _reply(request, RequestError(exc.status_code, str(exc.detail)))


def create_app(db: Database, options: HttpOptions | None = None) -> FastAPI:
    """The ASGI app serving ``db``. The caller owns ``db`` (closes it after serving)."""
    options = options or HttpOptions()
    app = FastAPI(title="Sensorium", version=VERSION, summary="Embedded-first IoT time series: "
                  "JSON and InfluxDB line-protocol ingest, RedisTimeSeries-style queries.")
    app.include_router(write.router(db, options.max_body_bytes))
    app.include_router(query.router(db))
    app.include_router(series.router(db))
    app.include_router(policies.router(db))
    app.include_router(sql.router(db))
    app.include_router(influx.router())
    app.include_router(stats.router(db))
    app.add_exception_handler(SensoriumError, _on_error)
    app.add_exception_handler(RequestError, _on_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_middleware(BodyLimit, max_bytes=options.max_body_bytes)  # every route, 413
    app.add_middleware(TokenAuth, token=options.token)
    app.add_middleware(_LastResort)  # outermost: a bug is a 500; the server lives on
    return app
