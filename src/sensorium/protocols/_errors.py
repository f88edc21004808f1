"""Engine errors → wire errors: the one place each protocol decides status codes and shapes.

Handlers never build an error reply themselves: they raise, either an engine error
(``sensorium.errors``) or a :class:`RequestError` for a request refused before the engine
sees it, and the protocol's edge calls one function here (httpx ``map_exceptions`` style).

    SensoriumError subclass        HTTP   InfluxDB code
    ─────────────────────────────  ─────  ──────────────────
    RequestError(status, …)        status  by status (below)
    SeriesNotFound                 404    not found
    SeriesExists, RuleError        409    conflict
    InvalidArgument,
      InvalidSampleError           400    invalid
    EngineClosed, LockedError      503    unavailable
    anything else                  500    internal error
"""

from __future__ import annotations

from typing import Any

from ..errors import (
    EngineClosed,
    InvalidArgument,
    InvalidSampleError,
    LockedError,
    RuleError,
    SeriesExists,
    SeriesNotFound,
)

# InfluxDB 2.x error codes by HTTP status (influxdb/kit/platform/errors).
_INFLUX_CODES = {
    400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not found", 405:
    "method not allowed", 409: "conflict", 413: "request too large", 415: "unsupported media type",
    422: "unprocessable entity", 429: "too many requests", 503: "unavailable",
}


class RequestError(Exception):
    """A request refused by the protocol layer (bad parameter, body, auth); never an engine
    error. ``details`` are extra JSON fields naming what is wrong (``field``, ``index``, …)."""

    def __init__(self, status: int, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


def http_status(exc: BaseException) -> int:
    """The HTTP status an exception maps to."""
    if isinstance(exc, RequestError):
        return exc.status
    if isinstance(exc, SeriesNotFound):
        return 404
    if isinstance(exc, SeriesExists | RuleError):
        return 409
    if isinstance(exc, InvalidArgument | InvalidSampleError):
        return 400
    if isinstance(exc, EngineClosed | LockedError):
        return 503
    return 500


def _message(exc: BaseException, status: int) -> str:
    if status == 500:
        return "internal error"  # details go to the server log, not to the client
    if isinstance(exc, RequestError):
        return exc.message
    return str(exc) or type(exc).__name__


def http_error(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """Sensorium's JSON error: ``(status, {"error": message, ...details})``."""
    status = http_status(exc)
    body: dict[str, Any] = {"error": _message(exc, status)}
    if isinstance(exc, RequestError):
        body.update(exc.details)
    elif isinstance(exc, SeriesNotFound | SeriesExists) and exc.key:
        body["key"] = exc.key
    return status, body


def influx_error(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """InfluxDB's JSON error: ``{"code", "message"}`` (2.x) plus ``error`` (what 1.x clients
    such as Telegraf's ``outputs.influxdb`` read) and ``line`` when a line is at fault."""
    status, body = http_error(exc)
    message = body.pop("error")
    out: dict[str, Any] = {"code": _INFLUX_CODES.get(status, "internal error"),
                           "message": message, "error": message}
    out.update(body)
    return status, out
