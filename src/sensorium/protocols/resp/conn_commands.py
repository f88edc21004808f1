"""Connection commands: PING, ECHO, HELLO, AUTH, SELECT, CLIENT, QUIT, RESET, MULTI/EXEC.

Texts of replies and errors are Redis 7's, so that clients (redis-py sends ``HELLO 3``,
``CLIENT SETINFO LIB-NAME …`` and ``MULTI``/``EXEC`` around transactional pipelines) and
people reading them see what they know.
"""

from __future__ import annotations

import hmac
import time
from typing import TYPE_CHECKING, Any

from .codec import OK, Error, Raw, Simple, Verbatim
from .errors import CommandError, syntax_error, wrong_arity
from .registry import command
from .ts_args import parse_int

if TYPE_CHECKING:
    from .session import Session

SERVER_NAME = "sensorium"
REDIS_VERSION = "7.2.0"  # the Redis command set and replies we follow
MODULE = {"name": "timeseries", "ver": 11214, "path": "", "args": []}  # RedisTimeSeries 1.12.14
_WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."


@command("PING", -1, flags=("fast",), group="connection",
         summary="Returns the server's liveliness response")
def ping(s: Session, args: list[str]) -> Any:
    if len(args) > 2:
        raise wrong_arity("ping")
    return Simple("PONG") if len(args) == 1 else args[1]


@command("ECHO", 2, flags=("fast",), group="connection", summary="Returns the given string")
def echo(s: Session, args: list[str]) -> Any:
    return args[1]


def _check_password(s: Session, user: str, password: str) -> None:
    expected = s.server.password
    if expected is None:
        if user == "default":
            return  # Redis' default user has nopass
        raise CommandError(_WRONGPASS)
    if user != "default" or not hmac.compare_digest(password.encode("utf-8", "surrogateescape"),
                                                     expected.encode()):
        raise CommandError(_WRONGPASS)


@command("AUTH", -2, flags=("noscript", "loading", "stale", "fast", "no_auth"),
         group="connection", summary="Authenticates the connection")
def auth(s: Session, args: list[str]) -> Any:
    if len(args) > 3:
        raise syntax_error()
    if s.server.password is None and len(args) == 2:
        raise CommandError("ERR AUTH <password> called without any password configured for "
                           "the default user. Are you sure your configuration is correct?")
    user, password = ("default", args[1]) if len(args) == 2 else (args[1], args[2])
    _check_password(s, user, password)
    s.authenticated = True
    return OK


def _check_name(name: str) -> None:
    if any(c <= " " or c > "~" for c in name):
        raise CommandError("ERR Client names cannot contain spaces, newlines or special "
                           "characters.")


@command("HELLO", -1, flags=("noscript", "loading", "stale", "fast", "no_auth"),
         group="connection", summary="Handshakes with the server")
def hello(s: Session, args: list[str]) -> Any:
    proto = s.proto
    if len(args) >= 2:
        ver = parse_int(args[1])
        if ver is None:
            raise CommandError("ERR Protocol version is not an integer or out of range")
        if ver not in (2, 3):
            raise CommandError("NOPROTO unsupported protocol version")
        proto = ver
    creds: tuple[str, str] | None = None
    name: str | None = None
    i = 2
    while i < len(args):
        opt = args[i].upper()
        if opt == "AUTH" and i + 2 < len(args):
            creds = (args[i + 1], args[i + 2])
            i += 3
        elif opt == "SETNAME" and i + 1 < len(args):
            name = args[i + 1]
            i += 2
        else:
            raise CommandError(f"ERR Syntax error in HELLO option '{args[i]}'")
    if creds is not None:
        _check_password(s, *creds)
        s.authenticated = True
    if not s.authenticated:
        raise CommandError(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
            "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
            "select the RESP protocol version at the same time")
    if name is not None:
        _check_name(name)
        s.name = name or None
    s.proto = proto
    return {"server": SERVER_NAME, "version": REDIS_VERSION, "proto": proto, "id": s.id,
            "mode": "standalone", "role": "master", "modules": [dict(MODULE)]}


@command("SELECT", 2, flags=("loading", "stale", "fast"), group="connection",
         summary="Changes the selected database (only database 0 exists)")
