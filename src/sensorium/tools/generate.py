"""Synthetic sensor data (seed 003's generator), vectorised: pure numbers, no I/O.

A :class:`Fleet` is the sensors: key, kind and labels (seed 000's hierarchy: building, zone,
location, type, unit, criticality). A :class:`Generator` walks time in chunks and returns a
``sensors × steps`` matrix per chunk, every sample of every sensor computed at once with
numpy; state that spans chunks (drift, energy counters, dropouts in progress) is carried.

Each kind has its own shape:

=============  ======  ==================================================================
kind           unit    shape
=============  ======  ==================================================================
temperature    C       daily cycle peaking mid-afternoon, slow mean-reverting drift
humidity       %       daily cycle opposite to temperature, drift, clipped to 0..100
pressure       hPa     weather systems (days-long swings, shared per building), 12 h tide
vibration      mm/s    machines run 06:00-22:00 on weekdays; multiplicative noise, bursts
energy         kWh     meter counter: increments follow the working-hours load
=============  ======  ==================================================================

On top: Gaussian noise, spikes (single-sample glitches, per sensor-day rate) and dropouts
(missing stretches, median 10 minutes, a long tail of hours). Values are rounded to the
2 decimals devices send. Dropped samples are NaN in the matrix; :meth:`Chunk.rows` leaves
them out.

Determinism: the same fleet, start, interval, seed, rates and chunk sizes give the same
numbers (one ``numpy.random.Generator`` drawn in a fixed order).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

DAY_S = 86_400
KINDS = ("temperature", "humidity", "pressure", "vibration", "energy")
PREFIX = {"temperature": "temp", "humidity": "hum", "pressure": "pres", "vibration": "vib",
          "energy": "energy"}
UNIT = {"temperature": "C", "humidity": "%", "pressure": "hPa", "vibration": "mm/s",
        "energy": "kWh"}
DECIMALS = 2  # what the devices send
# Sensors per zone and zones per building: 1,000 sensors make 5 buildings of 8 zones.
ZONE_SENSORS = 25
BUILDING_ZONES = 8
LOCATIONS = ("line_1", "line_2", "line_3", "storage", "office", "cold_room")
CRITICALITY = ("high", "medium", "low", "low")
# Dropout lengths are log-normal: median 10 min, sigma 1.3 (p95 ~1.4 h, p99 ~3.4 h).
DROPOUT_MEDIAN_S = 600.0
DROPOUT_SIGMA = 1.3
# Working hours (UTC) of the machines behind vibration and energy sensors.
SHIFT_START_H, SHIFT_END_H = 6.0, 22.0


@dataclass(frozen=True, slots=True)
class Fleet:
    """The sensors, in id order: ``keys[i]`` is of kind ``KINDS[kinds[i]]``."""

    keys: list[str]
    kinds: np.ndarray  # int8 index into KINDS
    labels: list[dict[str, str]]

    def __len__(self) -> int:
        return len(self.keys)


def fleet(sensors: int, prefix: str = "") -> Fleet:
    """``sensors`` sensors, kinds in turn (temperature, humidity, pressure, vibration,
    energy), numbered per kind: ``temp_0001``, ``hum_0001``, … ``prefix`` goes before each key
    (e.g. ``"site2:"``) so that several generated fleets can share a database."""
    if sensors <= 0:
        raise ValueError("sensors must be positive")
    i = np.arange(sensors)
    kinds = (i % len(KINDS)).astype(np.int8)
    width = max(4, len(str(sensors // len(KINDS) + 1)))
    keys, labels = [], []
    for n in range(sensors):
        kind = KINDS[kinds[n]]
        sensor_id = f"{prefix}{PREFIX[kind]}_{n // len(KINDS) + 1:0{width}d}"
        zone = n // ZONE_SENSORS
        building = zone // BUILDING_ZONES
        keys.append(sensor_id)
        labels.append({
            "sensor_id": sensor_id, "type": kind, "unit": UNIT[kind],
            "building": f"Factory_{building + 1}", "zone": chr(ord("A") + zone % BUILDING_ZONES),
            "location": LOCATIONS[(n // len(KINDS)) % len(LOCATIONS)],
            "criticality": CRITICALITY[n % len(CRITICALITY)],
        })
    return Fleet(keys, kinds, labels)


@dataclass(frozen=True, slots=True)
class Chunk:
    """``values[s, j]`` is sensor ``s`` at ``ts_ms[j]``; NaN where the sensor dropped out."""

    ts_ms: np.ndarray  # int64, (steps,)
    values: np.ndarray  # float64, (sensors, steps)

    def rows(self, sensors: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Present samples as columns, sensor-major (each sensor's samples in time order):
        (sensor index, or ``sensors[index]`` when given; ts_ms; value)."""
        present = ~np.isnan(self.values)
        counts = present.sum(axis=1)
        ids = np.arange(self.values.shape[0]) if sensors is None else np.asarray(sensors)
        who = np.repeat(ids, counts)
        ts = np.broadcast_to(self.ts_ms, self.values.shape)[present]
        return who, ts, self.values[present]

    @property
    def samples(self) -> int:
        return int(np.count_nonzero(~np.isnan(self.values)))


