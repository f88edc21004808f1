"""RESP2/RESP3 wire codec, sans-IO: request bytes → commands, reply values → bytes.

Requests are framed here: a read that starts with a long run of plain ``TS.ADD``/``TS.MADD``
has it turned into columns (``frames.Writes``, no per-argument objects); everything else goes
to ``hiredis.Reader`` (C), which makes a list of ``bytes`` per command and whose errors are
the reference. While hiredis holds part of a frame, every byte goes to it; at a frame
boundary the next read may be scanned again. ``args()`` decodes arguments to ``str`` (UTF-8,
undecodable bytes kept as surrogates so binary key names survive the round trip). Like
Redis, a request that does not start with ``*`` is an *inline* command
(``PING\\r\\n`` in telnet).

Replies are plain Python values, encoded per protocol version:

    int → ``:``     str/bytes → ``$``    None → ``$-1`` / ``_``    list/tuple → ``*``
    float → a sample value: RESP2 simple string in RedisTimeSeries' format, RESP3 ``,``
    dict → ``%`` (RESP2: flat array)    RespSet → ``~`` (RESP2: array)
    bool → ``#`` (RESP2: ``:1``/``:0``) Simple → ``+``   Error → ``-``
    Verbatim → ``=`` (RESP2: bulk)      Raw → bytes already encoded
"""

from __future__ import annotations

import decimal
import math
import re
from typing import Any

import hiredis

from . import frames
from .frames import Writes

# Redis' limit (server.h) of an inline request without newline.
INLINE_MAX_BYTES = 64 * 1024
# hiredis allocates an announced array at once (lazily zeroed, but freeing it walks every
# slot: a client announcing 2**31 arguments then hanging up costs seconds of CPU), so counts
# of 9+ digits are refused. The scan cannot tell a header from the same bytes inside a bulk
# string; "*123456789\r\n" in a key or value is the price of the guard.
_HUGE_COUNT = re.compile(rb"\*[0-9]{9,}\r")
# The most unparsed bytes one pending command may hold before the client is dropped (Redis'
# client-query-buffer-limit is 1 GiB; Python objects per argument make ours costlier).
QUERY_BUFFER_LIMIT = 512 * 2**20

# Bytes one incomplete frame may hold before the stream is left to hiredis: each read
# re-joins and re-scans the pending bytes, so this bounds that work per read.
FRAMED_PENDING_BYTES = 1 << 20

Command = list[bytes]  # as parsed; handlers get list[str] (see args)
Request = Command | Writes  # what the parser yields: one command, or a run of writes


class ProtocolError(Exception):
    """The byte stream is not RESP; Redis answers ``-ERR Protocol error: …`` and closes."""


class Simple(str):
    """A RESP simple string (``+OK``)."""

    __slots__ = ()


class Error(str):
    """A RESP error; the text starts with its code (``ERR …``, ``WRONGPASS …``)."""

    __slots__ = ()


class Verbatim(str):
    """Text Redis sends as a RESP3 verbatim string (INFO, CLIENT INFO)."""

    __slots__ = ()


class RespSet(list):  # type: ignore[type-arg]
    """A RESP3 set (an array in RESP2); a list so that order stays deterministic."""

    __slots__ = ()


class Raw(bytes):
    """A reply already encoded (the batched ingest path builds these)."""

    __slots__ = ()


OK = Simple("OK")
QUEUED = Simple("QUEUED")


# -- requests ---------------------------------------------------------------------------------
_HIREDIS_ERRORS = (
    ("reply type byte", None),
    ("multi-bulk length", "invalid multibulk length"),
    ("bulk string length", "invalid bulk length"),
)


