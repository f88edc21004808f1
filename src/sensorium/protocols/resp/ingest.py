"""Batched ingest: runs of plain ``TS.ADD key ts value`` and ``TS.MADD`` → one engine append.

Pipelined writes arrive by the thousand per socket read. Executing them one by one costs a
Python call chain and an engine batch per sample; here a run of them (from one read, an EXEC,
or several connections at once) is turned into columns, parsed with the column parsers of
``numbers.py`` and written with one ``Engine.append``; each command's reply is then built
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
from .numbers import TS_MESSAGES, parse_timestamps, parse_values

if TYPE_CHECKING:
    from ...database import Database
    from .codec import Command

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


def _all_plain_adds(cmds: list[Command]) -> bool:
    """The common case, decided with two C-level counts instead of a loop."""
    n = len(cmds)
    return ([c[0] for c in cmds].count(b"TS.ADD") == n
            and list(map(len, cmds)).count(4) == n)


def fast_prefix(cmds: list[Command], start: int = 0) -> int:
    """How many commands from ``start`` on can be batched (plain TS.ADD / TS.MADD)."""
    if start == 0 and cmds and _all_plain_adds(cmds):
        return len(cmds)
    i, n = start, len(cmds)
    while i < n and is_fast(cmds[i]):
        i += 1
    return i - start


def run_many(db: Database, runs: list[list[Command]]) -> list[tuple[bytes, int | None]]:
    """Executes runs of fast writes (one per connection) as one append.

    Returns per run its encoded replies and, if a command had a non-string argument, that
    command's index: the run's replies then cover only the commands before it.
    """
    cut: list[int | None] = [None] * len(runs)
    with db.engine.lock:
        try:
            blobs = _run_all(db, runs)
        except TypeError:  # a non-string argument (found before anything was written)
            checked = [_valid_prefix(run) for run in runs]
            runs = [run for run, _ in checked]
            cut = [bad for _, bad in checked]
            blobs = _run_all(db, runs)
    return list(zip(blobs, cut, strict=True))


def _run_all(db: Database, runs: list[list[Command]]) -> list[bytes]:
    flat = runs[0] if len(runs) == 1 else [cmd for run in runs for cmd in run]
    if not flat:
        return [b""] * len(runs)
    blobs = _append(db, flat, [len(run) for run in runs])
    if blobs is None:  # IGNORE filters: one command at a time
        blobs = [_sequential(db, run) for run in runs]
    return blobs


def _valid_prefix(run: list[Command]) -> tuple[list[Command], int | None]:
    """The commands before the first one with a non-string argument (a protocol error)."""
    try:
        for cmd in run:
            b"".join(cmd)
    except TypeError:
        for i, cmd in enumerate(run):
            if any(type(a) is not bytes for a in cmd):
                return run[:i], i
    return run, None


def _kind(cmd: Command) -> int:
    return _KINDS.get(cmd[0]) or _KINDS[cmd[0].upper()]


def _columns(cmds: list[Command]
             ) -> tuple[list[bytes], list[bytes], list[bytes], list[int] | None]:
    """Keys, timestamps and values of all rows; per command its row count (0 = TS.ADD), or
    None when every command is a plain TS.ADD."""
    if _all_plain_adds(cmds):
        return [c[1] for c in cmds], [c[2] for c in cmds], [c[3] for c in cmds], None
    keys: list[bytes] = []
    tss: list[bytes] = []
    vals: list[bytes] = []
    sizes: list[int] = []
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
    return keys, tss, vals, sizes


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


def _append(db: Database, cmds: list[Command], run_sizes: list[int]) -> list[bytes] | None:
    """One engine append for all rows of ``cmds``; the encoded replies of each run (a run
    is ``run_sizes[i]`` consecutive commands). None if the runs must go one by one."""
    keys, tss, vals, sizes = _columns(cmds)
    n = len(keys)
    b"".join(keys)  # raises TypeError on a non-string key, before anything is written
    eng = db.engine
    by_key = eng.registry.by_key
    names = {k: k.decode("utf-8", "surrogateescape") for k in set(keys)}  # few distinct keys
    sid_of = {k: by_key.get(name, -1) for k, name in names.items()}
    sids = np.fromiter(map(sid_of.__getitem__, keys), np.int64, n)
    if _has_ignore(db, sids):
        return None
    ts, ts_status = parse_timestamps(tss, int(time.time() * 1000))
    values, value_ok = parse_values(vals)
    # RedisTimeSeries parses the value before the timestamp.
    status = np.where(~value_ok, _BAD_VALUE, np.where(ts_status != 0, _BAD_VALUE + ts_status, 0))
    is_add = (np.ones(n, bool) if sizes is None else
              np.repeat(np.array([s == 0 for s in sizes]), [s or 1 for s in sizes]))
    try:
        missing = sids < 0
        if missing.any():
            sids = _create_missing(db, keys, names, sids, missing & is_add & (status == 0))
            # TS.MADD checks the key before parsing its sample.
            status[~is_add & (sids < 0)] = Status.NOT_FOUND
        good = np.flatnonzero(status == 0)
        if len(good):
            res = eng.append(sids[good], ts[good], values[good])
            status[good] = res.status
    except Exception as exc:  # the engine failed as a whole: every command gets its error
        err = encode(resp_error(exc), 2)
        return [err * k for k in run_sizes]
    if not status.any():  # every row written: replies straight from the timestamp texts
        if b"*" in tss:
            tss = [b"%d" % t for t in ts.tolist()]
        return _ok_replies(tss, sizes, run_sizes)
    return _replies(sizes, ts, status, run_sizes)


def _create_missing(db: Database, keys: list[bytes], names: dict[bytes, str],
                    sids: np.ndarray, creators: np.ndarray) -> np.ndarray:
    """Creates the keys of valid TS.ADD rows; rows before a key's creation keep sid -1."""
    first: dict[bytes, int] = {}
    for i in np.flatnonzero(creators).tolist():
        first.setdefault(keys[i], i)
    if not first:
        return sids
    db.engine.create_many([names[k] for k in first])
    by_key = db.engine.registry.by_key
    sids = sids.copy()
    for i in np.flatnonzero(sids < 0).tolist():
        at = first.get(keys[i])
        if at is not None and i >= at:
            sids[i] = by_key[names[keys[i]]]
    return sids


