"""Request framing without per-argument objects: runs of plain TS.ADD/TS.MADD → columns.

Pipelined writes arrive by the thousand per socket read. A general RESP parser makes a list
and a ``bytes`` per argument (hiredis: about 0.6 µs per ``TS.ADD``), and the numbers then
need one ``int()``/``float()`` each. Here the frames of a run are found and checked with
numpy over the raw buffer, and the columns come straight out of it:

1. ``Lines``: every ``\\r\\n`` of the buffer, once per read (one vectorised compare).
2. ``scan``: frames from a line on, while they are ``*4 $6 TS.ADD`` (checked for a whole
   stretch at once) or ``*3k+1 $7 TS.MADD`` (one Python step per frame, ~100 samples).
   Then every argument header of the run is checked at once: it must be exactly
   ``b"$%d" % len(next line)``. A bulk string holding ``\\r\\n`` fails that check; the run
   ends before its frame, which takes the general path.
3. Columns, reading the bytes before any offset as one little-endian uint64 word
   (``Lines.words``): distinct keys by their words (one ``bytes`` per distinct key, and a
   key index per row); timestamps and values converted eight digits at a time (SWAR, as
   simdjson does) where the text is of the plain form, which gives exactly what
   ``int``/``float`` give; any other text takes ``numbers.py``'s scalar parser, so the
   grammar stays RedisTimeSeries'.

``frame_end`` finds where one general frame ends (``*n`` then ``n`` bulk strings), so that
the parser can keep an incomplete write frame itself and scan the next read from its start.

Pure: no sockets, no engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .numbers import timestamp_status, value_or_none

if TYPE_CHECKING:
    from .codec import Command

# A scan costs ~100 numpy calls whatever its length; below this many bytes (~120 TS.ADD)
# the general parser is cheaper.
SCAN_MIN_BYTES = 8192
_ADD_LINES = 9  # *4 $6 TS.ADD $k key $t ts $v value
_MAX_VALUE_DIGITS = 15  # m < 2**53 and 10**f exact: m / 10**f is float()'s correctly rounded result
_POW10 = np.array([10.0**i for i in range(_MAX_VALUE_DIGITS + 1)])  # exact doubles


class Lines:
    """The ``\\r\\n``-terminated lines of one buffer: ``starts``/``ends`` (int64 arrays,
    ``ends`` at the ``\\r``). A lone ``\\r`` or ``\\n`` is part of a line."""

    __slots__ = ("buf", "a", "starts", "ends", "_words")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self._words: np.ndarray | None = None
        self.a = a = np.frombuffer(buf, np.uint8)
        self.ends = np.flatnonzero((a[:-1] == 13) & (a[1:] == 10))
        self.starts = np.empty_like(self.ends)
        if len(self.ends):
            self.starts[0] = 0
            self.starts[1:] = self.ends[:-1] + 2

    def words(self, end: np.ndarray) -> np.ndarray:
        """The 8 bytes before each offset in ``end`` as little-endian uint64 (the byte before
        ``end`` is the highest; zero bytes before the buffer's start)."""
        if self._words is None:
            # Row k holds the words starting at k, k+8, …: any word is one 2-D gather
            # (gathering from an (n, 8) sliding window costs 4x more).
            padded = np.zeros(len(self.a) + 16, np.uint8)
            padded[8 : 8 + len(self.a)] = self.a
            m = (len(padded) - 8) // 8
            self._words = np.empty((8, m), np.uint64)
            for k in range(8):
                self._words[k] = np.frombuffer(padded.data, "<u8", count=m, offset=k)
        return self._words[end & 7, end >> 3]

    def bytes8(self, end: np.ndarray) -> np.ndarray:
        """``words`` as an ``(n, 8)`` uint8 array, first byte first."""
        return self.words(end).view(np.uint8).reshape(len(end), 8)

    def line_at(self, pos: int) -> int:
        """The index of the line starting at byte ``pos`` (one must)."""
        i = int(np.searchsorted(self.starts, pos))
        assert i == len(self.starts) or self.starts[i] == pos, "BUG: not a line start"
        return i


class Writes:
    """A run of plain ``TS.ADD key ts value`` / ``TS.MADD`` commands as columns.

    ``sizes`` gives per command 0 (TS.ADD) or its row count (TS.MADD); None when all are
    TS.ADD. ``keys`` are the distinct keys (bytes); per row: ``key_index`` into them, ``ts``
    (int64) with ``ts_status`` (int8, ``numbers``'
    TS_* codes) and ``values`` (float64) with ``value_ok``. ``star`` holds the rows whose
    timestamp is ``*``: the executor sets them to its clock (``ts`` is 0 there until then).
    """

    __slots__ = ("n_cmds", "sizes", "keys", "key_index", "ts", "ts_status", "values",
                 "value_ok", "star",
                 "_ts_text", "_commands")

    def __init__(self, n_cmds: int, sizes: list[int] | None, keys: list[bytes],
                 key_index: np.ndarray,
                 ts: np.ndarray, ts_status: np.ndarray, values: np.ndarray,
                 value_ok: np.ndarray, star: np.ndarray, ts_text: _TsText | list[bytes],
                 commands: _Source | list[Command]) -> None:
        self.n_cmds, self.sizes, self.keys, self.key_index = n_cmds, sizes, keys, key_index
        self.ts, self.ts_status = ts, ts_status
        self.values, self.value_ok = values, value_ok
        self.star = star
        self._ts_text = ts_text
        self._commands = commands

    def commands(self) -> list[Command]:
        """The commands as a general parser gives them (MULTI queues, IGNORE filters)."""
        src = self._commands
        return src if isinstance(src, list) else src.commands()

    def ok_replies(self) -> bytes:
        """The replies when every row was written: ``:ts`` per TS.ADD, arrays for TS.MADD."""
        text = self._ts_text
        if len(self.star):  # "*" rows answer the time they were given
            text = [b"%d" % t for t in self.ts.tolist()]
        if isinstance(text, list):
            rows = b":" + b"\r\n:".join(text) + b"\r\n"
            lens = np.fromiter(map(len, text), np.int64, len(text)) + 3
        else:
            rows, lens = text.rows()
        if self.sizes is None:
            return rows
        ends = np.cumsum(lens).tolist()
        parts: list[bytes] = []
        row = 0
        for size in self.sizes:
            start = ends[row - 1] if row else 0
            if size == 0:
                parts.append(rows[start : ends[row]])
                row += 1
            else:
                row += size
                parts.append(b"*%d\r\n" % size + rows[start : ends[row - 1]])
        return b"".join(parts)


class _TsText:
    """The timestamp texts of a scanned run, as offsets into the request buffer."""

    __slots__ = ("a", "s", "e")

    def __init__(self, a: np.ndarray, s: np.ndarray, e: np.ndarray) -> None:
        self.a, self.s, self.e = a, s, e

    def rows(self) -> tuple[bytes, np.ndarray]:
        """``:ts\\r\\n`` per row, built by one gather; and each row's length."""
        lens = self.e - self.s
        width = int(lens[0])
        if (lens == width).all():  # the usual case: one 2-D gather
            out = np.empty((len(lens), width + 3), np.uint8)
            out[:, 0] = 58
            out[:, 1 : width + 1] = self.a[self.s[:, None] + np.arange(width)]
            out[:, width + 1] = 13
            out[:, width + 2] = 10
            return out.tobytes(), lens + 3
        row_lens = lens + 3
        ends = np.cumsum(row_lens)
        begins = ends - row_lens
        out = np.empty(int(ends[-1]), np.uint8)
        out[begins] = 58  # ":"
        out[ends - 2] = 13
        out[ends - 1] = 10
        total = int(lens.sum())
        offset = np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens)
        out[np.repeat(begins + 1, lens) + offset] = self.a[np.repeat(self.s, lens) + offset]
        return out.tobytes(), row_lens


