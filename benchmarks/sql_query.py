"""SQL benchmark (issue #4): hourly averages for 100 sensors over 30 days through SQL.

Builds 30 days of 1-minute data for 1,000 sensors (43.2 M samples) with a raw → 1 h avg
rule per sensor, generated vectorised and written with ``db.series_ids`` + columnar
``madd`` in big batches, then times queries through ``SqlEngine`` (embedded) and
``POST /api/sql`` (in-process ASGI, JSON included):

* ``tier``: the hourly averages of 100 sensors (one ``rack`` label) from ``tier_1h``
  (target < 200 ms);
* ``raw``: the same computed from the 4.3 M raw samples (``time_bucket`` + ``avg``);
* ``point``: one sensor's last hour of raw samples (the fixed cost of a query).

``--compare`` also times ``tier`` and ``point`` with ``SqlEngine(prune=False)``: the same
queries reading whole tables and leaving every filter to DuckDB (Arrow filter pushdown).

Run::

    python benchmarks/sql_query.py                      # build in a temp dir, measure, delete
    python benchmarks/sql_query.py --data-dir /tmp/sqlb --keep   # reuse a built database
    python benchmarks/sql_query.py --profile            # cProfile of each query

Prints medians (and p10..p90) over ``--repeats`` runs after one warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import sensorium  # noqa: E402
from sensorium.sql import SqlEngine  # noqa: E402

DAY_MS, HOUR_MS, MIN_MS = 86_400_000, 3_600_000, 60_000
END_MS = 1_700_006_400_000 + 30 * DAY_MS  # a UTC midnight; queries run "now" = END_MS
SENSORS, DAYS = 1_000, 30
RACKS = 10  # 100 sensors per rack
BATCH_MINUTES = 360  # 360,000 samples per madd

# Explicit times, not ago(): the HTTP route's now() is the wall clock.
_FROM = f"epoch_ms({END_MS - DAYS * DAY_MS})"
QUERIES = {
    "tier": "SELECT key, time AS hour, avg FROM tier_1h "
            f"WHERE rack = 'rack_03' AND time >= {_FROM} ORDER BY key, hour",
    "raw": "SELECT key, time_bucket(INTERVAL 1 hour, time) AS hour, avg(value) AS avg "
           f"FROM samples WHERE rack = 'rack_03' AND time >= {_FROM} "
           "GROUP BY ALL ORDER BY key, hour",
    "point": "SELECT time, value FROM samples WHERE key = 'sensor_0042' "
             f"AND time > epoch_ms({END_MS - HOUR_MS})",
}


def build(path: str) -> None:
    keys = [f"sensor_{i:04d}" for i in range(SENSORS)]
    kinds = ("temperature", "humidity", "pressure")
    labels = [{"sensor_id": k, "rack": f"rack_{i // (SENSORS // RACKS):02d}",
               "type": kinds[i % 3]} for i, k in enumerate(keys)]
    t0 = time.perf_counter()
    with sensorium.open(path, fsync="none") as db:
        with db.batch():
            db.create_many(keys, labels)
            for k in keys:
                db.create(f"{k}:1h_avg")
                db.createrule(k, f"{k}:1h_avg", "avg", HOUR_MS)
        ids = db.series_ids(keys)
        rng = np.random.default_rng(1)
        base = rng.uniform(15, 35, SENSORS)
        start = END_MS - DAYS * DAY_MS
        minutes = DAYS * 1440
        for m0 in range(0, minutes, BATCH_MINUTES):
            ts = start + (m0 + np.arange(BATCH_MINUTES, dtype=np.int64)) * MIN_MS
            daily = np.sin(2 * np.pi * (ts % DAY_MS) / DAY_MS)
            values = base[None, :] + 3 * daily[:, None] \
                + rng.normal(0, 0.3, (BATCH_MINUTES, SENSORS))
            res = db.madd(np.tile(ids, BATCH_MINUTES), np.repeat(ts, SENSORS),
                          np.round(values, 2).ravel())
            assert res.ok
        took = time.perf_counter() - t0
        print(f"built {SENSORS * minutes:,} samples in {took:.1f} s "
              f"({SENSORS * minutes / took:,.0f} samples/s); checkpointing", flush=True)
    print(f"database ready in {time.perf_counter() - t0:.1f} s", flush=True)


def timed(fn, repeats: int) -> list[float]:  # type: ignore[no-untyped-def]
    fn()  # warm-up: block cache, DuckDB catalogs
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def http_query(db: sensorium.Database):  # type: ignore[no-untyped-def]
    import httpx

    from sensorium.protocols.http.app import create_app
    app = create_app(db)

    def post(query: str) -> int:
        async def go() -> int:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://b") as c:
                r = await c.post("/api/sql", json={"query": query, "max_rows": 100_000})
                r.raise_for_status()
                return len(r.content)  # the client's JSON parsing is not timed
        return asyncio.run(go())
    return post


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir")
    ap.add_argument("--keep", action="store_true", help="keep the built database")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--compare", action="store_true", help="also time whole-table reads")
    args = ap.parse_args()
    path = args.data_dir or tempfile.mkdtemp(prefix="sensorium-sql-")
    if not os.path.exists(os.path.join(path, "sensorium.json")):
        build(path)
    try:
        with sensorium.open(path, background=False) as db:
            engine = SqlEngine(db)
            post = http_query(db)
            for name, query in QUERIES.items():
                result = engine.query(query, now_ms=END_MS)
                ms = timed(lambda q=query: engine.query(q, now_ms=END_MS), args.repeats)
                p10, p90 = np.percentile(ms, [10, 90])
                print(f"sql {name:6s} median {statistics.median(ms):8.1f} ms "
                      f"(p10..p90 {p10:.1f}..{p90:.1f}), {result.table.num_rows:,} rows out, "
                      f"read {result.stats.rows} in {result.stats.series} series", flush=True)
                if name != "raw":
                    hms = timed(lambda q=query: post(q), max(3, args.repeats // 3))
                    print(f"http {name:5s} median {statistics.median(hms):8.1f} ms "
                          f"({post(query):,} bytes of JSON, not parsed)", flush=True)
                if args.compare and name != "raw":
                    whole = SqlEngine(db, prune=False)
                    wr = whole.query(query, now_ms=END_MS)
                    wms = timed(lambda q=query, w=whole: w.query(q, now_ms=END_MS), 3)
                    print(f"whole {name:5s} median {statistics.median(wms):8.1f} ms "
                          f"(read {wr.stats.rows}, same answer: {wr.table.equals(result.table)})",
                          flush=True)
                    whole.close()
                if args.profile:
                    prof = cProfile.Profile()
                    prof.enable()
                    for _ in range(5):
                        engine.query(query, now_ms=END_MS)
                    prof.disable()
                    pstats.Stats(prof).sort_stats("cumulative").print_stats(18)
    finally:
        if not args.keep and not args.data_dir:
            shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
