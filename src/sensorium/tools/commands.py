"""The ``generate``, ``bench``, ``stats`` and ``policy`` subcommands: arguments → output.

``cli.py`` calls :func:`add_parsers` and :func:`run`; everything else lives in the tool
modules (``load``/``generate``/``sinks``, ``bench``, ``stats``). Errors a user can fix (a
server that does not answer, a locked directory, a missing client library) end the command
with ``SystemExit`` and a one-line message naming what was wrong.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
from datetime import UTC, datetime
from typing import Any

from ..errors import SensoriumError
from .generate import DAY_S, Generator, fleet
from .load import load_history, run_live
from .progress import human
from .sinks import TARGETS, SinkError, open_sink

COMMANDS = ("generate", "bench", "stats", "policy")
DEFAULT_DATA_DIR = "./sensorium-data"  # the same default as ``sensorium serve``
DEFAULT_URL = "http://127.0.0.1:8080"


def add_parsers(sub: Any) -> None:
    """Adds the subcommands to ``sensorium``'s subparsers."""
    g = sub.add_parser(
        "generate", help="generate sensor data into the database or a running server",
        description="Temperature, humidity, pressure, vibration and energy sensors with daily "
                    "cycles, drift, noise, spikes and dropouts (seed 003's generator). History "
                    "by default (--days ending now), or --live at a rate for load tests.")
    g.add_argument("--days", type=float, default=1.0, help="days of history (default 1)")
    g.add_argument("--sensors", type=int, default=10, help="number of sensors (default 10)")
    g.add_argument("--interval", type=float, default=60.0,
                   help="seconds between two readings of a sensor (default 60)")
    g.add_argument("--start", help="first timestamp: RFC 3339 or epoch ms (default: --days "
                                   "before now, so the data ends now)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--prefix", default="", help="text before every sensor key")
    g.add_argument("--spikes", type=float, default=2.0,
                   help="spikes per sensor and day (default 2)")
    g.add_argument("--dropouts", type=float, default=0.5,
                   help="dropouts (missing stretches) per sensor and day (default 0.5)")
    g.add_argument("--target", choices=TARGETS, default="embedded",
                   help="where samples go (default embedded)")
    g.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                   help=f"embedded target: database directory (default {DEFAULT_DATA_DIR})")
    g.add_argument("--url", default=DEFAULT_URL,
                   help=f"http, http-batch, line: server URL (default {DEFAULT_URL})")
    g.add_argument("--resp", default="127.0.0.1:6380", help="resp: host:port")
    g.add_argument("--mqtt", default="127.0.0.1:1883", help="mqtt: broker host:port")
    g.add_argument("--qos", type=int, default=1, help="mqtt: QoS (default 1)")
    g.add_argument("--token", help="server token (HTTP and RESP)")
    g.add_argument("--batch", type=int,
                   help="samples per request (http, line, resp) or readings per MQTT message")
    g.add_argument("--live", action="store_true", help="emit in real time instead of history")
    g.add_argument("--rate", type=float, help="live: samples per second in total (default: "
                                              "every sensor once per --interval)")
    g.add_argument("--duration", type=float, help="live: stop after this many seconds")
    g.add_argument("--profile", metavar="N", type=int, nargs="?", const=25,
                   help="profile the load (cProfile) and print the top N functions")
    g.add_argument("--quiet", action="store_true", help="no progress output")

    b = sub.add_parser("bench", help="raw versus tiered query times (seed 003's client test)")
    _source_args(b)
    b.add_argument("--sensor", help="key to query (default: the first temperature sensor)")
    b.add_argument("--repeat", type=int, default=20, help="timed runs per query (default 20)")
    b.add_argument("--json", action="store_true", help="print JSON instead of a table")

    s = sub.add_parser("stats", help="series, samples per tier, bytes per sample, ingest rate")
    _source_args(s)
    s.add_argument("--window", type=float, default=5.0,
                   help="--url: seconds over which the ingest rate is measured (default 5; "
                        "0 skips it)")
    s.add_argument("--json", action="store_true", help="print JSON instead of text")

    p = sub.add_parser("policy", help="list, set or drop tier policies",
                       description="Tier policies give every matching series raw retention "
                                   "and chained tiers (docs/protocols/http.md#tier-policies).")
    p.add_argument("action", choices=("list", "set", "drop"))
    p.add_argument("target", nargs="?",
                   help="set: a TOML file with [[policies]] or a JSON file; drop: a name")
    p.add_argument("--delete-tiers", action="store_true",
                   help="drop: also delete the tiers the policy made")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _source_args(p)


def _source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help=f"an embedded database (default {DEFAULT_DATA_DIR} "
                                      f"when --url is not given)")
    p.add_argument("--url", help="a running server's HTTP URL instead")
    p.add_argument("--token", help="the server's token")


def run(args: argparse.Namespace) -> None:
    try:
        {"generate": generate, "bench": bench, "stats": stats,
         "policy": policy}[args.command](args)
    except (SinkError, SensoriumError, ValueError, OSError) as exc:
        raise SystemExit(f"sensorium {args.command}: {exc}") from None


