"""Command line: ``sensorium demo`` (and later ``serve``, ``generate``, ``sql``, ``stats``)."""

from __future__ import annotations

import argparse
import time

import numpy as np

from .engine.table import Rows, Table


def demo(series: int, seconds: int) -> None:
    """Generates one-per-second readings, ingests them in columnar batches, queries them."""
    rng = np.random.default_rng(7)
    base_ms = 1_700_000_000_000
    level = rng.uniform(18, 26, series)
    table = Table({"value": np.dtype(np.float64)})
    sids = np.arange(series, dtype=np.int32)
    started = time.perf_counter()
    for sec in range(seconds):
        level += rng.normal(0, 0.01, series)  # slow drift
        values = np.round(level + rng.normal(0, 0.05, series), 2)
        table.append(Rows(sids, np.full(series, base_ms + sec * 1000, np.int64),
                          {"value": values}))
    elapsed = time.perf_counter() - started
    total = series * seconds
    print(f"ingested {total:,} samples of {series:,} series in {elapsed:.2f} s "
          f"({total / elapsed:,.0f} samples/s)")
    t0 = time.perf_counter()
    got = table.read(np.array([42], np.int32), base_ms, base_ms + 3_600_000)
    print(f"series 42: {len(got)} raw samples in {(time.perf_counter() - t0) * 1e3:.2f} ms; "
          f"last 3: {got.columns['value'][-3:].tolist()}")
    minute = (got.ts - base_ms) // 60_000
    starts = np.flatnonzero(np.r_[True, minute[1:] != minute[:-1]])
    avgs = np.add.reduceat(got.columns["value"], starts) / np.diff(np.r_[starts, len(minute)])
    print("1-minute averages:", np.round(avgs[:5], 3).tolist(), "...")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sensorium")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="generate, ingest and query sensor data in memory")
    p_demo.add_argument("--series", type=int, default=10_000)
    p_demo.add_argument("--seconds", type=int, default=300)
    args = parser.parse_args(argv)
    if args.command == "demo":
        demo(args.series, args.seconds)


if __name__ == "__main__":
    main()
