"""Shared helpers of the engine benchmark: results, statistics, yardsticks, profiles, machine.

Nothing here knows a workload; ``engine_ingest``, ``engine_query`` and ``engine_restart`` do.
Every figure is a :class:`Result` (median and spread over repeats, target, pass/fail), so the
CLI in ``engine.py`` prints and saves them all the same way.
"""

from __future__ import annotations

import cProfile
import gc
import io
import os
import platform
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

DAY_MS = 86_400_000
QUERY_T0_MS = 1_700_006_400_000  # a UTC midnight: a day holds exactly 1,440 minute buckets
# 30 s past a minute boundary: the first 1-minute buckets close in the middle of a run.
INGEST_T0_MS = QUERY_T0_MS + 30_000
MINUTE_MS = 60_000
BENCH_DIR = os.path.dirname(os.path.abspath(__file__))


@dataclass(slots=True)
class Result:
    """One measured figure: median and spread (min..max, or p10..p90 for many repeats).

    ``cpu`` is the same figure computed from CPU time instead of wall time, and ``wait`` the
    share of wall time the thread spent runnable but waiting for a CPU (other processes on a
    shared machine). When ``wait`` is high, ``cpu`` is the better estimate of the quiet speed.
    """

    phase: str
    name: str
    unit: str
    median: float
    low: float
    high: float
    n: int
    target: str = ""  # e.g. ">= 2000000", "< 1" (same unit); empty: reported, not judged
    note: str = ""
    cpu: float = float("nan")
    wait: float = float("nan")
    extra: dict[str, Any] = field(default_factory=dict)

    def _meets(self, x: float) -> bool | None:
        if not self.target or x != x:
            return None
        op, value = self.target.split()
        bound = float(value)
        return {"<": x < bound, "<=": x <= bound, ">": x > bound, ">=": x >= bound}[op]

    @property
    def ok(self) -> bool | None:
        return self._meets(self.median)

    @property
    def cpu_ok(self) -> bool | None:
        return self._meets(self.cpu)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "cpu_ok": self.cpu_ok}


def result(phase: str, name: str, unit: str, values: list[float] | np.ndarray, *,
           target: str = "", note: str = "", percentiles: bool = False,
           cpu: list[float] | None = None, wait: list[float] | None = None,
           **extra: Any) -> Result:
    """Summarises repeated measurements; spread is p10..p90 when ``percentiles``."""
    v = np.asarray(values, np.float64)
    if percentiles and len(v) >= 5:
        low, high = np.percentile(v, [10, 90])
    else:
        low, high = v.min(), v.max()
    return Result(phase, name, unit, float(np.median(v)), float(low), float(high), len(v),
                  target, note, float(np.median(cpu)) if cpu else float("nan"),
                  float(np.median(wait)) if wait else float("nan"), extra)


def fmt(x: float) -> str:
    if x != x:  # NaN
        return ""
    a = abs(x)
    if a >= 1e6:
        return f"{x / 1e6:,.2f} M"
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def verdict(r: Result) -> str:
    """PASS/FAIL on the wall-clock median; a wall FAIL whose CPU figure passes says so."""
    if r.ok is None:
        return ""
    if r.ok:
        return "PASS"
    return "FAIL (cpu: PASS)" if r.cpu_ok else "FAIL"