def select(s: Session, args: list[str]) -> Any:
    db = parse_int(args[1])
    if db is None:
        raise CommandError("ERR value is not an integer or out of range")
    if db != 0:
        raise CommandError("ERR DB index is out of range")
    return OK


@command("QUIT", -1, flags=("noscript", "loading", "stale", "fast", "no_auth"),
         group="connection", summary="Closes the connection")
def quit_(s: Session, args: list[str]) -> Any:
    s.closing = True
    return OK


@command("RESET", 1, flags=("noscript", "loading", "stale", "fast", "no_auth"),
         group="connection", summary="Resets the connection")
def reset(s: Session, args: list[str]) -> Any:
    s.multi, s.multi_dirty = None, False
    s.proto = 2
    s.name = None
    s.authenticated = s.server.password is None
    return Simple("RESET")


@command("MULTI", 1, flags=("noscript", "loading", "stale", "fast", "allow_busy"),
         group="transactions", summary="Starts a transaction")
def multi(s: Session, args: list[str]) -> Any:
    s.begin_multi()
    return OK


@command("EXEC", 1, flags=("noscript", "loading", "stale", "skip_slowlog"),
         group="transactions", summary="Executes all commands in a transaction")
def exec_(s: Session, args: list[str]) -> Any:
    return Raw(s.exec())


@command("DISCARD", 1, flags=("noscript", "loading", "stale", "fast", "allow_busy"),
         group="transactions", summary="Discards a transaction")
def discard(s: Session, args: list[str]) -> Any:
    s.discard()
    return OK


# -- CLIENT -----------------------------------------------------------------------------------
def client_line(c: Session) -> str:
    now = time.time()
    multi = -1 if c.multi is None else len(c.multi)
    return (f"id={c.id} addr={c.peer} laddr={c.local} fd=-1 name={c.name or ''} "
            f"age={int(now - c.created)} idle={int(now - c.last_active)} flags=N db=0 sub=0 "
            f"psub=0 ssub=0 multi={multi} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 "
            f"rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={c.last_command} user=default "
            f"redir=-1 resp={c.proto} lib-name={c.lib_name} lib-ver={c.lib_ver}")


_CLIENT_HELP = [
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME", "    Return the name of the current connection.",
    "ID", "    Return the ID of the current connection.",
    "INFO", "    Return information about the current client connection.",
    "LIST", "    Return information about client connections.",
    "SETINFO <option> <value>", "    Set client meta attr (LIB-NAME or LIB-VER).",
    "SETNAME <name>", "    Assign the name <name> to the current connection.",
    "HELP", "    Print this help.",
]


@command("CLIENT", -2, flags=("noscript", "loading", "stale"), group="connection",
         summary="A container for client connection commands")
def client(s: Session, args: list[str]) -> Any:
    sub = args[1].upper()
    n = len(args)
    if sub == "ID" and n == 2:
        return s.id
    if sub == "GETNAME" and n == 2:
        return s.name
    if sub == "SETNAME" and n == 3:
        _check_name(args[2])
        s.name = args[2] or None
        return OK
    if sub == "INFO" and n == 2:
        return Verbatim(client_line(s) + "\n")
    if sub == "LIST":
        return Verbatim("".join(client_line(c) + "\n" for c in s.server.clients.values()))
    if sub == "SETINFO" and n == 4:
        attr = args[2].upper()
        if attr == "LIB-NAME":
            _check_name(args[3])
            s.lib_name = args[3]
        elif attr == "LIB-VER":
            _check_name(args[3])
            s.lib_ver = args[3]
        else:
            raise CommandError(f"ERR Unrecognized option '{args[2]}'")
        return OK
    if sub in ("NO-EVICT", "NO-TOUCH") and n == 3:
        if args[2].upper() not in ("ON", "OFF"):
            raise syntax_error()
        return OK
    if sub == "HELP" and n == 2:
        return [Simple(line) for line in _CLIENT_HELP]
    if sub in ("ID", "GETNAME", "SETNAME", "INFO", "SETINFO", "NO-EVICT", "NO-TOUCH", "HELP"):
        raise CommandError(f"ERR wrong number of arguments for 'client|{sub.lower()}' command")
    return Error(f"ERR unknown subcommand '{args[1]}'. Try CLIENT HELP.")
