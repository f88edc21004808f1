"""Where a server's time goes: py-spy samples of one phase, summed by function.

``run.py --py-spy PATH`` records the Sensorium server with ``py-spy record`` (raw collapsed
stacks, only threads holding the GIL) while it ingests and while it answers queries, then
prints the functions with the most samples: own time (the frame on top) and, for
Sensorium's own functions, inclusive time. py-spy is not a project dependency; install it
anywhere (``pip install py-spy`` in a scratch venv) and pass its path.
"""

from __future__ import annotations

import collections
import signal
import subprocess
from pathlib import Path

RATE_HZ = 250
TOP = 15


class Recording:
    """``py-spy record`` of ``pid`` into ``out`` from ``start()`` until ``stop()``."""

    def __init__(self, py_spy: str, pid: int, out: Path) -> None:
        self.cmd = [py_spy, "record", "--pid", str(pid), "--format", "raw", "--gil",
                    "--rate", str(RATE_HZ), "--output", str(out)]
        self.out = out
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            self.proc.wait(60)
            self.proc = None


def top(title: str, paths: list[Path], project: str = "sensorium") -> str:
    """Own-time and (for ``project``'s frames) inclusive-time tables of raw recordings."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    text = "\n".join(p.read_text() for p in paths if p.exists())
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        own[_short(frames[-1])] += n
        for f in {_short(f) for f in frames if f"({project}/" in f or f"/{project}/" in f}:
            inclusive[f] += n
    if not total:
        return f"{title}: no samples\n"
    lines = [f"{title}: {total} samples at {RATE_HZ} Hz ({total / RATE_HZ:.1f} s holding "
             "the GIL)", "", "| own | function |", "|--:|---|"]
    lines += [f"| {n / total:.1%} | `{f}` |" for f, n in own.most_common(TOP)]
    lines += ["", f"| inclusive | {project} function |", "|--:|---|"]
    lines += [f"| {n / total:.1%} | `{f}` |" for f, n in inclusive.most_common(TOP)]
    return "\n".join(lines) + "\n"


def _short(frame: str) -> str:
    """``func (/long/path/pkg/mod.py:12)`` → ``func (pkg/mod.py)``; py-spy already gives
    packages' frames as ``pkg/sub/mod.py``, which stay whole."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    if not where.startswith("/"):
        return f"{name} ({where})"
    parts = Path(where).parts
    for anchor in ("site-packages", "src", "lib"):
        if anchor in parts:
            parts = parts[len(parts) - parts[::-1].index(anchor):]
            break
    return f"{name} ({'/'.join(parts[-3:])})"
