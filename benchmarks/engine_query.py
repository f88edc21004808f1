"""Query and disk workload: a few hundred sensors with 24 h of 1 s readings and 1-minute tiers.

Each sensor ``q:NNNN`` has labels ``group`` (g0, g1, ...: 100 sensors each), ``type`` and
``tier=raw``, and
raw → 1 min avg/min/max rules into ``q:NNNN:1m_avg`` etc. (labels ``tier=1m_avg`` ...).
Readings come from ``compression.generate`` (slow drift + noise, 2 decimals, 1 s apart with a
per-sensor phase): the same data the block-level benchmark uses, here written by the engine.

Queries run through the public API (redis-py reply shapes included), first with all data in
memory (head), then after a checkpoint (blocks), with the decoded-block cache dropped before
every call ("cold": the OS page cache stays warm) and kept ("warm").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import compression
import numpy as np
from engine_common import (
    QUERY_T0_MS,
    Stopwatch,
    dir_bytes,
    drop_block_cache,
    group_commit,
    head_bytes,
    rss_bytes,
    settle,
)

import sensorium

AGGREGATORS = ("avg", "min", "max")
# Seconds of data per madd while loading: big batches, the load is not what is measured.
LOAD_CHUNK_S = 600


def query_key(i: int) -> str:
    return f"q:{i:04d}"


def group_of(i: int, n_series: int) -> str:
    """Label value of sensor ``i``: groups of exactly 100 sensors, interleaved by sid."""
    return f"g{i % max(1, n_series // 100)}"


@dataclass(slots=True)
class QueryData:
    db: Any
    path: str
    n_series: int
    seconds: int
    samples: int
    t_lo: int  # window covering every sample, inclusive ms
    t_hi: int
    load: dict[str, float]


def build(path: str, n_series: int, seconds: int) -> QueryData:
    """Creates the sensors and loads their readings, all kept in memory (no flush)."""
    db = sensorium.open(path, fsync="none", background=False)
    with group_commit(db):
        for i in range(n_series):
            labels = {"group": group_of(i, n_series), "type": "temperature", "tier": "raw"}
            db.create(query_key(i), labels=labels)
            for agg in AGGREGATORS:
                dest = f"{query_key(i)}:1m_{agg}"
                db.create(dest, labels={**labels, "tier": f"1m_{agg}"})
                db.createrule(query_key(i), dest, agg, 60_000)
    t = time.perf_counter()
    _, ts, values = compression.generate("temp_2dp_s0.05", n_series, seconds, seed=3,
                                         jitter=0.0, dropout=0.0)
    ts = (ts - compression.T0_MS + QUERY_T0_MS).reshape(n_series, seconds)
    values = values.reshape(n_series, seconds)
    gen_s = time.perf_counter() - t
    keys = np.array([query_key(i) for i in range(n_series)], dtype=object)
    settle()
    rss0 = rss_bytes()
    t = time.perf_counter()
    for a in range(0, seconds, LOAD_CHUNK_S):
        b = min(a + LOAD_CHUNK_S, seconds)
        res = db.madd(np.repeat(keys, b - a), ts[:, a:b].ravel(), values[:, a:b].ravel())
        assert (res.status == 0).all(), "load rejected samples"
    load_s = time.perf_counter() - t
    settle()
    samples = n_series * seconds
    load = {"generate_s": gen_s, "load_s": load_s, "load_rate": samples / load_s,
            "rss_per_sample": (rss_bytes() - rss0) / samples,
            "engine_per_sample": head_bytes(db) / samples}
    return QueryData(db, path, n_series, seconds, samples, QUERY_T0_MS,
                     QUERY_T0_MS + seconds * 1000 - 1, load)


@dataclass(slots=True)
class Query:
    name: str
    target_ms: float
    run: Callable[[int], Any]  # argument: repeat number (picks the series or group)
    expect: Callable[[Any], bool]


def queries(d: QueryData) -> list[Query]:
    db, lo, hi, n = d.db, d.t_lo, d.t_hi, d.n_series
    minute = {"aggregation_type": "avg", "bucket_size_msec": 60_000}
    buckets = d.seconds // 60

    def pick(i: int) -> str:
        return query_key((i * 7919) % n)  # a different series each repeat, spread over sids

    def group(i: int) -> str:
        return group_of(i, n)

    return [
        Query("1 series, 1 h raw", 1.0,
              lambda i: db.range(pick(i), hi - 3_600_000 + 1, hi),
              lambda r: len(r) == 3600),
        Query("1 series, 1 h raw as numpy columns (range_columns)", 1.0,
              lambda i: db.range_columns(pick(i), hi - 3_600_000 + 1, hi),
              lambda r: len(r[0]) == 3600),
        Query("1 series, 24 h 1-min avg from tier", 5.0,
              lambda i: db.range(pick(i) + ":1m_avg", lo, hi),
              lambda r: len(r) >= buckets - 1),
        Query("1 series, 24 h 1-min avg from raw", 5.0,
              lambda i: db.range(pick(i), lo, hi, **minute),
              lambda r: len(r) == buckets),
        Query("100 series by label, 24 h 1-min avg from tier", 50.0,
              lambda i: db.mrange(lo, hi, [f"group={group(i)}", "tier=1m_avg"]),
              lambda r: len(r) == 100 and len(next(iter(r[0].values()))[1]) >= buckets - 1),
        Query("100 series by label, 24 h 1-min avg from raw", 50.0,
              lambda i: db.mrange(lo, hi, [f"group={group(i)}", "tier=raw"], **minute),
              lambda r: len(r) == 100 and len(next(iter(r[0].values()))[1]) == buckets),
    ]


def measure(q: Query, *, budget_s: float, min_repeats: int, max_repeats: int,
            before: Callable[[], None] | None = None) -> tuple[list[Stopwatch], bool]:
    """One stopwatch per call (after one warm-up); whether every reply had the right shape."""
    if before is not None:
        before()
    ok = q.expect(q.run(0))
    times: list[Stopwatch] = []
    started = time.perf_counter()
    i = 1
    while len(times) < max_repeats and (
            len(times) < min_repeats or time.perf_counter() - started < budget_s):
        if before is not None:
            before()
        with Stopwatch() as sw:
            reply = q.run(i)
        times.append(sw)
        ok = ok and q.expect(reply)
        i += 1
    return times, ok


def checkpoint(d: QueryData) -> dict[str, Any]:
    """Flushes everything to blocks; returns its duration and the directory's bytes."""
    t = time.perf_counter()
    d.db.checkpoint()
    seconds = time.perf_counter() - t
    return {"checkpoint_s": seconds, "disk": dir_bytes(d.path)}


def cold(d: QueryData) -> Callable[[], None]:
    return lambda: drop_block_cache(d.db)