class Generator:
    """Walks ``fleet`` through time from ``start_ms``, one sample per ``interval_ms``.

    Args:
        fleet: the sensors.
        start_ms: timestamp of the first step (epoch ms).
        interval_ms: time between two samples of a sensor.
        seed: random seed (per-sensor parameters and every draw).
        spikes_per_day: expected spikes per sensor and day.
        dropouts_per_day: expected dropouts (missing stretches) per sensor and day.

    Not thread-safe: each call to :meth:`chunk` advances the state.
    """

    def __init__(self, fleet: Fleet, start_ms: int, interval_ms: int, seed: int = 0, *,
                 spikes_per_day: float = 2.0, dropouts_per_day: float = 0.5) -> None:
        if interval_ms <= 0:
            raise ValueError("interval must be positive")
        if spikes_per_day < 0 or dropouts_per_day < 0:
            raise ValueError("spike and dropout rates must be >= 0")
        self.fleet = fleet
        self.start_ms = int(start_ms)
        self.interval_ms = int(interval_ms)
        self.step = 0  # next step to generate
        self._rng = np.random.default_rng(seed)
        steps_per_day = DAY_S * 1000 / self.interval_ms
        self._p_spike = min(spikes_per_day / steps_per_day, 1.0)
        self._p_dropout = min(dropouts_per_day / steps_per_day, 1.0)
        self._groups = [(k, _as_slice(np.flatnonzero(fleet.kinds == k)))
                        for k in range(len(KINDS)) if (fleet.kinds == k).any()]
        self._params()

    def _params(self) -> None:
        """Per-sensor parameters: level, cycle amplitude, noise, drift, building weather."""
        n, rng = len(self.fleet), self._rng
        kind = self.fleet.kinds
        self._base = np.choose(kind, [rng.uniform(19, 24, n), rng.uniform(40, 60, n),
                                      rng.uniform(1008, 1018, n), rng.uniform(2, 6, n),
                                      rng.uniform(5, 60, n)])  # energy: load in kW
        self._amp = np.choose(kind, [rng.uniform(1.5, 4, n), rng.uniform(5, 10, n),
                                     rng.uniform(0.4, 0.9, n), np.zeros(n), np.zeros(n)])
        self._noise = np.choose(kind, [rng.uniform(0.03, 0.12, n), rng.uniform(0.2, 0.6, n),
                                       rng.uniform(0.03, 0.08, n), rng.uniform(0.08, 0.2, n),
                                       rng.uniform(0.02, 0.06, n)])
        self._drift_sd = np.choose(kind, [rng.uniform(0.3, 1.0, n), rng.uniform(2, 5, n),
                                          rng.uniform(0.5, 1.5, n), rng.uniform(0.05, 0.2, n),
                                          rng.uniform(0.02, 0.08, n)])
        self._spike = np.choose(kind, [rng.uniform(5, 12, n), rng.uniform(15, 30, n),
                                       rng.uniform(5, 15, n), rng.uniform(3, 8, n),
                                       rng.uniform(2, 5, n)])
        self._drift_tau_s = rng.uniform(1, 4, n) * DAY_S  # drift forgets over days
        self._drift = rng.standard_normal(n) * self._drift_sd  # stationary start
        buildings = 1 + n // (ZONE_SENSORS * BUILDING_ZONES)
        weather_phase = rng.uniform(0, 2 * np.pi, (buildings, 2))
        b = np.arange(n) // (ZONE_SENSORS * BUILDING_ZONES)
        self._weather_phase = weather_phase[b]  # (n, 2): sensors of a building agree
        self._weather_amp = rng.uniform(4, 9, n)
        self._counter = rng.uniform(1_000, 100_000, n)  # energy meters' starting reading
        self._dropout_end = np.full(n, -1, np.int64)  # step where a running dropout ends

    def chunk(self, steps: int) -> Chunk:
        """The next ``steps`` steps of every sensor."""
        if steps <= 0:
            raise ValueError("steps must be positive")
        n, rng = len(self.fleet), self._rng
        step = self.step + np.arange(steps, dtype=np.int64)
        ts_ms = self.start_ms + step * self.interval_ms
        t_s = ts_ms / 1000.0
        hour = (t_s % DAY_S) / 3600.0
        day = np.floor_divide(ts_ms, DAY_S * 1000)
        weekday = (day + 3) % 7 < 5  # 1970-01-01 was a Thursday
        working = weekday & (hour >= SHIFT_START_H) & (hour < SHIFT_END_H)

        values = np.empty((n, steps))
        # float32 draws: half the cost, and the noise needs no more precision than that
        noise = rng.standard_normal((n, steps), dtype=np.float32)
        drift = self._ou_drift(rng.standard_normal((n, steps), dtype=np.float32))
        for k, idx in self._groups:
            values[idx] = self._kind(KINDS[k], idx, t_s, hour, working, noise[idx],
                                     drift[idx])
        self._add_spikes(values)
        values = np.round(values, DECIMALS)
        values[self._dropouts(step)] = np.nan
        self.step += steps
        return Chunk(ts_ms, values)

    def chunks(self, total_steps: int, steps_per_chunk: int) -> Iterator[Chunk]:
        """``total_steps`` steps as chunks of ``steps_per_chunk`` (the last may be shorter)."""
        end = self.step + total_steps
        while self.step < end:
            yield self.chunk(min(steps_per_chunk, end - self.step))

    def _kind(self, kind: str, idx: np.ndarray | slice, t_s: np.ndarray, hour: np.ndarray,
              working: np.ndarray, noise: np.ndarray, drift: np.ndarray) -> np.ndarray:
        base, amp = self._base[idx, None], self._amp[idx, None]
        sd = self._noise[idx, None]
        if kind == "temperature":  # warmest at 15:00
            cycle = np.cos(2 * np.pi * (hour - 15.0) / 24.0)
            return base + amp * cycle + drift + sd * noise
        if kind == "humidity":  # most humid at 05:00, when it is coolest
            cycle = np.cos(2 * np.pi * (hour - 5.0) / 24.0)
            return np.clip(base + amp * cycle + drift + sd * noise, 0.0, 100.0)
        if kind == "pressure":  # weather systems of ~4 and ~7 days, plus the 12 h tide
            phase = self._weather_phase[idx]
            weather = (np.sin(2 * np.pi * t_s / (4.3 * DAY_S) + phase[:, :1])
                       + 0.6 * np.sin(2 * np.pi * t_s / (6.9 * DAY_S) + phase[:, 1:]))
            tide = np.cos(4 * np.pi * (hour - 10.0) / 24.0)
            return (base + self._weather_amp[idx, None] * weather + amp * tide + drift
                    + sd * noise)
        if kind == "vibration":  # machines on or idle; multiplicative noise, never negative
            level = np.where(working, base, 0.05 * base)
            return np.maximum(level * np.exp(sd * noise) + 0.1 * drift, 0.0)
        # energy: a meter counter; the load (kW) follows the working hours
        load = base * np.where(working, 1.0, 0.25) * (1.0 + sd * noise) + drift
        kwh = np.maximum(load, 0.0) * (self.interval_ms / 3_600_000)
        counter = self._counter[idx, None] + np.cumsum(kwh, axis=1)
        self._counter[idx] = counter[:, -1]
        return counter

    def _ou_drift(self, eps: np.ndarray) -> np.ndarray:
        """Mean-reverting drift x[t] = a·x[t-1] + e[t] per sensor (Ornstein-Uhlenbeck),
        as the closed form a^t·(x0 + Σ a^-k·e[k]) so that it is one cumsum per chunk."""
        n, steps = eps.shape
        a = np.exp(-self.interval_ms / 1000.0 / self._drift_tau_s)  # (n,)
        scale = self._drift_sd * np.sqrt(1 - a * a)  # keeps the stationary sd at drift_sd
        out = np.empty(eps.shape)
        # a^-k must stay well inside float64: split long chunks (a^-k <= e^20).
        span = max(1, int(20 / max(float((1 - a).max()), 1e-12)))
        x0 = self._drift
        for lo in range(0, steps, span):
            hi = min(lo + span, steps)
            k = np.arange(1, hi - lo + 1)
            log_a = np.log(a)[:, None]
            grow = np.exp(-log_a * k)  # a^-k
            acc = np.cumsum(eps[:, lo:hi] * scale[:, None] * grow, axis=1)
            out[:, lo:hi] = (x0[:, None] + acc) / grow
            x0 = out[:, hi - 1]
        self._drift = x0.copy()
        return out

    def _add_spikes(self, values: np.ndarray) -> None:
        """Single-sample glitches: a sensor reads far off for one sample."""
        if self._p_spike == 0:
            return
        s, j = _bernoulli_cells(self._rng, values.shape, self._p_spike)
        if not len(s):
            return
        sign = np.where(self._rng.random(len(s)) < 0.5, -1.0, 1.0)
        kinds = self.fleet.kinds[s]
        positive = (kinds == KINDS.index("vibration")) | (kinds == KINDS.index("energy"))
        sign[positive] = 1.0  # a vibration burst; an energy meter's transient over-read
        values[s, j] += sign * self._spike[s] * self._rng.uniform(0.5, 1.5, len(s))

    def _dropouts(self, step: np.ndarray) -> np.ndarray:
        """Missing stretches: boolean (sensors, steps); a dropout may run into later chunks."""
        n, steps = len(self.fleet), len(step)
        if self._p_dropout == 0:
            missing = step[None, :] < self._dropout_end[:, None]
            return missing
        s, j = _bernoulli_cells(self._rng, (n, steps), self._p_dropout)
        length_s = np.exp(self._rng.normal(np.log(DROPOUT_MEDIAN_S), DROPOUT_SIGMA, len(s)))
        length = np.maximum(1, np.rint(length_s * 1000 / self.interval_ms)).astype(np.int64)
        end = np.full((n, steps), -1, np.int64)
        end[s, j] = step[j] + length
        end[:, 0] = np.maximum(end[:, 0], self._dropout_end)
        np.maximum.accumulate(end, axis=1, out=end)
        self._dropout_end = end[:, -1].copy()
        return step[None, :] < end


def _bernoulli_cells(rng: np.random.Generator, shape: tuple[int, int], p: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of the cells hit when each cell is hit with probability ``p``: the
    number of hits drawn once, then their places (costs per hit, not per cell). Two hits
    on one cell count once, which at rates this low changes nothing."""
    total = shape[0] * shape[1]
    count = rng.binomial(total, p) if total else 0
    flat = np.unique(rng.integers(0, total, count)) if count else np.empty(0, np.int64)
    return flat // shape[1], flat % shape[1]


def _as_slice(idx: np.ndarray) -> np.ndarray | slice:
    """Evenly spaced rows as a slice, so that a kind's block is a view, not a copy."""
    if len(idx) > 1 and (np.diff(idx) == idx[1] - idx[0]).all():
        return slice(int(idx[0]), int(idx[-1]) + 1, int(idx[1] - idx[0]))
    if len(idx) == 1:
        return slice(int(idx[0]), int(idx[0]) + 1)
    return idx
