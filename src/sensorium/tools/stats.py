"""``sensorium stats``: the inventory of a database or a running server, as text or JSON.

Embedded (``--data-dir``): ``sensorium.inventory`` on the opened directory (a server holding
the directory's lock must be asked with ``--url`` instead). Server (``--url``): ``GET
/api/stats`` twice, ``window_s`` apart; the difference of stored raw samples over the time
between the two answers is the ingest rate.
"""

from __future__ import annotations

import time
from typing import Any

from ..inventory import inventory
from .progress import human
from .sinks import SinkError


def from_database(db: Any) -> dict[str, Any]:
    return inventory(db)


def from_server(client: Any, window_s: float) -> dict[str, Any]:
    """The server's inventory plus ``ingest`` (samples/s over ``window_s``; skipped at 0)."""
    first = _get(client)
    if window_s <= 0:
        return first
    time.sleep(window_s)
    second = _get(client)
    dt_s = (second["time_ms"] - first["time_ms"]) / 1000
    stored = second["raw"]["samples"] - first["raw"]["samples"]
    second["ingest"] = {"window_s": round(dt_s, 3), "samples": stored,
                        "samples_per_s": round(stored / dt_s, 1) if dt_s > 0 else None}
    return second


def _get(client: Any) -> dict[str, Any]:
    import httpx

    try:
        reply = client.get("/api/stats")
    except httpx.HTTPError as exc:
        raise SinkError(f"GET {client.base_url}/api/stats: {exc}") from exc
    if reply.status_code != 200:
        raise SinkError(f"GET /api/stats: HTTP {reply.status_code}: {reply.text[:300]}")
    doc: dict[str, Any] = reply.json()
    return doc


def _bucket(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _bytes(n: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def text(report: dict[str, Any]) -> str:
    """The report for people: one line per fact, tiers as a small table."""
    s, raw, disk = report["series"], report["raw"], report["disk"]
    lines = [
        f"series       {s['total']:,} ({s['raw']:,} raw, {s['tiers']:,} tier destinations, "
        f"{report['rules']:,} rules)",
        f"raw samples  {raw['samples']:,} ({raw['in_blocks']:,} in blocks, "
        f"{raw['in_memory']:,} in memory)",
    ]
    if raw["bytes_per_sample"] is not None:
        lines.append(f"raw blocks   {_bytes(raw['block_bytes'])}: {raw['bytes_per_sample']:.2f} "
                     f"bytes/sample, compression {raw['compression_ratio']:.1f}x vs 16 B "
                     f"(int64 ts + float64 value)")
    else:
        lines.append("raw blocks   none yet (samples still in memory and the log)")
    if report["tiers"]:
        lines.append("tiers        bucket  aggregators            series   buckets   samples"
                     "  block bytes")
        for t in report["tiers"]:
            aggs = ",".join(t["aggregators"])
            lines.append(f"             {_bucket(t['bucket_ms']):>6}  {aggs:<20} "
                         f"{t['series']:>8,} {t['buckets']:>9,} {t['samples']:>9,}  "
                         f"{_bytes(t['block_bytes']):>11}")
    else:
        lines.append("tiers        none (no downsampling rules)")
    per = report.get("disk_bytes_per_raw_sample")
    lines.append(f"disk         {_bytes(disk['total_bytes'])} total: blocks raw "
                 f"{_bytes(disk['raw_block_bytes'])}, tiers {_bytes(disk['rollup_block_bytes'])}"
                 f", sketches {_bytes(disk['sketch_block_bytes'])}; log "
                 f"{_bytes(disk['wal_bytes'])}; checkpoints {_bytes(disk['checkpoint_bytes'])}"
                 + (f" ({per:.2f} bytes per raw sample, everything included)" if per else ""))
    ingest = report.get("ingest")
    if ingest is not None:
        rate = ingest["samples_per_s"]
        lines.append(f"ingest       {human(rate or 0)} samples/s over the last "
                     f"{ingest['window_s']:.1f} s ({ingest['samples']:,} raw samples stored)")
    return "\n".join(lines)
