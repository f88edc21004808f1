"""Generic key commands on series keys: DEL, UNLINK, EXISTS, KEYS, SCAN, TYPE, DBSIZE, FLUSH*.

Every key is a series (``TYPE`` answers ``TSDB-TYPE``, RedisTimeSeries' module type name).
Patterns follow Redis' glob (``stringmatchlen``): ``*``, ``?``, ``[abc]``, ``[^a]``,
``[a-z]`` and ``\\`` escapes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ...errors import SeriesNotFound
from .codec import OK, Simple
from .errors import CommandError, syntax_error
from .registry import command
from .ts_args import parse_int

if TYPE_CHECKING:
    from .session import Session

_KS = "keyspace"


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Redis glob → an anchored regex (``fullmatch``)."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            j = i + 1
            negate = j < n and pattern[j] == "^"
            if negate:
                j += 1
            items: list[str] = []
            while j < n and pattern[j] != "]":
                if pattern[j] == "\\" and j + 1 < n:
                    j += 1
                    items.append(re.escape(pattern[j]))
                elif j + 2 < n and pattern[j + 1] == "-" and pattern[j + 2] != "]":
                    lo, hi = sorted((pattern[j], pattern[j + 2]))
                    items.append(f"{re.escape(lo)}-{re.escape(hi)}")
                    j += 2
                else:
                    items.append(re.escape(pattern[j]))
                j += 1
            if j >= n:  # no closing bracket: the rest is taken literally
                out.append(re.escape(pattern[i:]))
                break
            body = "".join(items)
            out.append(f"[{'^' if negate else ''}{body}]" if body else ("." if negate else "(?!)"))
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _delete(s: Session, keys: list[str]) -> int:
    count = 0
    for key in dict.fromkeys(keys):
        try:
            s.db.delete_series(key)
            count += 1
        except SeriesNotFound:
            pass
    return count


@command("DEL", -2, flags=("write",), keys=(1, -1, 1), group=_KS, summary="Deletes keys")
def del_(s: Session, args: list[str]) -> Any:
    return _delete(s, args[1:])


@command("UNLINK", -2, flags=("write", "fast"), keys=(1, -1, 1), group=_KS,
         summary="Deletes keys")
def unlink(s: Session, args: list[str]) -> Any:
    return _delete(s, args[1:])


@command("EXISTS", -2, flags=("readonly", "fast"), keys=(1, -1, 1), group=_KS,
         summary="Determines whether one or more keys exist")
def exists(s: Session, args: list[str]) -> Any:
    return sum(1 for key in args[1:] if s.db.exists(key))


@command("KEYS", 2, flags=("readonly",), group=_KS,
         summary="Returns all key names that match a pattern")
def keys(s: Session, args: list[str]) -> Any:
    if args[1] == "*":
        return s.db.keys()
    match = glob_to_regex(args[1]).fullmatch
    return [k for k in s.db.keys() if match(k)]


@command("SCAN", -2, flags=("readonly",), group=_KS,
         summary="Iterates over the key names (one step: the cursor is always 0)")
def scan(s: Session, args: list[str]) -> Any:
    if parse_int(args[1]) is None:
        raise CommandError("ERR invalid cursor")
    pattern, kind = None, None
    i = 2
    while i < len(args):
        opt = args[i].upper()
        if i + 1 >= len(args):
            raise syntax_error()
        if opt == "MATCH":
            pattern = args[i + 1]
        elif opt == "COUNT":
            count = parse_int(args[i + 1])
            if count is None:
                raise CommandError("ERR value is not an integer or out of range")
            if count < 1:
                raise syntax_error()
        elif opt == "TYPE":
            kind = args[i + 1]
        else:
            raise syntax_error()
        i += 2
    found = s.db.keys()
    if kind is not None and kind.lower() != "tsdb-type":
        found = []
    if pattern is not None and pattern != "*":
        match = glob_to_regex(pattern).fullmatch
        found = [k for k in found if match(k)]
    return ["0", found]


@command("TYPE", 2, flags=("readonly", "fast"), keys=(1, 1, 1), group=_KS,
         summary="Determines the type of value stored at a key")
def type_(s: Session, args: list[str]) -> Any:
    return Simple("TSDB-TYPE" if s.db.exists(args[1]) else "none")


@command("DBSIZE", 1, flags=("readonly", "fast"), group="server",
         summary="Returns the number of keys in the database")
def dbsize(s: Session, args: list[str]) -> Any:
    return len(s.db.keys())


def _flush(s: Session, args: list[str]) -> Any:
    if len(args) > 2 or (len(args) == 2 and args[1].upper() not in ("ASYNC", "SYNC")):
        raise syntax_error()
    _delete(s, s.db.keys())
    return OK


@command("FLUSHALL", -1, flags=("write",), group="server",
         summary="Removes all series (every sample, rule and label)")
def flushall(s: Session, args: list[str]) -> Any:
    return _flush(s, args)


@command("FLUSHDB", -1, flags=("write",), group="server",
         summary="Removes all series (there is one database)")
def flushdb(s: Session, args: list[str]) -> Any:
    return _flush(s, args)
