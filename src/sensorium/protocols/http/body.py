"""Request bodies: size limit, streaming read and gzip decoding (write path, step 0).

A body larger than the limit is refused with 413 before the engine sees any of it: from
``Content-Length`` when the client sends one, otherwise while streaming, and again after
decompression, so a small gzip bomb cannot expand past the limit either.
"""

from __future__ import annotations

import zlib

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._errors import RequestError

DEFAULT_MAX_BODY_BYTES = 64 * 2**20  # a 5000-line batch is ~0.5 MiB; 64 MiB leaves room


def _message(limit: int) -> str:
    return f"request body is larger than the limit of {limit} bytes"


def too_large(limit: int) -> RequestError:
    return RequestError(413, _message(limit), max_body_bytes=limit)


class BodyLimit:
    """ASGI middleware bounding every request body, whoever reads it (the raw-body routes
    check again, after decoding, in :func:`read_body`).

    A ``Content-Length`` over the limit is refused before the route runs; a streamed body
    is cut off when it passes the limit (an ``HTTPException``, which FastAPI's own body
    reading lets through, where any other error would become its generic 400).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                raise too_large(self.max_bytes)
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, _message(self.max_bytes))
            return message

        await self.app(scope, bounded, send)


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, decoded from its ``Content-Encoding`` (identity or gzip).

    Raises:
        RequestError: 413 over ``max_bytes`` (raw or decoded), 400 for a bad length header
            or gzip data, 415 for an unknown encoding.
    """
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise RequestError(400, "invalid Content-Length header")
        if int(length) > max_bytes:
            raise too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise too_large(max_bytes)
        chunks.append(chunk)
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return decode(body, request.headers.get("content-encoding", ""), max_bytes)


def decode(body: bytes, encoding: str, max_bytes: int) -> bytes:
    """Decodes a body by its ``Content-Encoding``; pure, so tests need no socket."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise RequestError(415, f"unsupported Content-Encoding {encoding!r} (use gzip)")
    inflater = zlib.decompressobj(wbits=31)  # 31: gzip framing
    out: list[bytes] = []
    size = 0
    data = body
    try:
        while True:
            piece = inflater.decompress(data, max_bytes + 1 - size)
            out.append(piece)
            size += len(piece)
            if size > max_bytes:
                raise too_large(max_bytes)
            if inflater.eof:
                rest = inflater.unused_data
                if not rest.strip(b"\0"):  # some writers pad the last member
                    break
                inflater = zlib.decompressobj(wbits=31)  # concatenated gzip members
                data = rest
                continue
            data = inflater.unconsumed_tail
            if not data:
                raise RequestError(400, "gzip: unexpected end of data")
    except zlib.error as exc:
        raise RequestError(400, f"gzip: {exc}") from None
    return b"".join(out)
