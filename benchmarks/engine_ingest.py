"""Ingest workload: 100,000 sensors, one sample a second each, sent in batches of 10,000.

Batch ``i`` holds sensors ``(i*B .. i*B+B-1) % N`` at ``ts = start + (i*B // N) s``, with
realistic readings (per-sensor level, slow daily drift, noise, 2 decimals). Every sensor has
raw → 1 min avg, min and max rules (the "rules" set-up) or none ("plain").

The set-up (N series, 3N tier series, 3N rules) is built once per kind, timed, and closed; each
measured run ingests into a fresh copy of it, so every run starts from the same state.
"""

from __future__ import annotations

import os
import shutil
import time
import tracemalloc
from dataclasses import dataclass
from typing import Any

import numpy as np
from engine_common import (
    INGEST_T0_MS,
    Profile,
    Stopwatch,
    dir_bytes,
    group_commit,
    head_bytes,
    log,
    rss_bytes,
    run_profiled,
    settle,
    short_path,
)

import sensorium

AGGREGATORS = ("avg", "min", "max")
KINDS = ("temperature", "humidity", "pressure")
# Sensors created per db.batch(): a provisioning script's natural unit, one fsync each.
CREATE_GROUP = 1_000


@dataclass(slots=True)
class Batch:
    keys: np.ndarray  # object array of str
    ts: np.ndarray  # int64 ms
    values: np.ndarray  # float64


def sensor_keys(n: int) -> np.ndarray:
    return np.array([f"sensor:{i:06d}" for i in range(n)], dtype=object)


def sensor_labels(i: int) -> dict[str, str]:
    return {"type": KINDS[i % len(KINDS)], "zone": f"z{i % 100:02d}", "tier": "raw"}


def create_series(db: Any, n: int, rules: bool) -> tuple[float, float]:
    """Creates ``n`` sensors (and their 1-minute tiers and rules); returns (raw_s, rules_s)."""
    keys = sensor_keys(n)
    t = time.perf_counter()
    for first in range(0, n, CREATE_GROUP):
        with group_commit(db):
            for i in range(first, min(first + CREATE_GROUP, n)):
                db.create(keys[i], labels=sensor_labels(i))
    raw_s = time.perf_counter() - t
    if not rules:
        return raw_s, 0.0
    t = time.perf_counter()
    for first in range(0, n, CREATE_GROUP):
        with group_commit(db):
            for i in range(first, min(first + CREATE_GROUP, n)):
                key, labels = keys[i], sensor_labels(i)
                for agg in AGGREGATORS:
                    dest = f"{key}:1m_{agg}"
                    db.create(dest, labels={**labels, "tier": f"1m_{agg}"})
                    db.createrule(key, dest, agg, 60_000)
        if first and first % (20 * CREATE_GROUP) == 0:
            log(f"    rules for {first:,} sensors after {time.perf_counter() - t:.0f} s")
    return raw_s, time.perf_counter() - t


def build_setup(path: str, n: int, rules: bool) -> dict[str, float]:
    """Creates the set-up directory with default options; returns its timings in seconds."""
    db = sensorium.open(path)
    with Stopwatch(process=True) as sw:
        raw_s, rules_s = create_series(db, n, rules)
    t = time.perf_counter()
    db.close()
    return {"raw_s": raw_s, "rules_s": rules_s, "cpu_s": sw.cpu, "wait": sw.wait_share,
            "close_s": time.perf_counter() - t}


def make_batches(n_series: int, batch: int, count: int, *, first_second: int = 0,
                 seed: int = 0) -> list[Batch]:
    """``count`` batches of the sensor stream from ``first_second`` on, built before timing.

    A sensor's level and drift phase are the same in every call; the noise depends on
    ``seed`` and ``first_second``.
    """
    fixed = np.random.default_rng(12345)
    level = fixed.uniform(15, 30, n_series)
    phase = fixed.uniform(0, 2 * np.pi, n_series)
    rng = np.random.default_rng([seed, first_second])
    keys = sensor_keys(n_series)
    out = []
    for i in range(count):
        idx = (i * batch + np.arange(batch)) % n_series
        second = first_second + (i * batch) // n_series
        drift = np.sin(2 * np.pi * second / 86_400 + phase[idx])
        values = np.round(level[idx] + drift + rng.normal(0, 0.05, batch), 2)
        out.append(Batch(keys[idx], np.full(batch, INGEST_T0_MS + second * 1000, np.int64),
                         values))
    return out


def copy_setup(setup: str, dest: str) -> str:
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(setup, dest)
    lock = os.path.join(dest, "LOCK")
    if os.path.exists(lock):
        os.remove(lock)
    return dest


