"""JSON replies and request-parameter helpers shared by the HTTP routes.

``JSON`` serialises with orjson (compact; numpy arrays written directly; NaN and
infinities, which JSON has not, become ``null``: a missing aggregate) and skips FastAPI's
per-item ``jsonable_encoder``: replies carry up to hundreds of thousands of samples, and
orjson writes them ten times faster than the standard library.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

import orjson
from starlette.responses import Response

from .._errors import RequestError
from . import times


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def now_ms() -> int:
    return int(time.time() * 1000)


def samples(pairs: Iterable[tuple[int, float]]) -> list[tuple[int, float]]:
    """``[(ts, value), …]`` as JSON pairs (``JSON`` writes a NaN value as ``null``)."""
    return pairs if isinstance(pairs, list) else list(pairs)


def value(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def time_param(name: str, text: str | None, now: int, default: int) -> int:
    """A time parameter (see ``times``), or 400 naming ``name``."""
    if text is None or text == "":
        return default
    try:
        return times.parse_time(text, now)
    except ValueError as exc:
        raise RequestError(400, f"invalid {name}: {exc}", field=name) from None


def duration_param(name: str, text: str | None, *, period: bool = False) -> int | None:
    """A duration parameter in ms (``period``: ``m`` is a month), None when absent."""
    if text is None or text == "":
        return None
    try:
        return times.parse_period_ms(text) if period else times.parse_duration_ms(text)
    except ValueError as exc:
        raise RequestError(400, f"invalid {name}: {exc}", field=name) from None


def fields(names: list[str] | None) -> list[str] | None:
    """Repeated or comma-separated list parameters: ``?x=a&x=b`` or ``?x=a,b``."""
    if not names:
        return None
    return [part for n in names for part in n.split(",") if part]
