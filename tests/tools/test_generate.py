"""Generator properties: shapes, ranges, decimals, cycles, spikes, dropouts, determinism."""

import numpy as np
import pytest

from sensorium.tools.generate import KINDS, UNIT, Generator, fleet

START_MS = 1_700_006_400_000  # 2023-11-15 00:00 UTC, a Wednesday
MIN_MS = 60_000


def kind_rows(f, kind):
    return np.flatnonzero(f.kinds == KINDS.index(kind))


@pytest.fixture(scope="module")
def week():
    """50 sensors, 7 days at 1 min, without spikes or dropouts."""
    f = fleet(50)
    g = Generator(f, START_MS, MIN_MS, seed=1, spikes_per_day=0, dropouts_per_day=0)
    return f, g.chunk(7 * 1440)


def test_fleet_keys_and_labels():
    f = fleet(1000)
    assert len(set(f.keys)) == 1000
    assert f.keys[:6] == ["temp_0001", "hum_0001", "pres_0001", "vib_0001", "energy_0001",
                          "temp_0002"]
    for key, kind, labels in zip(f.keys, f.kinds, f.labels, strict=True):
        assert labels["sensor_id"] == key
        assert labels["type"] == KINDS[kind] and labels["unit"] == UNIT[KINDS[kind]]
        assert {"building", "zone", "location", "criticality"} <= set(labels)
    assert {lab["building"] for lab in f.labels} == {f"Factory_{i}" for i in range(1, 6)}
    assert fleet(3, "site2:").keys == ["site2:temp_0001", "site2:hum_0001", "site2:pres_0001"]
    with pytest.raises(ValueError):
        fleet(0)


def test_shapes_and_timestamps():
    f = fleet(7)
    g = Generator(f, START_MS, 15_000, seed=0)
    a, b = g.chunk(100), g.chunk(30)
    assert a.values.shape == (7, 100) and b.values.shape == (7, 30)
    ts = np.concatenate([a.ts_ms, b.ts_ms])
    assert ts[0] == START_MS and (np.diff(ts) == 15_000).all()
    who, t, v = a.rows()
    assert len(who) == len(t) == len(v) == a.samples
    assert (np.diff(who) >= 0).all()  # sensor-major
    for s in range(7):  # each sensor's samples in time order, NaN rows left out
        mine = who == s
        assert (np.diff(t[mine]) > 0).all()
        np.testing.assert_array_equal(v[mine], a.values[s][~np.isnan(a.values[s])])
    ids = np.arange(100, 107)
    assert (a.rows(ids)[0] == ids[who]).all()


def test_values_have_two_decimals(week):
    _, chunk = week
    v = chunk.values
    assert np.abs(v * 100 - np.rint(v * 100)).max() < 1e-6
    texts = [repr(x) for x in v.ravel()[::97].tolist()]
    assert all(len(t.split(".")[1]) <= 2 for t in texts if "." in t)


def test_value_ranges(week):
    f, chunk = week
    v = chunk.values
    assert not np.isnan(v).any()
    temp, hum = v[kind_rows(f, "temperature")], v[kind_rows(f, "humidity")]
    pres, vib = v[kind_rows(f, "pressure")], v[kind_rows(f, "vibration")]
    energy = v[kind_rows(f, "energy")]
    assert 10 < temp.min() and temp.max() < 35
    assert 0 <= hum.min() and hum.max() <= 100 and hum.std() > 2
    assert 970 < pres.min() and pres.max() < 1050 and pres.std() > 1
    assert vib.min() >= 0
    assert (np.diff(energy, axis=1) >= 0).all()  # a meter counter never goes back
    assert (energy[:, -1] - energy[:, 0] > 0).all()


