"""TS.* commands that change series: argument parsing → one ``Database`` call → reply.

Plain ``TS.ADD key ts value`` and ``TS.MADD`` usually never get here: the session batches
them through ``ingest.py``. These handlers are the one-command path (TS.ADD with options,
IGNORE filters, …) and the reference for the batched path's semantics.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ...errors import InvalidArgument, InvalidSampleError, RuleError
from ...model import parse_aggregator
from .codec import OK, Error, encode
from .errors import resp_error
from .numbers import parse_timestamp, parse_value
from .registry import command
from .ts_args import bound, duplicate_policy, find, parse_int, series_options

if TYPE_CHECKING:
    from ...database import Database
    from .session import Session

_G = "timeseries"
_W = ("write", "denyoom", "module")


def _now_ms() -> int:
    return int(time.time() * 1000)


@command("TS.CREATE", -2, flags=_W, keys=(1, 1, 1), group=_G, summary="Create a new time series")
def ts_create(s: Session, args: list[str]) -> Any:
    s.db.create(args[1], **series_options(args, 2))
    return OK


@command("TS.ALTER", -2, flags=_W, keys=(1, 1, 1), group=_G,
         summary="Update the retention, chunk size, duplicate policy, and labels of a series")
def ts_alter(s: Session, args: list[str]) -> Any:
    s.db.alter(args[1], **series_options(args, 2, alter=True))
    return OK


def add(db: Database, args: list[str]) -> int:
    """TS.ADD: value, then timestamp, then (if the key is new) the creation options."""
    value = parse_value(args[3])
    ts = parse_timestamp(args[2], _now_ms())
    key = args[1]
    with db.engine.lock:
        if db.exists(key):
            return db.add(key, ts, value,
                          on_duplicate=duplicate_policy(args, "ON_DUPLICATE", 4))
        return db.add(key, ts, value, **series_options(args, 4))


@command("TS.ADD", -4, flags=_W, keys=(1, 1, 1), group=_G,
         summary="Append a sample to a time series")
def ts_add(s: Session, args: list[str]) -> Any:
    return add(s.db, args)


def madd(db: Database, args: list[str]) -> list[Any]:
    """TS.MADD, one triple at a time: key must exist, then value, then timestamp."""
    out: list[Any] = []
    now = _now_ms()
    for i in range(1, len(args) - 2, 3):
        try:
            if not db.exists(args[i]):
                raise InvalidSampleError("the key is not a TSDB key")
            value = parse_value(args[i + 2])
            out.append(db.add(args[i], parse_timestamp(args[i + 1], now), value))
        except Exception as exc:
            out.append(resp_error(exc))
    return out


@command("TS.MADD", -4, flags=_W, keys=(1, -1, 3), group=_G,
         summary="Append new samples to one or more time series")
def ts_madd(s: Session, args: list[str]) -> Any:
    if len(args) % 3 != 1:
        return Error("ERR wrong number of arguments for 'ts.madd' command")
    return madd(s.db, args)


def add_reply(db: Database, args: list[str]) -> bytes:
    try:
        return encode(add(db, args), 2)
    except Exception as exc:
        return encode(resp_error(exc), 2)


def madd_reply(db: Database, args: list[str]) -> bytes:
    return encode(madd(db, args), 2)


def _incr(s: Session, args: list[str], sign: float) -> int:
    delta = parse_value(args[2], "invalid increase/decrease value")
    i = find(args, "TIMESTAMP", 3)
    ts: int | str = "*"
    if i >= 0:
        if i + 1 >= len(args):
            raise InvalidSampleError("invalid timestamp")
        ts = parse_timestamp(args[i + 1], _now_ms())
    db = s.db
    with db.engine.lock:
        opts = {} if db.exists(args[1]) else series_options(args, 3)
        if sign > 0:
            return db.incrby(args[1], delta, timestamp=ts, **opts)
        return db.decrby(args[1], delta, timestamp=ts, **opts)


@command("TS.INCRBY", -3, flags=_W, keys=(1, 1, 1), group=_G,
         summary="Increase the value of the latest sample")
def ts_incrby(s: Session, args: list[str]) -> Any:
    return _incr(s, args, 1.0)


@command("TS.DECRBY", -3, flags=_W, keys=(1, 1, 1), group=_G,
         summary="Decrease the value of the latest sample")
def ts_decrby(s: Session, args: list[str]) -> Any:
    return _incr(s, args, -1.0)


@command("TS.DEL", 4, flags=("write", "module"), keys=(1, 1, 1), group=_G,
         summary="Delete all samples between two timestamps for a given time series")
def ts_del(s: Session, args: list[str]) -> Any:
    return s.db.delete(args[1], bound(args[2], True), bound(args[3], False))


@command("TS.CREATERULE", -6, flags=("write", "module"), keys=(1, 2, 1), group=_G,
         summary="Create a compaction rule")
def ts_createrule(s: Session, args: list[str]) -> Any:
    if len(args) > 7:
        return Error("ERR wrong number of arguments for 'ts.createrule' command")
    if args[3].upper() != "AGGREGATION":
        raise InvalidArgument("Couldn't parse AGGREGATION")
    agg = parse_aggregator(args[4])
    bucket = parse_int(args[5])
    if bucket is None:
        raise InvalidArgument("Couldn't parse AGGREGATION")
    if bucket <= 0:
        raise InvalidArgument("bucketDuration must be greater than zero")
    align = 0
    if len(args) == 7:
        got = parse_int(args[6])
        if got is None or got < 0:
            raise InvalidArgument("Couldn't parse alignTimestamp")
        align = got
    if args[1] == args[2]:
        raise RuleError("the source key and destination key should be different")
    s.db.createrule(args[1], args[2], agg, bucket, align)
    return OK


@command("TS.DELETERULE", 3, flags=("write", "module"), keys=(1, 2, 1), group=_G,
         summary="Delete a compaction rule")
def ts_deleterule(s: Session, args: list[str]) -> Any:
    s.db.deleterule(args[1], args[2])
    return OK
