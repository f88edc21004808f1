"""Times ``sensorium generate`` into the embedded database (issue #4: 43 M samples < 60 s).

Each run is a fresh ``sensorium generate`` process on a fresh directory, as a user would run
it; its own report splits the time (create series, generate, write, close = checkpoint). The
machine's load average is recorded before and after, and the process's CPU time next to the
wall time (on a shared machine, CPU time is the steadier figure). ``--profile`` adds one more
run with ``--profile`` (cProfile of the main thread; the engine's background checkpoint and
merge thread does not appear in it) and prints its top functions.

    python benchmarks/generate_load.py                       # 3 runs of the target size
    python benchmarks/generate_load.py --runs 5 --cpu 1 --profile
    python benchmarks/generate_load.py --days 1 --sensors 100 --runs 1   # smoke
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TARGET_S = 60.0


def one_run(args: argparse.Namespace, directory: str, profile: bool = False
            ) -> tuple[float, float, dict[str, float], str]:
    """(wall s, CPU s, phases from the command's own report, its stdout)."""
    shutil.rmtree(directory, ignore_errors=True)
    cmd = [sys.executable, "-m", "sensorium.cli", "generate", "--days", str(args.days),
           "--sensors", str(args.sensors), "--interval", str(args.interval),
           "--data-dir", directory, "--quiet", "--seed", "1"]
    if profile:
        cmd += ["--profile", "30"]
    if args.cpu is not None:
        cmd = ["taskset", "-c", str(args.cpu), *cmd]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    phases = {name: float(s) for name, s in re.findall(r"([a-z ]+) ([\d.]+) s", out.split(
        "time:", 1)[1].splitlines()[0])} if "time:" in out else {}
    return wall, cpu, {k.strip(): v for k, v in phases.items()}, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--days", type=float, default=30)
    p.add_argument("--sensors", type=int, default=1000)
    p.add_argument("--interval", type=float, default=60)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--cpu", type=int, help="pin the runs to this CPU (taskset)")
    p.add_argument("--dir", default=tempfile.gettempdir(), help="scratch parent directory")
    p.add_argument("--profile", action="store_true", help="one more run under cProfile")
    args = p.parse_args()
    directory = os.path.join(args.dir, f"sensorium-generate-bench-{os.getpid()}")
    samples = int(args.days * 86_400 / args.interval) * args.sensors
    print(f"sensorium generate --days {args.days:g} --sensors {args.sensors} --interval "
          f"{args.interval:g}: {samples:,} grid points (less dropouts), {args.runs} runs"
          + (f", pinned to CPU {args.cpu}" if args.cpu is not None else ""), flush=True)
    load_before = os.getloadavg()
    walls, cpus = [], []
    try:
        for i in range(args.runs):
            wall, cpu, phases, out = one_run(args, directory)
            walls.append(wall)
            cpus.append(cpu)
            written = re.search(r"([\d,]+) samples written", out)
            print(f"run {i + 1}: {wall:.1f} s wall, {cpu:.1f} s CPU, "
                  f"{written.group(1) if written else '?'} samples; "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()), flush=True)
        size = sum(os.path.getsize(os.path.join(dp, f))
                   for dp, _, files in os.walk(directory) for f in files)
        if args.profile:
            _, _, _, out = one_run(args, directory, profile=True)
            print(out)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    load_after = os.getloadavg()
    med = statistics.median(walls)
    print(f"median {med:.1f} s wall (min {min(walls):.1f}, max {max(walls):.1f}), "
          f"{statistics.median(cpus):.1f} s CPU; {samples / med:,.0f} samples/s; "
          f"{size / 2**20:.1f} MiB on disk; target < {TARGET_S:.0f} s: "
          f"{'PASS' if med < TARGET_S else 'FAIL'}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
