"""Sensorium beside VictoriaMetrics and InfluxDB in one run: same client, same data (issue #3).

    bash benchmarks/peers/setup.sh                       # once: the peers from Debian
    python benchmarks/peers/run.py                       # 10k series x 1 h (36 M samples)
    python benchmarks/peers/run.py --series 10000 --minutes 5 --repeats 10   # smoke run
    python benchmarks/peers/run.py --systems sensorium,victoriametrics --markdown out.md

What it measures, for every system, in this order:

1. Ingest: InfluxDB line protocol over HTTP, ``--clients`` concurrent writers posting
   ``--batch``-line bodies (``lp_clients.py``; the same bytes to every system) of realistic
   readings (``workload.py``): samples/s and request latency p50/p99. The first second of
   data creates every series and is timed apart. The rest is cut into ``--segments`` runs;
   each run is posted to every system in turn, the order rotating, while the other systems
   are paused (SIGSTOP), so machine noise and each system's own background work land in its
   own time.
2. Disk: bytes per sample once the data is flushed to each system's compressed format
   (Sensorium: a clean shutdown's checkpoint; VictoriaMetrics: ``/internal/force_flush``;
   InfluxDB: cache snapshot and full compaction), and VictoriaMetrics again after
   ``/internal/force_merge``.
3. Queries over HTTP (``questions.py``): one sensor's raw hour, 1-minute averages of a
   zone's 100 temperature sensors over the hour, the latest reading of 100 sensors; warm-up
   calls, then ``--repeats`` rounds, the systems alternating within each round; every reply
   is checked against the generated data. Median and p90 of the request time (sent to reply
   fully read; JSON decoding is not timed).

Prints progress on stderr and a Markdown table on stdout (``--markdown``/``--json`` save
them). Ratios are Sensorium / peer. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import hotspots
import httpx
import numpy as np
import questions
import report
from lp_clients import LineProtocolClients, RunResult
from servers import REPO_SRC, SYSTEMS, Server
from workload import Workload

DATA_END_BEFORE_NOW_S = 120  # the newest sample is this old when the run starts


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def machine(names: list[str]) -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    # Debian's VictoriaMetrics build prints no version: ask the package manager for both
    versions = {n: _out(["dpkg-query", "-W", "-f=${Version}", pkg]) for n, pkg in
                (("victoriametrics", "victoria-metrics"), ("influxdb", "influxdb")) if n in names}
    commit = _out(["git", "-C", str(REPO_SRC.parent), "describe", "--always", "--dirty"])
    return {"cpu": cpu, "cpus": os.cpu_count(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                                / 2**30, 1),
            "python": platform.python_version(), "numpy": np.__version__,
            "commit": commit, "versions": versions}


def _out(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True)
        return (out.stdout or out.stderr).strip()
    except OSError as exc:
        return f"unavailable ({exc})"


def ingest(w: Workload, servers: list[Server], pool: LineProtocolClients, segments: int,
           pause: bool, spy: Spy) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {s.name: {"runs": [], "latencies_s": [], "cpu_s": 0.0}
                                      for s in servers}
    for s in servers:  # second 0: every series is new
        s.resume()
        res = pool.post(s.url, s.write_path, range(0, w.chunks))
        out[s.name]["create_s"] = res.elapsed_s
        if pause:
            s.pause()
        log(f"{s.name}: created {w.series:,} series in {res.elapsed_s:.2f} s")
    ids = range(w.chunks, w.chunks * w.rounds)
    cuts = np.linspace(ids.start, ids.stop, segments + 1).astype(int)
    for i in range(segments):
        run = range(int(cuts[i]), int(cuts[i + 1]))
        order = servers[i % len(servers):] + servers[:i % len(servers)]
        line = []
        for s in order:
            s.resume()
            rec = spy.record(s, f"ingest-{i:02d}")
            cpu0 = s.cpu_s()
            res: RunResult = pool.post(s.url, s.write_path, run)
            cpu = s.cpu_s() - cpu0
            if rec:
                rec.stop()
            if pause:
                s.pause()
            r = out[s.name]
            r["runs"].append({"samples": res.samples, "elapsed_s": res.elapsed_s, "cpu_s": cpu,
                              "load1": os.getloadavg()[0]})
            r["latencies_s"].extend(res.latencies_s)
            r["cpu_s"] += cpu
            line.append(f"{s.name} {res.samples / res.elapsed_s / 1e3:,.0f}k/s")
        log(f"segment {i + 1}/{segments}: " + ", ".join(line)
            + f"; load {os.getloadavg()[0]:.1f}")
    return out


class Spy:
    """py-spy recordings of the Sensorium server, one file per run (``hotspots.py``)."""

    def __init__(self, py_spy: str | None, out_dir: Path) -> None:
        self.py_spy, self.out_dir = py_spy, out_dir
        self.files: dict[str, list[Path]] = {}

    def record(self, s: Server, name: str) -> hotspots.Recording | None:
        if self.py_spy is None or s.name != "sensorium":
            return None
        out = self.out_dir / f"py-spy-{name}.txt"
        self.files.setdefault(name.split("-")[0], []).append(out)
        rec = hotspots.Recording(self.py_spy, s.pid, out)
        rec.start()
        time.sleep(0.5)  # attached before the first request
        return rec

    def report(self) -> str:
        return "\n".join(hotspots.top(f"Sensorium, {phase}", files)
                         for phase, files in self.files.items())


def profile_queries(w: Workload, s: Server, spy: Spy, calls: int) -> None:
    """Each question ``calls`` more times with py-spy recording, untimed."""
    request, _ = questions.CALLS[s.name]
    with httpx.Client(base_url=s.url, timeout=120) as c:
        for q in questions.QUESTIONS:
            rec = spy.record(s, f"{q}-query")
            if rec is None:
                return
            for a in questions.asks(w, q, calls):
                path, params = request(w, a)
                c.get(path, params=params).raise_for_status()
            rec.stop()


def flush(w: Workload, servers: list[Server]) -> dict[str, dict[str, Any]]:
    out = {}
    for s in servers:
        s.resume()
        t = time.perf_counter()
        s.flush()
        took = time.perf_counter() - t
        size, samples = s.disk_bytes(), s.sample_bytes()
        out[s.name] = {"flush_s": took, "dir_bytes": size, "sample_bytes": samples,
                       "bytes_per_sample": size / w.samples,
                       "sample_file_bytes_per_sample": samples / w.samples}
        log(f"{s.name}: flushed in {took:.1f} s; directory {size / 2**20:,.1f} MiB, "
            f"{size / w.samples:.3f} B/sample; sample files {samples / w.samples:.3f} B/sample")
    return out


def ask(w: Workload, servers: list[Server], repeats: int, warmup: int,
        pause: bool) -> dict[str, dict[str, Any]]:
    clients = {s.name: httpx.Client(base_url=s.url, timeout=120) for s in servers}
    per = {q: questions.asks(w, q, warmup + repeats) for q in questions.QUESTIONS}
    wanted: dict[tuple[str, int], questions.Answer] = {}
    out: dict[str, dict[str, Any]] = {
        s.name: {q: {"latencies_s": [], "wrong": 0, "first_error": None}
                 for q in questions.QUESTIONS if s.name in questions.ONLY.get(q, (s.name,))}
        for s in servers}
    if pause:
        for s in servers:
            s.pause()
    try:
        for j in range(warmup + repeats):
            order = servers[j % len(servers):] + servers[:j % len(servers)]
            for s in order:
                s.resume()
                request, answer = questions.CALLS[s.name]
                for q, r in out[s.name].items():
                    a = per[q][j]
                    path, params = request(w, a)
                    t = time.perf_counter()
                    reply = clients[s.name].get(path, params=params)
                    took = time.perf_counter() - t
                    if j >= warmup:
                        r["latencies_s"].append(took)
                    err = (f"HTTP {reply.status_code}: {reply.text[:200]}"
                           if reply.status_code != 200 else None)
                    if err is None:
                        if (q, j) not in wanted:
                            wanted[q, j] = questions.expected(w, a)
                        err = questions.check(answer(w, a, reply.content), wanted[q, j])
                    if err:
                        r["wrong"] += 1
                        r["first_error"] = r["first_error"] or err
                if pause:
                    s.pause()
            if j == warmup - 1 or (j + 1) % 10 == 0:
                log(f"queries: round {j + 1}/{warmup + repeats}; load {os.getloadavg()[0]:.1f}")
    finally:
        for c in clients.values():
            c.close()
    for name, qs in out.items():
        for q, r in qs.items():
            if r["wrong"]:
                log(f"{name} {q}: {r['wrong']} wrong answers, first: {r['first_error']}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", type=int, default=10_000, help="a multiple of 400")
    ap.add_argument("--minutes", type=int, default=60, help="of data, one sample a second")
    ap.add_argument("--batch", type=int, default=5_000, help="lines per request")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--segments", type=int, default=10, help="ingest runs per system")
    ap.add_argument("--repeats", type=int, default=40, help="timed calls per question")
    ap.add_argument("--warmup", type=int, default=5, help="untimed calls per question")
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--no-pause", action="store_true",
                    help="leave the other systems running (not stopped) during a run")
    ap.add_argument("--dir", default=None, help="scratch parent directory (default: tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the data directories")
    ap.add_argument("--json", help="save every figure here")
    ap.add_argument("--markdown", help="save the table here")
    ap.add_argument("--label", default="", help="saved with the machine info")
    ap.add_argument("--py-spy", metavar="PATH", help="profile the Sensorium server with this "
                    "py-spy (slows it: do not quote the figures of such a run)")
    ap.add_argument("--py-spy-calls", type=int, default=200,
                    help="calls of each question recorded after the timed ones")
    args = ap.parse_args()
    names = args.systems.split(",")
    for n in names:
        if n not in SYSTEMS:
            ap.error(f"unknown system {n!r}; known: {', '.join(SYSTEMS)}")
    missing = [b for n, b in (("victoriametrics", "victoria-metrics"), ("influxdb", "influxd"))
               if n in names and shutil.which(b) is None]
    if missing:
        ap.error(f"{', '.join(missing)} not installed: run bash benchmarks/peers/setup.sh")
    pause = not args.no_pause
    started = time.time()
    info = machine(names) | {"label": args.label, "args": vars(args),
                             "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                             "load_before": os.getloadavg()}
    log(f"{info['cpus']} CPUs, {info['cpu']}; commit {info['commit']}; "
        f"load {info['load_before'][0]:.1f}")

    rounds = args.minutes * 60
    t0_s = (int(time.time()) - rounds - DATA_END_BEFORE_NOW_S) // 60 * 60
    t = time.perf_counter()
    w = Workload(args.series, rounds, t0_s, args.batch)
    bodies = w.bodies()
    log(f"data: {w.series:,} series x {rounds:,} s = {w.samples:,} samples in {len(bodies):,} "
        f"bodies ({sum(map(len, bodies)) / 2**20:,.0f} MiB), built in "
        f"{time.perf_counter() - t:.1f} s")
    pool = LineProtocolClients(bodies, w.lines_in, args.clients)
    root = Path(tempfile.mkdtemp(prefix="peers-", dir=args.dir))
    servers = [SYSTEMS[n](root) for n in names]
    result: dict[str, Any] = {"machine": info}
    spy = Spy(args.py_spy, Path(tempfile.mkdtemp(prefix="peers-py-spy-", dir=args.dir)
                                if args.py_spy else "."))
    try:
        for s in servers:
            s.start()
            if pause:
                s.pause()
            log(f"{s.name} up at {s.url} (pid {s.pid}, data {s.data_dir})")
        result["ingest"] = ingest(w, servers, pool, args.segments, pause, spy)
        result["disk"] = flush(w, servers)
        result["queries"] = ask(w, servers, args.repeats, args.warmup, pause)
        for s in servers:
            s.resume()
            if s.name == "sensorium" and args.py_spy:
                profile_queries(w, s, spy, args.py_spy_calls)
            s.settle()
            d = result["disk"][s.name]
            d["settled_bytes_per_sample"] = s.disk_bytes() / w.samples
            d["settled_sample_file_bytes_per_sample"] = s.sample_bytes() / w.samples
    finally:
        pool.close()
        for s in servers:
            try:
                s.stop()
            except Exception as exc:  # noqa: BLE001 - never leave a server behind
                log(f"{s.name}: stop failed ({exc}); killing")
                s.kill()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    info["load_after"] = os.getloadavg()
    info["wall_s"] = time.time() - started
    result["workload"] = {"series": w.series, "seconds": rounds, "samples": w.samples,
                          "t0_s": t0_s, "batch": w.batch, "clients": args.clients}
    table = report.markdown(result)
    if args.py_spy:
        table += f"\npy-spy recordings in {spy.out_dir}\n\n" + spy.report()
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table)
    if args.json:
        Path(args.json).write_text(json.dumps(report.summary(result), indent=1))
    log(f"done in {info['wall_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()