class Session:
    """A fresh copy of a set-up, opened with default options but ``fsync``.

    Runs consecutive segments of the sensor stream, each followed by a checkpoint, so every
    segment starts with an empty head and the earlier data in blocks (steady state), and
    the set-up's costly open is paid once per variant rather than once per run.
    """

    def __init__(self, setup: str, run_dir: str, fsync: str, n_series: int, batch: int, *,
                 ids: bool = False) -> None:
        copy_setup(setup, run_dir)
        self.path, self.fsync, self.n_series, self.batch = run_dir, fsync, n_series, batch
        self.ids = ids  # pass ids resolved once (series_ids) instead of key strings
        t = time.perf_counter()
        self.db = sensorium.open(run_dir, fsync=fsync)
        self.open_s = time.perf_counter() - t
        self.next_second = 0
        self.samples = 0
        self.checkpoints = 0

    def batches(self, count: int) -> list[Batch]:
        """The next ``count`` batches of the stream."""
        out = make_batches(self.n_series, self.batch, count, first_second=self.next_second)
        self.next_second += count * self.batch // self.n_series
        if self.ids:  # resolved before timing, as a writer holding its sensors' ids would
            keys = sensor_keys(self.n_series)
            id_of = dict(zip(keys.tolist(), self.db.series_ids(keys, create=False).tolist(),
                             strict=True))
            out = [Batch(np.array([id_of[k] for k in b.keys.tolist()], np.int32), b.ts,
                         b.values) for b in out]
        return out

    def run(self, batches: list[Batch]) -> dict[str, Any]:
        """One measured run: ``madd`` every batch, then a (separately timed) checkpoint."""
        times = np.empty(len(batches))
        results = []
        with Stopwatch(process=True) as sw:  # the process: background threads count as cores
            for i, b in enumerate(batches):
                t = time.perf_counter()
                results.append(self.db.madd(b.keys, b.ts, b.values))
                times[i] = time.perf_counter() - t
        bad = sum(int((r.status != 0).sum()) for r in results)
        samples = sum(len(b.ts) for b in batches)
        self.samples += samples
        t = time.perf_counter()
        self.db.checkpoint()
        self.checkpoints += 1
        return {"samples": samples, "seconds": sw.wall, "rate": samples / sw.wall,
                "cpu_rate": samples / sw.cpu, "wait": sw.wait_share, "batch_ms": times * 1e3,
                "checkpoint_s": time.perf_counter() - t, "rejected": bad}

    def profiled(self, batches: list[Batch], label: str) -> tuple[Profile, list[str]]:
        """The ``madd`` calls of one more run under cProfile."""
        got = run_profiled(lambda: [self.db.madd(b.keys, b.ts, b.values) for b in batches],
                           label)
        self.samples += sum(len(b.ts) for b in batches)
        self.db.checkpoint()
        self.checkpoints += 1
        return got

    def close(self) -> dict[str, Any]:
        t = time.perf_counter()
        self.db.close()
        return {"close_s": time.perf_counter() - t, "disk": dir_bytes(self.path)}


def ingest_measuring_memory(db: Any, batches: list[Batch]) -> dict[str, Any]:
    """Ingests ``batches`` into ``db`` (opened with flushing off) and measures what it holds.

    Returns bytes per sample of RSS growth (minus tracemalloc's own bookkeeping), tracemalloc
    growth and peak, the engine's own count, and the largest live allocation sites. The
    batches are built before the baseline, so only the engine's growth counts.
    """
    settle()
    rss0 = rss_bytes()
    tracemalloc.start()
    traced0, _ = tracemalloc.get_traced_memory()
    for b in batches:
        res = db.madd(b.keys, b.ts, b.values)
        assert (res.status == 0).all(), "rejected samples"
    settle()
    traced1, peak = tracemalloc.get_traced_memory()
    rss1 = rss_bytes() - tracemalloc.get_tracemalloc_memory()
    top = tracemalloc.take_snapshot().statistics("lineno")[:12]
    tracemalloc.stop()
    samples = sum(len(b.ts) for b in batches)
    return {"samples": samples, "rss_per_sample": (rss1 - rss0) / samples,
            "traced_per_sample": (traced1 - traced0) / samples,
            "peak_per_sample": (peak - traced0) / samples,
            "engine_per_sample": head_bytes(db) / samples,
            "top": [f"{st.size / samples:6.2f} B/sample {st.count:>8} blocks  "
                    f"{short_path(st.traceback[0].filename)}:{st.traceback[0].lineno}"
                    for st in top]}