class RequestParser:
    """Turns a byte stream into commands; feed whatever the socket delivered.

    Not thread-safe; one per connection. After a ProtocolError the parser is unusable (the
    connection must be closed, as Redis does).
    """

    def __init__(self) -> None:
        self._reader = hiredis.Reader()  # bytes: decoding only what needs it is cheaper
        # Inline commands are read until the first ``*``: after that every byte is RESP
        # (clients never switch back).
        self._inline_mode = True
        self._inline = b""  # a partial inline line
        self._buf = b""  # the bytes of an incomplete write frame after a run
        self._resume: tuple[int, int] | None = None  # frame_end's place in it
        self._pending = 0  # hiredis: bytes fed since the last complete command
        self._tail = b""  # hiredis: the last bytes fed, so that a header split across reads is seen

    def feed(self, data: bytes) -> tuple[list[Request], ProtocolError | None]:
        """Parses ``data``; returns the complete requests and the error that ended the stream.

        The requests before an error are valid and must be executed before the error reply.
        """
        cmds: list[Request] = []
        try:
            if self._inline_mode:
                data = self._take_inline(data, cmds)  # type: ignore[arg-type]
            if data:
                self._feed_framed(data, cmds)
        except ProtocolError as exc:
            return cmds, exc
        return cmds, None

    def _feed_framed(self, data: bytes, cmds: list[Request]) -> None:
        if self._reader.has_data():  # hiredis holds part of a frame: these bytes are its
            self._feed_hiredis(data, cmds)  # type: ignore[arg-type]
            return
        buf = self._buf + data if self._buf else data
        resume, self._resume, self._buf = self._resume, None, b""
        n = len(buf)
        pos = 0
        general = -1  # where complete frames not yet given to hiredis start
        lines = None
        while pos < n:
            write = resume is not None or frames.is_candidate(buf, pos)
            if resume is None and write and n - pos >= frames.SCAN_MIN_BYTES:
                if lines is None:
                    lines = frames.Lines(buf)
                run, end = frames.scan(lines, pos)
                if run is not None:
                    if general >= 0:
                        self._general(buf[general:pos], cmds)
                        general = -1
                    cmds.append(run)
                    pos = end
                    continue
            if not write and not (n - pos < 24 and buf[pos] == 42):
                break  # not a write: hiredis takes the rest (below)
            # A write the scan did not take (too few bytes to pay, a CRLF in an argument,
            # incomplete): found in Python, so that an incomplete one is kept here and the
            # next read can be scanned from its start.
            try:
                found = frames.frame_end(buf, pos, resume)
            except ValueError:
                if general >= 0:
                    self._general(buf[general:pos], cmds)
                raise ProtocolError("invalid multibulk length") from None
            resume = None
            if found is None:
                break
            end, state = found
            if end < 0:  # incomplete: kept from its start, with frame_end's place in it
                if general >= 0:
                    self._general(buf[general:pos], cmds)
                self._resume = None if state is None else (state[0] - pos, state[1])
                self._buf = buf[pos:]
                return self._limit_pending(cmds)
            if not frames.is_candidate(buf, pos):
                break
            if general < 0:
                general = pos
            pos = end
        if general >= 0:
            self._general(buf[general:pos], cmds)
        if pos < n:  # hiredis keeps a partial frame: the next reads go to it until it is done
            self._feed_hiredis(buf[pos:], cmds)  # type: ignore[arg-type]

    def _limit_pending(self, cmds: list[Request]) -> None:
        if len(self._buf) > FRAMED_PENDING_BYTES:  # too big to re-join per read: hiredis
            rest, self._buf, self._resume = self._buf, b"", None
            self._feed_hiredis(rest, cmds)  # type: ignore[arg-type]

    def _general(self, data: bytes, cmds: list[Request]) -> None:
        """Complete frames (``frame_end`` vouched for them) → hiredis → commands."""
        self._reader.feed(data)
        self._drain(cmds)  # type: ignore[arg-type]

    def _feed_hiredis(self, data: bytes, cmds: list[Command]) -> None:
        if _HUGE_COUNT.search(self._tail + data[:16]):
            raise ProtocolError("invalid multibulk length")
        huge = _HUGE_COUNT.search(data)
        if huge:  # the commands before it are still answered
            data = data[: huge.start()]
        self._tail = data[-16:]
        self._reader.feed(data)
        self._pending += len(data)
        self._drain(cmds)
        if huge:
            raise ProtocolError("invalid multibulk length")

    def _take_inline(self, data: bytes, cmds: list[Command]) -> bytes:
        while data:
            if not self._inline and data[0] == 42:  # "*": RESP from here on
                self._inline_mode = False
                return data
            nl = data.find(b"\n")
            if nl < 0:
                if len(self._inline) + len(data) > INLINE_MAX_BYTES:
                    raise ProtocolError("too big inline request")
                self._inline += data
                return b""
            line, data = self._inline + data[:nl], data[nl + 1 :]
            self._inline = b""
            if len(line) > INLINE_MAX_BYTES:
                raise ProtocolError("too big inline request")
            args = split_inline(line.rstrip(b"\r"))
            if args:
                cmds.append(args)
        return data

    def _drain(self, cmds: list[Command]) -> None:
        start = len(cmds)
        error = None
        try:  # a C-level loop over the frames; on error, the frames before it are kept
            cmds.extend(iter(self._reader.gets, False))
        except hiredis.ProtocolError as exc:
            error = ProtocolError(_hiredis_message(str(exc)))
        new = len(cmds) - start
        if new and (list(map(type, cmds[start:])).count(list) != new or [] in cmds[start:]):
            self._clean(cmds, start)
        if error is not None:
            raise error
        if self._reader.has_data():
            if new:
                self._pending = 0  # an approximation: the partial command's bytes so far
            if self._pending > QUERY_BUFFER_LIMIT:
                raise ProtocolError("query buffer limit exceeded")
        else:
            self._pending = 0

    @staticmethod
    def _clean(cmds: list[Any], start: int) -> None:
        """Drops empty and null arrays (Redis ignores them); a frame that is not an array
        ends the stream."""
        kept = []
        for cmd in cmds[start:]:
            if type(cmd) is list:
                if cmd:
                    kept.append(cmd)
            elif cmd is not None:
                del cmds[start:]
                cmds.extend(kept)
                raise ProtocolError(f"expected '*', got '{_type_char(cmd)}'")
        del cmds[start:]
        cmds.extend(kept)