class _Source:
    """Where a scanned run's commands are in the buffer (materialised only on demand)."""

    __slots__ = ("lines", "frame_lines", "counts")

    def __init__(self, lines: Lines, frame_lines: np.ndarray, counts: np.ndarray) -> None:
        self.lines, self.frame_lines, self.counts = lines, frame_lines, counts

    def commands(self) -> list[Command]:
        buf, starts, ends = self.lines.buf, self.lines.starts, self.lines.ends
        out = []
        for at, n in zip(self.frame_lines.tolist(), self.counts.tolist(), strict=True):
            idx = range(at + 2, at + 2 + 2 * n, 2)
            out.append([buf[starts[i] : ends[i]] for i in idx])
        return out


def is_candidate(buf: bytes, pos: int) -> bool:
    """Whether the frame at ``pos`` starts like a TS.ADD or TS.MADD (cheap, no numpy)."""
    nl = buf.find(b"\r\n", pos, pos + 12)
    if nl < 0:
        return False
    name = buf[nl + 2 : nl + 13]
    return name[:4] == b"$6\r\n" and name[4:10].lower() == b"ts.add" or (
        name[:4] == b"$7\r\n" and name[4:11].lower() == b"ts.madd")


def scan(lines: Lines, pos: int) -> tuple[Writes | None, int]:
    """The longest run of complete, well-formed plain TS.ADD / TS.MADD frames at ``pos``.

    Returns the run (None if the first frame is not one) and the byte offset after it.
    """
    first = lines.line_at(pos)
    frame_lines, counts, kinds = _frames(lines, first)
    if not len(frame_lines):
        return None, pos
    good = _checked_prefix(lines, frame_lines, counts)
    if good == 0:
        return None, pos
    frame_lines, counts, kinds = frame_lines[:good], counts[:good], kinds[:good]
    last = int(frame_lines[-1] + 2 * counts[-1])
    return _columns(lines, frame_lines, counts, kinds), int(lines.ends[last]) + 2


