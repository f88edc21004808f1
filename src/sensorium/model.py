"""Pure value types shared by every layer: policies, aggregators, time ranges.

Times are int64 epoch milliseconds (``*_ms``); ranges are inclusive at both ends.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from .errors import InvalidArgument


class DuplicatePolicy(enum.IntEnum):
    """What a write does when its timestamp already holds a sample (RedisTimeSeries names)."""

    BLOCK = 0
    FIRST = 1
    LAST = 2
    MIN = 3
    MAX = 4
    SUM = 5

    @classmethod
    def parse(cls, name: str | DuplicatePolicy) -> DuplicatePolicy:
        if isinstance(name, DuplicatePolicy):
            return name
        try:
            return cls[str(name).upper()]
        except KeyError:
            raise InvalidArgument("Unknown DUPLICATE_POLICY") from None


# Aggregators a rule or a range query accepts; percentiles are written pNN or pNN.N.
AGGREGATORS = (
    "avg", "sum", "min", "max", "range", "count", "first", "last",
    "std.p", "std.s", "var.p", "var.s", "twa",
)
# Reducers GROUPBY … REDUCE accepts (RedisTimeSeries refuses first/last/twa there).
REDUCERS = ("avg", "sum", "min", "max", "range", "count", "std.p", "std.s", "var.p", "var.s")

_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")


def percentile_of(aggregator: str) -> float | None:
    """The quantile in [0, 1] that ``pNN`` names, or None if it is not a percentile."""
    m = _PERCENTILE.match(aggregator)
    return float(m.group(1)) / 100.0 if m else None


def parse_aggregator(name: str) -> str:
    """Lower-case, validated aggregator name; raises InvalidArgument otherwise."""
    agg = str(name).lower()
    if agg in AGGREGATORS or percentile_of(agg) is not None:
        return agg
    raise InvalidArgument("Unknown aggregation type")


# -- durations (config files, HTTP parameters, tier policies) --------------------------------
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
MONTH_MS = 30 * DAY_MS  # a "month" is 30 days: buckets have a fixed size
YEAR_MS = 365 * DAY_MS

_UNITS = {
    "ms": 1, "s": 1000, "sec": 1000, "m": MINUTE_MS, "min": MINUTE_MS, "h": HOUR_MS,
    "d": DAY_MS, "w": 7 * DAY_MS, "mo": MONTH_MS, "month": MONTH_MS, "y": YEAR_MS,
}
_TERM = re.compile(r"(\d+(?:\.\d+)?)(ms|sec|s|min|month|mo|m|h|d|w|y)")


def parse_duration_ms(text: str, *, m_is_month: bool = False) -> int:
    """``"24h"`` → 86_400_000. A bare integer is milliseconds. Must be positive."""
    text = text.strip().lower()
    if text.isdigit():
        ms = int(text)
    else:
        ms, pos = 0.0, 0
        for match in _TERM.finditer(text):
            if match.start() != pos:
                break
            unit = match.group(2)
            scale = MONTH_MS if (unit == "m" and m_is_month) else _UNITS[unit]
            ms += float(match.group(1)) * scale
            pos = match.end()
        if pos != len(text) or pos == 0:
            raise ValueError(f"{text!r} is not a duration (e.g. 500ms, 90s, 5min, 24h, 7d, "
                             f"1w, 1mo, 1y)")
        ms = round(ms)
    if ms <= 0:
        raise ValueError(f"{text!r}: a duration must be positive")
    return int(ms)



# -- one JSON reading (HTTP JSON batches, MQTT payloads) --------------------------------------
MAX_TS_MS = 2**62  # the engine's latest timestamp ("+"): later ones are refused


def finite_number(value: object) -> bool:
    """A JSON number that is a sample value: int or float, finite (bool is no number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float64
        return False


def reading_timestamp(value: object, now_ms: int, text_ms: Callable[[str], int]) -> int:
    """A reading's ``timestamp``: absent → ``now_ms``; text → ``text_ms(value)`` (each
    protocol's own time syntax); else epoch ms (an integral float counts) in 0..MAX_TS_MS.

    Raises:
        ValueError: with a message fit for the client.
    """
    if value is None:
        return now_ms
    if isinstance(value, str):
        return text_ms(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("timestamp must be epoch milliseconds or an RFC 3339 string")
    return checked_ms(value)


def checked_ms(value: int) -> int:
    if not 0 <= value <= MAX_TS_MS:
        raise ValueError(f"timestamp must be in 0..{MAX_TS_MS}")
    return value

@dataclass(frozen=True, slots=True)
class TimeRange:
    """Inclusive ``[min_time_ms, max_time_ms]``."""

    min_time_ms: int
    max_time_ms: int

    def __contains__(self, ts_ms: int) -> bool:
        return self.min_time_ms <= ts_ms <= self.max_time_ms


MIN_TS = 0
MAX_TS = 2**63 - 1
