"""The data every system is given and the questions asked of it, with the expected answers.

Sensors report once a second with two decimals, as devices send them: a per-sensor base, a
slow drift (a sine of period ``DRIFT_PERIOD_S``) and a little noise. Series are named and
labelled the same way for every system through InfluxDB line protocol:

    sensors,sensor=s000123,type=temperature,zone=z005 value=21.53 1763900000000000000

Sensor ``i`` has type ``TYPES[i % 4]`` and zone ``i // (4 * PER_ZONE_TYPE)``, so every zone
holds ``PER_ZONE_TYPE`` sensors of each type: the "100 sensors" of the questions.
Values are kept as integer hundredths (``cents``) so that bodies and expected answers come
from one array.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TYPES = ("temperature", "humidity", "pressure", "co2")
# type -> (mean base, spread of bases between sensors, drift amplitude, noise sd)
SHAPES = {"temperature": (21.0, 3.0, 1.5, 0.05), "humidity": (45.0, 10.0, 4.0, 0.3),
          "pressure": (1013.0, 5.0, 1.0, 0.05), "co2": (600.0, 150.0, 60.0, 3.0)}
PER_ZONE_TYPE = 100  # sensors of one type in one zone
DRIFT_PERIOD_S = 6 * 3600  # slow: a few degrees over hours, as rooms and weather change
MEASUREMENT = "sensors"
FIELD = "value"
SEED = 3


@dataclass
class Workload:
    """``series`` sensors × ``rounds`` seconds from ``t0_s``, cut into line-protocol bodies.

    Body ``k`` holds chunk ``k % chunks`` (``batch`` consecutive sensors) at second
    ``k // chunks``: bodies in order send every sensor's reading of one second before the next.
    """

    series: int
    rounds: int
    t0_s: int
    batch: int = 5_000
    cents: np.ndarray = field(init=False, repr=False)  # (rounds, series) int32

    def __post_init__(self) -> None:
        if self.series % (len(TYPES) * PER_ZONE_TYPE):
            raise ValueError(f"series must be a multiple of {len(TYPES) * PER_ZONE_TYPE}")
        self.cents = _readings(self.series, self.rounds)

    @property
    def chunks(self) -> int:
        return -(-self.series // self.batch)

    @property
    def zones(self) -> int:
        return self.series // (len(TYPES) * PER_ZONE_TYPE)

    @property
    def samples(self) -> int:
        return self.series * self.rounds

    def sensor(self, i: int) -> str:
        return f"s{i:06d}"

    def tags(self, i: int) -> dict[str, str]:
        """The tags of sensor ``i`` (sorted by key, as line protocol wants them)."""
        return {"sensor": self.sensor(i), "type": TYPES[i % len(TYPES)],
                "zone": f"z{i // (len(TYPES) * PER_ZONE_TYPE):03d}"}

    def members(self, zone: int, kind: str) -> np.ndarray:
        """Indices of the sensors of type ``kind`` in zone ``zone``, ascending."""
        first = zone * len(TYPES) * PER_ZONE_TYPE + TYPES.index(kind)
        return np.arange(first, first + len(TYPES) * PER_ZONE_TYPE, len(TYPES))

    def bodies(self) -> list[bytes]:
        """Every line-protocol body (nanosecond timestamps), in sending order."""
        table = [f"{c // 100}.{c % 100:02d}".encode() for c in range(int(self.cents.max()) + 1)]
        prefixes = [(f"{MEASUREMENT},"
                     + ",".join(f"{k}={v}" for k, v in self.tags(i).items())
                     + f" {FIELD}=").encode() for i in range(self.series)]
        out = []
        for r in range(self.rounds):
            suffix = f" {(self.t0_s + r) * 1_000_000_000}\n".encode()
            row = self.cents[r].tolist()
            for start in range(0, self.series, self.batch):
                stop = min(start + self.batch, self.series)
                lines = [p + table[c] for p, c in zip(prefixes[start:stop], row[start:stop],
                                                      strict=True)]
                out.append(suffix.join(lines) + suffix)
        return out

    def lines_in(self, k: int) -> int:
        chunk = k % self.chunks
        return min(self.batch, self.series - chunk * self.batch)

    # The questions: what each answer must be, from the generated readings.

    def window_rounds(self, seconds: int) -> tuple[int, int]:
        """The last ``seconds`` of the data as rounds [lo, hi) (all of it if shorter)."""
        return max(0, self.rounds - seconds), self.rounds

    def raw(self, i: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Sensor ``i``'s samples of rounds [lo, hi): (timestamps ms, values)."""
        return (np.arange(lo, hi, dtype=np.int64) + self.t0_s) * 1000, \
            self.cents[lo:hi, i] / 100.0

    def minute_means(self, sensors: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """(len(sensors), minutes) means of whole minutes of rounds [lo, hi)."""
        block = self.cents[lo:hi, sensors].astype(np.float64) / 100.0
        return block.reshape((hi - lo) // 60, 60, len(sensors)).mean(axis=1).T

    def latest(self, sensors: np.ndarray) -> np.ndarray:
        return self.cents[-1, sensors] / 100.0


def _readings(series: int, rounds: int) -> np.ndarray:
    """(rounds, series) int32 hundredths: base + slow drift + noise, rounded to 2 decimals."""
    rng = np.random.default_rng(SEED)
    kinds = np.arange(series) % len(TYPES)
    params = np.array([SHAPES[t] for t in TYPES])[kinds]  # (series, 4)
    base = params[:, 0] + rng.uniform(-1, 1, series) * params[:, 1]
    phase = rng.uniform(0, 2 * np.pi, series)
    out = np.empty((rounds, series), dtype=np.int32)
    for r in range(rounds):  # one vector per second: bounded memory, no per-sample loop
        drift = params[:, 2] * np.sin(2 * np.pi * r / DRIFT_PERIOD_S + phase)
        value = base + drift + rng.normal(0, 1, series) * params[:, 3]
        out[r] = np.rint(np.maximum(value, 0) * 100)
    return out
