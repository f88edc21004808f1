"""MQTT through a local mosquitto into ``sensorium serve`` (issue #4 MQTT target).

    python benchmarks/mqtt_ingest.py                    # every scenario below, 3 repeats
    python benchmarks/mqtt_ingest.py --scenario single --qos 1 --repeat 5
    python benchmarks/mqtt_ingest.py --profile          # + where the server's time goes

Targets: ≥ 50,000 single-reading messages/s and ≥ 500,000 samples/s in batched payloads,
nothing lost.

A real mosquitto (Debian's, on a free loopback port) and a real ``sensorium serve`` (its own
process, ``[mqtt]`` subscribed to ``bench/{sensor_id}``, fsync per flush) run side by side
with ``--publishers`` publisher processes. Publishers write pre-encoded MQTT 3.1.1 PUBLISH
packets straight to a socket (QoS 1: with a window of unacknowledged packets, as a device
fleet would), so the load generator costs little CPU next to what it measures; Sensorium
itself reads through paho-mqtt (``protocols/mqtt/client.py``).

Scenarios: ``single`` (one JSON reading per message, 1,000 sensors), ``batch`` (a JSON list
of 100 readings per message), ``columns`` (100 readings as JSON columns
``{"timestamps": [...], "values": [...]}``), ``line`` (100 line-protocol lines per message).
The clock runs from the first publish until the server's ``GET /api/mqtt`` counts every
sample written; then every series is read back over HTTP and the samples counted: nothing
may be missing.
Reports messages/s and samples/s per repeat and their medians, plus the CPU time the server
and mosquitto used (the machine has 2 cores for publishers, broker and server together) and
the server's CPU per sample, which depends less on what else runs on a shared machine.
Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

TS0 = 1_700_000_000_000
SENSORS = 1_000
WINDOW = 2_000  # unacknowledged QoS 1 packets per publisher


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _publish(topic: bytes, payload: bytes, qos: int, mid: int) -> bytes:
    body = struct.pack("!H", len(topic)) + topic + (struct.pack("!H", mid) if qos else b"")
    body += payload
    return bytes([0x30 | qos << 1]) + _varint(len(body)) + body


def _connect(client_id: str) -> bytes:
    cid = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + struct.pack("!H", len(cid)) + cid
    return b"\x10" + _varint(len(body)) + body


def payloads(scenario: str, worker: int, messages: int) -> list[tuple[bytes, bytes]]:
    """(topic, payload) of one publisher; every (sensor, timestamp) is unique overall.
    Worker -1 is the warm-up: one message per sensor, before every timed timestamp."""
    out = []
    for k in range(messages):
        sensor = (worker * 7919 + k) % SENSORS
        rnd = (worker * messages + k) // SENSORS  # distinct per (worker, k) for one sensor
        if worker < 0:
            sensor, rnd = k, -10**6
        topic = f"bench/s{sensor:04d}".encode()
        if scenario == "single":
            body = b'{"value":%.2f,"timestamp":%d}' % (20 + k % 97 / 10, TS0 + rnd)
        elif scenario == "batch":
            base = TS0 + rnd * 100
            body = json.dumps([{"value": round(20 + i / 10, 2), "timestamp": base + i}
                               for i in range(100)], separators=(",", ":")).encode()
        elif scenario == "columns":
            base = TS0 + rnd * 100
            body = json.dumps({"timestamps": [base + i for i in range(100)],
                               "values": [round(20 + i / 10, 2) for i in range(100)]},
                              separators=(",", ":")).encode()
        else:  # line
            base = (TS0 + rnd * 100) * 1_000_000
            body = b"\n".join(b"m,sensor=s%04d v=%.2f %d" % (sensor, 20 + i / 10,
                                                              base + i * 1_000_000)
                              for i in range(100))
        out.append((topic, body))
    return out


def publisher(port: int, scenario: str, worker: int, messages: int, qos: int,
              ready: mp.Barrier) -> None:  # type: ignore[name-defined]
    packets = [_publish(t, p, qos, 1 + k % 65535) for k, (t, p) in
               enumerate(payloads(scenario, worker, messages))]
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(_connect(f"bench-pub-{worker}"))
    assert s.recv(4)[:1] == b"\x20"
    acked = [0]

    def read_acks() -> None:
        got = 0
        while got < 4 * messages:
            data = s.recv(1 << 16)
            if not data:
                return
            got += len(data)
            acked[0] = got // 4
    reader = threading.Thread(target=read_acks, daemon=True)
    if qos:
        reader.start()
    ready.wait()
    chunk = 200
    for i in range(0, messages, chunk):
        while qos and i - acked[0] > WINDOW:
            time.sleep(0.0005)
        s.sendall(b"".join(packets[i:i + chunk]))
    if qos:
        reader.join(120)
    s.close()


def start_broker(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "max_queued_messages 0\nmax_inflight_messages 0\n")
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return proc, port
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("mosquitto did not start")


def start_server(workdir: Path, port: int, scenario: str, qos: int, profile: bool
                 ) -> tuple[subprocess.Popen[str], str]:
    fmt = "line" if scenario == "line" else "json"
    template = "bench/{sensor}" if fmt == "line" else "bench/{sensor_id}"
    cfg = workdir / "serve.toml"
    cfg.write_text(f'[mqtt]\nport = {port}\nclient_id = "bench"\nqos = {qos}\n'
                   f'clean_start = true\nflush_ms = 5.0\n[[mqtt.subscriptions]]\n'
                   f'template = "{template}"\nformat = "{fmt}"\n')
    cmd = [sys.executable, "-m", "sensorium.cli", "serve", "--data-dir", str(workdir / "data"),
           "--http-port", "0", "--no-resp", "--config", str(cfg)]
    if profile:
        cmd = [sys.executable, "-m", "cProfile", "-o", str(workdir / "serve.prof"),
               *cmd[1:]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(workdir / "serve.log", "w"),
                            text=True)
    url = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("http "):
            url = line.split()[1]
        if line.strip() == "ready":
            break
    for _ in range(200):
        if httpx.get(url + "/api/mqtt").json()["connected"]:
            return proc, url
        time.sleep(0.05)
    raise RuntimeError("server did not connect to the broker")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(scenario: str, qos: int, publishers: int, messages: int, profile: bool
             ) -> dict[str, float]:
    per = 1 if scenario == "single" else 100
    workdir = Path(tempfile.mkdtemp(prefix="mqtt-bench-"))
    broker, port = start_broker(workdir)
    server, url = start_server(workdir, port, scenario, qos, profile)
    try:
        # Warm-up, timed apart: creating 1,000 series is a different cost (the first sight
        # of a line-protocol series also parses its topic's messages once more for labels).
        warm = mp.Barrier(2)
        p = mp.Process(target=publisher, args=(port, scenario, -1, SENSORS, 1, warm))
        p.start()
        warm.wait()
        p.join(120)
        while httpx.get(url + "/api/mqtt").json()["written_samples"] < SENSORS * per:
            time.sleep(0.05)
        done0 = httpx.get(url + "/api/mqtt").json()
        each = messages // publishers
        total_msgs = each * publishers
        ready = mp.Barrier(publishers + 1)
        procs = [mp.Process(target=publisher, args=(port, scenario, w, each, qos, ready))
                 for w in range(publishers)]
        for p in procs:
            p.start()
        ready.wait()  # packets are encoded before the clock starts
        cpu0, broker0 = cpu_s(server.pid), cpu_s(broker.pid)
        t0 = time.perf_counter()
        status: dict = {}
        last_received, quiet_since = -1, t0
        deadline = t0 + 600
        while time.perf_counter() < deadline:
            status = httpx.get(url + "/api/mqtt").json()
            for name in ("written_samples", "received", "acked"):
                status[name] -= done0[name]
            if status["written_samples"] >= total_msgs * per:
                break
            if (not any(p.is_alive() for p in procs) and status["pending"] == 0
                    and time.perf_counter() - quiet_since > 2.0):
                break  # QoS 0 messages were dropped somewhere: count what arrived
            if status["received"] != last_received or status["pending"]:
                last_received, quiet_since = status["received"], time.perf_counter()
            time.sleep(0.02)
        took = time.perf_counter() - t0
        server_cpu = cpu_s(server.pid) - cpu0
        broker_cpu = cpu_s(broker.pid) - broker0
        for p in procs:
            p.join(60)
        stored = count_stored(url, scenario) - SENSORS * per
        return {"seconds": took, "messages": total_msgs, "samples": total_msgs * per,
                "written": status.get("written_samples", 0), "stored": stored,
                "received": status.get("received", 0), "acked": status.get("acked", 0),
                "msgs_per_s": status.get("received", 0) / took,
                "samples_per_s": status.get("written_samples", 0) / took,
                "server_cpu_s": server_cpu, "broker_cpu_s": broker_cpu,
                "flushes": status.get("flushes", 0),
                "bad": sum(status.get("bad_payloads", {}).values())}
    finally:
        server.terminate()
        server.wait(60)
        broker.terminate()
        broker.wait(10)
        if profile:
            import pstats
            pstats.Stats(str(workdir / "serve.prof")).sort_stats("tottime").print_stats(25)
        shutil.rmtree(workdir, ignore_errors=True)


def count_stored(url: str, scenario: str) -> int:
    """Samples read back over HTTP, every series (TS.QUERYINDEX, then TS.RANGE per key)."""
    keys = httpx.get(url + "/api/series").json()
    keys = keys.get("keys", keys) if isinstance(keys, dict) else keys
    total = 0
    with httpx.Client(base_url=url, timeout=60) as c:
        for key in keys:
            r = c.get(f"/api/series/{key}/range", params={"from": "-", "to": "+"})
            total += len(r.json()["samples"])
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", choices=("single", "batch", "columns", "line", "all"),
                    default="all")
    ap.add_argument("--qos", type=int, choices=(0, 1, -1), default=-1, help="-1: both")
    ap.add_argument("--publishers", type=int, default=4)
    ap.add_argument("--messages", type=int, default=0, help="default: 400k single, 20k batch")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    scenarios = (("single", "batch", "columns", "line") if args.scenario == "all"
                 else (args.scenario,))
    qoses = (0, 1) if args.qos == -1 else (args.qos,)
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.2f}; publishers {args.publishers}")
    for scenario in scenarios:
        for qos in qoses:
            messages = args.messages or (400_000 if scenario == "single" else 20_000)
            runs = [run_once(scenario, qos, args.publishers, messages, args.profile)
                    for _ in range(args.repeat)]
            for r in runs:
                lost = r["samples"] - r["stored"]
                print(f"{scenario:6s} qos{qos}: {r['messages']:,} msgs {r['samples']:,} samples "
                      f"in {r['seconds']:.2f} s → {r['msgs_per_s']:,.0f} msg/s, "
                      f"{r['samples_per_s']:,.0f} samples/s; stored {r['stored']:,} "
                      f"(missing {lost:,}), acked {r['acked']:,}, bad {r['bad']}, "
                      f"{r['flushes']} flushes, CPU: server {r['server_cpu_s']:.1f} s "
                      f"({r['server_cpu_s'] / r['samples'] * 1e6:.2f} µs/sample), "
                      f"mosquitto {r['broker_cpu_s']:.1f} s", flush=True)
            cpu_us = statistics.median(r["server_cpu_s"] / r["samples"] for r in runs) * 1e6
            print(f"{scenario:6s} qos{qos} median: "
                  f"{statistics.median(r['msgs_per_s'] for r in runs):,.0f} msg/s, "
                  f"{statistics.median(r['samples_per_s'] for r in runs):,.0f} samples/s, "
                  f"server CPU {cpu_us:.2f} µs/sample; load {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