def _frames(lines: Lines, line: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate frames from ``line`` on: first line, argument count, is-MADD; stops at the
    first frame that is not a complete TS.ADD/TS.MADD by its header and name."""
    buf, starts, ends = lines.buf, lines.starts, lines.ends
    nlines = len(ends)
    parts_at: list[np.ndarray] = []
    parts_n: list[np.ndarray] = []
    parts_madd: list[np.ndarray] = []
    single_at: list[int] = []
    single_n: list[int] = []
    single_madd: list[bool] = []
    periodic = True
    while line < nlines:
        if periodic and buf.startswith(b"*4\r\n$6\r\n", int(starts[line])):
            m = _add_stretch(lines, line)
            if m:
                if single_at:  # keep frame order
                    parts_at.append(np.array(single_at, np.int64))
                    parts_n.append(np.array(single_n, np.int64))
                    parts_madd.append(np.array(single_madd, bool))
                    single_at, single_n, single_madd = [], [], []
                parts_at.append(line + _ADD_LINES * np.arange(m, dtype=np.int64))
                parts_n.append(np.full(m, 4, np.int64))
                parts_madd.append(np.zeros(m, bool))
                line += _ADD_LINES * m
                periodic = m >= 16  # short stretches: do not pay numpy's fixed cost again
                continue
        head = buf[starts[line] : ends[line]]
        digits = head[1:]
        if head[:1] != b"*" or not digits.isdigit() or digits[:1] == b"0" or len(digits) > 7:
            break
        n = int(digits)
        if line + 2 * n >= nlines:
            break  # incomplete (or a bulk string holds CRLFs: the check below would fail)
        name = buf[starts[line + 2] : ends[line + 2]].lower()
        if name == b"ts.add" and n == 4:
            madd = False
        elif name == b"ts.madd" and n >= 4 and n % 3 == 1:
            madd = True
        else:
            break
        single_at.append(line)
        single_n.append(n)
        single_madd.append(madd)
        line += 1 + 2 * n
    if single_at:
        parts_at.append(np.array(single_at, np.int64))
        parts_n.append(np.array(single_n, np.int64))
        parts_madd.append(np.array(single_madd, bool))
    if not parts_at:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool)
    if len(parts_at) == 1:
        return parts_at[0], parts_n[0], parts_madd[0]
    return np.concatenate(parts_at), np.concatenate(parts_n), np.concatenate(parts_madd)


def _word(text: bytes) -> np.uint64:
    return np.frombuffer(text, "<u8")[0]


_ADD_HEAD = _word(b"*4\r\n$6\r\n")
_ADD_NAME = _word(b"ts.add\r\n")
_ADD_FOLD = _word(b"  \0   \0\0")  # 0x20 on the letters: any case folds to lower case


def _add_stretch(lines: Lines, line: int) -> int:
    """How many frames from ``line`` on start with the lines ``*4``, ``$6``, ``ts.add`` (any
    case); their arguments are checked later with the rest of the run."""
    starts, ends = lines.starts, lines.ends
    k = (len(ends) - line) // _ADD_LINES
    if k == 0:
        return 0
    name = starts[line + 2 : line + 2 + _ADD_LINES * k : _ADD_LINES]
    name_end = ends[line + 2 : line + 2 + _ADD_LINES * k : _ADD_LINES]
    ok = ((name - starts[line : line + _ADD_LINES * k : _ADD_LINES] == 8)
          & (name_end - name == 6)
          & (lines.words(name) == _ADD_HEAD)
          & ((lines.words(name_end + 2) | _ADD_FOLD) == _ADD_NAME))
    return k if ok.all() else int(np.argmin(ok))


def _checked_prefix(lines: Lines, frame_lines: np.ndarray, counts: np.ndarray) -> int:
    """How many frames from the start have every argument header canonical (``$`` and the
    decimal length, no leading zero) and equal to the length of the line after it."""
    starts, ends = lines.starts, lines.ends
    total = int(counts.sum())
    first_arg = np.cumsum(counts) - counts
    head = np.repeat(frame_lines + 1, counts) + 2 * (np.arange(total) - np.repeat(first_arg,
                                                                                   counts))
    hs, he = starts[head], ends[head]
    data_len = np.minimum(ends[head + 1] - starts[head + 1], _MAX_ARG_BYTES)
    # The header line must be exactly b"$%d" % data_len: compare its (up to 8) bytes, read
    # as one word ending at the line's end, with the expected text's word.
    ok = ((he - hs == _HEAD_LEN[data_len])
          & ((lines.words(he) & _HEAD_MASK[data_len]) == _HEAD_WORD[data_len]))
    if ok.all():
        return len(frame_lines)
    bad = int(np.argmin(ok))
    return int(np.searchsorted(first_arg, bad, side="right")) - 1


def _head_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per argument length below ``_MAX_ARG_BYTES``: its header's length, and the header as
    the high bytes of a little-endian word with the mask selecting them."""
    texts = [b"$%d" % n for n in range(_MAX_ARG_BYTES)] + [b""]  # the last: never matches
    size = np.array([len(t) for t in texts], np.int64)
    size[-1] = -1
    raw = b"".join(t.rjust(8, b"\0") for t in texts)
    word = np.frombuffer(raw, "<u8").copy()
    mask = np.array([((1 << (8 * len(t))) - 1) << (8 * (8 - len(t))) for t in texts],
                    np.uint64)
    return size, word, mask


_MAX_ARG_BYTES = 1 << 16  # longer arguments (not keys, timestamps, values) end a run
_HEAD_LEN, _HEAD_WORD, _HEAD_MASK = _head_table()


def _columns(lines: Lines, frame_lines: np.ndarray, counts: np.ndarray, kinds: np.ndarray
             ) -> Writes:
    a, starts, ends = lines.a, lines.starts, lines.ends
    rows = (counts - 1) // 3
    total = int(rows.sum())
    first_row = np.cumsum(rows) - rows
    key_line = np.repeat(frame_lines + 4, rows) + 6 * (np.arange(total)
                                                       - np.repeat(first_row, rows))
    ks, ke = starts[key_line], ends[key_line]
    keys, key_index = _distinct_keys(lines, ks, ke)
    ts_s, ts_e = starts[key_line + 2], ends[key_line + 2]
    v_s, v_e = starts[key_line + 4], ends[key_line + 4]
    ts, ts_status, star = _timestamps(lines, ts_s, ts_e)
    values, value_ok = _values(lines, v_s, v_e)
    sizes = None
    if kinds.any():
        sizes = np.where(kinds, rows, 0).tolist()
    return Writes(len(frame_lines), sizes, keys, key_index, ts, ts_status, values, value_ok,
                  star,
                  _TsText(a, ts_s, ts_e), _Source(lines, frame_lines, counts))


_KEY_WORDS = 4  # keys up to 32 bytes are told apart by their words; longer ones are sliced
_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                 0x27D4EB2F165667C5], np.uint64)