def check_args(cmd: list[Any]) -> None:
    """Raises ProtocolError unless every argument was a bulk string."""
    for arg in cmd:
        if type(arg) is not bytes:
            raise ProtocolError(f"expected '$', got '{_type_char(arg)}'")


def args(cmd: Command) -> list[str]:
    """A command's arguments as text (binary-safe: undecodable bytes become surrogates)."""
    return [a.decode("utf-8", "surrogateescape") for a in cmd]


def _type_char(value: object) -> str:
    if isinstance(value, bool):
        return "#"
    if isinstance(value, int):
        return ":"
    if isinstance(value, float):
        return ","
    if isinstance(value, list):
        return "*"
    if isinstance(value, dict):
        return "%"
    if isinstance(value, set):
        return "~"
    if isinstance(value, Exception):
        return "-"
    return "$" if value is None else "?"


def _hiredis_message(text: str) -> str:
    for needle, message in _HIREDIS_ERRORS:
        if needle in text.lower():
            if message is None:  # 'Protocol error, got "x" as reply type byte'
                m = re.search(r'got "(.*)" as', text)
                return f"expected '$', got '{m.group(1) if m else '?'}'"
            return message
    return text


_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_HEX = b"0123456789abcdefABCDEF"


def split_inline(line: bytes) -> list[bytes]:
    """Splits an inline command like Redis' ``sdssplitargs`` (quotes, ``\\xHH`` escapes)."""
    out: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in b" \t\n\r\v\f":
            i += 1
        if i >= n:
            return out
        cur = bytearray()
        quote = 0
        while True:
            if quote == 34:  # inside "..."
                if i >= n:
                    raise ProtocolError("unbalanced quotes in request")
                c = line[i]
                if (c == 92 and i + 3 < n and line[i + 1] == 120
                        and line[i + 2] in _HEX and line[i + 3] in _HEX):
                    cur.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 92 and i + 1 < n:
                    i += 1
                    cur.append(_ESCAPES.get(line[i], line[i]))
                elif c == 34:
                    if i + 1 < n and line[i + 1] not in b" \t\n\r\v\f":
                        raise ProtocolError("unbalanced quotes in request")
                    i += 1
                    break
                else:
                    cur.append(c)
            elif quote == 39:  # inside '...'
                if i >= n:
                    raise ProtocolError("unbalanced quotes in request")
                c = line[i]
                if c == 92 and i + 1 < n and line[i + 1] == 39:
                    i += 1
                    cur.append(39)
                elif c == 39:
                    if i + 1 < n and line[i + 1] not in b" \t\n\r\v\f":
                        raise ProtocolError("unbalanced quotes in request")
                    i += 1
                    break
                else:
                    cur.append(c)
            else:
                if i >= n or line[i] in b" \t\n\r\v\f":
                    break
                c = line[i]
                if c in (34, 39):
                    quote = c
                else:
                    cur.append(c)
            i += 1
        out.append(bytes(cur))


