"""``sensorium bench`` (seed 003's client test): raw versus tiered query times, side by side.

For one sensor, the seed's questions: the current value, the raw samples of the last day,
hourly averages of the last week, daily averages of the last month and 30-day averages of
the last year. Each aggregated question runs twice: over the raw series and over the
coarsest tier (downsampling rule destination) whose bucket divides the question's bucket,
and the two answers are compared (a tier built from states must give the raw answer). Over
HTTP, the seed's own endpoint (``/api/sensors/{id}/hourly`` …, which picks its source
itself) is timed as a third column.

Windows end at the sensor's newest sample (so historical data benchmarks the same way as
live data) and start on a bucket boundary. Times are wall-clock medians and 90th
percentiles of ``repeat`` runs after one warm-up run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import numpy as np

from ..errors import SeriesNotFound
from .sinks import SinkError

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True, slots=True)
class Question:
    name: str
    period_ms: int
    bucket_ms: int  # 0: raw samples (no aggregation)
    seed_view: str  # the seed's endpoint: current, raw, hourly, daily, monthly
    seed_period: str


QUESTIONS = (
    Question("current value", 0, 0, "current", ""),
    Question("raw samples, last day", DAY_MS, 0, "raw", "1d"),
    Question("hourly avg, last week", 7 * DAY_MS, HOUR_MS, "hourly", "1w"),
    Question("daily avg, last month", 30 * DAY_MS, DAY_MS, "daily", "1m"),
    Question("monthly avg, last year", 365 * DAY_MS, 30 * DAY_MS, "monthly", "1y"),
)

Rows = list[tuple[int, float]]


class EmbeddedTarget:
    """Queries an open ``Database`` directly."""

    where = "embedded"

    def __init__(self, db: Any) -> None:
        self.db = db

    def default_sensor(self) -> str:
        for key in self.db.queryindex(["type=temperature"]):
            if self.db.describe(key)["source_key"] is None:
                return str(key)
        keys = [k for k in self.db.keys() if self.db.describe(k)["source_key"] is None]
        if not keys:
            raise SinkError("the database holds no series: run sensorium generate first")
        return str(keys[0])

    def latest(self, key: str) -> tuple[int, float] | None:
        got = self.db.get(key)
        return None if got is None else (int(got[0]), float(got[1]))

    def rules(self, key: str) -> list[tuple[str, int, str, int]]:
        return [(d, int(b), str(a).lower(), int(al)) for d, b, a, al in
                self.db.describe(key)["rules"]]

    def range(self, key: str, lo: int, hi: int, bucket_ms: int = 0,
              latest: bool = False) -> Rows:
        if not bucket_ms:
            return list(self.db.range(key, lo, hi))
        return list(self.db.range(key, lo, hi, aggregation_type="avg",
                                  bucket_size_msec=bucket_ms, latest=latest))

    def tiered(self, key: str, lo: int, hi: int, bucket_ms: int) -> tuple[Rows, str]:
        """avg per bucket from the coarsest exact tier (the planner's choice), and its key."""
        got = self.db.aggregate([key], lo, hi, "avg", bucket_ms, stitch=False)[0]
        return (list(zip(got["timestamps"].tolist(), got["values"].tolist(), strict=True)),
                got["sources"][-1]["key"] if got["sources"] else key)

    def seed(self, key: str, q: Question) -> Callable[[], Any] | None:
        return None


class HttpTarget:
    """Queries a running server's REST API (``client``: an ``httpx.Client`` with base URL)."""

    where = "http"

    def __init__(self, client: Any) -> None:
        self.client = client

    def _get(self, path: str, **params: Any) -> Any:
        import httpx

        try:
            reply = self.client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise SinkError(f"GET {self.client.base_url}{path}: {exc}") from exc
        if reply.status_code != 200:
            raise SinkError(f"GET {path}: HTTP {reply.status_code}: {reply.text[:300]}")
        return reply.json()

    def default_sensor(self) -> str:
        for params in ({"filter": "type=temperature", "limit": 1}, {"limit": 1}):
            sensors = self._get("/api/sensors", **params)["sensors"]
            if sensors:
                return str(sensors[0]["sensor_id"])
        raise SinkError("the server holds no series: run sensorium generate first")

    def latest(self, key: str) -> tuple[int, float] | None:
        got = self._get(f"/api/sensors/{quote(key, safe='')}/current")
        return None if got["timestamp"] is None else (int(got["timestamp"]), got["value"])

    def rules(self, key: str) -> list[tuple[str, int, str, int]]:
        info = self._get(f"/api/series/{quote(key, safe='')}")
        return [(d, int(b), str(a).lower(), int(al)) for d, b, a, al in info["rules"]]

    def range(self, key: str, lo: int, hi: int, bucket_ms: int = 0,
              latest: bool = False) -> Rows:
        params: dict[str, Any] = {"from": lo, "to": hi}
        if bucket_ms:
            params.update(aggregation="avg", bucket=bucket_ms, latest=str(latest).lower())
        got = self._get(f"/api/series/{quote(key, safe='')}/range", **params)
        return [(int(t), math.nan if v is None else float(v)) for t, v in got["samples"]]

    def tiered(self, key: str, lo: int, hi: int, bucket_ms: int) -> tuple[Rows, str]:
        got = self._get("/api/aggregate", key=key, aggregation="avg", bucket=bucket_ms,
                        stitch="false", **{"from": lo, "to": hi})["series"][0]
        rows = [(int(t), math.nan if v is None else float(v))
                for t, v in zip(got["timestamps"], got["values"], strict=True)]
        return rows, got["sources"][-1]["key"] if got["sources"] else key

    def seed(self, key: str, q: Question) -> Callable[[], Any] | None:
        path = f"/api/sensors/{quote(key, safe='')}/{q.seed_view}"
        params = {"period": q.seed_period} if q.seed_period else {}
        return lambda: self._get(path, **params)


def _time(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(median ms, p90 ms, last result) of ``repeat`` runs after a warm-up."""
    result = fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times)), float(np.percentile(times, 90)), result


def _same(a: Rows, b: Rows) -> bool:
    if len(a) != len(b):
        return False
    if not a:
        return True
    ta, va = np.array(a).T
    tb, vb = np.array(b).T
    return bool((ta == tb).all() and np.allclose(va, vb, rtol=1e-9, atol=1e-9,
                                                 equal_nan=True))


def run(target: Any, sensor: str | None, repeat: int) -> list[dict[str, Any]]:
    """Times every question; one dict per question (see ``table`` for the columns)."""
    if repeat < 1:
        raise ValueError("--repeat must be at least 1")
    key = sensor or target.default_sensor()
    try:
        last = target.latest(key)
    except SeriesNotFound:
        raise SinkError(f"no series {key!r}") from None
    if last is None:
        raise SinkError(f"{key} holds no samples")
    end = last[0]
    rules = target.rules(key)
    out = []
    for q in QUESTIONS:
        row: dict[str, Any] = {"question": q.name, "sensor": key, "where": target.where}
        if q.seed_view == "current":
            med, p90, got = _time(lambda k=key: target.latest(k), repeat)
            row.update(raw_ms=med, raw_p90_ms=p90, rows=0 if got is None else 1)
        else:
            lo = max(end - q.period_ms + 1, 0)
            if q.bucket_ms:
                lo = lo // q.bucket_ms * q.bucket_ms
            med, p90, raw = _time(lambda lo=lo, q=q: target.range(key, lo, end, q.bucket_ms),
                                  repeat)
            row.update(raw_ms=med, raw_p90_ms=p90, rows=len(raw))
            if q.bucket_ms and rules:  # the planner's choice: the coarsest exact tier
                med, p90, (tiered, tier) = _time(
                    lambda lo=lo, q=q: target.tiered(key, lo, end, q.bucket_ms), repeat)
                if tier != key:
                    row.update(tier=tier, tier_ms=med, tier_p90_ms=p90, tier_rows=len(tiered),
                               same=_same(raw, tiered))
        seed = target.seed(key, q)
        if seed is not None:
            med, p90, got = _time(seed, repeat)
            row.update(endpoint_ms=med, endpoint_p90_ms=p90,
                       endpoint_source=got.get("source") if isinstance(got, dict) else None)
        out.append(row)
    return out


def _ms(row: dict[str, Any], name: str) -> str:
    if f"{name}_ms" not in row:
        return "-"
    return f"{row[f'{name}_ms']:.3g} ({row[f'{name}_p90_ms']:.3g})"


def table(rows: list[dict[str, Any]]) -> str:
    """Medians (p90) in ms per question: raw, tier, speed-up, answers equal, seed endpoint."""
    if not rows:
        return ""
    endpoint = any("endpoint_ms" in r for r in rows)
    head = ["question", "rows", "raw ms (p90)", "tier ms (p90)", "speed-up", "same", "tier"]
    if endpoint:
        head += ["endpoint ms (p90)", "endpoint source"]
    body = []
    for r in rows:
        speed = f"{r['raw_ms'] / r['tier_ms']:.1f}x" if r.get("tier_ms") else "-"
        same = "-" if "same" not in r else ("yes" if r["same"] else "NO")
        line = [r["question"], str(r["rows"]), _ms(r, "raw"), _ms(r, "tier"), speed, same,
                r.get("tier", "-")]
        if endpoint:
            line += [_ms(r, "endpoint"), str(r.get("endpoint_source") or "-")]
        body.append(line)
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    fmt = "  ".join(f"{{:{'<' if i in (0, 6, 8) else '>'}{w}}}" for i, w in enumerate(widths))
    title = f"sensor {rows[0]['sensor']} ({rows[0]['where']}), median (p90) of timed runs"
    return "\n".join([title, fmt.format(*head), *(fmt.format(*line) for line in body)])