def _ok_replies(tss: list[bytes], sizes: list[int] | None, run_sizes: list[int]
                ) -> list[bytes]:
    """Replies when every row was written: joins of the (canonical) timestamp texts."""
    out: list[bytes] = []
    if sizes is None:  # plain TS.ADD only: one ":ts" per command
        pos = 0
        for k in run_sizes:
            out.append(b":" + b"\r\n:".join(tss[pos : pos + k]) + b"\r\n" if k else b"")
            pos += k
        return out
    cmd = row = 0
    for k in run_sizes:
        parts = []
        for size in sizes[cmd : cmd + k]:
            rows = max(size, 1)
            head = b"*%d\r\n:" % size if size else b":"
            parts.append(head + b"\r\n:".join(tss[row : row + rows]) + b"\r\n")
            row += rows
        cmd += k
        out.append(b"".join(parts))
    return out


def _row_reply(status: int, ts: int) -> bytes:
    if status == 0:
        return b":%d\r\n" % ts
    if status == _BAD_VALUE:
        return error_line("ERR TSDB: invalid value")
    if status > _BAD_VALUE:
        return error_line(f"ERR TSDB: {TS_MESSAGES[status - _BAD_VALUE]}")
    return error_line(f"ERR TSDB: {MESSAGES[Status(status)]}")


def _replies(sizes: list[int] | None, ts: np.ndarray, status: np.ndarray,
             run_sizes: list[int]) -> list[bytes]:
    """Per run, its commands' replies built from the per-row outcomes."""
    rows = [_row_reply(s, t) for s, t in zip(status.tolist(), ts.tolist(), strict=True)]
    per_cmd: list[bytes] = []
    pos = 0
    for size in sizes if sizes is not None else [0] * len(rows):
        if size == 0:
            per_cmd.append(rows[pos])
            pos += 1
        else:
            per_cmd.append(b"*%d\r\n" % size + b"".join(rows[pos : pos + size]))
            pos += size
    out, pos = [], 0
    for k in run_sizes:
        out.append(b"".join(per_cmd[pos : pos + k]))
        pos += k
    return out
