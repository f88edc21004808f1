"""Figures of one ``run.py`` run: per-system summaries, ratios to the peers, issue #3 verdicts."""

from __future__ import annotations

from typing import Any

import numpy as np

P99_TARGET_MS = 100.0
QUERY_ROWS = (("raw_1h", "1 sensor, {window} raw"),
              ("avg_1m", "100 sensors of a zone, {window} as 1-min averages"),
              ("avg_1m_mrange", "the same through /api/query (TS.MRANGE)"),
              ("latest", "latest value of 100 sensors"))
PEERS = ("victoriametrics", "influxdb")
SHORT = {"sensorium": "Sensorium", "victoriametrics": "VictoriaMetrics", "influxdb": "InfluxDB"}


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """Per system: ingest rate, latency percentiles, CPU, query medians/p90, disk."""
    out: dict[str, Any] = {"machine": result["machine"], "workload": result["workload"],
                           "systems": {}}
    for name, ing in result.get("ingest", {}).items():
        runs = ing["runs"]
        samples = sum(r["samples"] for r in runs)
        elapsed = sum(r["elapsed_s"] for r in runs)
        rates = [r["samples"] / r["elapsed_s"] for r in runs]
        lat = np.array(ing["latencies_s"]) * 1e3
        sys_out: dict[str, Any] = {
            "ingest_samples_per_s": samples / elapsed,
            "ingest_run_rates": [min(rates), max(rates)],
            "ingest_p50_ms": float(np.percentile(lat, 50)),
            "ingest_p99_ms": float(np.percentile(lat, 99)),
            "ingest_requests": int(lat.size),
            "ingest_cpu_s_per_m_samples": ing["cpu_s"] / samples * 1e6,
            "ingest_server_cpus": ing["cpu_s"] / elapsed,
            "create_series_s": ing["create_s"],
            "load1": [min(r["load1"] for r in runs), max(r["load1"] for r in runs)],
        }
        out["systems"][name] = sys_out
    for name, qs in result.get("queries", {}).items():
        for q, r in qs.items():
            ms = np.array(r["latencies_s"]) * 1e3
            out["systems"][name][f"query_{q}"] = {
                "median_ms": float(np.median(ms)), "p10_ms": float(np.percentile(ms, 10)),
                "p90_ms": float(np.percentile(ms, 90)), "calls": int(ms.size),
                "wrong": r["wrong"], "first_error": r["first_error"]}
    for name, d in result.get("disk", {}).items():
        out["systems"][name].update({f"disk_{k}": v for k, v in d.items()})
    return out


def _ratio(a: float | None, b: float | None) -> str:
    return "" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def markdown(result: dict[str, Any]) -> str:
    s = summary(result)
    systems = s["systems"]
    names = [n for n in ("sensorium", *PEERS) if n in systems]
    peers = [n for n in PEERS if n in systems and "sensorium" in systems]
    head = (["measurement", *(SHORT[n] for n in names)]
            + [f"Sensorium / {SHORT[p]}" for p in peers] + ["target", "verdict"])
    rows: list[list[str]] = []

    def row(label: str, key: str, fmt: str, target: str = "", verdict: str = "",
            sub: str | None = None) -> None:
        def get(n: str) -> float | None:
            v = systems[n].get(key)
            if isinstance(v, dict):
                v = v.get(sub or "median_ms")
            return v

        cells = [label]
        for n in names:
            v = get(n)
            cells.append("" if v is None else fmt.format(v))
        cells += [_ratio(get("sensorium"), get(p)) for p in peers]
        rows.append([*cells, target, verdict])

    vm = systems.get("victoriametrics", {})
    me = systems.get("sensorium", {})

    def vs_vm(key: str, higher_is_better: bool) -> str:
        if key not in me or key not in vm:
            return ""
        a, b = me[key], vm[key]
        if isinstance(a, dict):
            a, b = a["median_ms"], b["median_ms"]
        return "PASS" if (a >= b if higher_is_better else a <= b) else "FAIL"

    row("LP ingest, samples/s", "ingest_samples_per_s", "{:,.0f}", "≥ VictoriaMetrics",
        vs_vm("ingest_samples_per_s", True))
    row("LP request latency p50, ms", "ingest_p50_ms", "{:.1f}")
    p99 = me.get("ingest_p99_ms")
    row("LP request latency p99, ms", "ingest_p99_ms", "{:.1f}", "< 100 ms",
        "" if p99 is None else ("PASS" if p99 < P99_TARGET_MS else "FAIL"))
    row("server CPU-s per million samples", "ingest_cpu_s_per_m_samples", "{:.2f}")
    row("server CPUs busy while ingesting", "ingest_server_cpus", "{:.2f}")
    row("creating the series (first second), s", "create_series_s", "{:.2f}")
    window_s = min(s["workload"]["seconds"], 3600)
    window = "1 h" if window_s == 3600 else f"{window_s // 60} min"
    for q, label in QUERY_ROWS:
        label = label.format(window=window)
        key = f"query_{q}"
        if not any(key in systems[n] for n in names):
            continue
        if q == "avg_1m_mrange":
            row(f"{label}, median ms", key, "{:.1f}")
            continue
        row(f"{label}, median ms", key, "{:.1f}", "≤ VictoriaMetrics", vs_vm(key, False))
        row("  p90 ms", key, "{:.1f}", sub="p90_ms")
    row("on disk after flush: sample files, bytes/sample", "disk_sample_file_bytes_per_sample",
        "{:.3f}")
    row("  whole directory, bytes/sample", "disk_bytes_per_sample", "{:.3f}")
    row("after VM's force_merge (end of run): sample files",
        "disk_settled_sample_file_bytes_per_sample", "{:.3f}")
    row("  whole directory", "disk_settled_bytes_per_sample", "{:.3f}")
    row("flush (with restarts and waits for quiet), s", "disk_flush_s", "{:.1f}")
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---" if i == 0 or i >= len(head) - 2 else "--:"
                            for i in range(len(head))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    wrong = [f"{SHORT[n]} {k[6:]}: {v['wrong']} wrong ({v['first_error']})"
             for n in names for k, v in systems[n].items()
             if k.startswith("query_") and v["wrong"]]
    m, w = s["machine"], s["workload"]
    notes = [f"{w['series']:,} series x {w['seconds']:,} s = {w['samples']:,} samples; "
             f"{w['clients']} clients, {w['batch']:,}-line batches; commit {m['commit']}; "
             f"load {m['load_before'][0]:.1f} before, {m.get('load_after', [0])[0]:.1f} after; "
             f"wall {m.get('wall_s', 0) / 60:.1f} min"]
    for n in names:
        if "load1" in systems[n]:
            lo, hi = systems[n]["load1"]
            notes.append(f"{SHORT[n]}: load during its ingest runs {lo:.1f}..{hi:.1f}; "
                         f"ingest run rates {systems[n]['ingest_run_rates'][0]:,.0f}.."
                         f"{systems[n]['ingest_run_rates'][1]:,.0f} samples/s")
    notes += wrong or ["every query answer matched the generated data"]
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
