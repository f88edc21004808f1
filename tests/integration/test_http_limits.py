"""Bodies over the limit, slow and broken clients: refused, and the server carries on."""

import gzip
import socket

import httpx
import pytest

from tests.integration.conftest import SECURED_MAX_BODY_BYTES as LIMIT
from tests.integration.conftest import SECURED_TOKEN


@pytest.fixture(scope="module")
def small(secured_serve_process):
    return secured_serve_process


@pytest.fixture(scope="module")
def http(small):
    with httpx.Client(base_url=small.http_url, timeout=30,
                      headers={"Authorization": f"Bearer {SECURED_TOKEN}"}) as client:
        r = client.post("/api/v2/write", content=b"limits v=1 1", params={"precision": "ms"})
        assert r.status_code == 204
        yield client


def intact(http):
    assert http.get("/api/series/limits:v/range").json()["samples"] == [[1, 1.0]]


def test_content_length_over_the_limit(http):
    r = http.post("/api/v2/write", content=b"m v=2\n" * (LIMIT // 5))
    assert r.status_code == 413
    assert r.json()["code"] == "request too large"
    intact(http)


def test_chunked_body_over_the_limit(http):
    def chunks():
        for _ in range(40):
            yield b"m v=3\n" * 10_000
    r = http.post("/api/v2/write", content=chunks())
    assert r.status_code == 413
    intact(http)


def test_gzip_bomb(http):
    r = http.post("/api/ingest/batch", content=gzip.compress(b" " * (50 * LIMIT)),
                  headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413
    intact(http)


def test_half_sent_body_and_garbage_requests(small, http):
    host, port = small.http_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as s:  # promises more than it sends
        s.sendall(b"POST /api/v2/write HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                  + SECURED_TOKEN.encode() + b"\r\nContent-Length: 1000\r\n\r\nlimits v=")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(b"\x00\x01 not http at all\r\n\r\n")
        s.recv(1000)
    intact(http)
    assert http.get("/ping").status_code == 204