# -- replies ----------------------------------------------------------------------------------
def encode_str(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def error_line(message: str) -> bytes:
    """``-message\\r\\n`` with newlines flattened, as Redis' addReplyError does."""
    return b"-" + encode_str(message.replace("\r", " ").replace("\n", " ")) + b"\r\n"


def format_value(v: float) -> str:
    """A sample value as RedisTimeSeries writes it in RESP2 (shortest round trip; ``E``
    notation when |v| < 1 or |v| >= 1e16): 0.1 → ``1E-1``, 12.5 → ``12.5``, 1e16 → ``1E16``."""
    a = abs(v)
    if 1.0 <= a < 1e16:
        r = repr(v)
        return r[:-2] if r.endswith(".0") else r
    if v == 0.0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    sign, digits, exp = decimal.Decimal(repr(v)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    exp10 = int(exp) + len(digits) - 1
    mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
    return f"{'-' if sign else ''}{mant}E{exp10}"


def format_double(v: float) -> str:
    """A RESP3 double (``,``) body."""
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    r = repr(v)
    return r[:-2] if r.endswith(".0") else r


def encode(value: Any, proto: int) -> bytes:
    """One reply value as RESP ``proto`` (2 or 3) bytes."""
    out: list[bytes] = []
    _encode(value, proto, out)
    return b"".join(out)


def _encode(value: Any, proto: int, out: list[bytes]) -> None:  # noqa: C901 - a type switch
    t = type(value)
    if t is int:
        out.append(b":%d\r\n" % value)
    elif t is str:
        b = encode_str(value)
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    elif t is list or t is tuple:
        out.append(b"*%d\r\n" % len(value))
        for item in value:
            _encode(item, proto, out)
    elif t is float:
        if proto == 3:
            out.append(b",%s\r\n" % format_double(value).encode())
        else:
            out.append(b"+%s\r\n" % format_value(value).encode())
    elif t is Simple:
        out.append(b"+" + encode_str(value) + b"\r\n")
    elif t is Error:
        out.append(error_line(value))
    elif value is None:
        out.append(b"_\r\n" if proto == 3 else b"$-1\r\n")
    elif t is dict:
        out.append((b"%%%d\r\n" if proto == 3 else b"*%d\r\n")
                   % (len(value) if proto == 3 else 2 * len(value)))
        for k, v in value.items():
            _encode(k, proto, out)
            _encode(v, proto, out)
    elif t is RespSet:
        out.append((b"~%d\r\n" if proto == 3 else b"*%d\r\n") % len(value))
        for item in value:
            _encode(item, proto, out)
    elif t is bool:
        out.append((b"#t\r\n" if value else b"#f\r\n") if proto == 3
                   else (b":1\r\n" if value else b":0\r\n"))
    elif t is bytes or t is Raw:
        if t is Raw:
            out.append(value)
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(value), value))
    elif t is Verbatim:
        b = encode_str(value)
        if proto == 3:
            out.append(b"=%d\r\ntxt:%s\r\n" % (len(b) + 4, b))
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    else:
        raise TypeError(f"cannot encode {t.__name__} as RESP")


def encode_samples(samples: list[tuple[int, float]], proto: int) -> bytes:
    """An array of ``[ts, value]`` pairs (TS.RANGE), the common large reply, in one pass."""
    if proto == 3:
        body = "".join([f"*2\r\n:{t}\r\n,{format_double(v)}\r\n" for t, v in samples])
    else:
        body = "".join([f"*2\r\n:{t}\r\n+{format_value(v)}\r\n" for t, v in samples])
    return b"*%d\r\n" % len(samples) + body.encode()
