"""Introspection: COMMAND (COUNT/INFO/DOCS/LIST), INFO, MODULE LIST, CONFIG GET, TIME."""

from __future__ import annotations

import os
import platform
import time
from typing import TYPE_CHECKING, Any

from .codec import Error, RespSet, Simple, Verbatim
from .conn_commands import MODULE, REDIS_VERSION
from .errors import CommandError, wrong_arity
from .registry import COMMANDS, CommandSpec, command, lookup

if TYPE_CHECKING:
    from .session import Session


def _entry(spec: CommandSpec) -> list[Any]:
    """A ``COMMAND INFO`` entry, Redis 7's ten fields."""
    return [spec.name, spec.arity, RespSet([Simple(f) for f in spec.flags]), spec.first_key,
            spec.last_key, spec.step, RespSet([Simple(f"@{spec.group}")]), [], [], []]


def _docs(spec: CommandSpec) -> dict[str, Any]:
    return {"summary": spec.summary, "since": "1.0.0", "group": spec.group, "arguments": []}


@command("COMMAND", -1, flags=("loading", "stale"), group="server",
         summary="Returns detailed information about all commands")
def command_(s: Session, args: list[str]) -> Any:
    if len(args) == 1:
        return [_entry(spec) for spec in COMMANDS.values()]
    sub = args[1].upper()
    if sub == "COUNT":
        if len(args) != 2:
            raise CommandError("ERR wrong number of arguments for 'command|count' command")
        return len(COMMANDS)
    if sub == "INFO":
        names = args[2:] or list(COMMANDS)
        return [None if (spec := lookup(n)) is None else _entry(spec) for n in names]
    if sub == "DOCS":
        names = args[2:] or list(COMMANDS)
        return {spec.name: _docs(spec) for n in names if (spec := lookup(n)) is not None}
    if sub == "LIST":
        return list(COMMANDS)
    return Error(f"ERR unknown subcommand '{args[1]}'. Try COMMAND HELP.")


def _sections(s: Session) -> dict[str, list[tuple[str, Any]]]:
    srv = s.server
    uptime = int(time.time() - srv.started)
    return {
        "server": [("redis_version", REDIS_VERSION), ("sensorium", "1"),
                   ("redis_mode", "standalone"),
                   ("os", f"{platform.system()} {platform.release()} {platform.machine()}"),
                   ("arch_bits", 64), ("process_id", os.getpid()), ("tcp_port", srv.port),
                   ("uptime_in_seconds", uptime), ("uptime_in_days", uptime // 86400)],
        "clients": [("connected_clients", len(srv.clients))],
        "persistence": [("loading", 0)],
        "stats": [("total_commands_processed", srv.commands_processed)],
        "replication": [("role", "master"), ("connected_slaves", 0)],
        "modules": [("module", ",".join(f"{k}={v}" for k, v in (
            ("name", MODULE["name"]), ("ver", MODULE["ver"]), ("api", 1), ("filters", 0),
            ("usedby", "[]"), ("using", "[]"), ("options", "[]"))))],
        "keyspace": [("db0", f"keys={len(s.db.keys())},expires=0,avg_ttl=0")],
    }


@command("INFO", -1, flags=("loading", "stale"), group="server",
         summary="Returns information and statistics about the server")
def info(s: Session, args: list[str]) -> Any:
    sections = _sections(s)
    wanted = {a.lower() for a in args[1:]} or {"default"}
    if wanted & {"all", "everything", "default"}:
        wanted = set(sections)
    parts = []
    for name, fields in sections.items():
        if name in wanted:
            body = "".join(f"{k}:{v}\r\n" for k, v in fields)
            parts.append(f"# {name.capitalize()}\r\n{body}")
    return Verbatim("\r\n".join(parts))


@command("MODULE", -2, flags=("admin", "noscript"), group="server",
         summary="A container for module commands (LIST)")
def module(s: Session, args: list[str]) -> Any:
    if args[1].upper() == "LIST":
        if len(args) != 2:
            raise wrong_arity("module|list")
        return [dict(MODULE)]
    return Error(f"ERR unknown subcommand '{args[1]}'. Try MODULE HELP.")


_CONFIG = {"databases": "1", "save": "", "appendonly": "no", "timeout": "0"}


@command("CONFIG", -2, flags=("admin", "noscript", "loading", "stale"), group="server",
         summary="A container for server configuration commands (GET)")
def config(s: Session, args: list[str]) -> Any:
    if args[1].upper() == "GET":
        if len(args) < 3:
            raise wrong_arity("config|get")
        from .key_commands import glob_to_regex
        found: dict[str, str] = {}
        for pattern in args[2:]:
            match = glob_to_regex(pattern.lower()).fullmatch
            found.update((k, v) for k, v in _CONFIG.items() if match(k))
        return found
    return Error(f"ERR unknown subcommand '{args[1]}'. Try CONFIG HELP.")


@command("TIME", 1, flags=("loading", "stale", "fast"), group="server",
         summary="Returns the server time")
def time_(s: Session, args: list[str]) -> Any:
    now = time.time()
    return [str(int(now)), str(int((now % 1) * 1_000_000))]
