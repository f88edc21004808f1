"""Command line: ``sensorium demo``, ``sensorium serve`` and ``sensorium sql``;
``generate``, ``bench`` and ``stats`` are wired from ``tools/commands.py``."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import time

import numpy as np

import sensorium

from .tools import commands as tool_commands

KINDS = ("temperature", "humidity", "pressure")
BASE = {"temperature": 21.0, "humidity": 45.0, "pressure": 1013.0}


def demo(data_dir: str, sensors: int, minutes: int) -> None:
    """Generates one reading per sensor per second, ingests, downsamples and queries it."""
    shutil.rmtree(data_dir, ignore_errors=True)
    rng = np.random.default_rng(7)
    keys = np.array([f"sensor:{i:05d}" for i in range(sensors)], dtype=object)
    kinds = [KINDS[i % len(KINDS)] for i in range(sensors)]
    with sensorium.open(data_dir) as db:
        t0 = time.perf_counter()
        with db.batch():  # one durable commit for the whole set-up
            for i, key in enumerate(keys):
                db.create(key, retention_msecs=7 * 86_400_000, duplicate_policy="last",
                          labels={"type": kinds[i], "zone": "AB"[i % 2], "building": "F1"})
                for agg in ("avg", "min", "max"):
                    db.create(f"{key}:1m_{agg}", labels={"type": kinds[i], "tier": "1m"})
                    db.createrule(key, f"{key}:1m_{agg}", agg, 60_000)
        print(f"created {sensors:,} sensors with raw → 1 min avg/min/max rules "
              f"in {time.perf_counter() - t0:.1f} s")

        start_ms = (int(time.time()) // 3600 - 1) * 3_600_000
        level = np.array([BASE[k] for k in kinds]) + rng.normal(0, 1, sensors)
        t0 = time.perf_counter()
        for sec in range(minutes * 60):
            level += rng.normal(0, 0.01, sensors)  # slow drift, plus noise, 2 decimals
            values = np.round(level + rng.normal(0, 0.05, sensors), 2)
            db.madd(keys, np.full(sensors, start_ms + sec * 1000, np.int64), values)
        took = time.perf_counter() - t0
        total = sensors * minutes * 60
        print(f"ingested {total:,} samples in {took:.1f} s ({total / took:,.0f} samples/s, "
              f"durable per batch of {sensors:,})")

        end_ms = start_ms + minutes * 60_000 - 1
        _timed("1 h raw samples of one sensor",
               lambda: db.range("sensor:00000", start_ms, end_ms), lambda r: f"{len(r)} samples")
        _timed("1-minute averages from the tier",
               lambda: db.range("sensor:00000:1m_avg", start_ms, end_ms),
               lambda r: f"{len(r)} buckets, first {r[0] if r else None}")
        _timed("zone A temperatures, 10-minute avg",
               lambda: db.mrange(start_ms, end_ms, ["zone=A", "type=temperature"],
                                 aggregation_type="avg", bucket_size_msec=600_000),
               lambda r: f"{len(r)} series")
        _timed("per-type max, GROUPBY type REDUCE max (15 min buckets)",
               lambda: db.mrange(start_ms, end_ms, ["building=F1"], aggregation_type="max",
                                 bucket_size_msec=900_000, groupby="type", reduce="max"),
               lambda r: ", ".join(f"{list(g)[0]}: {list(g.values())[0][1][0][1]}" for g in r))
        _timed("p95 of one sensor per 10 minutes (raw)",
               lambda: db.range("sensor:00000", start_ms, end_ms, aggregation_type="p95",
                                bucket_size_msec=600_000),
               lambda r: str([round(v, 2) for _, v in r]))
        db.checkpoint()
        disk = sum(os.path.getsize(os.path.join(dp, f))
                   for dp, _, files in os.walk(data_dir) for f in files if f.endswith(".parquet"))
        print(f"on disk after checkpoint: {disk / 2**20:.1f} MiB for {total:,} raw samples plus "
              f"tiers ({disk / total:.2f} bytes/sample)")
        print(f"data directory: {os.path.abspath(data_dir)}")


def _timed(label: str, fn, describe) -> None:  # type: ignore[no-untyped-def]
    fn()
    times = []
    for _ in range(5):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    print(f"  {label}: {np.median(times) * 1e3:.2f} ms → {describe(result)}")


def serve(args: argparse.Namespace) -> None:
    """Builds the server options (flags over ``--config`` over defaults) and serves."""
    from . import server  # the web stack loads only for this command

    try:
        options = server.load_config(args.config) if args.config else server.ServerOptions()
    except (OSError, ValueError, TypeError, sensorium.SensoriumError) as exc:
        raise SystemExit(f"sensorium serve: bad --config: {exc}") from None
    flags = {name: getattr(args, name) for name in ("data_dir", "host", "http_port", "resp_port")
             if getattr(args, name) is not None}
    if args.no_resp:
        flags["resp_port"] = None
    if args.mqtt:
        from .protocols.mqtt.options import with_broker
        try:
            flags["mqtt"] = with_broker(options.mqtt, args.mqtt)
        except ValueError as exc:
            raise SystemExit(f"sensorium serve: {exc}") from None
    options = dataclasses.replace(options, **flags)
    try:
        server.run(options)
    except sensorium.SensoriumError as exc:  # directory locked, bad option value
        raise SystemExit(f"sensorium serve: {exc}") from None
    except OSError as exc:  # a port in use, an unwritable directory
        raise SystemExit(f"sensorium serve: {exc}") from None


def sql(args: argparse.Namespace) -> None:
    """Runs one SQL query on the database in ``--data-dir`` (embedded) and prints the result."""
    from .sql import QueryError, SqlEngine, output

    if not os.path.isdir(args.data_dir):
        raise SystemExit(f"sensorium sql: no database in {args.data_dir}")
    try:
        db = sensorium.open(args.data_dir, background=False)
    except sensorium.SensoriumError as exc:  # e.g. the directory is locked by a server
        raise SystemExit(f"sensorium sql: {exc}") from None
    with db:
        try:
            result = SqlEngine(db).query(args.query)
        except QueryError as exc:
            raise SystemExit(f"sensorium sql: {exc}") from None
    table = result.table
    if args.format == "csv":
        print(output.to_csv(table), end="")
    elif args.format == "json":
        import json
        print(json.dumps({"columns": output.columns(table, result.types),
                          "rows": output.rows(table)}))
    else:
        print(output.to_text(table))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sensorium")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="generate, ingest, downsample and query sensor data")
    p_demo.add_argument("--data-dir", default="./sensorium-data")
    p_demo.add_argument("--sensors", type=int, default=1_000)
    p_demo.add_argument("--minutes", type=int, default=60)
    p_serve = sub.add_parser(
        "serve", help="serve a database over HTTP (JSON, InfluxDB line protocol) and RESP",
        description="Flags override the --config file, which overrides the defaults. "
                    "Database options and the auth token are set in the config file.")
    p_serve.add_argument("--data-dir", help="database directory (default ./sensorium-data)")
    p_serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    p_serve.add_argument("--http-port", type=int, help="HTTP port (default 8080; 0 = any free)")
    p_serve.add_argument("--resp-port", type=int,
                         help="RESP (redis-py) port (default 6380; 0 = any free)")
    p_serve.add_argument("--no-resp", action="store_true", help="do not start the RESP server")
    p_serve.add_argument("--mqtt", metavar="HOST[:PORT]",
                         help="subscribe to this MQTT broker (topics and formats: the config's "
                              "[mqtt] table, see docs/protocols/mqtt.md)")
    p_serve.add_argument("--config", help="TOML file: [server], [database] and [mqtt] tables "
                                          "(see docs/protocols/http.md)")
    p_sql = sub.add_parser("sql", help="run a SQL query (DuckDB, docs/sql.md) on a database")
    p_sql.add_argument("query", help='e.g. "SELECT key, avg(value) FROM samples GROUP BY key"')
    p_sql.add_argument("--data-dir", default="./sensorium-data")
    p_sql.add_argument("--format", choices=("table", "csv", "json"), default="table")
    tool_commands.add_parsers(sub)
    args = parser.parse_args(argv)
    if args.command in tool_commands.COMMANDS:
        tool_commands.run(args)
    elif args.command == "demo":
        demo(args.data_dir, args.sensors, args.minutes)
    elif args.command == "serve":
        serve(args)
    elif args.command == "sql":
        sql(args)


if __name__ == "__main__":
    main()
