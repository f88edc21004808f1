"""Issue #4's query target: 30 days of 1-minute data for 1,000 sensors, hourly averages of
100 sensors over the 30 days through the REST API (target < 50 ms), with the seed's tier
policy (raw 7 d → 1 min → 1 h → 1 day).

    python benchmarks/tiered_query.py                 # build (about 2 min) and measure
    python benchmarks/tiered_query.py --dir /tmp/x    # keep the database there; reused if built

It loads the data through the embedded API (columnar ``madd`` with ids, one hour of all
sensors per call, the policy's tiers filling as data arrives), then starts ``sensorium
serve`` on the directory and times, with one keep-alive httpx client:

- ``/api/aggregate?filter=zone=Z0&bucket=1h&from=-30d`` (100 sensors, read from the 1 h tier);
- the same question from raw samples (``/api/query``, TS.MRANGE with AGGREGATION avg 1h),
  as the baseline a tierless store pays;
- ``Database.aggregate`` in process, without HTTP.

Medians and p90 of ``--repeats`` calls each, after two warm-up calls.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import httpx
import numpy as np

import sensorium

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
SENSORS, ZONES = 1_000, 10
TYPES = ("temperature", "humidity", "pressure", "vibration", "energy")
POLICY = {"name": "seed", "filter": ["site=bench"], "preset": "seed"}


def build(path: str, days: int) -> float:
    """Loads ``days`` of 1-minute data for every sensor; returns the load time in seconds."""
    now = int(time.time() * 1000) // HOUR * HOUR
    start = now - days * DAY
    keys = [f"sensor:{i:04d}" for i in range(SENSORS)]
    labels = [{"site": "bench", "zone": f"Z{i % ZONES}", "type": TYPES[i % len(TYPES)]}
              for i in range(SENSORS)]
    rng = np.random.default_rng(7)
    base = rng.uniform(10, 60, SENSORS)
    t0 = time.perf_counter()
    with sensorium.open(path) as db:
        db.set_policy(POLICY)
        db.create_many(keys, labels)
        ids = db.series_ids(keys, create=False)
        minutes = np.arange(60)
        for hour in range(days * 24):
            ts = start + hour * HOUR + minutes * MINUTE
            day_phase = np.sin((ts % DAY) / DAY * 2 * np.pi)
            values = np.round(base[:, None] + 3 * day_phase[None, :]
                              + rng.normal(0, 0.2, (SENSORS, 60)), 2)
            db.madd(np.repeat(ids, 60), np.tile(ts, SENSORS), values.ravel())
            if hour % 24 == 23:
                print(f"\r  loaded day {hour // 24 + 1}/{days}", end="", file=sys.stderr)
        print(file=sys.stderr)
    return time.perf_counter() - t0


def timed(fn, repeats: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def serve(path: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "sensorium.cli", "serve", "--data-dir", path,
                             "--http-port", "0", "--no-resp"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    url = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        found = re.match(r"http (\S+)", line)
        if found:
            url = found.group(1)
        if line.strip() == "ready":
            return proc, url
    raise RuntimeError("sensorium serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", help="database directory (reused when it holds the data)")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    path = args.dir or os.path.join(tempfile.mkdtemp(prefix="sensorium-tiered-"), "db")
    if not os.path.exists(os.path.join(path, "sensorium.json")):
        seconds = build(path, args.days)
        samples = SENSORS * args.days * 1440
        print(f"load: {samples / 1e6:.1f} M samples with the seed policy in {seconds:.1f} s "
              f"({samples / seconds / 1e6:.2f} M samples/s)")
    with sensorium.open(path) as db:
        res = db.aggregate(None, f"{int(time.time() * 1000) - args.days * DAY}", "+", "avg",
                           HOUR, filters=["zone=Z0"])
        sources = {s["key"].split(":")[-1] for r in res for s in r["sources"]}
        print(f"embedded: {len(res)} series x {len(res[0]['timestamps'])} hours from tiers "
              f"{sorted(sources)}")
        frm = str(int(time.time() * 1000) - args.days * DAY)
        med, p90 = timed(lambda: db.aggregate(None, frm, "+", "avg", HOUR,
                                              filters=["zone=Z0"]), args.repeats)
        print(f"  Database.aggregate, 100 sensors x 30 d hourly avg: {med:.1f} ms "
              f"(p90 {p90:.1f})")
    proc, url = serve(path)
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            params = {"filter": "zone=Z0", "from": f"-{args.days}d", "to": "now",
                      "aggregation": "avg", "bucket": "1h"}
            got = client.get("/api/aggregate", params=params).json()
            assert len(got["series"]) == 100, got
            med, p90 = timed(lambda: client.get("/api/aggregate", params=params).raise_for_status(),
                             args.repeats)
            print(f"  REST /api/aggregate (tiers), 100 sensors x 30 d hourly avg: {med:.1f} ms "
                  f"(p90 {p90:.1f}) target < 50 ms {'PASS' if med < 50 else 'FAIL'}")
            raw = {k: v for k, v in params.items()}
            med_raw, p90_raw = timed(lambda: client.get("/api/query", params=raw)
                                     .raise_for_status(), max(3, args.repeats // 10))
            print(f"  REST /api/query (TS.MRANGE on raw, no tiers): {med_raw:.1f} ms "
                  f"(p90 {p90_raw:.1f}); tiers are {med_raw / med:.0f}x faster")
    finally:
        proc.terminate()
        proc.wait(60)


if __name__ == "__main__":
    main()
