"""Line-protocol parse rate: samples/s of ``lineproto.parse`` (scratch benchmark, not a test).

    python benchmarks/lineproto_parse.py                     # 1 and 3 fields, 5000-line batches
    python benchmarks/lineproto_parse.py --series 100000 --runs 50 --profile

Bodies as the HTTP front end sees them after gunzip: ``env,sensor_id=s01234,zone=B
temp=21.53[,hum=40.1,pres=1013.2] 1700000000123000000``, one line per sensor reading, sensors
drawn at random from ``--series``. Prints rates from the median wall time and the median CPU
time of the parsing thread over ``--runs`` batches (on a shared box the second is the
steadier), and the slow path alone (every line forced through it) so the gap stays visible.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from sensorium.protocols.lineproto import parser
from sensorium.protocols.lineproto.parser import parse

T0_NS = 1_700_000_000_000_000_000


def body(lines: int, series: int, fields: int, seed: int, *, unsorted: bool = False) -> bytes:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, series, lines)
    temp, hum, pres = rng.normal(21, 4, lines), rng.uniform(0, 100, lines), rng.normal(1013, 6,
                                                                                       lines)
    out = []
    for i, sid in enumerate(ids.tolist()):
        tags = (f"zone={'ABCD'[sid % 4]},sensor_id=s{sid:05d}" if unsorted
                else f"sensor_id=s{sid:05d},zone={'ABCD'[sid % 4]}")
        fs = f"temp={temp[i]:.2f}"
        if fields == 3:
            fs += f",hum={hum[i]:.1f},pres={pres[i]:.1f}"
        out.append(f"env,{tags} {fs} {T0_NS + i * 1_000_000}")
    return ("\n".join(out) + "\n").encode()


def rate(bodies: list[bytes], fn=parse) -> tuple[float, float, int]:
    """(samples/s by median wall time, samples/s by median CPU time of the thread, samples)."""
    wall, cpu, samples = [], [], 0
    for b in bodies:
        t0, c0 = time.perf_counter(), time.thread_time()
        batch = fn(b, "ns", 0)
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - t0)
        assert not batch.errors, batch.errors[:3]
        samples = len(batch.keys)
    return samples / statistics.median(wall), samples / statistics.median(cpu), samples


def slow_only(b: bytes, precision: str, default_ts_ms: int) -> parser.ParsedBatch:
    """Every line through the slow path (what a per-line parser costs)."""
    return parser._parse(b, parser._unit(precision), default_ts_ms, fast=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=5000)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--profile", action="store_true", help="cProfile one pass of the runs")
    args = ap.parse_args()
    for fields, unsorted in ((1, False), (3, False), (1, True)):
        bodies = [body(args.lines, args.series, fields, seed, unsorted=unsorted)
                  for seed in range(args.runs)]
        rate(bodies[:3])  # warm up
        wall, cpu, n = rate(bodies)
        slow, _, _ = rate(bodies[:3], slow_only)
        kind = f"{fields} field{'s' if fields > 1 else ''}{', unsorted tags' if unsorted else ''}"
        print(f"{kind:25} {n:6} samples/batch: {wall / 1e6:5.2f} M samples/s "
              f"({wall / fields / 1e6:4.2f} M lines/s), CPU-bound {cpu / 1e6:5.2f} M samples/s; "
              f"slow path alone {slow / 1e6:5.3f} M samples/s")
        if args.profile:
            import cProfile
            import pstats
            prof = cProfile.Profile()
            prof.runcall(rate, bodies)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
