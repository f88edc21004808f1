"""Composition root of ``sensorium serve``: one Database, every front end, one asyncio loop.

Startup: open the database (replaying its log), bind the HTTP socket, start uvicorn and the
RESP server on the same loop, then print the listening addresses and ``ready``. SIGTERM or
SIGINT stops accepting, lets in-flight requests finish, closes the RESP server, then closes
the database (a checkpoint: memory to blocks, log truncated). Acknowledged writes are durable
before that anyway (write-ahead log), so ``kill -9`` loses nothing acknowledged either.

Nothing imports this module but ``cli.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from . import open as open_database
from .config import DatabaseOptions
from .database import Database
from .engine.policies import parse_policy
from .errors import SensoriumError
from .model import DuplicatePolicy
from .protocols.http.app import HttpOptions, create_app
from .protocols.http.body import DEFAULT_MAX_BODY_BYTES
from .protocols.mqtt.options import MqttOptions, mqtt_options
from .protocols.resp.server import serve_resp

log = logging.getLogger("sensorium.server")

DEFAULT_HTTP_PORT = 8080  # not InfluxDB's 8086, so both can run side by side
DEFAULT_RESP_PORT = 6380  # not Redis' 6379, for the same reason
GRACEFUL_SHUTDOWN_S = 10.0  # in-flight HTTP requests get this long after SIGTERM
RESP_CLOSE_WAIT_S = 2.0  # RESP connections are long-lived: do not wait for clients to leave


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """Everything ``sensorium serve`` needs; built once by ``cli.py`` (flags over config file).

    Attributes:
        data_dir: the database directory (created if missing).
        host: the address both servers bind.
        http_port, resp_port: 0 picks a free port; ``resp_port=None`` disables RESP.
        token: when set, required by HTTP (see ``protocols/http/auth.py``) and by RESP (AUTH).
        max_body_bytes: largest HTTP request body.
        database: the engine's options.
        policies: tier policies (``[[policies]]`` tables, see ``engine/policies.py``), set
            in this order at startup; a policy the database already holds unchanged is left.
        mqtt: the MQTT subscriber (``[mqtt]`` table, docs/protocols/mqtt.md); None: off.
    """

    data_dir: str = "./sensorium-data"
    host: str = "127.0.0.1"
    http_port: int = DEFAULT_HTTP_PORT
    resp_port: int | None = DEFAULT_RESP_PORT
    token: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    database: DatabaseOptions = field(default_factory=DatabaseOptions)
    policies: tuple[dict[str, Any], ...] = ()
    mqtt: MqttOptions | None = None


_SERVER_KEYS = ("data_dir", "host", "http_port", "resp_port", "token", "max_body_bytes")


def load_config(path: str) -> ServerOptions:
    """Reads a TOML file: top-level ``[server]`` keys (see ``ServerOptions``) and a
    ``[database]`` table of ``DatabaseOptions`` fields. ``resp_port = false`` disables RESP.
    An ``[mqtt]`` table turns the MQTT subscriber on (``protocols/mqtt/options.py``).

    Raises:
        ValueError: an unknown table or key, or a value of the wrong kind (the message names it).
    """
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    unknown = set(doc) - {"server", "database", "policies", "mqtt"}
    if unknown:
        raise ValueError(f"{path}: unknown table(s) {sorted(unknown)} "
                         "(use [server], [database], [[policies]], [mqtt])")
    policies = doc.get("policies", [])
    if not isinstance(policies, list) or not all(isinstance(p, dict) for p in policies):
        raise ValueError(f"{path}: policies must be an array of tables ([[policies]])")
    for i, policy in enumerate(policies):
        try:
            parse_policy(policy)
        except SensoriumError as exc:
            raise ValueError(f"{path}: [[policies]] #{i + 1}: {exc}") from None
    server = dict(doc.get("server", {}))
    bad = set(server) - set(_SERVER_KEYS)
    if bad:
        raise ValueError(f"{path}: unknown [server] key(s) {sorted(bad)}; known: {_SERVER_KEYS}")
    if server.get("resp_port") is False:
        server["resp_port"] = None
    mqtt = mqtt_options(doc["mqtt"], path) if "mqtt" in doc else None
    return ServerOptions(**server, database=database_options(doc.get("database", {}), path),
                         policies=tuple(policies), mqtt=mqtt)


def database_options(table: dict[str, Any], where: str = "config") -> DatabaseOptions:
    """A ``[database]`` table → ``DatabaseOptions`` (policy names become ``DuplicatePolicy``)."""
    known = {f.name for f in dataclasses.fields(DatabaseOptions)}
    bad = set(table) - known
    if bad:
        raise ValueError(f"{where}: unknown [database] key(s) {sorted(bad)}; known: "
                         f"{sorted(known)}")
    table = dict(table)
    defaults = DatabaseOptions()
    for name, value in table.items():
        want = type(getattr(defaults, name))
        if want is DuplicatePolicy:
            table[name] = DuplicatePolicy.parse(value)
        elif not _fits(value, want):
            raise ValueError(f"{where}: [database] {name} must be a {want.__name__}, "
                             f"not {value!r}")
    return DatabaseOptions(**table)


def _fits(value: object, want: type) -> bool:
    """TOML value of the option's type (an int where a float is wanted; bool is no int)."""
    if isinstance(value, bool) or want is bool:
        return isinstance(value, bool) and want is bool
    if want is float:
        return isinstance(value, int | float)
    return isinstance(value, want)


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: ``serve`` owns SIGTERM/SIGINT for all servers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048)
    # Accepted connections inherit it: without, a keep-alive reply whose body is written
    # after its headers waits ~40 ms for the client's delayed ACK (Nagle).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _url(scheme: str, host: str, port: int) -> str:
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


