"""Block compression and read latency on synthetic sensor data (scratch benchmark, not a test).

    python benchmarks/compression.py size            # bytes/sample per data kind and shape
    python benchmarks/compression.py read 100000 3600 --row-group-rows 65536

Data as devices send it: one sample a second per series, each series with its own phase in
the second; "jitter" moves 1% of timestamps by up to ±30 ms and drops 0.1% of samples.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import pyarrow.parquet as pq

from sensorium.engine import block

T0_MS = 1_700_000_000_000
KINDS = ("temp_2dp_s0.05", "temp_2dp_s0.1", "humidity_1dp", "counter_int", "energy_3dp",
         "random_f64")


def generate(kind: str, n_series: int, n_seconds: int, seed: int = 0,
             jitter: float = 0.01, dropout: float = 0.001) -> tuple[np.ndarray, ...]:
    """(sids int32, ts int64 ms, values float64) sorted by (sid, ts)."""
    rng = np.random.default_rng(seed)
    k = np.arange(n_seconds, dtype=np.int64)
    ts = T0_MS + k * 1000 + rng.integers(0, 1000, (n_series, 1))
    if jitter:
        moved = rng.random((n_series, n_seconds)) < jitter
        ts = ts + np.where(moved, rng.integers(-30, 31, (n_series, n_seconds)), 0)
    hours = k / 3600.0
    phase = rng.uniform(0, 2 * np.pi, (n_series, 1))
    daily = np.sin(2 * np.pi * hours / 24 + phase)  # slow drift
    if kind.startswith("temp"):
        sigma = float(kind.rsplit("s", 1)[1])
        level = rng.uniform(15, 30, (n_series, 1)) + daily
        v = np.round(level + rng.normal(0, sigma, (n_series, n_seconds)), 2)
    elif kind == "humidity_1dp":
        level = rng.uniform(30, 70, (n_series, 1)) + 5 * daily
        v = np.clip(np.round(level + rng.normal(0, 0.3, (n_series, n_seconds)), 1), 0, 100)
    elif kind == "counter_int":
        steps = rng.poisson(5, (n_series, n_seconds))
        v = (rng.integers(0, 10**6, (n_series, 1)) + np.cumsum(steps, axis=1)).astype(float)
    elif kind == "energy_3dp":
        steps = rng.uniform(0, 0.002, (n_series, n_seconds))
        v = np.round(rng.uniform(0, 1e5, (n_series, 1)) + np.cumsum(steps, axis=1), 3)
    elif kind == "random_f64":
        v = rng.normal(0, 1, (n_series, n_seconds)) * 10 ** rng.uniform(-3, 3, (n_series, 1))
    else:
        raise ValueError(kind)
    keep = rng.random((n_series, n_seconds)) >= dropout
    sids = np.broadcast_to(np.arange(n_series, dtype=np.int32)[:, None], ts.shape)
    return sids[keep], ts[keep], v[keep]


def column_bytes(path: str) -> dict[str, int]:
    md = pq.read_metadata(path)
    out: dict[str, int] = {"footer": md.serialized_size}
    for i in range(md.num_row_groups):
        for j in range(md.num_columns):
            c = md.row_group(i).column(j)
            out[c.path_in_schema] = out.get(c.path_in_schema, 0) + c.total_compressed_size
    return out


def size(args: argparse.Namespace) -> None:
    shapes = [(100_000, 60), (10_000, 3600)]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "b.parquet")
        for n_series, n_seconds in shapes:
            print(f"\n{n_series} series x {n_seconds} s   (bytes/sample; per column)")
            for kind in KINDS:
                for jitter in (0.0, 0.01):
                    sids, ts, v = generate(kind, n_series, n_seconds, jitter=jitter,
                                           dropout=0.001 if jitter else 0.0)
                    t = time.perf_counter()
                    meta = block.write_block(path, sids, ts, {"value": v})
                    write_s = time.perf_counter() - t
                    _, ts2, cols = block.read(meta, None, 0, 2**62)
                    assert np.array_equal(ts2, ts)
                    assert np.array_equal(cols["value"].view(np.int64), v.view(np.int64))
                    per = {k: round(b / len(ts), 3) for k, b in column_bytes(path).items()}
                    label = "jitter" if jitter else "regular"
                    print(f"  {kind:15s} {label:8s} {meta.size_bytes / len(ts):6.3f}  {per}"
                          f"  write {len(ts) / write_s / 1e6:.1f} M rows/s")


def read(args: argparse.Namespace) -> None:
    n_series, n_seconds = args.series, args.seconds
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = os.path.join(tmp, "b.parquet")
        n = n_series * n_seconds  # no dropout/jitter here: preallocate, fill by chunks
        sids, ts, v = np.empty(n, np.int32), np.empty(n, np.int64), np.empty(n)
        for first in range(0, n_series, 10_000):
            part = generate("temp_2dp_s0.1", min(10_000, n_series - first), n_seconds,
                            seed=first, jitter=0.0, dropout=0.0)
            a, b = first * n_seconds, first * n_seconds + len(part[0])
            sids[a:b], ts[a:b], v[a:b] = part[0] + first, part[1], part[2]
        t = time.perf_counter()
        meta = block.write_block(path, sids, ts, {"value": v}, row_group_rows=args.row_group_rows)
        print(f"{len(ts):,} rows, {meta.size_bytes / len(ts):.3f} B/sample, "
              f"{len(meta.rg_start) - 1} row groups, write {time.perf_counter() - t:.1f}s")
        del sids, ts, v
        times = []
        for _ in range(20):
            t = time.perf_counter()
            meta = block.read_meta(path)
            times.append(time.perf_counter() - t)
        print(f"read_meta: median {np.median(times) * 1e3:.2f} ms")
        cache = block.RowGroupCache()
        cold, warm = [], []
        for sid in rng.choice(n_series, 200, replace=False):
            want = np.array([sid], np.int32)
            t = time.perf_counter()
            s, _, _ = block.read(meta, want, 0, 2**62, cache=cache)
            cold.append(time.perf_counter() - t)
            t = time.perf_counter()
            s2, _, _ = block.read(meta, want, 0, 2**62, cache=cache)
            warm.append(time.perf_counter() - t)
            assert len(s) == len(s2) > 0
        print(f"one series ({len(s)} rows): cold median {np.median(cold) * 1e3:.2f} ms "
              f"p90 {np.percentile(cold, 90) * 1e3:.2f} ms; warm median "
              f"{np.median(warm) * 1e3:.3f} ms p90 {np.percentile(warm, 90) * 1e3:.3f} ms")
        t = time.perf_counter()
        s, _, _ = block.read(meta, None, T0_MS + 600_000, T0_MS + 660_000)
        print(f"all series, one minute ({len(s):,} rows): {time.perf_counter() - t:.2f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(required=True)
    s = sub.add_parser("size")
    s.set_defaults(run=size)
    r = sub.add_parser("read")
    r.add_argument("series", type=int, nargs="?", default=100_000)
    r.add_argument("seconds", type=int, nargs="?", default=3600)
    r.add_argument("--row-group-rows", type=int, default=block.ROW_GROUP_ROWS)
    r.add_argument("--dir", default=None)
    r.set_defaults(run=read)
    args = p.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
