"""One client connection's state and command execution, sans-IO.

``Session.execute(commands)`` runs parsed commands in order and returns the encoded replies:
authentication, protocol version (HELLO 2/3), MULTI/EXEC queueing, dispatch through the
command table, and the batched ingest path (runs of plain ``TS.ADD``/``TS.MADD``, which the
parser may already deliver as columns, ``frames.Writes``, become one columnar engine call,
see ``ingest.py``). ``execute_jobs`` runs the commands of several
connections in one durable commit (group commit); the transport calls it from its single
engine thread.

Not thread-safe: a session is used by one thread at a time.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

# The command modules register their handlers when imported.
from . import conn_commands, info_commands, ingest, key_commands, ts_read, ts_write  # noqa: F401
from .codec import (
    QUEUED,
    Command,
    Error,
    ProtocolError,
    Request,
    args,
    check_args,
    encode,
    error_line,
)
from .errors import CommandError, resp_error
from .frames import Writes
from .registry import lookup

if TYPE_CHECKING:
    from ...database import Database

# Commands that run at once inside MULTI instead of being queued (Redis' processCommand).
_MULTI_CONTROL = frozenset({b"exec", b"discard", b"multi", b"quit", b"reset", b"watch"})
# Commands a client may send before AUTH.
_NO_AUTH = frozenset({"auth", "hello", "quit", "reset"})


class ServerState:
    """What the connections of one server share: database, password, the client list."""

    def __init__(self, db: Database, *, password: str | None = None, host: str = "",
                 port: int = 0) -> None:
        self.db = db
        self.password = password
        self.host, self.port = host, port
        self.started = time.time()
        self.clients: dict[int, Session] = {}
        self.commands_processed = 0
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)


class Session:
    """A client connection's state. ``peer``/``local`` are ``host:port`` for CLIENT INFO."""

    def __init__(self, server: ServerState, peer: str = "", local: str = "") -> None:
        self.server = server
        self.db = server.db
        self.id = server.next_id()
        self.peer, self.local = peer, local
        self.proto = 2
        self.name: str | None = None
        self.lib_name = self.lib_ver = ""
        self.authenticated = server.password is None
        self.multi: list[Command] | None = None
        self.multi_dirty = False
        self.closing = False
        self.created = self.last_active = time.time()
        self.last_command = "NULL"
        server.clients[self.id] = self

    def close(self) -> None:
        self.server.clients.pop(self.id, None)

    # -- execution --------------------------------------------------------------------------
    def execute(self, cmds: list[Request]) -> tuple[bytes, bool]:
        """Runs ``cmds``; returns the replies and whether the connection must now close."""
        out: list[bytes] = []
        try:
            self._run(cmds, out)
        except ProtocolError as exc:
            out.append(error_line(f"ERR Protocol error: {exc}"))
            self.closing = True
        self.last_active = time.time()
        return b"".join(out), self.closing

    def leading_writes(self, cmds: list[Request]) -> tuple[list[Writes], int]:
        """The writes at the start of ``cmds`` that can join a shared ingest batch, and the
        index after them."""
        if not self.authenticated or self.multi is not None:
            return [], 0
        return ingest.collect(cmds)

    def _run(self, cmds: list[Request], out: list[bytes]) -> None:
        i, n = 0, len(cmds)
        while i < n and not self.closing:
            cmd = cmds[i]
            if type(cmd) is Writes and (self.multi is not None or not self.authenticated):
                cmds = [*cmds[:i], *cmd.commands(), *cmds[i + 1 :]]  # one by one: QUEUED…
                n = len(cmds)
                continue
            if self.multi is not None and (type(cmd[0]) is not bytes  # type: ignore[index]
                                           or cmd[0].lower() not in _MULTI_CONTROL):
                self.server.commands_processed += 1
                out.append(self._queue(cmd))  # type: ignore[arg-type]
                i += 1
                continue
            if self.authenticated:
                parts, j = ingest.collect(cmds, i)
                if parts:
                    self.server.commands_processed += sum(w.n_cmds for w in parts)
                    out.append(ingest.run_many(self.db, [parts])[0])
                    i = j
                    continue
            self.server.commands_processed += 1
            out.append(self.call(cmd))  # type: ignore[arg-type]
            i += 1

    def call(self, cmd: Command) -> bytes:
        """Executes one command (no batching) and returns its encoded reply."""
        return encode(self.reply(cmd), self.proto)

    def reply(self, raw: Command) -> Any:
        check_args(raw)
        cmd = args(raw)
        self.last_command = cmd[0].lower()
        spec = lookup(cmd[0])
        if spec is None:
            return unknown_command(cmd)
        if not self.authenticated and spec.name not in _NO_AUTH:
            return Error("NOAUTH Authentication required.")
        if not spec.arity_ok(len(cmd)):
            return Error(f"ERR wrong number of arguments for '{spec.name}' command")
        try:
            return spec.handler(self, cmd)
        except Exception as exc:
            return resp_error(exc)

    # -- transactions -----------------------------------------------------------------------
    def _queue(self, raw: Command) -> bytes:
        check_args(raw)
        cmd = args(raw)
        spec = lookup(cmd[0])
        error: Error | None = None
        if spec is None:
            error = unknown_command(cmd)
        elif not self.authenticated:
            error = Error("NOAUTH Authentication required.")
        elif not spec.arity_ok(len(cmd)):
            error = Error(f"ERR wrong number of arguments for '{spec.name}' command")
        if error is not None:
            self.multi_dirty = True
            return encode(error, self.proto)
        assert self.multi is not None
        self.multi.append(raw)
        return encode(QUEUED, self.proto)

    def begin_multi(self) -> None:
        if self.multi is not None:
            raise CommandError("ERR MULTI calls can not be nested")
        self.multi, self.multi_dirty = [], False

    def discard(self) -> None:
        if self.multi is None:
            raise CommandError("ERR DISCARD without MULTI")
        self.multi, self.multi_dirty = None, False

    def exec(self) -> bytes:
        """EXEC: the queued commands run atomically (engine lock held) in one commit."""
        if self.multi is None:
            raise CommandError("ERR EXEC without MULTI")
        queued, dirty = self.multi, self.multi_dirty
        self.multi, self.multi_dirty = None, False
        if dirty:
            raise CommandError("EXECABORT Transaction discarded because of previous errors.")
        out: list[bytes] = [b"*%d\r\n" % len(queued)]
        with commit(self.db):
            self._run(queued, out)
        return b"".join(out)


