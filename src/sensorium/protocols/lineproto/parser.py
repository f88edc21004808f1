"""InfluxDB line protocol → sample columns (write path, step 0: sans-IO parsing).

Pure: ``parse(body)`` turns a request body into a ``ParsedBatch`` of columns (key, ts_ms,
value) plus per-line errors; no sockets, no engine, no module state. The HTTP ``/write`` and
``/api/v2/write`` handlers decompress the body, call ``parse`` and hand the columns to
``Database.madd``.

Two paths that must agree exactly (a hypothesis property test checks it):

* the **fast path** (``_fast``) parses all plain lines of a body at once: numpy finds the
  positions of ``\\n``, space, ``,`` and ``=`` and checks each line's shape; pyarrow string
  arrays laid over the body are cast to numbers in C++. No Python work per line.
* the **slow path** (``_slow``) parses one line at a time with the full grammar (escapes,
  string fields, odd whitespace) and names what is wrong with a bad line. It takes the lines
  holding ``"`` or ``\\`` and every line the fast path finds suspicious.

Grammar, escaping rules and the series mapping: docs/protocols/line-protocol.md.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...errors import InvalidArgument

PRECISIONS = frozenset({"ns", "us", "ms", "s"})  # InfluxDB 2.x names
V1_PRECISIONS = frozenset({"n", "u", "ms", "s", "m", "h"})  # InfluxDB 1.x names
_UNIT_NS = {"ns": 1, "n": 1, "us": 1_000, "u": 1_000, "ms": 1_000_000, "s": 10**9,
            "m": 60 * 10**9, "h": 3600 * 10**9}
# InfluxDB's representable time range (models.MinNanoTime, models.MaxNanoTime).
MIN_NS = -(2**63) + 2
MAX_NS = 2**63 - 2
RESERVED_TAG_KEYS = frozenset({"_measurement", "_field"})  # Sensorium adds these labels


@dataclass(frozen=True)
class LineError:
    """A rejected line: its 1-based number in the body and what is wrong with it."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ParsedBatch:
    """A parsed body: one row per numeric field of every good line, in body order.

    ``labels`` maps each distinct key of the batch to its labels (the tags plus
    ``_measurement`` and ``_field``). It is a read-only, lazy ``Mapping``: the labels of a
    key are worked out when first asked for, so a writer that only looks up the keys it has
    to create pays nothing for the others.
    """

    keys: np.ndarray  # object array of str: "<measurement>,<tag>=<v>,…:<field>"
    ts_ms: np.ndarray  # int64 epoch ms
    values: np.ndarray  # float64
    labels: Mapping[str, dict[str, str]]
    errors: list[LineError] = field(default_factory=list)  # in line order
    lines: int = 0  # non-empty, non-comment lines seen


