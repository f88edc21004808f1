"""Batched ingest: runs of plain ``TS.ADD key ts value`` and ``TS.MADD`` → one engine append.

Pipelined writes arrive by the thousand per socket read. Executing them one by one costs a
Python call chain and an engine batch per sample; here a run of them (from one read, an EXEC,
or several connections at once) is taken as columns (``frames.Writes``: built by the parser
straight from the request bytes, or here from parsed commands with the column parsers of
``numbers.py``) and written with one ``Engine.append``; each command's reply is then built
from the per-row statuses. The replies are exactly those of sequential execution:

* ``TS.ADD`` creates a missing key with the defaults (it has no options on this path) —
  but only if its timestamp and value parse, as RedisTimeSeries parses before creating.
* ``TS.MADD`` needs existing keys: a row whose key is created by a *later* ``TS.ADD`` of the
  same run fails with ``the key is not a TSDB key``, as it would sequentially.
* Duplicates inside the run are resolved in input order by the engine's policies.
* Series with an IGNORE filter, which depends on each previous write, take the sequential
  path (the whole run is executed command by command).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from ...engine.head_append import MESSAGES, Status
from .codec import args, encode, error_line
from .errors import resp_error
from .frames import Writes, distinct
from .numbers import TS_MESSAGES, parse_timestamps, parse_values

if TYPE_CHECKING:
    from ...database import Database
    from .codec import Command, Request

_ADD, _MADD = 1, 2
_BAD_VALUE = 100  # row statuses above the engine's: 100 invalid value, 100 + TS_* timestamp
_KINDS = {b"TS.ADD": _ADD, b"ts.add": _ADD, b"TS.MADD": _MADD, b"ts.madd": _MADD}


def is_fast(cmd: Command) -> bool:
    """Whether ``cmd`` is a plain TS.ADD (no options) or a well-formed TS.MADD."""
    kind = _KINDS.get(cmd[0])
    if kind is None:
        name = cmd[0]
        if type(name) is not bytes or len(name) not in (6, 7):
            return False
        kind = _KINDS.get(name.upper())
        if kind is None:
            return False
    n = len(cmd)
    if kind == _ADD:
        return n == 4
    return n >= 4 and n % 3 == 1


def collect(items: list[Request], start: int = 0) -> tuple[list[Writes], int]:
    """The run of batchable writes at ``items[start]``: the parser's ``Writes`` and plain
    commands (turned into ``Writes``); returns them and the index after the run. A command
    with a non-string argument ends the run (it is a protocol error, like Redis')."""
    parts: list[Writes] = []
    cmds: list[Command] = []
    i, n = start, len(items)
    while i < n:
        item = items[i]
        if type(item) is Writes:
            if cmds:
                parts.append(from_commands(cmds))
                cmds = []
            parts.append(item)
        elif type(item[0]) is bytes and is_fast(item):  # type: ignore[arg-type]
            try:
                b"".join(item)  # type: ignore[arg-type]
            except TypeError:
                break
            cmds.append(item)  # type: ignore[arg-type]
        else:
            break
        i += 1
    if cmds:
        parts.append(from_commands(cmds))
    return parts, i


def from_commands(cmds: list[Command]) -> Writes:
    """Columns of parsed plain TS.ADD / TS.MADD commands (the hiredis path, EXEC)."""
    n_cmds = len(cmds)
    sizes: list[int] | None
    if ([c[0] for c in cmds].count(b"TS.ADD") == n_cmds
            and list(map(len, cmds)).count(4) == n_cmds):
        keys, tss, vals, sizes = [c[1] for c in cmds], [c[2] for c in cmds], \
            [c[3] for c in cmds], None
    else:
        keys, tss, vals, sizes = [], [], [], []
        for cmd in cmds:
            if _kind(cmd) == _ADD:
                keys.append(cmd[1])
                tss.append(cmd[2])
                vals.append(cmd[3])
                sizes.append(0)
            else:
                keys += cmd[1::3]
                tss += cmd[2::3]
                vals += cmd[3::3]
                sizes.append(len(cmd) // 3)
    star = (np.array([i for i, t in enumerate(tss) if t == b"*"], np.int64) if b"*" in tss
            else np.zeros(0, np.int64))
    ts, ts_status = parse_timestamps(tss, 0)
    values, value_ok = parse_values(vals)
    uniq, key_index = distinct(keys)
    return Writes(n_cmds, sizes, uniq, key_index, ts, ts_status, values, value_ok, star, tss,
                  cmds)


def run_many(db: Database, runs: list[list[Writes]]) -> list[bytes]:
    """Executes runs of writes (one per connection) as one append; per run, its replies."""
    parts = [w for run in runs for w in run]
    if not parts:
        return [b""] * len(runs)
    with db.engine.lock:
        blobs = _append(db, parts)
        if blobs is None:  # IGNORE filters: one command at a time
            blobs = [_sequential(db, w.commands()) for w in parts]
    out: list[bytes] = []
    pos = 0
    for run in runs:
        out.append(b"".join(blobs[pos : pos + len(run)]))
        pos += len(run)
    return out


def _kind(cmd: Command) -> int:
    return _KINDS.get(cmd[0]) or _KINDS[cmd[0].upper()]


def _has_ignore(db: Database, sids: np.ndarray) -> bool:
    """Whether a series among ``sids`` has an IGNORE filter (decided per write)."""
    ignoring = db.engine.registry.ignoring
    if not ignoring:
        return False
    return bool(np.isin(sids, np.fromiter(ignoring, np.int64, len(ignoring))).any())


def _sequential(db: Database, run: list[Command]) -> bytes:
    from .ts_write import add_reply, madd_reply  # the one-command path
    return b"".join(add_reply(db, args(cmd)) if _kind(cmd) == _ADD else madd_reply(db, args(cmd))
                    for cmd in run)


def _concat(parts: list[Writes]) -> tuple[list[bytes], np.ndarray, np.ndarray, np.ndarray,
                                          np.ndarray, np.ndarray, np.ndarray]:
    """The distinct keys, then per row of all parts: key index, ts, ts_status, values,
    value_ok and is-TS.ADD; ``*`` rows get the time now."""
    if len(parts) == 1:
        w = parts[0]
        keys, key_index = w.keys, w.key_index
        ts, ts_status, values, value_ok = w.ts, w.ts_status, w.values, w.value_ok
    else:
        index: dict[bytes, int] = {}
        for w in parts:
            for k in w.keys:
                index.setdefault(k, len(index))
        keys = list(index)
        key_index = np.concatenate([
            np.fromiter(map(index.__getitem__, w.keys), np.int64, len(w.keys))[w.key_index]
            for w in parts])
        ts = np.concatenate([w.ts for w in parts])
        ts_status = np.concatenate([w.ts_status for w in parts])
        values = np.concatenate([w.values for w in parts])
        value_ok = np.concatenate([w.value_ok for w in parts])
    if any(len(w.star) for w in parts):
        now = int(time.time() * 1000)
        offset = 0
        for w in parts:
            w.ts[w.star] = now  # the part's own column too: its replies show the time
            ts[offset + w.star] = now
            offset += len(w.ts)
    is_add = np.concatenate([
        np.ones(len(w.ts), bool) if w.sizes is None
        else np.repeat(np.array([s == 0 for s in w.sizes]), [s or 1 for s in w.sizes])
        for w in parts])
    return keys, key_index, ts, ts_status, values, value_ok, is_add


def _append(db: Database, parts: list[Writes]) -> list[bytes] | None:
    """One engine append for all rows of ``parts``; the encoded replies of each part. None
    if the commands must go one by one."""
    keys, key_index, ts, ts_status, values, value_ok, is_add = _concat(parts)
    eng = db.engine
    by_key = eng.registry.by_key
    names = [k.decode("utf-8", "surrogateescape") for k in keys]
    key_sids = np.fromiter((by_key.get(name, -1) for name in names), np.int64, len(names))
    sids = key_sids[key_index]
    if _has_ignore(db, key_sids):
        return None
    # RedisTimeSeries parses the value before the timestamp.
    status = np.where(~value_ok, _BAD_VALUE, np.where(ts_status != 0, _BAD_VALUE + ts_status, 0))
    try:
        if (key_sids < 0).any():
            sids = _create_missing(db, names, key_index, sids,
                                   (sids < 0) & is_add & (status == 0))
            # TS.MADD checks the key before parsing its sample.
            status[~is_add & (sids < 0)] = Status.NOT_FOUND
        good = np.flatnonzero(status == 0)
        if len(good):
            res = eng.append(sids[good], ts[good], values[good])
            status[good] = res.status
    except Exception as exc:  # the engine failed as a whole: every command gets its error
        err = encode(resp_error(exc), 2)
        return [err * w.n_cmds for w in parts]
    if not status.any():  # every row written
        return [w.ok_replies() for w in parts]
    out = []
    row = 0
    for w in parts:
        rows = len(w.ts)
        out.append(_replies(w.sizes, ts[row : row + rows], status[row : row + rows]))
        row += rows
    return out


def _create_missing(db: Database, names: list[str], key_index: np.ndarray, sids: np.ndarray,
                    creators: np.ndarray) -> np.ndarray:
    """Creates the keys of valid TS.ADD rows (``creators``); rows before their key's first
    creating row keep sid -1."""
    rows = np.flatnonzero(creators)
    if not len(rows):
        return sids
    created, first = np.unique(key_index[rows], return_index=True)
    order = np.argsort(rows[first])  # create in the order of the rows
    created, at = created[order], rows[first][order]
    db.engine.create_many([names[k] for k in created.tolist()])
    by_key = db.engine.registry.by_key
    created_at = np.full(len(names), len(sids), np.int64)
    created_at[created] = at
    new_sid = np.full(len(names), -1, np.int64)
    new_sid[created] = [by_key[names[k]] for k in created.tolist()]
    fill = (sids < 0) & (np.arange(len(sids)) >= created_at[key_index])
    sids = sids.copy()
    sids[fill] = new_sid[key_index[fill]]
    return sids


def _row_reply(status: int, ts: int) -> bytes:
    if status == 0:
        return b":%d\r\n" % ts
    if status == _BAD_VALUE:
        return error_line("ERR TSDB: invalid value")
    if status > _BAD_VALUE:
        return error_line(f"ERR TSDB: {TS_MESSAGES[status - _BAD_VALUE]}")
    return error_line(f"ERR TSDB: {MESSAGES[Status(status)]}")


def _replies(sizes: list[int] | None, ts: np.ndarray, status: np.ndarray) -> bytes:
    """The commands' replies built from the per-row outcomes."""
    rows = [_row_reply(s, t) for s, t in zip(status.tolist(), ts.tolist(), strict=True)]
    if sizes is None:
        return b"".join(rows)
    per_cmd: list[bytes] = []
    pos = 0
    for size in sizes:
        if size == 0:
            per_cmd.append(rows[pos])
            pos += 1
        else:
            per_cmd.append(b"*%d\r\n" % size + b"".join(rows[pos : pos + size]))
            pos += size
    return b"".join(per_cmd)