# -- clocks -------------------------------------------------------------------------------------
def run_delay_s() -> float:
    """Seconds this thread has spent runnable but waiting for a CPU (Linux schedstat)."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


class Stopwatch:
    """Wall time, CPU time (this thread, or the process with ``process``) and CPU wait."""

    def __init__(self, process: bool = False) -> None:
        self._cpu = time.process_time if process else time.thread_time
        self.wall = self.cpu = self.waited = 0.0

    def __enter__(self) -> Stopwatch:
        self._start = (time.perf_counter(), self._cpu(), run_delay_s())
        return self

    def __exit__(self, *exc: object) -> None:
        w, c, d = self._start
        self.wall = time.perf_counter() - w
        self.cpu = self._cpu() - c
        self.waited = run_delay_s() - d

    @property
    def wait_share(self) -> float:
        return self.waited / self.wall if self.wall > 0 else 0.0


# -- yardsticks --------------------------------------------------------------------------------
def yardstick_batch(batch: int = 10_000, repeats: int = 50) -> float:
    """Samples/s of numpy doing the least an ingest must: sort a batch by (sid, ts), gather.

    A machine-speed reference measured next to each ingest run: when the machine is busy it
    drops too, so the ratio ingest/yardstick is steadier than either number.
    """
    rng = np.random.default_rng(0)
    sids = rng.integers(0, 100_000, batch).astype(np.int32)
    ts = np.full(batch, INGEST_T0_MS, np.int64)
    values = np.round(rng.normal(20, 1, batch), 2)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        key = (sids.astype(np.int64) << 40) | (ts - INGEST_T0_MS)
        order = np.argsort(key, kind="stable")
        _ = sids[order], ts[order], values[order], np.isfinite(values).all()
        times.append(time.perf_counter() - t)
    return batch / float(np.median(times))


def yardstick_memcpy(nbytes: int = 64 << 20, repeats: int = 5) -> float:
    """Bytes/s of a large numpy copy (memory bandwidth)."""
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - t)
    return nbytes / float(np.median(times))


def yardstick_fsync(directory: str, nbytes: int = 200_000, repeats: int = 30) -> list[float]:
    """Seconds of one append of ``nbytes`` + fdatasync (a 10,000-sample log record's cost)."""
    path = os.path.join(directory, "fsync-probe")
    payload = os.urandom(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    times = []
    try:
        for _ in range(repeats):
            t = time.perf_counter()
            os.write(fd, payload)
            os.fdatasync(fd)
            times.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        os.unlink(path)
    return times


# -- memory ------------------------------------------------------------------------------------
def rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def settle() -> None:
    """Frees what can be freed so that memory readings compare."""
    gc.collect()
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # give freed heap pages back: RSS drops
    except OSError:
        pass


# -- profiles ----------------------------------------------------------------------------------
@dataclass(slots=True)
class Profile:
    label: str
    total_s: float
    rows: list[dict[str, Any]]  # function, where, calls, tottime, cumtime, shares

    def text(self, top: int = 15) -> str:
        out = [f"profile: {self.label} (total {self.total_s:.2f} s under cProfile)",
               f"  {'tottime':>8} {'share':>6} {'cumtime':>8} {'share':>6} {'calls':>9}  "
               "function (file:line)"]
        for r in self.rows[:top]:
            out.append(f"  {r['tottime']:8.3f} {r['tot_share']:6.1%} {r['cumtime']:8.3f} "
                       f"{r['cum_share']:6.1%} {r['calls']:>9}  {r['function']} ({r['where']})")
        return "\n".join(out)


def profile_stats(stats: pstats.Stats, label: str, top: int = 25) -> Profile:
    """Top functions by own time (tottime), with cumulative time and shares of the total."""
    raw = stats.stats  # type: ignore[attr-defined]
    total = max(sum(v[2] for v in raw.values()), 1e-9)
    rows = []
    for (file, line, func), (cc, nc, tt, ct, _) in raw.items():
        rows.append({"function": func, "where": f"{short_path(file)}:{line}",
                     "calls": nc if nc == cc else f"{nc}/{cc}", "tottime": tt, "cumtime": ct,
                     "tot_share": tt / total, "cum_share": ct / total})
    rows.sort(key=lambda r: r["tottime"], reverse=True)
    return Profile(label, total, rows[:top])


def cumulative_rows(stats: pstats.Stats, top: int = 15) -> list[str]:
    """Top entries by cumulative time, project code only (where the time goes, top-down)."""
    raw = stats.stats  # type: ignore[attr-defined]
    total = max(sum(v[2] for v in raw.values()), 1e-9)
    rows = [(ct, f"{ct / total:6.1%} {ct:8.3f}s  {func} ({short_path(file)}:{line})")
            for (file, line, func), (_, _, _, ct, _) in raw.items()
            if "sensorium" in file]
    rows.sort(reverse=True)
    return [r for _, r in rows[:top]]


def run_profiled(fn: Callable[[], Any], label: str) -> tuple[Profile, list[str]]:
    prof = cProfile.Profile()
    prof.enable()
    try:
        fn()
    finally:
        prof.disable()
    stats = pstats.Stats(prof, stream=io.StringIO())
    return profile_stats(stats, label), cumulative_rows(stats)


def load_profile(path: str, label: str) -> tuple[Profile, list[str]]:
    stats = pstats.Stats(path, stream=io.StringIO())
    return profile_stats(stats, label), cumulative_rows(stats)


def short_path(file: str) -> str:
    for marker in ("/src/sensorium/", "/site-packages/", "/lib/python3"):
        i = file.find(marker)
        if i >= 0:
            return file[i + 1:] if marker != "/src/sensorium/" else \
                "sensorium/" + file[i + len(marker):]
    return os.path.basename(file) if file.startswith("/") else file


# -- directories and the engine ----------------------------------------------------------------
@contextmanager
def scratch(parent: str | None, prefix: str, keep: bool = False) -> Iterator[str]:
    path = tempfile.mkdtemp(prefix=prefix, dir=parent)
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def dir_bytes(path: str) -> dict[str, int]:
    """Bytes under ``path`` by kind: raw blocks, rollup (tier) blocks, log, other."""
    out = {"raw_blocks": 0, "tier_blocks": 0, "wal": 0, "other": 0}
    for dirpath, _, files in os.walk(path):
        for name in files:
            size = os.path.getsize(os.path.join(dirpath, name))
            if name.endswith(".parquet") and name.startswith("raw"):
                out["raw_blocks"] += size
            elif name.endswith(".parquet"):
                out["tier_blocks"] += size
            elif name.endswith(".wal"):
                out["wal"] += size
            else:
                out["other"] += size
    return out


def group_commit(db: Any) -> Any:
    """``db.batch()`` (one fsync for many writes) where the engine has it."""
    batch = getattr(db, "batch", None)
    return batch() if batch is not None else nullcontext()


def head_bytes(db: Any) -> float:
    """The engine's own accounting of in-memory (unflushed) bytes, NaN if it has none."""
    try:
        return float(sum(t.memory_bytes() for s in db.engine.shards for t in (s.raw, s.rollup)))
    except AttributeError:
        return float("nan")


def drop_block_cache(db: Any) -> None:
    """Empties the decoded row-group cache, so the next read decodes blocks again."""
    cache = db.engine.cache
    with cache._lock:
        cache._entries.clear()
        cache.nbytes = 0


# -- machine -----------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    import pyarrow
    info = {"date": time.strftime("%Y-%m-%d %H:%M"), "python": platform.python_version(),
            "numpy": np.__version__, "pyarrow": pyarrow.__version__,
            "cpus": str(os.cpu_count()), "load": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines()
                            if ln.startswith("Model name")), "?")
    except OSError:
        info["cpu"] = platform.processor()
    with open("/proc/meminfo") as f:
        info["ram_gib"] = f"{int(f.readline().split()[1]) / 2**20:.1f}"
    import sensorium
    src = os.path.dirname(os.path.abspath(sensorium.__file__))
    info["sensorium"] = src
    try:
        git = ["git", "-C", src]
        info["commit"] = subprocess.run(git + ["rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True).stdout.strip() or "?"
        dirty = subprocess.run(git + ["status", "--porcelain", "--", "."],
                               capture_output=True, text=True).stdout.strip()
        info["src_dirty"] = "yes" if dirty else "no"
    except OSError:
        pass
    return info


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