async def serve(db: Database, options: ServerOptions,
                announce: Callable[[str], None] = print) -> None:
    """Serves ``db`` until SIGTERM/SIGINT; the caller closes ``db`` afterwards."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    app = create_app(db, HttpOptions(token=options.token,
                                     max_body_bytes=options.max_body_bytes))
    sock = _bind(options.host, options.http_port)
    http = _Uvicorn(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                   timeout_graceful_shutdown=int(GRACEFUL_SHUTDOWN_S),
                                   server_header=False))
    http_task = asyncio.create_task(http.serve(sockets=[sock]))
    while not http.started and not http_task.done():
        await asyncio.sleep(0.01)
    if http_task.done():
        await http_task  # startup failed: raise its error
        raise RuntimeError("the HTTP server stopped during startup")
    resp = mqtt = None
    try:
        mqtt = _start_mqtt(db, options, app)
        http_port = sock.getsockname()[1]
        announce(f"http {_url('http', options.host, http_port)} (API docs at /docs)")
        if options.resp_port is not None:
            resp = await serve_resp(db, options.host, options.resp_port, password=options.token)
            resp_port = resp.sockets[0].getsockname()[1]
            announce(f"resp {_url('redis', options.host, resp_port)}")
        if mqtt is not None:
            announce(f"mqtt {mqtt.options.host}:{mqtt.options.port} "
                     f"({', '.join(s.topic_filter for s in mqtt.options.subscriptions)})")
        announce("ready")
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({stopped, http_task}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
    finally:
        log.info("shutting down")
        if mqtt is not None:  # written and acknowledged before the database closes
            await asyncio.to_thread(mqtt.stop)
        if resp is not None:
            resp.close()
            with contextlib.suppress(asyncio.TimeoutError):  # idle clients may hold on
                await asyncio.wait_for(resp.wait_closed(), RESP_CLOSE_WAIT_S)
        http.should_exit = True
        await http_task
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def apply_policies(db: Database, docs: tuple[dict[str, Any], ...]) -> None:
    """Sets the config file's policies; one the database holds unchanged is skipped."""
    held = {p["name"]: p for p in db.policies()}
    for doc in docs:
        wanted = parse_policy(doc).to_json()
        if held.get(wanted["name"]) == wanted:
            continue
        log.info("applying tier policy %s", wanted["name"])
        applied = db.set_policy(doc, progress=lambda done, total, name=wanted["name"]: log.info(
            "policy %s: %d of %d series", name, done, total))
        log.info("policy %s: %s", wanted["name"], applied)


def _start_mqtt(db: Database, options: ServerOptions, app: Any) -> Any:
    """Starts the MQTT subscriber when configured and mounts ``GET /api/mqtt``."""
    if options.mqtt is None:
        return None
    from .protocols.mqtt import status
    from .protocols.mqtt.subscriber import Subscriber

    subscriber = Subscriber(db, options.mqtt)
    app.include_router(status.router(subscriber))
    subscriber.start()
    return subscriber


def run(options: ServerOptions) -> None:
    """Opens the database, serves until a signal, closes (checkpoints) the database."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def announce(line: str) -> None:
        print(line, flush=True)

    # NOTE(http): the default asyncio loop, not uvloop: the RESP server replaces
    # ``Server.close`` on the server object, which uvloop's Server does not allow.
    db = open_database(options.data_dir, options.database)
    try:
        apply_policies(db, options.policies)
        announce(f"sensorium serving {options.data_dir} ({len(db.keys())} series)")
        with asyncio.Runner() as runner:
            runner.run(serve(db, options, announce))
    finally:
        db.close()
        announce("stopped")