@dataclass(frozen=True)
class _Unit:
    """A timestamp precision: how to range-check it and turn it into epoch ms."""

    name: str
    ns: int

    @property
    def lo(self) -> int:
        return -(-MIN_NS // self.ns)

    @property
    def hi(self) -> int:
        return MAX_NS // self.ns

    def to_ms(self, ts: np.ndarray) -> np.ndarray:
        if self.ns >= 1_000_000:
            return ts * (self.ns // 1_000_000)
        return ts // (1_000_000 // self.ns)  # floor, also for times before 1970


def _unit(precision: str) -> _Unit:
    ns = _UNIT_NS.get(precision)
    if ns is None:
        raise InvalidArgument(f"invalid precision {precision!r}: use one of "
                              "ns, us, ms, s (or n, u, m, h)")
    return _Unit(precision, ns)


def parse(body: bytes, precision: str = "ns", default_ts_ms: int | None = None) -> ParsedBatch:
    """Parses a line-protocol body (already decompressed).

    Thread-safe and pure. A bad line writes nothing and yields one ``LineError``; the good
    lines around it are kept.

    Args:
        body: the request body, UTF-8 line protocol, ``\\n`` or ``\\r\\n`` line endings.
        precision: unit of the timestamps in the body: ``ns``, ``us``, ``ms``, ``s``
            (InfluxDB 2.x) or ``n``, ``u``, ``m``, ``h`` (1.x). Converted to ms by floor
            division.
        default_ts_ms: time of points without a timestamp (default: now), truncated to
            ``precision`` as InfluxDB does.

    Returns:
        A ``ParsedBatch`` whose rows are in body order (line, then field order).

    Raises:
        InvalidArgument: ``precision`` is not one of the names above, or the body is 2 GiB
            or more (offsets are int32; the HTTP front end caps bodies far below).
    """
    unit = _unit(precision)
    if len(body) >= 2**31:
        raise InvalidArgument("line-protocol body of 2 GiB or more")
    if default_ts_ms is None:
        default_ts_ms = time.time_ns() // 1_000_000
    return _parse(body, unit, default_ts_ms - default_ts_ms % max(unit.ns // 1_000_000, 1))


def _parse(body: bytes, unit: _Unit, default_ts_ms: int, fast: bool = True) -> ParsedBatch:
    """``parse``; with ``fast=False`` every line takes the slow path (tests, benchmarks)."""
    lines = _Lines(body)
    out = _Rows()
    if not fast:
        lines.plain[:] = False
    consumed = _slow(lines, lines.suspicious(), unit, default_ts_ms, out)
    todo = np.flatnonzero(lines.plain & ~consumed)
    rows = _fast(lines, todo, unit, default_ts_ms)
    out.lines += len(todo)
    _slow(lines, rows.rejected, unit, default_ts_ms, out, counted=True)
    return out.batch(rows)


class _Lines:
    """A body's physical lines and the separators in it, found once with numpy.

    ``start``/``end``: byte offsets of each line (``end`` before ``\\r\\n``). ``pos``/``kind``:
    offset and kind (_NL, _SP, _CM, _EQ) of every ``\\n``, space, ``,`` and ``=`` in body
    order, plus a virtual ``\\n`` at the end of a body whose last line has none.
    """

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.buf = buf = np.frombuffer(body, np.uint8)
        n = len(buf)
        sep, hit = buf == 10, np.empty(n, bool)  # few big temporaries: each one page-faults
        for byte in b" ,=":
            sep |= np.equal(buf, byte, out=hit)
        pos = np.flatnonzero(sep).astype(np.int32)  # bodies are far below 2 GiB
        kind = _KIND.take(buf.take(pos))
        if not n or body[-1] != 10:  # close the last line
            pos, kind = np.append(pos, np.int32(n)), np.append(kind, np.int8(_NL))
        self.pos, self.kind = pos, kind
        self.nl = np.flatnonzero(kind == _NL)  # one per line
        end = self.pos[self.nl]
        self.start = start = np.concatenate(([0], end[:-1] + 1))
        if n:
            end -= (end > start) & (buf[end - 1] == 13)
        self.end = end
        first = buf[np.minimum(start, n - 1)] if n else np.zeros(1, np.uint8)
        # Plain lines go to the fast path; comments and empty lines are skipped.
        self.plain = (end > start) & ~_NOT_PLAIN[first]
        self.utf8 = body.isascii() or _valid_utf8(body)

    def __len__(self) -> int:
        return len(self.start)

    def text(self, i: int, j: int | None = None) -> str:
        """Physical lines i..j decoded (raises UnicodeDecodeError)."""
        return self.body[self.start[i]:self.end[i if j is None else j]].decode()

    def suspicious(self) -> np.ndarray:
        """Lines for the slow path: escapes, quotes, leading blanks, bad UTF-8."""
        buf, body = self.buf, self.body
        marks = [np.flatnonzero((self.end > self.start) & ~self.plain)]
        for byte in (b'"', b"\\"):
            if byte in body:
                marks.append(self.line_of(np.flatnonzero(buf == byte[0])))
        if not self.utf8:
            marks.append(self.line_of(np.flatnonzero(buf >= 0x80)))
        idx = np.unique(np.concatenate(marks))
        self.plain[idx] = False
        return idx

    def line_of(self, pos: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.start, pos, "right") - 1


_NL, _SP, _CM, _EQ = range(4)
_KIND = np.zeros(256, np.int8)
_KIND[[ord(" "), ord(","), ord("=")]] = _SP, _CM, _EQ
_NOT_PLAIN = np.zeros(256, bool)
_NOT_PLAIN[list(b"# \t")] = True
_KIND.setflags(write=False)  # lookup tables: constants
_NOT_PLAIN.setflags(write=False)


def _valid_utf8(body: bytes) -> bool:
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


# -- slow path: one line at a time, the full grammar ------------------------------------------
class _Fault(Exception):
    """What is wrong with a line (becomes its ``LineError``)."""


class _Unterminated(_Fault):
    """A string field runs past the end of its line; it may go on in the next ones."""

    def __init__(self, message: str, at: int) -> None:
        super().__init__(message)
        self.at = at  # offset of the opening quote in the text


_MEASUREMENT = re.compile(r"(?:[^, \\]|\\[, ]|\\(?![, ]))*")
_KEY = re.compile(r"(?:[^,= \\]|\\[,= ]|\\(?![,= ]))*")  # tag key, tag value, field key
_MEASUREMENT_ESC = re.compile(r"\\([, ])")
_KEY_ESC = re.compile(r"\\([,= ])")
_TOKEN = re.compile(r"[^, ]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_STRING_BYTES = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_FLOAT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?)")
_INT = re.compile(r"-?[0-9]+")
_DIGITS = re.compile(r"[0-9]+")
_TRUE = frozenset({"t", "T", "true", "True", "TRUE"})
_FALSE = frozenset({"f", "F", "false", "False", "FALSE"})


@dataclass
class _Point:
    measurement: str
    tags: dict[str, str]
    fields: list[tuple[str, float]]  # numeric fields in line order
    ts: int | None  # in the precision's unit


def _number(token: str, key: str) -> float:
    """A field value that is not a string → float64 (bool → 1.0/0.0)."""
    last = token[-1]
    if last == "i" and _INT.fullmatch(token, 0, len(token) - 1):
        n = int(token[:-1])
        if not -(2**63) <= n < 2**63:
            raise _Fault(f"value {token!r} of field {key!r} out of range")
        return float(n)
    if last == "u" and _DIGITS.fullmatch(token, 0, len(token) - 1):
        n = int(token[:-1])
        if n >= 2**64:
            raise _Fault(f"value {token!r} of field {key!r} out of range")
        return float(n)
    if token in _TRUE:
        return 1.0
    if token in _FALSE:
        return 0.0
    if _FLOAT.fullmatch(token):
        x = float(token)
        if math.isinf(x):
            raise _Fault(f"value {token!r} of field {key!r} out of range")
        return x
    raise _Fault(f"invalid field value {token!r} for field {key!r}")


def _key(s: str, i: int) -> tuple[str, int]:
    m = _KEY.match(s, i)
    assert m is not None  # the pattern matches the empty string
    return _KEY_ESC.sub(r"\1", m.group()), m.end()


def _skip_spaces(s: str, i: int) -> int:
    while i < len(s) and s[i] == " ":
        i += 1
    return i


def _parse_point(s: str, unit: _Unit) -> _Point:
    """One point; ``s`` starts at its measurement. Raises ``_Fault``."""
    n = len(s)
    m = _MEASUREMENT.match(s)
    assert m is not None
    i = m.end()
    if i == 0:
        raise _Fault("missing measurement")
    measurement = _MEASUREMENT_ESC.sub(r"\1", m.group())
    tags: dict[str, str] = {}
    while i < n and s[i] == ",":
        key, i = _key(s, i + 1)
        if not key:
            raise _Fault("missing tag key")
        if i >= n or s[i] != "=":
            raise _Fault(f"missing '=' after tag key {key!r}")
        value, i = _key(s, i + 1)
        if not value:
            raise _Fault(f"missing value for tag {key!r}")
        if i < n and s[i] == "=":
            raise _Fault(f"unescaped '=' in value of tag {key!r}")
        if key in tags:
            raise _Fault(f"duplicate tag {key!r}")
        if key in RESERVED_TAG_KEYS:
            raise _Fault(f"tag key {key!r} is reserved")
        tags[key] = value
    i = _skip_spaces(s, i)
    if i >= n:
        raise _Fault("missing field set")
    fields, strings = [], []
    while True:
        key, i = _key(s, i)
        if not key:
            raise _Fault("missing field key")
        if i >= n or s[i] != "=":
            raise _Fault(f"missing '=' after field key {key!r}")
        i += 1
        if i >= n or s[i] in ", ":
            raise _Fault(f"missing value for field {key!r}")
        if s[i] == '"':
            sm = _STRING.match(s, i)
            if sm is None:
                raise _Unterminated(f"unterminated string value for field {key!r}", i)
            strings.append(key)
            i = sm.end()
        else:
            j = _TOKEN.match(s, i).end()  # type: ignore[union-attr]
            fields.append((key, _number(s[i:j], key)))
            i = j
        if i >= n or s[i] == " ":
            break
        if s[i] != ",":
            raise _Fault(f"unexpected character {s[i]!r} after value of field {key!r}")
        i += 1
    if not fields:
        raise _Fault(f"field {strings[0]!r} is a string; Sensorium stores numbers")
    i = _skip_spaces(s, i)
    if i >= n:
        return _Point(measurement, tags, fields, None)
    j = s.find(" ", i)
    j = n if j < 0 else j
    token = s[i:j]
    if not _INT.fullmatch(token):
        raise _Fault(f"invalid timestamp {token!r}")
    rest = s[j:].strip(" ")
    if rest:
        raise _Fault(f"unexpected text after timestamp: {rest!r}")
    ts = int(token)
    if not unit.lo <= ts <= unit.hi:
        raise _Fault(f"timestamp {token!r} out of range for precision {unit.name!r}")
    return _Point(measurement, tags, fields, ts)


def _slow(lines: _Lines, idx: np.ndarray, unit: _Unit, default_ts_ms: int, out: _Rows,
          counted: bool = False) -> np.ndarray:
    """Parses lines ``idx`` (ascending) one by one into ``out``.

    Returns the mask of the lines swallowed by multi-line string fields. ``counted``: the
    lines were already counted in ``out.lines``.
    """
    consumed = np.zeros(len(lines), bool)
    for i in idx.tolist():
        if consumed[i]:
            continue
        try:
            text = lines.text(i)
        except UnicodeDecodeError:
            out.lines += not counted
            out.error(i, "invalid UTF-8")
            continue
        lead = len(text) - len(text.lstrip(" \t"))
        if lead == len(text) or text[lead] == "#":
            continue  # blank or comment
        out.lines += not counted
        last = i
        while True:
            try:
                point = _parse_point(text[lead:], unit)
            except _Unterminated as exc:
                last = _string_end(lines, i, len(text[: lead + exc.at].encode()))
                if last is None:
                    out.error(i, str(exc))
                    last = i
                    break
                try:
                    text = lines.text(i, last)
                except UnicodeDecodeError:
                    out.error(i, "invalid UTF-8")
                    break
                continue
            except _Fault as exc:
                out.error(i, str(exc))
            else:
                out.point(i, point, unit, default_ts_ms)
            break
        consumed[i + 1:last + 1] = True
    return consumed


def _string_end(lines: _Lines, i: int, at: int) -> int | None:
    """The line where the string opened at byte ``at`` of line ``i`` closes, or None."""
    m = _STRING_BYTES.match(lines.body, int(lines.start[i]) + at)
    if m is None:
        return None
    return int(lines.line_of(np.array([m.end() - 1]))[0])


class _Rows:
    """Rows and errors of the slow path; merges them with the fast path's."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.ts_ms: list[int] = []
        self.values: list[float] = []
        self.line: list[int] = []
        self.labels: dict[str, dict[str, str]] = {}
        self.errors: list[LineError] = []
        self.lines = 0

    def error(self, i: int, message: str) -> None:
        self.errors.append(LineError(i + 1, message))

    def point(self, i: int, p: _Point, unit: _Unit, default_ts_ms: int) -> None:
        tags = dict(sorted(p.tags.items()))
        series = p.measurement + "".join(f",{k}={v}" for k, v in tags.items())
        ts = default_ts_ms if p.ts is None else int(unit.to_ms(np.int64(p.ts)))
        for name, value in p.fields:
            key = f"{series}:{name}"
            self.keys.append(key)
            self.ts_ms.append(ts)
            self.values.append(value)
            self.line.append(i)
            if key not in self.labels:
                self.labels[key] = {**tags, "_measurement": p.measurement, "_field": name}

    def batch(self, fast: _FastRows) -> ParsedBatch:
        keys, ts, values = fast.keys, fast.ts_ms, fast.values
        if self.keys:
            slow_keys = np.empty(len(self.keys), object)
            slow_keys[:] = self.keys
            order = np.argsort(np.concatenate((fast.line, self.line)), kind="stable")
            keys = np.concatenate((keys, slow_keys))[order]
            ts = np.concatenate((ts, np.array(self.ts_ms, np.int64)))[order]
            values = np.concatenate((values, np.array(self.values, np.float64)))[order]
        self.errors.sort(key=lambda e: e.line)
        labels = _Labels(keys, self.labels, fast)
        return ParsedBatch(keys, ts, values, labels, self.errors, self.lines)


class _Labels(Mapping[str, dict[str, str]]):
    """Labels of a batch's distinct keys, in order of first row; fast-path ones made lazily."""

    def __init__(self, keys: np.ndarray, known: dict[str, dict[str, str]],
                 fast: _FastRows) -> None:
        self._keys = keys
        self._known = known  # the slow path's, and those already asked for
        self._fast = fast
        self._rows: dict[str, int] | None = None  # fast key → one of its rows

    def _fast_rows(self) -> dict[str, int]:
        if self._rows is None:
            keys = self._fast.keys.tolist()
            self._rows = dict(zip(keys, range(len(keys)), strict=True))
        return self._rows

    def __getitem__(self, key: str) -> dict[str, str]:
        labels = self._known.get(key)
        if labels is None:
            labels = self._known[key] = self._fast.labels(self._fast_rows()[key])
        return labels

    def __contains__(self, key: object) -> bool:
        return key in self._known or key in self._fast_rows()

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(self._keys.tolist()))

    def __len__(self) -> int:
        return len(set(self._keys.tolist()))


# -- fast path: every plain line at once ------------------------------------------------------
@dataclass
class _FastRows:
    """The fast path's rows (in line order) and what it needs to rebuild their labels."""

    keys: np.ndarray
    ts_ms: np.ndarray
    values: np.ndarray
    line: np.ndarray  # physical line index of each row
    rejected: np.ndarray  # lines left to the slow path
    body: bytes = b""
    field_start: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    field_eq: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))

    def labels(self, row: int) -> dict[str, str]:
        name = self.body[self.field_start[row]:self.field_eq[row]].decode()
        series = self.keys[row][:-len(name) - 1]  # the key is "series:name"
        measurement, *tags = series.split(",")  # no escapes on the fast path
        return {**dict(tag.split("=", 1) for tag in tags), "_measurement": measurement,
                "_field": name}


def _fast(lines: _Lines, todo: np.ndarray, unit: _Unit, default_ts_ms: int) -> _FastRows:
    """Parses the plain lines ``todo`` at once; lines it will not vouch for are ``rejected``."""
    if not len(todo):
        return _FastRows(np.empty(0, object), np.empty(0, np.int64), np.empty(0), todo, todo)
    lay = _uniform_layout(lines, todo) or _layout(lines, todo)
    rejected = [todo[~lay.ok[todo]]]
    body, buf, data = lines.body, lines.buf, pa.py_buffer(lines.body)
    idx, fl = lay.idx, lay.field_line
    ok = np.ones(len(idx), bool)
    values, v_ok = _values(body, buf, data, lay.field_eq + 1, lay.field_end)
    ok[fl[~v_ok]] = False
    ts_ms = np.full(len(idx), default_ts_ms, np.int64)
    if len(lay.ts_line):
        ts, t_ok = _integers(body, buf, data, lay.sp2 + 1, lay.end[lay.ts_line], pa.int64())
        t_ok &= (ts >= unit.lo) & (ts <= unit.hi)
        ts_ms[lay.ts_line] = unit.to_ms(np.where(t_ok, ts, 0))
        ok[lay.ts_line[~t_ok]] = False
    unsorted = _tag_order(buf, data, lay, ok)
    series: pa.Array | None = None
    if len(unsorted):
        series, unique = _sorted_series(data, lay, unsorted)
        ok[unsorted[~unique]] = False
        unsorted, series = unsorted[unique], series.filter(pa.array(unique))
    rejected.append(idx[~ok])
    rows = np.flatnonzero(ok[fl])
    keys = _keys(body, lay, ok, rows, unsorted, series)
    return _FastRows(keys, ts_ms[fl[rows]], values[rows], idx[fl[rows]],
                     np.sort(np.concatenate(rejected)), body, lay.field_start[rows],
                     lay.field_eq[rows])


# -- fast path, step 1: where the parts of each line are --------------------------------------
@dataclass
class _Layout:
    """Offsets of the parts of the well-formed lines (``*_line`` arrays index ``idx``)."""

    ok: np.ndarray  # over all physical lines: well formed
    idx: np.ndarray  # physical indices of the well-formed lines
    start: np.ndarray
    end: np.ndarray
    sp1: np.ndarray  # the space before the field set
    ts_line: np.ndarray  # lines with a timestamp …
    sp2: np.ndarray  # … and the space before it
    tag_line: np.ndarray
    tag_start: np.ndarray  # after the ','
    tag_eq: np.ndarray
    tag_end: np.ndarray
    field_line: np.ndarray
    field_start: np.ndarray
    field_eq: np.ndarray
    field_end: np.ndarray
    first: np.ndarray  # the line's first field


# Separators by section (sections are counted by spaces), and what may follow what in a line:
#   m[,k=v…] k=v[,k=v…][ ts]   with at least one byte between two separators.
_NL0, _SP1, _SP2, _CM0, _CM1, _EQ0, _EQ1, _BAD = range(8)
_SECTION = np.full((4, 4), _BAD, np.int8)  # [kind, spaces so far in the line (max 3)]
_SECTION[_NL] = _NL0
_SECTION[_SP, 1:3] = _SP1, _SP2
_SECTION[_CM, 0:2] = _CM0, _CM1
_SECTION[_EQ, 0:2] = _EQ0, _EQ1
_FOLLOWS = np.zeros((8, 8), bool)  # [previous, next]
for _a, _b in ((_NL0, _CM0), (_NL0, _SP1),  # measurement
               (_CM0, _EQ0), (_EQ0, _CM0), (_EQ0, _SP1),  # tag key, tag value
               (_SP1, _EQ1), (_CM1, _EQ1),  # field key
               (_EQ1, _CM1), (_EQ1, _SP2), (_EQ1, _NL0),  # field value
               (_SP2, _NL0)):  # timestamp
    _FOLLOWS[_a, _b] = True
del _a, _b
_SECTION.setflags(write=False)
_FOLLOWS.setflags(write=False)


def _layout(lines: _Lines, todo: np.ndarray) -> _Layout:
    """The well-formed lines of ``todo``: every separator may follow the one before it."""
    pos, kind = lines.pos, lines.kind
    is_nl = kind == _NL
    line_of = np.cumsum(is_nl, dtype=np.int32) - is_nl
    spaces = np.cumsum(kind == _SP, dtype=np.int32)
    line_spaces = spaces - np.concatenate(([0], spaces[lines.nl[:-1]]))[line_of]
    sect = _SECTION.ravel().take(kind * 4 + np.minimum(line_spaces, 3).astype(np.int8))
    prev = np.concatenate(([_NL0], sect[:-1]))
    bad = ~_FOLLOWS.ravel().take(prev * 8 + sect)
    bad[1:] |= np.diff(pos) < 2
    bad[0] |= pos[0] < 1
    ok = np.zeros(len(lines), bool)
    ok[todo] = True
    ok[line_of[bad]] = False
    ok &= lines.end > pos[np.maximum(lines.nl - 1, 0)] + 1  # the last part, "\r" trimmed
    mine = ok[line_of]
    idx = np.flatnonzero(ok)
    ordinal = np.cumsum(ok) - 1
    k_sp2 = np.flatnonzero(mine & (sect == _SP2))
    k_cm = np.flatnonzero(mine & (sect == _CM0))
    k_eq = np.flatnonzero(mine & (sect == _EQ1))
    last = sect[k_eq + 1] == _NL0
    return _Layout(
        ok, idx, lines.start[idx], lines.end[idx], pos[mine & (sect == _SP1)],
        ordinal[line_of[k_sp2]], pos[k_sp2],
        ordinal[line_of[k_cm]], pos[k_cm] + 1, pos[k_cm + 1], pos[k_cm + 2],
        ordinal[line_of[k_eq]], pos[k_eq - 1] + 1, pos[k_eq],
        np.where(last, lines.end[line_of[k_eq]], pos[k_eq + 1]), sect[k_eq - 1] == _SP1)


def _uniform_layout(lines: _Lines, todo: np.ndarray) -> _Layout | None:
    """``_layout`` for the usual batch, whose lines all have the same separators; else None.

    The separators then reshape to a (lines × separators) table whose columns are the parts.
    """
    m = len(todo)
    if m < 2 or todo[-1] != m - 1:
        return None  # the plain lines are not lines 0 … m-1
    k = int(lines.nl[0]) + 1
    if len(lines.nl) < m or lines.nl[m - 1] != m * k - 1:
        return None
    grid = lines.kind[:m * k].reshape(m, k)
    if not (grid == grid[0]).all():
        return None
    sect, spaces = [], 0
    for kind in grid[0].tolist():
        spaces += kind == _SP
        sect.append(int(_SECTION[kind, min(spaces, 3)]))
    if not all(_FOLLOWS[a, b] for a, b in zip([_NL0, *sect], sect, strict=False)):
        return None
    pos = lines.pos[:m * k].reshape(m, k)
    start, end = lines.start[:m], lines.end[:m]
    if not ((pos[:, 0] > start).all() and (np.diff(pos, axis=1) >= 2).all()
            and (end > pos[:, k - 2] + 1).all()):
        return None
    line = np.arange(m)
    sect_ = np.array(sect)
    cm, eq = np.flatnonzero(sect_ == _CM0), np.flatnonzero(sect_ == _EQ1)
    field_end = pos[:, eq + 1]
    if sect[-2] == _EQ1:  # no timestamp: the last value ends at the line's end
        field_end[:, -1] = end
    sp2 = np.flatnonzero(sect_ == _SP2)
    first = np.zeros(len(eq), bool)
    first[0] = True
    ok = np.zeros(len(lines), bool)
    ok[:m] = True
    return _Layout(
        ok, line, start, end, pos[:, int(np.flatnonzero(sect_ == _SP1)[0])],
        line if len(sp2) else line[:0], pos[:, sp2].ravel(),
        np.repeat(line, len(cm)), (pos[:, cm] + 1).ravel(), pos[:, cm + 1].ravel(),
        pos[:, cm + 2].ravel(),
        np.repeat(line, len(eq)), (pos[:, eq - 1] + 1).ravel(), pos[:, eq].ravel(),
        field_end.ravel(), np.tile(first, m))


# -- fast path, step 2: the parts as pyarrow strings, cast in C++ -----------------------------
_BOOLS = pa.array(sorted(_TRUE | _FALSE), pa.string())
_TRUES = pa.array(sorted(_TRUE), pa.string())
_RESERVED = pa.array(sorted(RESERVED_TAG_KEYS), pa.string())
_COLON = pa.scalar(":", pa.string())
_BOOL_START = np.zeros(256, bool)
_BOOL_START[list(b"tTfF")] = True
_BOOL_START.setflags(write=False)


def _strings(data: pa.Buffer, start: np.ndarray, end: np.ndarray) -> pa.Array:
    """Strings ``data[start[i]:end[i]]``; the spans must be ascending and disjoint.

    Lays one string array over the body (the even elements are the spans, the odd ones the
    gaps between them) and keeps the even ones: no per-string Python work.
    """
    n = len(start)
    if n == 0:
        return pa.array([], pa.string())
    offsets = np.empty(2 * n, np.int32)  # bodies are far below 2 GiB
    offsets[0::2] = start
    offsets[1::2] = end
    spans = pa.StringArray.from_buffers(2 * n - 1, pa.py_buffer(offsets), data)
    return spans.take(pa.array(np.arange(0, 2 * n - 1, 2, dtype=np.int32)))


def _cast(arr: pa.Array, to: pa.DataType,
          check: Callable[[str], bool]) -> tuple[np.ndarray, np.ndarray]:
    """(numbers, ok): ``arr`` cast to ``to``; a string ``check`` refuses spoils only its row."""
    try:
        return pc.cast(arr, to).to_numpy(), np.ones(len(arr), bool)
    except pa.ArrowInvalid:
        ok = np.fromiter((check(s) for s in arr.to_pylist()), bool, len(arr))
        out = np.zeros(len(arr), to.to_pandas_dtype())
        out[ok] = pc.cast(arr.filter(pa.array(ok)), to).to_numpy()
        return out, ok


_CHECK = {pa.float64(): lambda s: bool(_FLOAT.fullmatch(s)),
          pa.int64(): lambda s: bool(_INT.fullmatch(s)) and -(2**63) <= int(s) < 2**63,
          pa.uint64(): lambda s: bool(_DIGITS.fullmatch(s)) and int(s) < 2**64}


def _values(body: bytes, buf: np.ndarray, data: pa.Buffer, start: np.ndarray,
            end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values, ok) of the field values ``buf[start:end]`` (no strings here)."""
    first, last = buf.take(start), buf.take(end - 1)
    is_int, is_uint = last == ord("i"), last == ord("u")
    is_bool = _BOOL_START.take(first) & ~is_int & ~is_uint
    is_float = ~(is_int | is_uint | is_bool)
    # pyarrow also reads "+1", "nan" and "inf": refuse them as the grammar does.
    ok = first != ord("+") if b"+" in body else np.ones(len(start), bool)
    if is_float.all() and ok.all():  # the usual batch
        x, good = _cast(_strings(data, start, end), pa.float64(), _CHECK[pa.float64()])
        return x, good & np.isfinite(x)
    values = np.zeros(len(start))
    sel = np.flatnonzero(is_float & ok)
    if len(sel):
        x, good = _cast(_strings(data, start[sel], end[sel]), pa.float64(), _CHECK[pa.float64()])
        values[sel] = x
        ok[sel] = good & np.isfinite(x)
    for mask, to in ((is_int, pa.int64()), (is_uint, pa.uint64())):
        sel = np.flatnonzero(mask & ok)
        if len(sel):  # without the 'i' or 'u'
            values[sel], ok[sel] = _integers(body, buf, data, start[sel], end[sel] - 1, to)
    sel = np.flatnonzero(is_bool)
    if len(sel):
        words = _strings(data, start[sel], end[sel])
        ok[sel] = pc.is_in(words, value_set=_BOOLS).to_numpy(zero_copy_only=False)
        values[sel] = pc.is_in(words, value_set=_TRUES).to_numpy(zero_copy_only=False)
    return values, ok


def _integers(body: bytes, buf: np.ndarray, data: pa.Buffer, start: np.ndarray,
              end: np.ndarray, to: pa.DataType) -> tuple[np.ndarray, np.ndarray]:
    """(numbers, ok) of the integers ``-?[0-9]+`` (``[0-9]+`` for uint64) at buf[start:end]."""
    ok = end > start
    if b"x" in body or b"X" in body:  # pyarrow also reads "0x1f" as hex
        hex_ = (buf.take(start) == ord("0")) & (end - start > 1)
        ok &= ~(hex_ & ((buf.take(np.minimum(start + 1, len(buf) - 1)) | 0x20) == ord("x")))
    if ok.all():
        return _cast(_strings(data, start, end), to, _CHECK[to])
    out = np.zeros(len(start), to.to_pandas_dtype())
    sel = np.flatnonzero(ok)
    out[sel], ok[sel] = _cast(_strings(data, start[sel], end[sel]), to, _CHECK[to])
    return out, ok


def _tag_order(buf: np.ndarray, data: pa.Buffer, lay: _Layout, ok: np.ndarray) -> np.ndarray:
    """Lines whose tag keys are not strictly ascending; refuses reserved tag keys in ``ok``."""
    tl, t_start, t_eq = lay.tag_line, lay.tag_start, lay.tag_eq
    under = np.flatnonzero(buf.take(t_start) == ord("_"))
    if len(under):
        names = _strings(data, t_start[under], t_eq[under])
        ok[tl[under[pc.is_in(names, value_set=_RESERVED).to_numpy(zero_copy_only=False)]]] = False
    pair = np.flatnonzero(tl[1:] == tl[:-1])  # tag pair + 1 follows tag pair in its line
    a, b = buf.take(t_start[pair]), buf.take(t_start[pair + 1])
    bad = pair[a > b]
    tie = pair[a == b]  # same first byte: compare the whole keys
    if len(tie):
        left = _strings(data, t_start[tie], t_eq[tie])
        right = _strings(data, t_start[tie + 1], t_eq[tie + 1])
        ascending = pc.less(left, right).to_numpy(zero_copy_only=False)
        bad = np.concatenate((bad, tie[~ascending]))
    lines = np.zeros(len(lay.idx), bool)
    lines[tl[bad]] = True
    return np.flatnonzero(lines)


def _sorted_series(data: pa.Buffer, lay: _Layout,
                   lines: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """(series with the tags sorted by key, no repeated tag key) of the given lines."""
    chosen = np.zeros(len(lay.idx), bool)
    chosen[lines] = True
    tags = np.flatnonzero(chosen[lay.tag_line])
    tl = lay.tag_line[tags]
    names = _strings(data, lay.tag_start[tags], lay.tag_eq[tags]).dictionary_encode()
    distinct = names.dictionary.to_pylist()
    rank = np.empty(len(distinct), np.int64)
    rank[sorted(range(len(distinct)), key=distinct.__getitem__)] = np.arange(len(distinct))
    by_key = rank[names.indices.to_numpy()]
    order = np.lexsort((by_key, tl))
    tl, by_key = tl[order], by_key[order]
    unique = np.ones(len(lines), bool)
    again = (tl[1:] == tl[:-1]) & (by_key[1:] == by_key[:-1])
    unique[np.searchsorted(lines, tl[1:][again])] = False
    pairs = _strings(data, lay.tag_start[tags] - 1, lay.tag_end[tags]).take(pa.array(order))
    count = np.bincount(lay.tag_line, minlength=len(lay.idx))[lines]
    offsets = np.concatenate(([0], np.cumsum(count))).astype(np.int32)
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), pairs), "")
    first_tag = lay.tag_start[tags][offsets[:-1]] - 1  # tags are grouped by line, in order
    measurement = _strings(data, lay.start[lines], first_tag)
    return pc.binary_join_element_wise(measurement, joined, ""), unique


def _keys(body: bytes, lay: _Layout, ok: np.ndarray, rows: np.ndarray, resorted: np.ndarray,
          resorted_series: pa.Array | None) -> np.ndarray:
    """Keys ``series:field`` of the rows; ``resorted`` lines take ``resorted_series``.

    In a copy of the body the space after the series becomes ':', so the key of a line's
    first field is one span ``[line start, '=')``; the other keys are joined.
    """
    keyed = bytearray(body)
    good = np.flatnonzero(ok)
    np.frombuffer(keyed, np.uint8)[lay.sp1[good]] = ord(":")
    data = pa.py_buffer(keyed)
    rl, f_eq = lay.field_line[rows], lay.field_eq[rows]
    one_span = lay.first[rows]
    if len(resorted):
        plain = np.ones(len(ok), bool)
        plain[resorted] = False
        one_span &= plain[rl]
    head = np.flatnonzero(one_span)
    spans = _strings(data, lay.start[rl[head]], f_eq[head]).to_numpy(zero_copy_only=False)
    if len(head) == len(rows):
        return spans
    keys = np.empty(len(rows), object)
    keys[head] = spans
    rest = np.flatnonzero(~one_span)
    at = np.full(len(ok), -1)
    if len(resorted) == len(good):  # every line had its tags out of order
        series, at[resorted] = resorted_series, np.arange(len(resorted))
    else:
        series = _strings(data, lay.start[good], lay.sp1[good])
        at[good] = np.arange(len(good))
        if len(resorted):
            at[resorted] = len(good) + np.arange(len(resorted))
            series = pa.concat_arrays([series, resorted_series])
    names = _strings(data, lay.field_start[rows[rest]], f_eq[rest])
    joined = pc.binary_join_element_wise(series.take(pa.array(at[rl[rest]])), names, _COLON)
    keys[rest] = joined.to_numpy(zero_copy_only=False)
    return keys
