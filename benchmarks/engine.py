"""Engine benchmark: the performance targets of issue #2, measured as the issue states them.

    python benchmarks/engine.py                      # full run (~40 min before optimisation)
    python benchmarks/engine.py --quick              # scaled down, about a minute
    python benchmarks/engine.py --only ingest,query --profile --json out.json --markdown out.md

Phases (``--only``): ``ingest`` (set-up of 100k series + 300k rules, then vectorised ingest
with fsync "batch" and "none", with and without rules), ``memory`` (bytes per unflushed
sample), ``query`` (1 h raw, 24 h 1-min avg from tier and raw, 100 series by label; head and
blocks), ``disk`` (bytes per sample on disk, with and without tiers), ``restart`` (open after
kill -9 with 10 M samples in the log). Every figure is a median over repeats with its spread
(min..max, or p10..p90 where there are many repeats); the ingest runs are paired with a numpy
yardstick measured just before each, so a busy machine shows up in both. ``--profile`` runs
each phase that misses its target once more under cProfile and prints the hot spots.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import engine_ingest as ing  # noqa: E402
import engine_query as qry  # noqa: E402
import engine_restart as rst  # noqa: E402
from engine_common import (  # noqa: E402
    Profile,
    Result,
    fmt,
    load_profile,
    log,
    machine,
    result,
    run_profiled,
    verdict,
    yardstick_batch,
    yardstick_fsync,
    yardstick_memcpy,
)

PHASES = ("ingest", "memory", "restart", "query", "disk")
FSYNC_POLICIES = ("batch", "none")
# How ``madd`` gets its series: as key strings (looked up every batch) or as ids that the
# writer resolved once with ``series_ids`` (what a gateway with a fixed sensor list does).
KEY_FORMS = ("str", "ids")


@dataclass(frozen=True, slots=True)
class Scale:
    series: int  # sensors of the ingest, memory and restart set-ups
    batch: int  # samples per madd
    ingest_batches: int  # batches per measured ingest run
    repeats: int  # consecutive ingest runs per variant (one fresh copy of the set-up each)
    query_series: int  # sensors with 24 h of data (groups of 100 share a label value)
    query_seconds: int
    query_budget_s: float  # per query and mode, after min_repeats
    query_min_repeats: int
    restart_samples: int
    restart_plain: bool  # also restart without rules


FULL = Scale(series=100_000, batch=10_000, ingest_batches=700, repeats=3,
             query_series=200, query_seconds=86_400, query_budget_s=2.0, query_min_repeats=5,
             restart_samples=10_000_000, restart_plain=True)
QUICK = Scale(series=10_000, batch=10_000, ingest_batches=60, repeats=1,
              query_series=100, query_seconds=86_400, query_budget_s=0.3, query_min_repeats=3,
              restart_samples=1_000_000, restart_plain=False)


class Bench:
    """One benchmark run: scale, scratch directory, results and profiles."""

    def __init__(self, scale: Scale, workdir: str, profile: bool, profile_setup: bool) -> None:
        self.scale = scale
        self.workdir = workdir
        self.profile = profile
        self.profile_setup = profile_setup
        self.results: list[Result] = []
        self.sections: list[tuple[str, str]] = []  # hot spots of the misses: (title, text)
        self._setups: dict[bool, str] = {}
        self._query: qry.QueryData | None = None
        self._writers: dict[bool, dict[str, Any]] = {}

    def hot_spots(self, profiled: tuple[Profile, list[str]]) -> None:
        prof, cumulative = profiled
        text = prof.text() + "\n  by cumulative time (sensorium code):\n" + "\n".join(
            "  " + line for line in cumulative)
        self.sections.append((prof.label, text))
        log(text)

    def add(self, r: Result) -> Result:
        self.results.append(r)
        log(f"  {r.name}: {fmt(r.median)} {r.unit} [{fmt(r.low)} .. {fmt(r.high)}] "
            f"n={r.n} {r.target} {verdict(r)}")
        return r

    def path(self, name: str) -> str:
        return os.path.join(self.workdir, name)

    # -- set-up ---------------------------------------------------------------------------------
    def setup(self, rules: bool) -> str:
        """The closed set-up directory (built on first use, timed)."""
        if rules in self._setups:
            return self._setups[rules]
        n = self.scale.series
        path = self.path("setup-rules" if rules else "setup-plain")
        log(f"set-up: {n:,} series" + (f", {3 * n:,} tier series and rules" if rules else ""))
        t = ing.build_setup(path, n, rules)
        what = f"{n // 1000}k series" + (f" + {3 * n // 1000}k rules" if rules else "")
        kind = "rules" if rules else "plain"
        self.add(result("setup", f"create {n // 1000}k series [{kind} set-up]", "s",
                        [t["raw_s"]], note=f"groups of {ing.CREATE_GROUP} in db.batch(), "
                        "fsync batch", wait=[t["wait"]]))
        if rules:
            self.add(result("setup", f"create {3 * n // 1000}k tier series + "
                            f"{3 * n // 1000}k rules", "s", [t["rules_s"]],
                            note="create + createrule per tier; cpu column: series + rules",
                            cpu=[t["cpu_s"]], wait=[t["wait"]]))
        self.add(result("setup", f"close (checkpoint) [{kind} set-up: {what}]", "s",
                        [t["close_s"]]))
        if rules and self.profile_setup:
            prof_path = self.path("setup-profiled")
            self.hot_spots(run_profiled(lambda: ing.build_setup(prof_path, n, True),
                                        f"set-up: {what}"))
            shutil.rmtree(prof_path, ignore_errors=True)
        self._setups[rules] = path
        return path

    # -- ingest ---------------------------------------------------------------------------------
    def ingest(self) -> None:
        s = self.scale
        log(f"ingest: {s.ingest_batches} batches of {s.batch:,} over {s.series:,} series, "
            f"{s.repeats} run(s) per variant")
        for rules in (True, False):
            for policy in FSYNC_POLICIES:
                for keys in KEY_FORMS:
                    self._ingest_variant(rules, policy, keys)
        shutil.rmtree(self.path("ingest-run"), ignore_errors=True)

    def _ingest_variant(self, rules: bool, policy: str, keys: str) -> None:
        s = self.scale
        session = ing.Session(self.setup(rules), self.path("ingest-run"), policy, s.series,
                              s.batch, ids=keys == "ids")
        kind = "rules" if rules else "plain"
        self.add(result("setup", f"open a copy of the {kind} set-up", "s", [session.open_s],
                        note="restores the checkpointed series and rules"))
        runs, yard = [], []
        for rep in range(s.repeats):
            batches = session.batches(s.ingest_batches)
            yard.append(yardstick_batch(s.batch))
            runs.append(session.run(batches))
            log(f"    run {rep + 1} rules={rules} fsync={policy} keys={keys}: "
                f"{runs[-1]['rate']:,.0f} samples/s")
        r = self._ingest_results(rules, policy, keys, runs, yard)
        if self.profile and r.ok is False:
            batches = session.batches(s.ingest_batches)
            self.hot_spots(session.profiled(batches, f"ingest, {r.name}, "
                                                     f"{len(batches)} batches"))
        got = session.close()
        if rules and policy == "none" and keys == "str":
            disk, n = got["disk"], session.samples
            shape = (f"{s.series // 1000}k series x {n // s.series} s in "
                     f"{session.checkpoints} blocks")
            self.add(result("disk", f"raw blocks ({shape}, ingest data)", "B/sample",
                            [disk["raw_blocks"] / n], target="<= 1",
                            note="short series: one block per run (checkpoint after each)"))
            self.add(result("disk", f"raw + tier blocks ({shape}, ingest data)", "B/sample",
                            [(disk["raw_blocks"] + disk["tier_blocks"]) / n]))

    def _ingest_results(self, rules: bool, policy: str, keys: str,
                        runs: list[dict[str, Any]], yard: list[float]) -> Result:
        rates = [r["rate"] for r in runs]
        lat = np.concatenate([r["batch_ms"] for r in runs])
        rejected = sum(r["rejected"] for r in runs)
        name = (f"{'3 rules/series' if rules else 'no rules'}, fsync={policy}, "
                f"{'ids from series_ids' if keys == 'ids' else 'keys as strings'}")
        main = self.add(result(
            "ingest", name, "samples/s", rates, target=">= 2000000",
            cpu=[r["cpu_rate"] for r in runs], wait=[r["wait"] for r in runs],
            note=f"{self.scale.series // 1000}k series; batch p50 {np.median(lat):.1f} ms, "
                 f"p99 {np.percentile(lat, 99):.1f} ms; checkpoint after each run "
                 f"{np.median([r['checkpoint_s'] for r in runs]):.1f} s"
                 + (f"; {rejected} REJECTED" if rejected else "")))
        self.add(result("ingest", "  ratio to the numpy yardstick", "x",
                        [r / y for r, y in zip(rates, yard, strict=True)],
                        note="ingest rate / sort+gather rate of the same batch, measured "
                             "just before each run", variant=name))
        return main

    # -- memory and restart share one writer process ---------------------------------------------
    def writer(self, rules: bool) -> dict[str, Any]:
        """Runs the crash writer once per set-up kind: it measures memory, then is killed."""
        if rules not in self._writers:
            s = self.scale
            path = self.path(f"restart-{'rules' if rules else 'plain'}")
            ing.copy_setup(self.setup(rules), path)
            log(f"writer: ingests {s.restart_samples:,} samples with flushing off, "
                "then kill -9")
            report = rst.crash_writer(path, s.series, s.batch, s.restart_samples)
            report["path"] = path
            self._writers[rules] = report
        return self._writers[rules]

    def memory(self) -> None:
        s = self.scale
        got = self.writer(True)["memory"]
        shape = f"{s.series // 1000}k series x {got['samples'] // s.series} s, rules"
        rows = [
            self.add(result("memory", f"RSS growth per unflushed sample ({shape})",
                            "B/sample", [got["rss_per_sample"]], target="<= 24")),
            self.add(result("memory", f"tracemalloc growth per sample ({shape})", "B/sample",
                            [got["traced_per_sample"]], target="<= 24")),
        ]
        self.add(result("memory", f"tracemalloc peak per sample ({shape})", "B/sample",
                        [got["peak_per_sample"]], note="transient, during ingest"))
        self.add(result("memory", f"engine's own accounting ({shape})", "B/sample",
                        [got["engine_per_sample"]], note="Table.memory_bytes"))
        if self.profile and any(r.ok is False for r in rows):
            self.sections.append((f"memory: largest live allocations after ingest ({shape})",
                                  "\n".join("  " + t for t in got["top"])))

    # -- query and disk -------------------------------------------------------------------------
    def query_data(self) -> qry.QueryData:
        if self._query is None:
            s = self.scale
            log(f"query data: {s.query_series} series x {s.query_seconds / 3600:.0f} h at 1 s, "
                "3 rules each, loaded into memory")
            d = qry.build(self.path("query"), s.query_series, s.query_seconds)
            shape = f"{s.query_series} series x {s.query_seconds // 3600} h, rules"
            self.add(result("query", f"load {d.samples / 1e6:.1f} M samples (batches of "
                            f"{qry.LOAD_CHUNK_S} s x {s.query_series} series)", "samples/s",
                            [d.load["load_rate"]], note="fsync none; not a target"))
            self.add(result("memory", f"RSS growth per unflushed sample ({shape})",
                            "B/sample", [d.load["rss_per_sample"]], target="<= 24"))
            self.add(result("memory", f"engine's own accounting ({shape})", "B/sample",
                            [d.load["engine_per_sample"]]))
            self._query = d
        return self._query

    def query(self) -> None:
        d = self.query_data()
        self._queries(d, "head", None)
        self._checkpoint(d)
        self._queries(d, "blocks, cold cache", qry.cold(d))
        self._queries(d, "blocks, warm cache", None)

    def _queries(self, d: qry.QueryData, mode: str, before: Any) -> None:
        s = self.scale
        log(f"queries ({mode})")
        for q in qry.queries(d):
            times, ok = qry.measure(q, budget_s=s.query_budget_s,
                                    min_repeats=s.query_min_repeats, max_repeats=500,
                                    before=before)
            r = self.add(result("query", f"{q.name} [{mode}]", "ms",
                                [t.wall * 1e3 for t in times], target=f"< {q.target_ms:g}",
                                percentiles=True, cpu=[t.cpu * 1e3 for t in times],
                                wait=[t.wait_share for t in times],
                                note="" if ok else "WRONG REPLY SHAPE"))
            if self.profile and r.ok is False:
                n = max(3, min(200, int(1.0 / max(r.median / 1e3, 1e-6))))

                def body(q: qry.Query = q, n: int = n) -> None:
                    for i in range(n):
                        if before is not None:
                            before()
                        q.run(i)
                self.hot_spots(run_profiled(body, f"query: {q.name} [{mode}], {n} calls"))

    def _checkpoint(self, d: qry.QueryData) -> None:
        if "checkpoint_s" in d.load:
            return
        got = qry.checkpoint(d)
        d.load.update(checkpoint_s=got["checkpoint_s"], disk=got["disk"])
        self.add(result("disk", f"checkpoint of {d.samples / 1e6:.1f} M samples + tiers",
                        "s", [got["checkpoint_s"]],
                        note=f"{d.samples / got['checkpoint_s'] / 1e6:.1f} M samples/s"))

    def disk(self) -> None:
        d = self.query_data()
        self._checkpoint(d)
        disk, n = d.load["disk"], d.samples
        shape = f"{d.n_series} series x {d.seconds // 3600} h, temp 2 dp"
        self.add(result("disk", f"raw blocks ({shape})", "B/sample",
                        [disk["raw_blocks"] / n], target="<= 1"))
        self.add(result("disk", f"raw + tier blocks ({shape})", "B/sample",
                        [(disk["raw_blocks"] + disk["tier_blocks"]) / n], target="<= 1",
                        note="3 tiers of 1-min states per series"))
        self.add(result("disk", f"whole directory ({shape})", "B/sample",
                        [sum(disk.values()) / n], note="blocks + checkpoint + manifest + log"))

    # -- restart --------------------------------------------------------------------------------
    def restart(self) -> None:
        for rules in (True, False) if self.scale.restart_plain else (True,):
            self._restart(rules)

    def _restart(self, rules: bool) -> None:
        s = self.scale
        report = self.writer(rules)
        path = report["path"]
        wal = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(path)
                  for f in fs if f.endswith(".wal"))
        opens: list[dict[str, Any]] = []
        started = time.perf_counter()  # up to 3 opens, fewer when each takes minutes
        while len(opens) < 3 and (not opens or time.perf_counter() - started < 240):
            opens.append(rst.time_open(path))
        recovered = all(o["recovered"] for o in opens)
        m = report["samples"] / 1e6
        what = f"{m:g} M samples in the log, {s.series // 1000}k series" + (
            ", 3 rules/series" if rules else ", no rules")
        r = self.add(result(
            "restart", f"open after kill -9 ({what})", "s", [o["open_s"] for o in opens],
            cpu=[o["cpu_s"] for o in opens], wait=[o["wait"] for o in opens],
            target=f"< {m:g}",  # 10 s for 10 M samples, scaled linearly (--quick logs less)
            note=("" if recovered else "LAST SAMPLE MISSING; ")
            + f"log {wal / report['samples']:.1f} B/sample; import "
            f"{np.median([o['import_s'] for o in opens]):.2f} s not included; the writer "
            f"opened the set-up in {report['open_s']:.1f} s"
            + ("" if m == 10 else "; target scaled from 10 s per 10 M")))
        if self.profile and r.ok is False:
            prof = self.path("restart.pstats")
            rst.time_open(path, prof)
            self.hot_spots(load_profile(prof, f"restart: open ({what})"))
        shutil.rmtree(path, ignore_errors=True)


# -- output -------------------------------------------------------------------------------------
def table(results: list[Result]) -> str:
    head = ("phase", "measurement", "median", "spread", "n", "unit", "cpu", "wait", "target",
            "")
    rows = [head] + [(r.phase, r.name, fmt(r.median), f"{fmt(r.low)} .. {fmt(r.high)}",
                      str(r.n), r.unit, fmt(r.cpu), _pct(r.wait), r.target, verdict(r))
                     for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(row, widths, strict=True))) for row in rows]
    notes = [f"  {r.name}: {r.note}" for r in results if r.note]
    return "\n".join(lines + (["", "notes:"] + notes if notes else []))


def _pct(x: float) -> str:
    return "" if x != x else f"{x:.0%}"


def markdown(results: list[Result], info: dict[str, str], command: str,
             sections: list[tuple[str, str]]) -> str:
    out = [f"Command: `{command}`", "",
           "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), "",
           "| phase | measurement | median | spread | n | unit | cpu | wait | target | |",
           "|---|---|--:|--:|--:|---|--:|--:|---|---|"]
    for r in results:
        out.append(f"| {r.phase} | {r.name} | {fmt(r.median)} | {fmt(r.low)} .. "
                   f"{fmt(r.high)} | {r.n} | {r.unit} | {fmt(r.cpu)} | {_pct(r.wait)} | "
                   f"{r.target} | {verdict(r)} |")
    notes = [f"- {r.name}: {r.note}" for r in results if r.note]
    if notes:
        out += ["", "Notes:", ""] + notes
    for title, text in sections:
        out += ["", f"#### {title}", "", "```", text, "```"]
    return "\n".join(out) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="scaled-down run, about a minute")
    p.add_argument("--only", default=",".join(PHASES),
                   help=f"comma-separated phases among {','.join(PHASES)}")
    p.add_argument("--profile", action="store_true",
                   help="profile each phase that misses its target and print the hot spots")
    p.add_argument("--profile-setup", action="store_true",
                   help="also profile building the rules set-up (slow: minutes at 100k series)")
    p.add_argument("--repeats", type=int, help="ingest runs per variant")
    p.add_argument("--dir", default=None, help="parent of the scratch directory (default /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    p.add_argument("--cpu", type=int, help="pin the benchmark (and its children) to this CPU")
    p.add_argument("--json", help="write every result (and the hot spots) to this file")
    p.add_argument("--markdown", help="write the results as a Markdown table to this file")
    p.add_argument("--label", help="free text saved with the machine info (e.g. the commit)")
    args = p.parse_args()
    phases = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = set(phases) - set(PHASES)
    if unknown:
        p.error(f"unknown phases {sorted(unknown)}; choose among {PHASES}")
    scale = QUICK if args.quick else FULL
    if args.repeats:
        scale = replace(scale, repeats=args.repeats)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    import tempfile
    workdir = tempfile.mkdtemp(prefix="sensorium-bench-", dir=args.dir)
    info = machine()
    if args.label:
        info["label"] = args.label
    log("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    bench = Bench(scale, workdir, args.profile, args.profile_setup)
    started = time.perf_counter()
    try:
        fsync = yardstick_fsync(workdir)
        bench.add(result("machine", "numpy sort+gather of a 10k batch (yardstick)",
                         "samples/s", [yardstick_batch(scale.batch) for _ in range(5)]))
        bench.add(result("machine", "memcpy 64 MiB (yardstick)", "GB/s",
                         [yardstick_memcpy() / 1e9 for _ in range(3)]))
        bench.add(result("machine", "append 200 kB + fdatasync (yardstick)", "ms",
                         [t * 1e3 for t in fsync], percentiles=True))
        for phase in PHASES:
            if phase in phases:
                getattr(bench, phase)()
    finally:
        if bench._query is not None:
            bench._query.db.close()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    info["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    info["wall_s"] = f"{time.perf_counter() - started:.0f}"
    command = shlex.join(["python", "benchmarks/engine.py", *sys.argv[1:]])
    print(table(bench.results))
    for title, text in bench.sections:
        print(f"\n== {title}\n{text}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "command": command, "scale": asdict(scale),
                       "results": [r.as_dict() for r in bench.results],
                       "hot_spots": dict(bench.sections)}, f, indent=1, default=str)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown(bench.results, info, command, bench.sections))


if __name__ == "__main__":
    main()