def distinct(keys: list[bytes]) -> tuple[list[bytes], np.ndarray]:
    """The distinct keys in first-seen order and each row's index into them."""
    index: dict[bytes, int] = {}
    for k in keys:
        index.setdefault(k, len(index))
    return list(index), np.fromiter(map(index.__getitem__, keys), np.int64, len(keys))


def _distinct_keys(lines: Lines, s: np.ndarray, e: np.ndarray
                   ) -> tuple[list[bytes], np.ndarray]:
    """``distinct`` for keys given as offsets, without a ``bytes`` per row: rows are equal
    when their length and words are, found by sorting a hash of them (and checked)."""
    length = e - s
    n = len(s)
    if n == 0 or int(length.max()) > 8 * _KEY_WORDS:
        buf = lines.buf
        return distinct(list(map(buf.__getitem__, map(slice, s.tolist(), e.tolist()))))
    nwords = max(1, -(-int(length.max()) // 8))
    words = np.empty((nwords, n), np.uint64)
    h = length.astype(np.uint64)
    for k in range(nwords):
        w = lines.words(np.maximum(e - 8 * k, 0)) & ~_LOW[_between(8 * (k + 1) - length, 0, 8)]
        words[k] = w
        h = (h ^ w) * _MIX[k]
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    rep = first[inverse]
    if not ((length[rep] == length).all() and (words[:, rep] == words).all()):
        buf = lines.buf  # a hash collision: compare the bytes themselves
        return distinct(list(map(buf.__getitem__, map(slice, s.tolist(), e.tolist()))))
    order = np.argsort(first)  # first-seen order
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    buf = lines.buf
    starts, ends = s[first[order]].tolist(), e[first[order]].tolist()
    return [buf[a:b] for a, b in zip(starts, ends, strict=True)], rank[inverse]


# Eight ASCII digits in a little-endian uint64 (last digit in the highest byte), as
# simdjson parses them: pairs, then quads, then the eight (SWAR: SIMD within a register).
_U = np.uint64
_ZEROS = _U(0x3030303030303030)
_HIGH_NIBBLES = _U(0xF0F0F0F0F0F0F0F0)
_SIXES = _U(0x0606060606060606)
# _LOW[k]: the k lowest bytes (k = 0..8).
_LOW = np.array([(1 << (8 * k)) - 1 for k in range(9)], np.uint64)


def _between(x: np.ndarray, low: int, high: int) -> np.ndarray:
    """``np.clip`` without its fixed cost (several µs per call)."""
    return np.minimum(np.maximum(x, low), high)


def _swar_digits(w: np.ndarray, pad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values of words of digits whose ``pad`` lowest bytes are not part of the number
    (read as ``0``); and whether all the other bytes are digits."""
    low = _LOW[pad]
    w = (w & ~low) | (_ZEROS & low)
    ok = ((w & _HIGH_NIBBLES) == _ZEROS) & (((w + _SIXES) & _HIGH_NIBBLES) == _ZEROS)
    v = w - _ZEROS
    v = (v * _U(10) + (v >> _U(8))) & _U(0x00FF00FF00FF00FF)
    v = (v * _U(100) + (v >> _U(16))) & _U(0x0000FFFF0000FFFF)
    v = (v * _U(10000) + (v >> _U(32))) & _U(0xFFFFFFFF)
    return v.astype(np.int64), ok


def _timestamps(lines: Lines, s: np.ndarray, e: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Timestamps of 1 to 16 digits without a leading zero are read two words at a time;
    the others (``*``, errors, 17+ digits) by ``numbers.timestamp_status``."""
    a, buf = lines.a, lines.buf
    n = len(s)
    length = e - s
    lo, lo_ok = _swar_digits(lines.words(e), _between(8 - length, 0, 8))
    hi, hi_ok = _swar_digits(lines.words(np.maximum(e - 8, 0)), _between(16 - length, 0, 8))
    ts = hi * 100_000_000 + lo
    plain = (lo_ok & hi_ok & (length >= 1) & (length <= 16)
             & ((a[s] != 48) | (length == 1)))
    status = np.zeros(n, np.int8)
    star: list[int] = []
    if not plain.all():
        for i in np.flatnonzero(~plain).tolist():
            text = buf[s[i] : e[i]]
            if text == b"*":
                ts[i] = 0
                star.append(i)
            else:
                status[i], ts[i] = timestamp_status(text.decode("utf-8", "surrogateescape"))
    return ts, status, np.array(star, np.int64)


def _values(lines: Lines, s: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values of the form ``-?(0|[1-9][0-9]*)(\\.[0-9]+)?`` of up to 8 characters (after
    the sign) are read as one word: mantissa / 10**decimals, exact operands, so one correct
    rounding as float() does. Longer ones take ``_long_values``, errors and other forms
    ``numbers.value_or_none``."""
    a = lines.a
    neg = a[s] == 45
    s1 = s + neg
    length = e - s1
    pad = _between(8 - length, 0, 8)
    raw = lines.bytes8(e)
    at = np.arange(8)
    dot = (raw == 46) & (at >= pad[:, None])
    dots = dot.sum(axis=1)
    d = np.where(dots == 1, dot.argmax(axis=1), 8)  # byte of the "." (8: none)
    w = raw.view("<u8").ravel()
    # Close the gap of the ".": the bytes below it move up one byte.
    low = _LOW[np.minimum(d, 8)]
    high = ~_LOW[np.minimum(d + 1, 8)]
    w = np.where(d < 8, ((w & low) << _U(8)) | (w & high), w)
    mantissa, digits_ok = _swar_digits(w, np.where(d < 8, pad + 1, pad))
    decimals = np.where(d < 8, 7 - d, 0)
    first = a[np.minimum(s1, len(a) - 1)]
    second = a[np.minimum(s1 + 1, len(a) - 1)]
    plain = (digits_ok & (dots <= 1) & (length >= 1) & (length <= 8)
             & (d != pad) & (d != 7)  # neither ".5" nor "5."
             & ((first != 48) | (length == 1) | (second == 46)))  # no leading zero
    values = mantissa / _POW10[_between(decimals, 0, _MAX_VALUE_DIGITS)]
    values = np.where(neg, -values, values)
    ok = plain
    if not plain.all():
        rest = np.flatnonzero(~plain)
        values[rest], ok[rest] = _long_values(lines, s[rest], e[rest])
    return values, ok


def _long_values(lines: Lines, s: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_values`` for up to 15 digits, with a byte matrix; the others go through
    ``value_or_none``."""
    a, buf = lines.a, lines.buf
    n = len(s)
    neg = a[s] == 45
    s1 = s + neg
    length = e - s1
    width = int(length.max()) if n else 0
    values = np.zeros(n)
    plain = np.zeros(n, bool)
    if 1 <= width <= _MAX_VALUE_DIGITS + 1:
        idx = e[:, None] - width + np.arange(width)
        inside = idx >= s1[:, None]
        ch = np.where(inside, a[np.clip(idx, 0, len(a) - 1)], 48).astype(np.int64)
        dot = ch == 46
        d = ch - 48
        is_digit = (d >= 0) & (d <= 9)
        dots = dot.sum(axis=1)
        dot_at = np.where(dots == 1, dot.argmax(axis=1), width)  # column of the "."
        decimals = width - 1 - dot_at
        first = width - length  # column of the first character
        plain = ((is_digit | dot).all(axis=1) & (dots <= 1) & (length >= 1)
                 & (dot_at != first) & (decimals != 0)
                 & ~((ch[np.arange(n), np.minimum(first, width - 1)] == 48)  # leading zero
                     & (dot_at != first + 1) & (length > 1))
                 & (length - dots <= _MAX_VALUE_DIGITS))
        d = np.where(is_digit, d, 0)
        below = np.cumsum(is_digit[:, ::-1], axis=1)[:, ::-1] - is_digit  # digits to the right
        mantissa = (d * 10 ** np.minimum(below, 18)).sum(axis=1)
        decimals = _between(np.where(dots == 1, decimals, 0), 0, _MAX_VALUE_DIGITS)
        values = mantissa / _POW10[decimals]
        values = np.where(neg, -values, values)
    ok = plain.copy()
    if not plain.all():
        for i in np.flatnonzero(~plain).tolist():
            v = value_or_none(buf[s[i] : e[i]].decode("utf-8", "surrogateescape"))
            if v is not None:
                values[i], ok[i] = v, True
            else:
                values[i] = 0.0
    return values, ok


def frame_end(buf: bytes, pos: int, resume: tuple[int, int] | None = None
              ) -> tuple[int, tuple[int, int] | None] | None:
    """Where the frame at ``pos`` (``*n`` then ``n`` bulk strings) ends.

    Returns ``(end, None)`` for a complete frame, ``(-1, state)`` when more bytes are needed
    (pass ``state`` back as ``resume`` with the same ``pos`` to continue, so a large frame
    arriving in many reads is walked once), or None when the frame is anything else
    (another reply type, a non-canonical length): the caller then leaves the rest of the
    stream to hiredis, which answers it exactly as before.

    Raises:
        ValueError: the frame announces 9+ digits of arguments (refused, see codec).
    """
    n = len(buf)
    if resume is None:
        nl = buf.find(b"\r\n", pos, pos + 16)
        if nl < 0:
            if not _partial_header(buf[pos : pos + 16], b"*", n - pos):
                return None
            if len(buf[pos + 1 : pos + 16].rstrip(b"\r")) >= 9:
                raise ValueError("huge count")
            return -1, None
        head = buf[pos:nl]
        if head == b"*-1" or head == b"*0":
            return nl + 2, None
        digits = head[1:]
        if head[:1] != b"*" or not digits.isdigit() or digits[:1] == b"0":
            return None
        if len(digits) >= 9:
            raise ValueError("huge count")
        at, left = nl + 2, int(digits)
    else:
        at, left = resume
    while left:
        nl = buf.find(b"\r\n", at, at + 16)
        if nl < 0:
            if not _partial_header(buf[at : at + 16], b"$", n - at):
                return None
            return -1, (at, left)
        head = buf[at:nl]
        digits = head[1:]
        if head[:1] != b"$" or not digits.isdigit() or (digits[:1] == b"0" and digits != b"0"):
            return None
        end = nl + 2 + int(digits)
        if end + 2 > n:
            return -1, (at, left)
        if buf[end : end + 2] != b"\r\n":
            return None
        at, left = end + 2, left - 1
    return at, None


def _partial_header(tail: bytes, kind: bytes, available: int) -> bool:
    """Whether ``tail``, all the bytes left, can still become a ``*n``/``$n`` header line."""
    if available >= 16:
        return False
    if tail.endswith(b"\r"):
        tail = tail[:-1]
    if tail == b"":
        return True
    digits = tail[1:]
    return tail[:1] == kind and (digits == b"" or digits.isdigit()
                                 or (kind == b"*" and digits == b"-"))
