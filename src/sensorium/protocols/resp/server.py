"""The Redis-protocol server: asyncio moves bytes, one engine thread executes commands.

Each connection reads whatever the socket has (up to ``READ_BYTES``), parses it into
commands (``codec.RequestParser``, in the event loop) and hands the whole list to the engine
thread, then writes the replies. While a connection waits, its socket keeps filling, so a
busy pipeline is read in large chunks and batched the more the engine is loaded. The engine
thread takes every job queued at that moment and runs them as one durable commit
(``session.execute_jobs``): one log sync for all the connections' writes (group commit), and
replies are released only after it.

Contract for ``sensorium serve``: ``await serve_resp(db, host, port)`` returns the listening
``asyncio.Server``; ``server.close()`` also disconnects the clients and stops the engine
thread. The database stays open: the caller closes it after the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from typing import TYPE_CHECKING, Any

from .codec import Request, RequestParser, error_line
from .session import ServerState, Session, execute_jobs

if TYPE_CHECKING:
    from ...database import Database

log = logging.getLogger("sensorium.resp")

READ_BYTES = 1 << 20  # one read: up to ~20k pipelined TS.ADD commands
STREAM_LIMIT = 4 << 20  # bytes a connection may buffer before its reads pause
MAX_JOBS = 256  # jobs one commit takes from the queue (bounds reply latency)

_Job = tuple[Session, list[Request], "asyncio.Future[tuple[bytes, bool]]",
             asyncio.AbstractEventLoop]


class EngineThread:
    """The single thread that runs commands; what is queued together commits together."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="sensorium-resp", daemon=True)
        self._thread.start()

    def submit(self, session: Session, cmds: list[Request]
               ) -> asyncio.Future[tuple[bytes, bool]]:
        """Queues ``cmds``; the future gets ``(replies, close)`` once they are durable."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[bytes, bool]] = loop.create_future()
        self._queue.put((session, cmds, fut, loop))
        return fut

    def stop(self) -> None:
        self._queue.put(None)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            stop = False
            while len(jobs) < MAX_JOBS:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                jobs.append(nxt)
            self._execute(jobs)
            if stop:
                return

    def _execute(self, jobs: list[_Job]) -> None:
        results: list[Any]
        try:
            results = execute_jobs(self.db, [(s, cmds) for s, cmds, _, _ in jobs])
        except Exception as exc:  # the commit itself failed: nothing may be acknowledged
            log.exception("commit failed; closing %d connection(s)", len(jobs))
            results = [exc] * len(jobs)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any]]] = {}
        for (_, _, fut, loop), res in zip(jobs, results, strict=True):
            by_loop.setdefault(loop, []).append((fut, res))
        for loop, pairs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                loop.call_soon_threadsafe(_resolve, pairs)


def _resolve(pairs: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for fut, res in pairs:
        if fut.done():
            continue
        if isinstance(res, BaseException):
            fut.set_exception(res)
        else:
            fut.set_result(res)


def _addr(info: Any) -> str:
    if isinstance(info, tuple) and len(info) >= 2:
        return f"{info[0]}:{info[1]}"
    return str(info or "")


async def _serve_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        state: ServerState, engine: EngineThread) -> None:
    session = Session(state, _addr(writer.get_extra_info("peername")),
                      _addr(writer.get_extra_info("sockname")))
    parser = RequestParser()
    try:
        while True:
            data = await reader.read(READ_BYTES)
            if not data:
                break
            cmds, error = parser.feed(data)
            if cmds:
                out, close = await engine.submit(session, cmds)
                if out:
                    writer.write(out)
                if close:
                    break
            if error is not None:
                writer.write(error_line(f"ERR Protocol error: {error}"))
                break
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    except Exception:
        log.exception("connection %s failed", session.peer)
    finally:
        session.close()
        writer.close()  # sends what is buffered, then closes
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def serve_resp(db: Database, host: str, port: int, *,
                     password: str | None = None) -> asyncio.Server:
    """Starts the Redis-protocol server on ``host:port`` (0 = any free port).

    Args:
        db: the open database; commands run in one thread of this server.
        password: if given, clients must AUTH (or HELLO … AUTH default <password>).

    Returns:
        The listening server. ``close()`` stops listening, disconnects every client and
        stops the engine thread; then ``await server.wait_closed()``.
    """
    state = ServerState(db, password=password, host=host, port=port)
    engine = EngineThread(db)
    writers: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        try:
            await _serve_client(reader, writer, state, engine)
        finally:
            writers.discard(writer)

    server = await asyncio.start_server(handle, host, port, limit=STREAM_LIMIT)
    state.port = server.sockets[0].getsockname()[1]
    listen_close = server.close

    def close() -> None:
        listen_close()
        for w in list(writers):
            w.close()
        engine.stop()

    server.close = close  # type: ignore[method-assign]
    return server
