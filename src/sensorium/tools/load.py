"""``sensorium generate``: drive a generator into a sink, as history or live at a rate.

History (:func:`load_history`) writes ``days`` of samples ending now (or from ``start``) as
fast as the sink takes them, chunk by chunk (``CHUNK_SAMPLES`` samples of all sensors at once).
Live (:func:`run_live`) numbers samples 0, 1, 2, … (sample k is sensor ``k % N`` of round
``k // N``, due ``k / rate`` seconds after the start, stamped with that wall-clock time) and
sends, every tick, the samples that are due; it reports the achieved rate every second, so a
sink that cannot keep up shows as a shortfall rather than as a silent slowdown.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

import numpy as np

from .generate import Fleet, Generator
from .progress import Progress, human
from .sinks import Sink, Written

CHUNK_SAMPLES = 1_000_000  # samples generated and written per step of a history load
LIVE_TICK_S = 0.05  # live mode sends what is due this often (at most)
LIVE_MAX_BATCH = 200_000  # and at most this many samples per write


@dataclass(slots=True)
class LoadReport:
    """What a load did: samples generated, the sink's totals, wall time per phase."""

    generated: int = 0
    written: Written = field(default_factory=Written)
    elapsed_s: float = 0.0
    behind: int = 0  # live: samples due but not sent when the run ended
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.written.samples / max(self.elapsed_s, 1e-9)


def steps_per_chunk(sensors: int, chunk_samples: int = CHUNK_SAMPLES) -> int:
    return max(1, chunk_samples // sensors)


def load_history(gen: Generator, sink: Sink, total_steps: int, *,
                 chunk_samples: int = CHUNK_SAMPLES, quiet: bool = False,
                 stream: TextIO | None = None) -> LoadReport:
    """Generates ``total_steps`` steps of every sensor and writes them to ``sink`` (opened
    here; the caller closes it). Returns the totals and where the time went."""
    report = LoadReport()
    started = time.perf_counter()
    t = time.perf_counter()
    sink.open(gen.fleet)
    report.timings_s["create series"] = time.perf_counter() - t
    gen_s = write_s = 0.0
    expected = total_steps * len(gen.fleet)
    with Progress(expected, "generate", "samples", stream=stream, quiet=quiet) as bar:
        for lo in range(0, total_steps, steps_per_chunk(len(gen.fleet), chunk_samples)):
            t = time.perf_counter()
            chunk = gen.chunk(min(steps_per_chunk(len(gen.fleet), chunk_samples),
                                  total_steps - lo))
            t2 = time.perf_counter()
            sink.write(chunk)
            t3 = time.perf_counter()
            gen_s += t2 - t
            write_s += t3 - t2
            report.generated += chunk.samples
            # the bar counts grid points (dropouts included) so that it ends at 100%
            bar.update(chunk.values.size)
    report.timings_s["generate"] = gen_s
    report.timings_s["write"] = write_s
    report.written = sink.written
    report.elapsed_s = time.perf_counter() - started
    return report


class _Rounds:
    """Values of live rounds (one sample per sensor), generated ahead in blocks."""

    def __init__(self, gen: Generator, block_steps: int) -> None:
        self.gen = gen
        self.block_steps = block_steps
        self.first = 0  # round of values[:, 0]
        self.values = np.empty((len(gen.fleet), 0))

    def take(self, k0: int, k1: int) -> tuple[np.ndarray, np.ndarray]:
        """(sensor, value) of samples [k0, k1), dropouts (NaN) included."""
        n = len(self.gen.fleet)
        last_round = (k1 - 1) // n
        while self.first + self.values.shape[1] <= last_round:
            keep_from = k0 // n - self.first  # drop rounds no longer needed
            fresh = self.gen.chunk(self.block_steps).values
            self.values = np.concatenate([self.values[:, max(keep_from, 0):], fresh], axis=1)
            self.first += max(keep_from, 0)
        k = np.arange(k0, k1, dtype=np.int64)
        sensor = k % n
        return sensor, self.values[sensor, k // n - self.first]


def run_live(fleet: Fleet, sink: Sink, rate: float, *, duration_s: float | None,
             seed: int = 0, spikes_per_day: float = 2.0, dropouts_per_day: float = 0.5,
             quiet: bool = False, stream: TextIO | None = None) -> LoadReport:
    """Emits ``rate`` samples/s (spread over the sensors in turn) for ``duration_s`` (or
    until KeyboardInterrupt). Returns the totals, with ``behind`` the samples that were due
    but not sent when time ran out; prints the achieved rate every second."""
    out = stream or sys.stderr
    n = len(fleet)
    if rate <= 0:
        raise ValueError("rate must be positive")
    if rate > n * 1000:
        raise ValueError(f"rate {rate:g}/s is above 1 sample per ms per sensor for {n} "
                         f"sensors: timestamps would collide; add sensors")
    t0_ms = int(time.time() * 1000)
    round_ms = max(1, round(n * 1000 / rate))
    gen = Generator(fleet, t0_ms, round_ms, seed, spikes_per_day=spikes_per_day,
                    dropouts_per_day=dropouts_per_day)
    rounds = _Rounds(gen, max(1, math.ceil(rate / n)))  # ~1 s of rounds per block
    report = LoadReport()
    sink.open(fleet)
    started = time.perf_counter()
    k = 0
    limit = None if duration_s is None else int(duration_s * rate)
    last_report, sent_at_report = started, 0
    try:
        while limit is None or k < limit:
            now = time.perf_counter()
            # time up: one last write of the last tick's samples; a sink that fell
            # further behind stops there, and the shortfall shows as ``behind``
            final = duration_s is not None and now - started >= duration_s
            due = int((now - started) * rate)
            if limit is not None:
                due = min(due, limit)
            if due <= k and not final:
                time.sleep(min(LIVE_TICK_S, max((k + 1) / rate - (now - started), 0.0)))
                continue
            k1 = min(due, k + LIVE_MAX_BATCH)
            if k1 <= k or (final and due - k > 2 * LIVE_TICK_S * rate):
                break  # done, or so far behind that catching up would distort the rate
            sensor, values = rounds.take(k, k1)
            ts = t0_ms + (np.arange(k, k1, dtype=np.int64) * 1000 / rate).astype(np.int64)
            present = ~np.isnan(values)
            order = np.argsort(sensor[present], kind="stable")  # sensor-major, time order
            sink.write_rows(sensor[present][order], ts[present][order],
                            values[present][order])
            report.generated += int(present.sum())
            k = k1
            if final:
                break
            now = time.perf_counter()
            if now - last_report >= 1.0 and not quiet:
                achieved = (k - sent_at_report) / (now - last_report)
                behind = due - k
                out.write(f"live: {human(achieved)}/s (target {human(rate)}/s), "
                          f"{human(sink.written.samples)} written"
                          + (f", {human(behind)} samples behind" if behind > rate else "")
                          + "\n")
                out.flush()
                last_report, sent_at_report = now, k
    except KeyboardInterrupt:
        pass
    report.elapsed_s = time.perf_counter() - started
    report.written = sink.written
    report.timings_s["live"] = report.elapsed_s
    report.behind = max(int(report.elapsed_s * rate) - k, 0) if limit is None else limit - k
    return report