def test_daily_cycles_and_working_hours(week):
    f, chunk = week
    hour = (chunk.ts_ms // 3_600_000) % 24
    temp = chunk.values[kind_rows(f, "temperature")]
    hum = chunk.values[kind_rows(f, "humidity")]
    afternoon, night = (hour >= 14) & (hour < 16), (hour >= 3) & (hour < 5)
    assert temp[:, afternoon].mean() > temp[:, night].mean() + 1.5
    assert hum[:, night].mean() > hum[:, afternoon].mean() + 5
    vib = chunk.values[kind_rows(f, "vibration")]
    day = (chunk.ts_ms // 86_400_000 + 3) % 7  # 0 = Monday
    shift = (day < 5) & (hour >= 8) & (hour < 20)
    weekend = day >= 5
    assert vib[:, shift].mean() > 10 * vib[:, weekend].mean()


def test_drift_moves_the_level_slowly(week):
    f, chunk = week
    temp = chunk.values[kind_rows(f, "temperature")]
    daily = temp.reshape(len(temp), 7, 1440).mean(axis=2)  # the cycle averages out
    assert np.abs(np.diff(daily, axis=1)).max() > 0.05  # it moves …
    assert np.abs(np.diff(daily, axis=1)).max() < 3  # … but not in jumps


def test_spikes():
    f = fleet(20)
    plain = Generator(f, START_MS, MIN_MS, seed=4, spikes_per_day=0, dropouts_per_day=0)
    spiky = Generator(f, START_MS, MIN_MS, seed=4, spikes_per_day=50, dropouts_per_day=0)
    plain_v, spiky_v = plain.chunk(1440).values, spiky.chunk(1440).values
    jumps = np.abs(np.diff(spiky_v, axis=1))
    temp = kind_rows(f, "temperature")
    assert (jumps[temp] > 2).sum() >= 20  # glitches of several degrees
    assert (np.abs(np.diff(plain_v, axis=1))[temp] > 2).sum() == 0


def test_dropouts_are_missing_stretches():
    f = fleet(40)
    g = Generator(f, START_MS, MIN_MS, seed=5, dropouts_per_day=2)
    chunks = [g.chunk(1440) for _ in range(5)]
    missing = np.concatenate([c.values for c in chunks], axis=1)
    missing = np.isnan(missing)
    assert 0.001 < missing.mean() < 0.2
    # stretches: at least one run of 10+ consecutive missing samples, and many runs in all
    padded = np.pad(missing, ((0, 0), (1, 1))).astype(np.int8)
    edges = np.diff(padded, axis=1)
    starts, ends = np.nonzero(edges == 1), np.nonzero(edges == -1)
    lengths = ends[1] - starts[1]
    assert len(lengths) > 100 and lengths.max() >= 10
    assert sum(c.samples for c in chunks) == (~missing).sum()
    none = Generator(f, START_MS, MIN_MS, seed=5, dropouts_per_day=0).chunk(1440)
    assert not np.isnan(none.values).any()


def test_a_dropout_runs_on_into_the_next_chunk():
    f = fleet(3)
    g = Generator(f, START_MS, MIN_MS, seed=6, dropouts_per_day=0)
    g._dropout_end[:] = [5, 0, 2]  # as left by a dropout started in an earlier chunk
    m = np.isnan(g.chunk(10).values)
    assert m[0].tolist() == [True] * 5 + [False] * 5
    assert not m[1].any() and m[2].tolist() == [True] * 2 + [False] * 8


def test_deterministic_with_a_seed():
    f = fleet(25)

    def run(seed):
        g = Generator(f, START_MS, MIN_MS, seed=seed)
        return np.concatenate([g.chunk(500).values, g.chunk(300).values], axis=1)

    np.testing.assert_array_equal(run(9), run(9))
    assert not np.array_equal(run(9), run(10), equal_nan=True)


@pytest.mark.parametrize("kwargs", [{"interval_ms": 0}, {"spikes_per_day": -1},
                                    {"dropouts_per_day": -0.5}])
def test_bad_arguments(kwargs):
    args = {"interval_ms": MIN_MS, **kwargs}
    with pytest.raises(ValueError):
        Generator(fleet(2), START_MS, args.pop("interval_ms"), **args)
    with pytest.raises(ValueError):
        Generator(fleet(2), START_MS, MIN_MS).chunk(0)
