"""The three questions of issue #3 as each system's HTTP call, and its reply as a plain answer.

``raw_1h``, one sensor's raw samples of the last hour:
    Sensorium ``GET /api/series/{key}/range`` (TS.RANGE); VictoriaMetrics
    ``GET /api/v1/export`` (its raw samples; ``query_range`` would resample them to a step);
    InfluxDB ``SELECT value FROM sensors WHERE sensor = … AND time …``.
``avg_1m``, 1-minute averages of each of a zone's 100 temperature sensors over the hour:
    Sensorium ``GET /api/aggregate`` (raw here: no tier policy is set); VictoriaMetrics
    ``GET /api/v1/query_range`` of ``avg_over_time(sensors_value{…}[1m])`` with step 60 s;
    InfluxDB ``SELECT mean(value) … GROUP BY time(1m), sensor``.
``latest``, the newest reading of a zone's 100 humidity sensors:
    Sensorium ``GET /api/latest`` (TS.MGET); VictoriaMetrics ``GET /api/v1/query`` (an
    instant query at the end of the data: the newest sample within its look-back);
    InfluxDB ``SELECT last(value) … GROUP BY sensor``.

``avg_1m_mrange`` asks Sensorium the same as ``avg_1m`` through ``/api/query`` (TS.MRANGE
with AGGREGATION avg 60000), for comparison. Every reply is turned into an ``Answer`` and
checked against the generated readings, so a fast wrong answer cannot pass.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import numpy as np
from workload import FIELD, MEASUREMENT, Workload

WINDOW_S = 3600
QUESTIONS = ("raw_1h", "avg_1m", "avg_1m_mrange", "latest")
ONLY = {"avg_1m_mrange": ("sensorium",)}  # questions some systems are not asked
VALUE_TOLERANCE = 1e-6  # means are float sums in every system; raw values are exact
_SENSOR = re.compile(r"sensor=([^,:]+)")


@dataclass(frozen=True)
class Ask:
    """One instance of a question: which sensor or zone, over rounds [lo, hi)."""

    question: str
    sensor: int
    zone: int
    lo: int
    hi: int


# An answer maps sensor name → (timestamps ms, values); ``raw_1h`` has one sensor.
Answer = dict[str, tuple[list[int], list[float]]]


def asks(w: Workload, question: str, count: int) -> list[Ask]:
    """``count`` instances of a question, rotating over sensors and zones (same for all)."""
    lo, hi = w.window_rounds(WINDOW_S)
    hi = lo + (hi - lo) // 60 * 60  # whole minutes
    return [Ask(question, (j * 7919 + 13) % w.series, j % w.zones, lo, hi) for j in range(count)]


def expected(w: Workload, a: Ask) -> Answer:
    if a.question == "raw_1h":
        ts, v = w.raw(a.sensor, a.lo, a.hi)
        return {w.sensor(a.sensor): (ts.tolist(), v.tolist())}
    if a.question.startswith("avg_1m"):
        members = w.members(a.zone, "temperature")
        means = w.minute_means(members, a.lo, a.hi)
        ts = ((np.arange(a.lo, a.hi, 60) + w.t0_s) * 1000).tolist()
        return {w.sensor(i): (ts, row.tolist()) for i, row in zip(members, means, strict=True)}
    members = w.members(a.zone, "humidity")
    last = (w.t0_s + w.rounds - 1) * 1000
    return {w.sensor(i): ([last], [v]) for i, v in zip(members, w.latest(members), strict=True)}


def check(got: Answer, want: Answer) -> str | None:
    """None when ``got`` is ``want``; otherwise what differs first."""
    if set(got) != set(want):
        return f"sensors differ: {len(got)} got, {len(want)} wanted"
    for name, (ts, v) in want.items():
        gts, gv = got[name]
        if gts != ts:
            return f"{name}: {len(gts)} timestamps {gts[:2]}…, wanted {len(ts)} {ts[:2]}…"
        if not np.allclose(gv, v, rtol=VALUE_TOLERANCE, atol=VALUE_TOLERANCE):
            return f"{name}: values differ, e.g. {gv[:3]} vs {v[:3]}"
    return None


def _ms(round_: int, w: Workload) -> int:
    return (w.t0_s + round_) * 1000


# Each system: request(workload, ask) -> (path, params); answer(workload, ask, reply) -> Answer.

def sensorium_request(w: Workload, a: Ask) -> tuple[str, dict[str, Any]]:
    span = {"from": _ms(a.lo, w), "to": _ms(a.hi, w) - 1}  # inclusive bounds
    if a.question == "raw_1h":
        tags = ",".join(f"{k}={v}" for k, v in w.tags(a.sensor).items())
        key = f"{MEASUREMENT},{tags}:{FIELD}"
        return f"/api/series/{quote(key, safe='')}/range", {**span, "format": "columns"}
    zone = f"zone=z{a.zone:03d}"
    if a.question == "avg_1m":
        return "/api/aggregate", {"filter": ["type=temperature", zone], **span,
                                  "bucket": "1min", "aggregation": "avg"}
    if a.question == "avg_1m_mrange":
        return "/api/query", {"filter": ["type=temperature", zone], **span,
                              "aggregation": "avg", "bucket": "60000", "format": "columns"}
    return "/api/latest", {"filter": ["type=humidity", zone]}


def sensorium_answer(w: Workload, a: Ask, body: bytes) -> Answer:
    doc = json.loads(body)
    if a.question == "raw_1h":
        return {_sensor(doc["key"]): (doc["timestamps"], doc["values"])}
    if a.question == "avg_1m":
        return {_sensor(s["key"]): (s["timestamps"], s["values"]) for s in doc["series"]}
    if a.question == "avg_1m_mrange":
        return {_sensor(s["key"]): (s["timestamps"], s["values"]) for s in doc["series"]}
    return {_sensor(s["key"]): ([s["timestamp"]], [s["value"]]) for s in doc["series"]}


def _sensor(key: str) -> str:
    m = _SENSOR.search(key)
    assert m, key
    return m.group(1)


def vm_request(w: Workload, a: Ask) -> tuple[str, dict[str, Any]]:
    metric = f"{MEASUREMENT}_{FIELD}"
    if a.question == "raw_1h":
        return "/api/v1/export", {"match[]": f'{metric}{{sensor="{w.sensor(a.sensor)}"}}',
                                  "start": w.t0_s + a.lo,
                                  "end": f"{(_ms(a.hi, w) - 1) / 1000:.3f}"}
    sel = f'{{type="%s",zone="z{a.zone:03d}"}}'
    if a.question == "avg_1m":
        # The point at t averages (t - 60 s, t]: t = bucket start + 59 s covers the same
        # 60 samples as Sensorium's bucket [start, start + 60 s).
        return "/api/v1/query_range", {
            "query": f"avg_over_time({metric}{sel % 'temperature'}[1m])",
            "start": w.t0_s + a.lo + 59, "end": w.t0_s + a.hi - 1, "step": "60s",
            "nocache": "1"}
    return "/api/v1/query", {"query": f"{metric}{sel % 'humidity'}",
                             "time": w.t0_s + w.rounds, "nocache": "1"}


def vm_answer(w: Workload, a: Ask, body: bytes) -> Answer:
    if a.question == "raw_1h":
        out: Answer = {}
        for line in body.splitlines():
            doc = json.loads(line)
            out[doc["metric"]["sensor"]] = (doc["timestamps"], doc["values"])
        return out
    result = json.loads(body)["data"]["result"]
    if a.question == "avg_1m":
        return {r["metric"]["sensor"]: ([int(t) * 1000 - 59_000 for t, _ in r["values"]],
                                        [float(v) for _, v in r["values"]]) for r in result}
    # An instant query stamps the answer with the query time; the sample is the last one.
    return {r["metric"]["sensor"]: ([(int(r["value"][0]) - 1) * 1000], [float(r["value"][1])])
            for r in result}


def influx_request(w: Workload, a: Ask) -> tuple[str, dict[str, Any]]:
    span = f"time >= {_ms(a.lo, w)}ms AND time <= {_ms(a.hi, w) - 1}ms"
    zone = f"zone = 'z{a.zone:03d}'"
    if a.question == "raw_1h":
        q = f"SELECT {FIELD} FROM {MEASUREMENT} WHERE sensor = '{w.sensor(a.sensor)}' AND {span}"
    elif a.question == "avg_1m":
        q = (f"SELECT mean({FIELD}) FROM {MEASUREMENT} WHERE type = 'temperature' AND {zone} "
             f"AND {span} GROUP BY time(1m), sensor")
    else:
        q = (f"SELECT last({FIELD}) FROM {MEASUREMENT} WHERE type = 'humidity' AND {zone} "
             "GROUP BY sensor")
    return "/query", {"db": "bench", "epoch": "ms", "q": q}


def influx_answer(w: Workload, a: Ask, body: bytes) -> Answer:
    res = json.loads(body)["results"][0]
    if "error" in res:
        raise RuntimeError(res["error"])
    out: Answer = {}
    for s in res.get("series", []):
        # raw_1h is not grouped by sensor: its one series has no tags
        name = s.get("tags", {}).get("sensor") or w.sensor(a.sensor)
        out[name] = ([int(v[0]) for v in s["values"]], [v[1] for v in s["values"]])
    return out


CALLS = {"sensorium": (sensorium_request, sensorium_answer),
         "victoriametrics": (vm_request, vm_answer),
         "influxdb": (influx_request, influx_answer)}