@contextlib.contextmanager
def commit(db: Database) -> Iterator[None]:
    """One durable commit around several writes (``Database.batch`` when it exists)."""
    batch = getattr(db, "batch", None)
    if batch is None:
        with db.engine.lock:
            yield
    else:
        with batch():
            yield


def unknown_command(cmd: list[str]) -> Error:
    """Redis' text: ``ERR unknown command 'FOO', with args beginning with: 'a' 'b' ``."""
    args = ""
    for arg in cmd[1:]:
        if len(args) >= 128:
            break
        args += f"'{arg[: 128 - len(args)]}' "
    return Error(f"ERR unknown command '{cmd[0][:128]}', with args beginning with: {args}")


def execute_jobs(db: Database, jobs: list[tuple[Session, list[Request]]]
                 ) -> list[tuple[bytes, bool]]:
    """Runs several connections' commands in one commit; returns each one's replies.

    The leading run of plain writes of every job is merged into one columnar engine call;
    the rest of each job then runs in order. Any interleaving of different connections is
    valid, and each connection's own order is kept. Replies are returned only after the
    commit is durable.
    """
    results: list[tuple[bytes, bool]] = []
    with commit(db):
        leads = [s.leading_writes(cmds) for s, cmds in jobs]
        runs = [parts for parts, _ in leads]
        blobs = ingest.run_many(db, runs) if any(runs) else [b""] * len(jobs)
        for (session, cmds), (parts, j), blob in zip(jobs, leads, blobs, strict=True):
            session.server.commands_processed += sum(w.n_cmds for w in parts)
            rest, close = session.execute(cmds[j:])
            results.append((blob + rest, close))
    return results
