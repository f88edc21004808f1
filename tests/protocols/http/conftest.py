"""In-process HTTP tests: the app over a real database in ``tmp_path``, no sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import sensorium
from sensorium.protocols.http.app import HttpOptions, create_app


class Client:
    """A synchronous facade over ``httpx.ASGITransport`` (one event loop per request)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                return await c.request(method, url, **kwargs)
        return asyncio.run(go())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)


@pytest.fixture
def db(tmp_path) -> Iterator[sensorium.Database]:
    with sensorium.open(str(tmp_path / "db"), background=False) as database:
        yield database


@pytest.fixture
def client(db) -> Client:
    return Client(create_app(db))


@pytest.fixture
def make_client(db):
    def make(**options: Any) -> Client:
        return Client(create_app(db, HttpOptions(**options)))
    return make
