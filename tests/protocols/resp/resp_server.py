"""A RESP server on a free port in a background thread, for integration tests.

    with RespServer(tmp_path) as srv:
        r = redis.Redis(port=srv.port)
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from pathlib import Path
from typing import Any

import sensorium
from sensorium.protocols.resp import serve_resp


class RespServer:
    """Opens a database in ``path`` and serves it; ``stop()`` closes both."""

    def __init__(self, path: Path | str, *, password: str | None = None,
                 **db_options: Any) -> None:
        db_options.setdefault("background", False)
        self.db = sensorium.open(str(path), **db_options)
        self.password = password
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="resp-test-server", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                serve_resp(self.db, "127.0.0.1", 0, password=self.password))
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> RespServer:
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"RESP server did not start: {self._error}")
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self._server is not None and self._loop.is_running():
            async def shutdown() -> None:
                assert self._server is not None
                self._server.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._server.wait_closed(), 5)

            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._loop.is_running():
            self._loop.close()
        self.db.close()

    def __enter__(self) -> RespServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for_port(port: int, host: str = "127.0.0.1", timeout_s: float = 10.0) -> None:
    """Blocks until something accepts TCP connections on ``host:port``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class RawClient:
    """A bare socket speaking RESP, for byte-exact and malformed-input tests."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, *args: str | bytes) -> bytes:
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a.encode() if isinstance(a, str) else a
            parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.send(b"".join(parts))
        return self.read_reply()

    def read_reply(self) -> bytes:
        """One complete reply's raw bytes."""
        import hiredis
        reader = hiredis.Reader()
        buf = b""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                return buf
            buf += chunk
            reader.feed(chunk)
            if reader.gets() is not False:
                return buf

    def read_until_closed(self) -> bytes:
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                return buf
            if not chunk:
                return buf
            buf += chunk

    def close(self) -> None:
        self.sock.close()
