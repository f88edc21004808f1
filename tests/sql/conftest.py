"""A small database shaped like the seeds' data: IoT sensors with tiers (seed 003), API
latencies, stock prices and host metrics (seed 004). Built once per test session; queries
run "at" ``END_MS`` (``now()``), so results are deterministic."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

import sensorium
from sensorium.sql import SqlEngine

DAY_MS, HOUR_MS, MIN_MS = 86_400_000, 3_600_000, 60_000
END_MS = 20_775 * DAY_MS  # 2026-11-17T00:00:00Z: now() of every query
SENSORS = [f"sensor_{i:03d}" for i in range(10)]
IOT_TYPES = ("temperature", "humidity", "pressure")
BASE = {"temperature": 22.0, "humidity": 50.0, "pressure": 1000.0}
GAP = (END_MS - 40 * MIN_MS, END_MS - 20 * MIN_MS)  # sensor_001 temperature drops out


@dataclass
class Seeded:
    db: sensorium.Database
    sql: SqlEngine
    samples: dict[str, tuple[np.ndarray, np.ndarray]]  # key → (ts ms, values)
    labels: dict[str, dict[str, str]]

    def query(self, q: str):  # type: ignore[no-untyped-def]
        return self.sql.query(q, now_ms=END_MS)

    def keys(self, **labels: str) -> list[str]:
        return [k for k, lab in self.labels.items()
                if all(lab.get(n) == v for n, v in labels.items())]


def _series(rng: np.random.Generator, out: dict, labels: dict, key: str, lab: dict,
            start: int, step: int, values_of) -> None:  # type: ignore[no-untyped-def]
    ts = np.arange(start, END_MS, step, dtype=np.int64)
    out[key] = (ts, np.round(values_of(ts, rng), 3))
    labels[key] = lab


def _generate() -> tuple[dict, dict]:
    rng = np.random.default_rng(4)
    out: dict = {}
    labels: dict = {}
    for i, sensor in enumerate(SENSORS):
        for kind in IOT_TYPES:
            def iot(ts, r, kind=kind, i=i):  # type: ignore[no-untyped-def]
                daily = np.sin(2 * np.pi * (ts % DAY_MS) / DAY_MS)
                return BASE[kind] + i * 0.5 + 3 * daily + r.normal(0, 0.5, len(ts))
            _series(rng, out, labels, f"{sensor}:{kind}",
                    {"sensor_id": sensor, "location": f"warehouse_{i % 2 + 1}", "type": kind},
                    END_MS - 3 * DAY_MS, MIN_MS, iot)
    ts, v = out["sensor_003:temperature"]
    v[-30] += 25.0  # two spikes in the last hour: 3-sigma anomalies
    v[-10] -= 20.0
    ts, v = out["sensor_001:temperature"]
    keep = (ts < GAP[0]) | (ts > GAP[1])
    out["sensor_001:temperature"] = (ts[keep], v[keep])
    for endpoint in ("/api/users", "/api/orders", "/api/products"):
        for status in ("200", "500"):
            _series(rng, out, labels, f"web-api:{endpoint}:{status}",
                    {"service": "web-api", "endpoint": endpoint, "status_code": status,
                     "type": "latency_ms"}, END_MS - 2 * HOUR_MS, 10_000,
                    lambda ts, r: r.uniform(10, 1000, len(ts)))
    for j, symbol in enumerate(("AAPL", "GOOGL", "MSFT")):
        _series(rng, out, labels, f"{symbol}:price", {"symbol": symbol, "type": "price"},
                END_MS - DAY_MS, MIN_MS,
                lambda ts, r, j=j: 150 + 20 * j + np.cumsum(r.normal(0, 0.3, len(ts))))
    for h in ("web-server-01", "web-server-02"):
        _series(rng, out, labels, f"{h}:cpu_percent",
                {"hostname": h, "region": "us-east-1", "type": "cpu_percent"},
                END_MS - 2 * HOUR_MS, MIN_MS,
                lambda ts, r: np.clip(r.normal(50, 20, len(ts)), 0, 100))
    return out, labels


@pytest.fixture(scope="session")
def seeded(tmp_path_factory) -> Iterator[Seeded]:
    out, labels = _generate()
    path = str(tmp_path_factory.mktemp("sql") / "db")
    with sensorium.open(path, background=False) as db:
        keys = list(out)
        with db.batch():
            db.create_many(keys, [labels[k] for k in keys])
            for key in keys:  # the seed 000 tiers: raw → 1 min → 1 h → 1 day
                if labels[key].get("sensor_id"):
                    src = key
                    for name, bucket in (("1m", MIN_MS), ("1h", HOUR_MS), ("1d", DAY_MS)):
                        db.create(f"{key}:{name}")
                        db.createrule(src, f"{key}:{name}", "avg", bucket)
                        src = f"{key}:{name}"
        ids = db.series_ids(keys)
        sids = np.concatenate([np.full(len(out[k][0]), i) for k, i in zip(keys, ids, strict=True)])
        ts = np.concatenate([out[k][0] for k in keys])
        values = np.concatenate([out[k][1] for k in keys])
        order = np.argsort(ts, kind="stable")  # in time order, as sensors would send
        for n, chunk in enumerate(np.array_split(order, 8)):
            if n == 6:
                db.checkpoint()  # older data in blocks, the newest in memory
            assert db.madd(sids[chunk].astype(np.int32), ts[chunk], values[chunk]).ok
        engine = SqlEngine(db)
        yield Seeded(db, engine, out, labels)
        engine.close()
