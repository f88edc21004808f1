"""InfluxDB line protocol over HTTP into ``sensorium serve`` (issue #3 ingest target).

    python benchmarks/http_ingest.py                           # 10k series, 4 clients, 10 s
    python benchmarks/http_ingest.py --series 100000 --fsync none --repeat 3
    python benchmarks/http_ingest.py --stages                  # + handler stages, no HTTP

Target: 4 concurrent clients posting 5,000-line batches over 10k-100k series
≥ 1.3 M samples/s with p99 latency < 100 ms.

The server is the real ``sensorium serve`` in its own process; each client is a process of
its own with one keep-alive ``httpx.Client`` posting to ``/api/v2/write`` (precision ns, one
field per line, as Telegraf sends). Bodies are built before the clock starts: one template
per 5,000-series chunk with a fixed-width timestamp patched per round (``bytes.replace``), so
clients cost little CPU; on a 2-core box they still compete with the server for it.

A warm-up round creates every series first (timed apart: creating series is a different
cost). Then each client posts batches for ``--seconds``: batch *k* is chunk ``k % chunks`` at
round ``k // chunks`` (one second apart), so every sample is new. Reports samples/s and the
p50/p99 request latency per repeat, and their medians, plus the server's CPU use: samples
per server CPU-second is the steadier figure when other processes share the machine.
``--stages`` times the handler path in-process (parse, write) to show where the time goes.
Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing as mp
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

T0_NS = 1_700_000_000_000_000_000
SLOT = b"@" * 19  # a 19-digit ns timestamp is patched in here


def templates(series: int, batch: int) -> list[bytes]:
    """One body per chunk of ``batch`` series: ``sensors,host=hNNNNNN,zone=zK value=V SLOT``."""
    out = []
    for start in range(0, series, batch):
        lines = [f"sensors,host=h{i:06d},zone=z{i % 8} value={20 + (i % 97) / 10:.2f} "
                 .encode() + SLOT for i in range(start, min(start + batch, series))]
        out.append(b"\n".join(lines) + b"\n")
    return out


def body(tmpl: list[bytes], k: int) -> bytes:
    chunk, rnd = k % len(tmpl), k // len(tmpl)
    return tmpl[chunk].replace(SLOT, str(T0_NS + rnd * 1_000_000_000).encode())


def start_server(data_dir: str, fsync: str) -> tuple[subprocess.Popen[str], str]:
    cfg = data_dir + ".toml"
    with open(cfg, "w") as f:
        f.write(f'[database]\nfsync = "{fsync}"\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "sensorium.cli", "serve", "--data-dir", data_dir,
         "--http-port", "0", "--no-resp", "--config", cfg],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = ""
    for line in proc.stdout:
        if m := re.match(r"http (http://\S+)", line):
            url = m.group(1)
        if line.strip() == "ready":
            return proc, url
    raise RuntimeError("server did not start")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client(url: str, series: int, batch: int, first: int, step: int, seconds: float,
           gz: bool, start_at: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    import httpx
    tmpl = templates(series, batch)
    headers = {"Content-Encoding": "gzip"} if gz else {}
    lat, samples = [], 0
    with httpx.Client(base_url=url, timeout=60) as c:
        time.sleep(max(0.0, start_at - time.time()))
        end = time.time() + seconds
        k = first
        while time.time() < end:
            payload = body(tmpl, k)
            if gz:
                payload = gzip.compress(payload, 1)
            t = time.perf_counter()
            r = c.post("/api/v2/write", content=payload, headers=headers)
            lat.append(time.perf_counter() - t)
            if r.status_code != 204:
                raise RuntimeError(f"{r.status_code} {r.text[:200]}")
            samples += min(batch, series - (k % len(tmpl)) * batch)
            k += step
    out.put((samples, lat))


def run(args: argparse.Namespace, repeat: int) -> dict[str, float]:
    root = tempfile.mkdtemp(prefix="http-ingest-", dir=args.dir)
    data = os.path.join(root, "data")
    proc, url = start_server(data, args.fsync)
    try:
        import httpx
        tmpl = templates(args.series, args.batch)
        t = time.perf_counter()
        with httpx.Client(base_url=url, timeout=600) as c:
            for k in range(len(tmpl)):  # round 0: creates every series
                assert c.post("/api/v2/write", content=body(tmpl, k)).status_code == 204
        create_s = time.perf_counter() - t
        out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        start_at = time.time() + 2.0 + 0.05 * len(tmpl)  # after every client built its bodies
        procs = [mp.Process(target=client, args=(
            url, args.series, args.batch, len(tmpl) + i, args.clients, args.seconds,
            args.gzip, start_at, out)) for i in range(args.clients)]
        for p in procs:
            p.start()
        time.sleep(max(0.0, start_at - time.time()))
        cpu0 = cpu_s(proc.pid)
        results = [out.get() for _ in procs]
        server_cpu = cpu_s(proc.pid) - cpu0
        for p in procs:
            p.join()
        samples = sum(r[0] for r in results)
        lat = np.array([x for r in results for x in r[1]])
        return {"repeat": repeat, "create_s": create_s, "samples": samples,
                "samples_per_s": samples / args.seconds, "requests": len(lat),
                "server_cpus": server_cpu / args.seconds,
                "samples_per_cpu_s": samples / max(server_cpu, 1e-9),
                "p50_ms": float(np.percentile(lat, 50) * 1e3),
                "p99_ms": float(np.percentile(lat, 99) * 1e3)}
    finally:
        proc.terminate()
        proc.wait(120)
        shutil.rmtree(root, ignore_errors=True)
        with_cfg = data + ".toml"
        if os.path.exists(with_cfg):
            os.remove(with_cfg)


def stages(args: argparse.Namespace) -> None:
    """The handler path without HTTP, one thread: parse, write_columns, both."""
    import sensorium
    from sensorium.protocols.http.write import write_columns
    from sensorium.protocols.lineproto.parser import parse

    tmpl = templates(args.series, args.batch)
    root = tempfile.mkdtemp(prefix="http-stages-", dir=args.dir)
    try:
        with sensorium.open(os.path.join(root, "db"), fsync=args.fsync) as db:
            for k in range(len(tmpl)):
                b = parse(body(tmpl, k))
                write_columns(db, b.keys, b.ts_ms, b.values, b.labels)
            parse_s, write_s = [], []
            for k in range(len(tmpl), len(tmpl) + 60):
                payload = body(tmpl, k)
                t = time.perf_counter()
                b = parse(payload)
                parse_s.append(time.perf_counter() - t)
                t = time.perf_counter()
                write_columns(db, b.keys, b.ts_ms, b.values, b.labels)
                write_s.append(time.perf_counter() - t)
        p, w = statistics.median(parse_s), statistics.median(write_s)
        print(f"stages (median of 60 batches of {args.batch}): parse {p * 1e3:.2f} ms "
              f"({args.batch / p:,.0f} lines/s), write {w * 1e3:.2f} ms "
              f"({args.batch / w:,.0f} samples/s), together {args.batch / (p + w):,.0f} "
              f"samples/s on one core", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--fsync", default="batch", choices=("batch", "periodic", "none"))
    ap.add_argument("--gzip", action="store_true", help="gzip bodies (level 1), as Telegraf")
    ap.add_argument("--stages", action="store_true", help="also time the handler stages")
    ap.add_argument("--dir", default=None, help="scratch parent directory (default: tmp)")
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs; {args.series:,} series, {args.clients} clients, "
          f"{args.batch:,}-line batches, fsync {args.fsync}{', gzip' if args.gzip else ''}",
          flush=True)
    if args.stages:
        stages(args)
    rows = []
    for i in range(args.repeat):
        row = run(args, i)
        rows.append(row)
        print(f"  run {i}: {row['samples_per_s']:,.0f} samples/s, p50 {row['p50_ms']:.1f} ms, "
              f"p99 {row['p99_ms']:.1f} ms, {row['requests']} requests; server used "
              f"{row['server_cpus']:.2f} CPUs, {row['samples_per_cpu_s']:,.0f} samples per "
              f"CPU-second (creating the series took {row['create_s']:.1f} s)", flush=True)
    med = {k: statistics.median(r[k] for r in rows) for k in (
        "samples_per_s", "p50_ms", "p99_ms", "samples_per_cpu_s")}
    print(f"median: {med['samples_per_s']:,.0f} samples/s (target ≥ 1,300,000), "
          f"p50 {med['p50_ms']:.1f} ms, p99 {med['p99_ms']:.1f} ms (target < 100 ms); "
          f"{med['samples_per_cpu_s']:,.0f} samples per server CPU-second")


if __name__ == "__main__":
    main()
