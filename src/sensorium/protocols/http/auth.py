"""Token authentication for every HTTP endpoint but the liveness probes (ASGI middleware).

With no token configured every request passes. With one, a request must carry it in any of
the forms InfluxDB clients send:

    Authorization: Token <token>           InfluxDB 2.x clients, Telegraf influxdb_v2
    Authorization: Token <user>:<token>    influxdb-client against a 1.x-compatible server
    Authorization: Bearer <token>          generic HTTP clients
    Authorization: Basic <user:token>      (base64) InfluxDB 1.x clients, Telegraf influxdb
    ?p=<token> (with ?u=<user>)            InfluxDB 1.x query-string credentials

The user name is ignored. ``/ping``, ``/health`` and ``/ready`` stay open, as in InfluxDB, so
load balancers and client ``ping()`` calls work without credentials.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from .._errors import RequestError

OPEN_PATHS = frozenset({"/ping", "/health", "/ready"})


def _matches(secret: str, token: str) -> bool:
    return hmac.compare_digest(secret.encode(), token.encode())


def credentials_ok(authorization: str | None, query_string: bytes, token: str) -> bool:
    """Whether a request's ``Authorization`` header or ``p=`` parameter carries ``token``."""
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "basic":
            try:
                value = base64.b64decode(value, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return False
            return _matches(value.partition(":")[2], token)
        if scheme in ("token", "bearer"):
            return _matches(value, token) or (
                ":" in value and _matches(value.partition(":")[2], token))
        return False
    if query_string and b"p=" in query_string:
        given = parse_qs(query_string.decode("latin-1")).get("p")
        return bool(given) and _matches(given[-1], token)
    return False


class TokenAuth:
    """Refuses requests without the token: raises a 401 ``RequestError`` for the app's error
    edge (``app._LastResort``) to answer in the shape of the endpoint family."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        if not credentials_ok(authorization, scope.get("query_string", b""), self.token):
            raise RequestError(401, "unauthorized access: missing or wrong token")
        await self.app(scope, receive, send)
