"""Restart after a crash: time to open a database whose log holds N samples (default 10 M).

A writer process opens a copy of the ingest set-up (series and rules already checkpointed),
ingests the sensor stream with background flushing off (so every sample stays in the log and
in memory: the writer also measures bytes held per sample, see ``engine_ingest``), reports
"ready" once the last batch is acknowledged, and is killed with SIGKILL. Fresh
processes then time ``sensorium.open`` on the directory (replay of the log) and check that the
last acknowledged sample is there. The OS page cache is warm (the log was just written).

Also runnable on its own, which is how ``engine.py`` drives it::

    python benchmarks/engine_restart.py write DIR SERIES BATCH SAMPLES
    python benchmarks/engine_restart.py open DIR [--profile OUT.pstats]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))


def _expect_file(path: str) -> str:
    """The last acknowledged sample, kept next to the database directory."""
    return os.path.abspath(path).rstrip("/") + ".expect.json"


def write(path: str, series: int, batch: int, samples: int) -> None:
    """Ingests with flushing off (measuring memory on the way), reports, waits to be killed."""
    from engine_ingest import ingest_measuring_memory, make_batches

    import sensorium

    batches = make_batches(series, batch, samples // batch, seed=5)
    t = time.perf_counter()
    db = sensorium.open(path, background=False)
    open_s = time.perf_counter() - t
    t = time.perf_counter()
    memory = ingest_measuring_memory(db, batches)
    last = batches[-1]
    expect = {"key": str(last.keys[-1]), "ts": int(last.ts[-1]), "value": float(last.values[-1])}
    print(json.dumps({"ready": True, "samples": len(batches) * batch, "open_s": open_s,
                      "seconds": time.perf_counter() - t, "memory": memory,
                      "expect": expect}), flush=True)
    time.sleep(3600)  # killed with SIGKILL by the parent: no close, no checkpoint


def open_timed(path: str, profile: str | None) -> None:
    t = time.perf_counter()
    import sensorium
    import_s = time.perf_counter() - t
    prof = None
    if profile:
        import cProfile
        prof = cProfile.Profile()
        prof.enable()
    from engine_common import Stopwatch
    with Stopwatch(process=True) as sw:
        db = sensorium.open(path, background=False)
    if prof is not None:
        prof.disable()
        prof.dump_stats(profile)  # type: ignore[arg-type]
    with open(_expect_file(path)) as f:
        expect = json.load(f)
    got = db.get(expect["key"])
    ok = got is not None and got[0] == expect["ts"] and got[1] == expect["value"]
    print(json.dumps({"open_s": sw.wall, "cpu_s": sw.cpu, "wait": sw.wait_share,
                      "import_s": import_s, "recovered": ok}), flush=True)
    os._exit(0)  # no close: closing would checkpoint and empty the log for the next repeat


def crash_writer(path: str, series: int, batch: int, samples: int) -> dict[str, Any]:
    """Runs the writer until it is ready, kills it with SIGKILL; returns its report."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "write", path, str(series), str(batch), str(samples)],
        stdout=subprocess.PIPE, text=True, cwd=HERE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("restart writer died before it was ready")
        report: dict[str, Any] = json.loads(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with open(_expect_file(path), "w") as f:
        json.dump(report["expect"], f)
    return report


def time_open(path: str, profile: str | None = None) -> dict[str, Any]:
    args = [sys.executable, __file__, "open", path] + (["--profile", profile] if profile else [])
    out = subprocess.run(args, capture_output=True, text=True, cwd=HERE)
    if out.returncode != 0:
        raise RuntimeError(f"restart open failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("path")
    w.add_argument("series", type=int)
    w.add_argument("batch", type=int)
    w.add_argument("samples", type=int)
    o = sub.add_parser("open")
    o.add_argument("path")
    o.add_argument("--profile")
    args = p.parse_args()
    sys.path.insert(0, HERE)
    if args.cmd == "write":
        write(args.path, args.series, args.batch, args.samples)
    else:
        open_timed(args.path, args.profile)


if __name__ == "__main__":
    main()
