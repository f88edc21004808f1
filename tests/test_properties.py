"""Properties of the public API (hypothesis): duplicate policies and replay = pre-crash state.

* ``test_writes_follow_the_policy_model``: random batches through ``madd`` columns, ``madd``
  tuples and ``add`` (with ON_DUPLICATE) against a dict model of RedisTimeSeries' write rules
  (reference §6): per-row outcomes (written, BLOCKed duplicate, out of retention, unknown key)
  and the samples every query then shows.
* ``test_replay_equals_pre_crash_state``: random operations (writes, late writes, range
  deletes, rules and chained tiers, deleterule, alter, delete_series, checkpoints), on one
  shard and on two; at random
  points the data directory is copied while the database is open — what a ``kill -9`` leaves
  on disk — and the copy, opened, answers every query exactly as the live database did, and
  keeps doing so under the same further writes.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sensorium
from sensorium import DuplicatePolicy, DuplicateSample, InvalidSampleError, OutOfRetention
from sensorium.errors import RuleError, SensoriumError

POLICIES = ("block", "first", "last", "min", "max", "sum")
OK, NOT_FOUND, OUT_OF_RETENTION, BLOCKED = 0, 1, 4, 5  # head_append.Status values
values = st.integers(-12, 12).map(lambda i: i / 4)  # exact in binary: SUM stays exact


# -- the write model ----------------------------------------------------------------------------
@dataclass
class SeriesModel:
    policy: str | None  # None: the database default applies
    retention_ms: int
    samples: dict[int, float] = field(default_factory=dict)

    @property
    def max_ts(self) -> int | None:
        return max(self.samples, default=None)

    def visible(self) -> list[tuple[int, float]]:
        mx = self.max_ts
        return sorted((t, v) for t, v in self.samples.items()
                      if self.retention_ms <= 0 or t >= mx - self.retention_ms)


@dataclass
class Model:
    default_policy: str
    series: dict[str, SeriesModel] = field(default_factory=dict)

    def batch(self, rows: list[tuple[str, int, float]], override: str | None = None
              ) -> list[int]:
        """One append call, as RedisTimeSeries adds rows: one by one in input order, each
        judged for retention against its series' newest sample so far (stored or earlier in
        the batch, refused rows included, as the engine counts them)."""
        newest: dict[str, int] = {}
        out = []
        for key, ts, v in rows:
            s = self.series.get(key)
            if s is not None:
                mx = s.max_ts
                newest[key] = max(ts, newest.get(key, ts), -1 if mx is None else mx)
            if s is None:
                out.append(NOT_FOUND)
            elif s.retention_ms > 0 and ts < newest[key] - s.retention_ms:
                out.append(OUT_OF_RETENTION)
            elif ts not in s.samples:
                s.samples[ts] = v
                out.append(OK)
            else:
                policy = override or s.policy or self.default_policy
                old = s.samples[ts]
                if policy == "block":
                    out.append(BLOCKED)
                    continue
                s.samples[ts] = {"first": old, "last": v, "min": min(old, v),
                                 "max": max(old, v), "sum": old + v}[policy]
                out.append(OK)
        return out


def same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


def check_series(db: sensorium.Database, model: Model) -> None:
    assert db.keys() == sorted(model.series)
    for key, s in model.series.items():
        want = s.visible()
        got = db.range(key, "-", "+")
        assert [t for t, _ in got] == [t for t, _ in want], key
        assert all(same(a, b) for (_, a), (_, b) in zip(got, want, strict=True)), (key, got, want)
        info = db.info(key)
        assert info["total_samples"] == len(want)
        assert (info["first_timestamp"], info["last_timestamp"]) == (
            (want[0][0], want[-1][0]) if want else (0, 0))
        assert db.get(key) == (want[-1] if want else None)


keys = st.sampled_from(["a", "b", "c", "new"])
row = st.tuples(keys, st.integers(0, 60), values)
write_ops = st.one_of(
    st.tuples(st.just("add"), keys, st.integers(0, 60), values,
              st.sampled_from([None, *POLICIES])),
    st.tuples(st.just("columns"), st.lists(row, min_size=1, max_size=10), st.booleans()),
    st.tuples(st.just("tuples"), st.lists(row, min_size=1, max_size=10)),
    st.tuples(st.just("reopen")),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    default=st.sampled_from(POLICIES),
    specs=st.lists(st.tuples(st.sampled_from([None, *POLICIES]), st.sampled_from([0, 5, 20])),
                   min_size=3, max_size=3),
    ops=st.lists(write_ops, max_size=20),
)
def test_writes_follow_the_policy_model(default, specs, ops):
    d = tempfile.mkdtemp(prefix="sensorium-prop-")

    def opened() -> sensorium.Database:
        return sensorium.open(d, background=False, fsync="none",
                              duplicate_policy=DuplicatePolicy.parse(default))

    db = opened()
    model = Model(default)
    try:
        for key, (policy, retention) in zip("abc", specs, strict=True):
            db.create(key, retention_msecs=retention, duplicate_policy=policy)
            model.series[key] = SeriesModel(policy, retention)
        for op in ops:
            if op[0] == "add":
                _, key, ts, v, on_dup = op
                if key not in model.series:  # add creates it; ON_DUPLICATE is then ignored
                    model.series[key] = SeriesModel(None, 0)
                    on_dup = None
                want = model.batch([(key, ts, v)], on_dup)[0]
                expected_error = {OK: None, BLOCKED: DuplicateSample,
                                  OUT_OF_RETENTION: OutOfRetention}[want]
                try:
                    assert db.add(key, ts, v, on_duplicate=on_dup) == ts
                except InvalidSampleError as exc:
                    assert type(exc) is expected_error, (op, exc)
                else:
                    assert expected_error is None, op
            elif op[0] == "columns":
                _, rows, create = op
                if create:
                    for key, _, _ in rows:
                        model.series.setdefault(key, SeriesModel(None, 0))
                want = model.batch(rows)
                res = db.madd([k for k, _, _ in rows], [t for _, t, _ in rows],
                              [v for _, _, v in rows], create=create)
                assert res.status.tolist() == want, rows
                assert res.ts.tolist() == [t for _, t, _ in rows]
            elif op[0] == "tuples":
                rows = op[1]
                want = model.batch(rows)
                got = db.madd(rows)
                kinds = {OK: int, NOT_FOUND: InvalidSampleError, BLOCKED: DuplicateSample,
                         OUT_OF_RETENTION: OutOfRetention}
                assert [type(g) for g in got] == [kinds[w] for w in want], (rows, got)
                assert [g for g in got if isinstance(g, int)] == [
                    t for (_, t, _), w in zip(rows, want, strict=True) if w == OK]
            else:
                db.close()
                db = opened()
            check_series(db, model)
        db.close()
        db = opened()
        check_series(db, model)
    finally:
        try:
            db.close()
        finally:
            shutil.rmtree(d, ignore_errors=True)


# -- replay = pre-crash state -----------------------------------------------------------------
# Keys carry {hash tags} so that each source meets its destinations in one shard when the
# database has several (rules are refused across shards).
RAW = ("{a}", "{b}", "{c}")
RULES = (
    ("{a}", "{a}:avg", "avg", 10), ("{a}:avg", "{a}:sum", "sum", 30),
    ("{b}", "{b}:max", "max", 10), ("{b}", "{b}:twa", "twa", 5), ("{b}", "{b}:var", "var.s", 10),
    ("{c}", "{c}:last", "last", 7),
)
AGG_QUERIES = ("avg", "sum", "max", "count", "first", "last", "std.s", "twa")


def _plain(x: object) -> object:
    """Replies with NaN made comparable."""
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


def dump(db: sensorium.Database, *, storage: bool = True) -> dict:
    """Every answer a client can get (``storage``: with the on-disk byte count, which a block
    written after the crash changes by a byte or two: each block has a random uid)."""
    out: dict = {"keys": db.keys(), "index": db.queryindex(["db=x", "kind!=tier"]),
                 "mrange": db.mrange("-", "+", ["kind=raw"], with_labels=True),
                 "mrange_avg": db.mrange("-", "+", ["db=x"], aggregation_type="avg",
                                         bucket_size_msec=20, latest=True),
                 "mget": db.mget(["db=x"], with_labels=True, latest=True)}
    for key in db.keys():
        info = db.info(key)
        if not storage:
            del info["disk_bytes"]
        out[key] = {
            "info": info, "range": db.range(key, "-", "+"),
            "latest": db.range(key, "-", "+", latest=True),
            "get": db.get(key), "get_latest": db.get(key, latest=True),
            **{f"agg_{a}": db.range(key, "-", "+", aggregation_type=a, bucket_size_msec=20)
               for a in AGG_QUERIES},
        }
    return _plain(out)


class Replayer:
    def __init__(self, shards: int) -> None:
        self.root = tempfile.mkdtemp(prefix="sensorium-replay-")
        self.path = os.path.join(self.root, "live")
        self.shards = shards
        self.db = self.open(self.path)
        self.copies = 0
        for key in RAW:
            self.db.create(key, labels={"db": "x", "kind": "raw", "key": key},
                           duplicate_policy="last" if key != "{c}" else None)
        for _, dest, _, _ in RULES:
            self.db.create(dest, labels={"db": "x", "kind": "tier"})

    def open(self, path: str) -> sensorium.Database:
        return sensorium.open(path, background=False, fsync="none", shards=self.shards)

    def crash_copy(self) -> str:
        """The directory as a kill -9 would leave it: a copy taken while the db is open."""
        self.copies += 1
        copy = os.path.join(self.root, f"crash-{self.copies}")
        shutil.copytree(self.path, copy)
        return copy

    def crash_and_recover(self) -> None:
        before = dump(self.db)
        copy = self.crash_copy()
        recovered = self.open(copy)
        assert dump(recovered) == before
        self.db.close()
        self.db, self.path = recovered, copy

    def apply(self, op: tuple) -> None:
        db = self.db
        kind = op[0]
        try:
            if kind == "add":
                db.add(op[1], op[2], op[3])
            elif kind == "madd":
                rows = op[1]
                db.madd([k for k, _, _ in rows], [t for _, t, _ in rows],
                        [v for _, _, v in rows])
            elif kind == "delete":
                db.delete(op[1], op[2], op[2] + op[3])
            elif kind == "createrule":
                src, dst, agg, bucket = RULES[op[1]]
                db.createrule(src, dst, agg, bucket)
            elif kind == "deleterule":
                src, dst, _, _ = RULES[op[1]]
                db.deleterule(src, dst)
            elif kind == "alter":
                db.alter(op[1], labels={"db": "x", "kind": "raw", "v": str(op[2])},
                         retention_msecs=op[3])
            elif kind == "delete_series":
                db.delete_series(op[1])
            elif kind == "checkpoint":
                db.checkpoint()
            elif kind == "crash":
                self.crash_and_recover()
        except (RuleError, DuplicateSample, OutOfRetention, sensorium.SeriesNotFound,
                sensorium.InvalidArgument):
            pass  # a refused operation must leave no trace either

    def close(self) -> None:
        try:
            self.db.close()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


raw_keys = st.sampled_from(RAW)
replay_ops = st.one_of(
    st.tuples(st.just("add"), raw_keys, st.integers(0, 120), values),
    st.tuples(st.just("madd"), st.lists(st.tuples(st.sampled_from([*RAW, "d"]),
                                                  st.integers(0, 120), values),
                                        min_size=1, max_size=12)),
    st.tuples(st.just("delete"), raw_keys, st.integers(0, 120), st.integers(0, 30)),
    st.tuples(st.just("createrule"), st.integers(0, len(RULES) - 1)),
    st.tuples(st.just("deleterule"), st.integers(0, len(RULES) - 1)),
    st.tuples(st.just("alter"), raw_keys, st.integers(0, 3), st.sampled_from([0, 50])),
    st.tuples(st.just("delete_series"), st.sampled_from(["d", "{c}:last"])),
    st.tuples(st.just("checkpoint")),
    st.tuples(st.just("crash")),
)


def check_replay(shards: int, ops: list[tuple], tail: list[tuple]) -> None:
    r = Replayer(shards)
    try:
        for op in ops:
            r.apply(op)
        live = r.db
        before = dump(live)
        recovered = r.open(r.crash_copy())
        try:
            assert dump(recovered) == before
            # The recovered database is the same database: the same writes keep it equal.
            for op in [o for o in tail if o[0] != "crash"]:
                r.apply(op)
                r.db = recovered
                r.apply(op)
                r.db = live
            assert dump(recovered, storage=False) == dump(live, storage=False)
        finally:
            recovered.close()
    finally:
        r.close()


REPLAY_SETTINGS = settings(max_examples=20, deadline=None,
                           suppress_health_check=[HealthCheck.too_slow,
                                                  HealthCheck.data_too_large])


@pytest.mark.parametrize("shards", [1, 2])
@REPLAY_SETTINGS
@given(ops=st.lists(replay_ops, max_size=20), tail=st.lists(replay_ops, max_size=6))
def test_replay_equals_pre_crash_state(shards, ops, tail):
    check_replay(shards, ops, tail)


def test_late_write_on_two_shards(tmp_path):
    """Was: IndexError in Table.read, asked for an empty sid list by the other shard."""
    with sensorium.open(str(tmp_path / "db"), background=False, shards=2) as db:
        db.madd(["{a}", "d"], [0, 0], [0.0, 0.0])  # "{a}" lives in shard 1, "d" in shard 0
        db.add("{a}", 0, 1.0, on_duplicate="last")  # the duplicate lookup reads both shards
        assert db.range("{a}", "-", "+") == [(0, 1.0)]


def test_replay_keeps_a_late_write_into_a_closed_tier_bucket(tmp_path):
    """A hand-written case of the property: the recovered tier holds the revised bucket."""
    live = sensorium.open(str(tmp_path / "live"), background=False)
    try:
        live.create("s", duplicate_policy="last")
        live.create("s:sum")
        live.createrule("s", "s:sum", "sum", 10)
        live.madd(["s"] * 4, [1, 12, 25, 31], [1.0, 2.0, 3.0, 4.0])
        live.checkpoint()
        live.add("s", 5, 10.0)  # late, into the closed bucket [0, 10)
        live.add("s", 12, 7.0)  # overwrite in the closed bucket [10, 20)
        shutil.copytree(str(tmp_path / "live"), str(tmp_path / "copy"))
        want = [(0, 11.0), (10, 7.0), (20, 3.0)]
        assert live.range("s:sum", "-", "+") == want
        with sensorium.open(str(tmp_path / "copy"), background=False) as copy:
            assert copy.range("s:sum", "-", "+") == want
            assert copy.range("s:sum", "-", "+", latest=True) == [*want, (30, 4.0)]
    finally:
        live.close()


@pytest.mark.parametrize("fsync", ["batch", "periodic", "none"])
def test_every_fsync_policy_replays_acknowledged_writes(tmp_path, fsync):
    db = sensorium.open(str(tmp_path / "live"), background=False, fsync=fsync)
    try:
        db.madd(["x", "y"] * 50, list(range(100)), [float(i) for i in range(100)])
        shutil.copytree(str(tmp_path / "live"), str(tmp_path / "copy"))
        with sensorium.open(str(tmp_path / "copy"), background=False) as copy:
            assert dump(copy) == dump(db)
    finally:
        db.close()


def test_refused_operations_are_not_replayed(tmp_path):
    db = sensorium.open(str(tmp_path / "live"), background=False)
    try:
        db.create("s")
        db.add("s", 10, 1.0)
        with pytest.raises(DuplicateSample):
            db.add("s", 10, 2.0)
        with pytest.raises(SensoriumError):
            db.createrule("s", "s", "avg", 10)
        res = db.madd(["s", "s", "s"], [10, 11, 11], [3.0, 4.0, 5.0])
        assert res.status.tolist() == [BLOCKED, OK, BLOCKED]
        shutil.copytree(str(tmp_path / "live"), str(tmp_path / "copy"))
        with sensorium.open(str(tmp_path / "copy"), background=False) as copy:
            assert copy.range("s", "-", "+") == [(10, 1.0), (11, 4.0)]
            assert dump(copy) == dump(db)
    finally:
        db.close()
