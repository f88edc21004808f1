"""Timestamps and values as RedisTimeSeries parses them, one at a time or a column at once.

Pure functions (no I/O, no engine). The column parsers serve batched ``TS.ADD`` /
``TS.MADD``: one regex scan over the joined column proves that C-level ``int``/``float``
agree with RedisTimeSeries for every item; otherwise each item takes the exact scalar parser.

Grammar (reference §2): a timestamp is Redis' ``string2ll`` (``0`` or ``-?[1-9][0-9]*``, no
``+``, spaces or leading zeros) or ``*``; a value is a JSON-style number whose valid prefix
is taken and the rest ignored (``0x10`` → 0, ``1_0`` → 1), but ``5.``, ``1e``, ``01``, ``.5``,
``+3``, ``inf``, ``nan`` and overflowing numbers are errors.
"""

from __future__ import annotations

import re

import numpy as np

from ...errors import InvalidSampleError

TS_OK, TS_INVALID, TS_NEGATIVE = 0, 1, 2
TS_MESSAGES = {TS_INVALID: "invalid timestamp",
               TS_NEGATIVE: "invalid timestamp, must be a nonnegative integer"}

_INT = re.compile(r"0|-?[1-9][0-9]{0,18}")
_NUM = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_INT64_MAX = 2**63 - 1


def timestamp_status(text: str) -> tuple[int, int]:
    """``(status, ts)`` for one explicit timestamp (not ``*``)."""
    if not _INT.fullmatch(text):
        return TS_INVALID, 0
    ts = int(text)
    if ts > _INT64_MAX or ts < -_INT64_MAX - 1:
        return TS_INVALID, 0
    if ts < 0:
        return TS_NEGATIVE, 0
    return TS_OK, ts


def parse_timestamp(text: str, now_ms: int) -> int:
    """One timestamp argument (``*`` = ``now_ms``); raises InvalidSampleError."""
    if text == "*":
        return now_ms
    status, ts = timestamp_status(text)
    if status:
        raise InvalidSampleError(TS_MESSAGES[status])
    return ts


def value_or_none(text: str) -> float | None:
    """One value argument, or None when RedisTimeSeries would answer ``invalid value``."""
    m = _NUM.match(text)
    if m is None:
        return None
    end = m.end()
    if end < len(text):
        nxt = text[end]
        if (nxt.isdigit() or (nxt == "." and m.group(2) is None)
                or (nxt in "eE" and m.group(3) is None)):
            return None  # 01, 5., 1e: the parser fails instead of stopping
    v = float(m.group())
    if v in (float("inf"), float("-inf")):
        return None
    return v


def parse_value(text: str, message: str = "invalid value") -> float:
    v = value_or_none(text)
    if v is None:
        raise InvalidSampleError(message)
    return v


# -- columns ----------------------------------------------------------------------------------
# A column takes the fast path when cheap C-level scans of the joined column rule out every
# form on which Python's int()/float() and RedisTimeSeries disagree; otherwise each item takes
# the scalar parser. (Leading zeros are allowed by int()/float(), not by RedisTimeSeries.)
_LEADING_ZERO = re.compile(rb"\n-?0[0-9]")
_VALUE_CHARS = re.compile(rb"[-+.eE0-9\n]*")
# Substrings float() accepts and RedisTimeSeries refuses: "+3", ".5", "-.5", "5.", "1.e5".
_VALUE_BAD = (b"\n+", b"\n.", b"-.", b".\n", b".e", b".E")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def parse_timestamps(texts: list[bytes], now_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ts int64, status int8)`` for a column of timestamp arguments (``*`` = now_ms)."""
    n = len(texts)
    if b"*" in texts:
        now = str(now_ms).encode()
        texts = [now if t == b"*" else t for t in texts]
    status = np.zeros(n, np.int8)
    joined = b"\n" + b"\n".join(texts) + b"\n"
    if (joined.replace(b"\n", b"").isdigit() and b"\n\n" not in joined
            and not _LEADING_ZERO.search(joined)):
        try:
            return np.fromiter(map(int, texts), np.int64, n), status
        except OverflowError:  # beyond int64: the scalar parser says which
            pass
    ts = np.zeros(n, np.int64)
    for i, text in enumerate(texts):
        status[i], ts[i] = timestamp_status(_text(text))
    return ts, status


def parse_values(texts: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """``(values float64, ok bool)`` for a column of value arguments."""
    n = len(texts)
    joined = b"\n" + b"\n".join(texts) + b"\n"
    if (_VALUE_CHARS.fullmatch(joined) and b"\n\n" not in joined
            and not any(bad in joined for bad in _VALUE_BAD)
            and not _LEADING_ZERO.search(joined)):
        try:
            values = np.fromiter(map(float, texts), np.float64, n)
        except ValueError:
            pass
        else:
            ok = np.isfinite(values)
            if ok.all():
                return values, ok
    values = np.zeros(n)
    ok = np.zeros(n, bool)
    for i, text in enumerate(texts):
        v = value_or_none(_text(text))
        if v is not None:
            values[i], ok[i] = v, True
    return values, ok
