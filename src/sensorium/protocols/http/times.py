"""Time and duration parameters of the HTTP API (read path, request parsing; pure).

Accepted time forms (``parse_time``):

    1700000000000            epoch milliseconds
    2024-05-01T12:00:00Z     RFC 3339 (a time without an offset is UTC; a bare date is midnight)
    now                      the server's clock
    -24h   now-24h   now+5m  relative to now (units below; compound ``-1h30m`` allowed)
    -   +                    the earliest / latest representable time (TS.RANGE's ``-``/``+``)

Duration units (``parse_duration_ms``): ``ms``, ``s``, ``m``/``min``, ``h``, ``d``, ``w``,
``mo`` (30 days), ``y`` (365 days); a bare integer is milliseconds. In a *period*
(``parse_period_ms``, seed 003's ``period=1m``) a lone ``m`` means a month instead, as that
API documents; write ``min`` or ``mo`` to be unambiguous anywhere.

Every function raises ``ValueError`` with a message fit for the client; the caller names the
parameter.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ...model import DAY_MS, HOUR_MS, MINUTE_MS, MONTH_MS, YEAR_MS, parse_duration_ms

EARLIEST_MS = 0
LATEST_MS = 2**62  # the engine's "+" bound
_RELATIVE = re.compile(r"^(?:now)?([+-])(.+)$")

__all__ = ["DAY_MS", "HOUR_MS", "MINUTE_MS", "MONTH_MS", "YEAR_MS", "parse_duration_ms",
           "parse_period_ms", "parse_time"]


def parse_period_ms(text: str) -> int:
    """A look-back period in seed 003's vocabulary: ``1h 1d 1w 1m 1y`` (``m`` = month)."""
    return parse_duration_ms(text, m_is_month=True)


def parse_time(text: str, now_ms: int) -> int:
    """One time parameter → epoch ms (see the module docstring for the forms)."""
    text = text.strip()
    if text == "-":
        return EARLIEST_MS
    if text == "+":
        return LATEST_MS
    if text.lower() == "now":
        return now_ms
    if text.isdigit():
        return int(text)
    rel = _RELATIVE.match(text.lower())
    if rel:
        delta = parse_duration_ms(rel.group(2))
        ms = now_ms + delta if rel.group(1) == "+" else now_ms - delta
        return max(ms, EARLIEST_MS)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time (epoch ms, RFC 3339, 'now' or relative "
                         f"like '-24h')") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    ms = int(dt.timestamp() * 1000)
    if ms < 0:
        raise ValueError(f"{text!r} is before 1970")
    return ms