# -- generate ---------------------------------------------------------------------------------
def parse_start(text: str) -> int:
    """``--start``: epoch ms or RFC 3339 (UTC when no offset is given)."""
    if text.strip().isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--start {text!r} is not epoch ms or an RFC 3339 time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def generate(args: argparse.Namespace) -> None:
    if args.sensors <= 0 or args.interval <= 0 or args.days <= 0:
        raise ValueError("--sensors, --interval and --days must be positive")
    interval_ms = round(args.interval * 1000)
    sensors = fleet(args.sensors, args.prefix)
    db = None
    if args.target == "embedded":
        from .. import open as open_database
        db = open_database(args.data_dir)
    sink = open_sink(args.target, db=db, url=args.url, resp=args.resp, mqtt=args.mqtt,
                     token=args.token, batch=args.batch, qos=args.qos)
    profiler = cProfile.Profile() if args.profile else None
    closed_s = 0.0
    try:
        if profiler:
            profiler.enable()
        if args.live:
            rate = args.rate or args.sensors / args.interval
            report = run_live(sensors, sink, rate, duration_s=args.duration, seed=args.seed,
                              spikes_per_day=args.spikes, dropouts_per_day=args.dropouts,
                              quiet=args.quiet)
        else:
            steps = int(args.days * DAY_S * 1000 // interval_ms)
            if args.start is not None:
                start_ms = parse_start(args.start)
            else:  # end at the last whole interval before now
                start_ms = int(time.time() * 1000) // interval_ms * interval_ms \
                    - (steps - 1) * interval_ms
            gen = Generator(sensors, start_ms, interval_ms, args.seed,
                            spikes_per_day=args.spikes, dropouts_per_day=args.dropouts)
            report = load_history(gen, sink, steps, quiet=args.quiet)
        t = time.perf_counter()
        sink.close()
        if db is not None:
            db.close()  # checkpoint: memory to compressed blocks, log truncated
            db = None
        closed_s = time.perf_counter() - t
    finally:
        if profiler:
            profiler.disable()
        if db is not None:
            db.close()
    report.timings_s["close"] = closed_s
    _print_load(args, report, closed_s)
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.profile)
        print(out.getvalue())


def _print_load(args: argparse.Namespace, report: Any, closed_s: float) -> None:
    w = report.written
    where = args.data_dir if args.target == "embedded" else {
        "resp": args.resp, "mqtt": args.mqtt}.get(args.target, args.url)
    total_s = report.elapsed_s + closed_s
    print(f"{args.target} {where}: {w.samples:,} samples written "
          f"({report.generated:,} generated, {args.sensors:,} sensors) in {total_s:.1f} s "
          f"({w.samples / max(total_s, 1e-9):,.0f} samples/s)")
    if args.live:
        target = args.rate or args.sensors / args.interval
        print(f"live: achieved {w.samples / max(report.elapsed_s, 1e-9):,.0f} samples/s "
              f"over {report.elapsed_s:.1f} s (target {target:,.0f}/s)"
              + (f"; {report.behind:,} samples behind at the end" if report.behind else ""))
    else:
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in report.timings_s.items())
        print(f"time: {parts}")
    if w.rejected:
        print(f"rejected: {w.rejected:,} samples; first: {w.first_error}")
        sys.stdout.flush()


# -- bench and stats --------------------------------------------------------------------------
def _open_source(args: argparse.Namespace) -> tuple[Any, Any]:
    """(client, db): an HTTP client for --url, else an opened database."""
    if args.url:
        import httpx
        headers = {"Authorization": f"Token {args.token}"} if args.token else {}
        return httpx.Client(base_url=args.url.rstrip("/"), headers=headers, timeout=120), None
    from .. import open as open_database
    return None, open_database(args.data_dir or DEFAULT_DATA_DIR)


def bench(args: argparse.Namespace) -> None:
    from . import bench as b
    client, db = _open_source(args)
    try:
        runner = b.HttpTarget(client) if client is not None else b.EmbeddedTarget(db)
        rows = b.run(runner, args.sensor, args.repeat)
    finally:
        (client or db).close()
    print(json.dumps(rows, indent=2) if args.json else b.table(rows))


def stats(args: argparse.Namespace) -> None:
    from . import stats as st
    client, db = _open_source(args)
    try:
        if client is not None:
            report = st.from_server(client, args.window)
        else:
            report = st.from_database(db)
    finally:
        (client or db).close()
    print(json.dumps(report, indent=2) if args.json else st.text(report))


def policy(args: argparse.Namespace) -> None:
    from . import policy as pol
    if args.action in ("set", "drop") and not args.target:
        raise ValueError(f"policy {args.action} needs a " +
                         ("file" if args.action == "set" else "policy name"))
    client, db = _open_source(args)
    try:
        if args.action == "list":
            found = (client.get("/api/policies").json()["policies"] if client is not None
                     else db.policies())
            print(json.dumps(found, indent=2))
        elif args.action == "set":
            wanted = pol.read_policies(args.target)
            done = (pol.set_remote(client, wanted) if client is not None
                    else pol.set_embedded(db, wanted, args.quiet))
            for report in done:
                print(json.dumps(report))
        elif client is not None:
            reply = client.delete(f"/api/policies/{args.target}",
                                  params={"delete_tiers": str(args.delete_tiers).lower()})
            if reply.status_code != 200:
                raise ValueError(reply.json().get("error", reply.text))
        else:
            db.drop_policy(args.target, delete_tiers=args.delete_tiers)
    finally:
        (client or db).close()


__all__ = ["COMMANDS", "add_parsers", "human", "run"]
