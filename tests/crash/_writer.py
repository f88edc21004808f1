"""Crash-test writer: ingests numbered batches and prints each one once it is acknowledged.

    python tests/crash/_writer.py DIR FIRST_BATCH [--series N] [--rows K] [--fsync POLICY]
                                  [--checkpoint-every M]

Opens DIR with the given fsync policy (default: the database default), tiny flush thresholds
and frequent background checkpoints, creates the series and rules on first use, prints
``ready``, then writes batch FIRST_BATCH, FIRST_BATCH+1, … forever with one columnar ``madd``
each and prints ``ack <b>`` (flushed) after the call returns. Every M batches it also calls
``checkpoint()`` itself, printing ``checkpoint <b>`` just before. The test kills it with
SIGKILL; ``expected_values`` and ``batch_rows`` tell the test what each batch wrote.

Batch b writes, for every series ``s<i>``, K fresh samples at ts = b·K + j (j < K) and one late
overwrite (duplicate policy LAST) of the first sample of batch b - LATE, whose value becomes
``overwritten_value``. Each series has rules ``avg``, ``max`` and ``count`` over BUCKET_MS and a
chained ``sum`` tier over TIER2_MS built on the avg tier.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import sensorium

BUCKET_MS = 10
TIER2_MS = 50
LATE = 3  # batches between a sample and its overwrite


def fresh_value(i: np.ndarray | int, ts: np.ndarray | int) -> np.ndarray | float:
    """What batch ts // K writes at ts for series i: two decimals, like a sensor."""
    return np.round(((np.asarray(i) * 7919 + np.asarray(ts) * 104729) % 10007) / 100.0 - 50, 2)


def overwritten_value(i: np.ndarray | int, ts: np.ndarray | int) -> np.ndarray | float:
    return np.round(-fresh_value(i, ts) - 0.5, 2)


def keys(n: int) -> list[str]:
    return [f"s{i}" for i in range(n)]


def batch_rows(b: int, n: int, k: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The columns of batch b: n·k fresh rows, then n late overwrites (from batch LATE on)."""
    series = np.repeat(np.arange(n), k)
    ts = b * k + np.tile(np.arange(k), n)
    vals = fresh_value(series, ts)
    if b >= LATE:
        late_ts = np.full(n, (b - LATE) * k)
        series = np.concatenate((series, np.arange(n)))
        ts = np.concatenate((ts, late_ts))
        vals = np.concatenate((vals, overwritten_value(np.arange(n), late_ts)))
    return [f"s{i}" for i in series.tolist()], ts.astype(np.int64), np.asarray(vals, np.float64)


def expected_values(i: int, ts: np.ndarray, k: int, last_applied: int) -> np.ndarray:
    """Values of series i at ``ts`` once batches 0..last_applied have been applied."""
    ts = np.asarray(ts, np.int64)
    late = (ts % k == 0) & (ts // k + LATE <= last_applied)
    return np.where(late, overwritten_value(i, ts), fresh_value(i, ts))


def setup(db: sensorium.Database, n: int) -> None:
    if db.keys():
        return
    for key in keys(n):
        db.create(key, labels={"kind": "raw", "crash": "1"})
        for dest, agg, bucket, src in ((f"{key}:avg", "avg", BUCKET_MS, key),
                                       (f"{key}:max", "max", BUCKET_MS, key),
                                       (f"{key}:count", "count", BUCKET_MS, key),
                                       (f"{key}:sum", "sum", TIER2_MS, f"{key}:avg")):
            db.create(dest, labels={"kind": agg, "crash": "1"})
            db.createrule(src, dest, agg, bucket)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("first", type=int)
    ap.add_argument("--series", type=int, default=40)
    ap.add_argument("--rows", type=int, default=5)
    ap.add_argument("--fsync", default=None)
    ap.add_argument("--checkpoint-every", type=int, default=0)
    args = ap.parse_args()
    options = {"duplicate_policy": sensorium.DuplicatePolicy.LAST,
               "head_flush_rows": 300, "checkpoint_interval_s": 0.05}
    if args.fsync:
        options["fsync"] = args.fsync
    db = sensorium.open(args.dir, **options)
    setup(db, args.series)
    print("ready", flush=True)
    b = args.first
    while True:
        if args.checkpoint_every and b % args.checkpoint_every == 0:
            print(f"checkpoint {b}", flush=True)
            db.checkpoint()
        res = db.madd(*batch_rows(b, args.series, args.rows))
        if not res.ok:
            print(f"error {b} {res.rejects()[:3]}", flush=True)
            sys.exit(1)
        print(f"ack {b}", flush=True)
        b += 1


if __name__ == "__main__":
    main()
